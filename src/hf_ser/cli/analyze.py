"""`hf-ser analyze cka|mismatch|attention`: compare two saved models (papers 000 and 004; `hf_ser.evaluation.analysis`)."""

from __future__ import annotations

from pathlib import Path

from .common import CommandError, positive_float, unit_interval, writable_dir

NAME = "analyze"


def add_parser(commands):
    """Add `hf-ser analyze` to the `hf-ser` sub-command parser."""
    analyze = commands.add_parser(NAME, help="Compare two saved models (CKA, mismatch, attention).")
    analyze.add_argument("kind", choices=("cka", "mismatch", "attention"), help="Which analysis.")
    analyze.add_argument("--model-a", required=True, help="Folder of the first saved model.")
    analyze.add_argument("--model-b", required=True, help="Folder of the second saved model.")
    analyze.add_argument("--audio", nargs="+", required=True, help="Audio files and/or folders of them.")
    analyze.add_argument("--output-dir", required=True, help="Where to write the PNG plots and CSV tables.")
    analyze.add_argument("--names", nargs=2, default=None, metavar=("A", "B"), help="Labels of the models.")
    analyze.add_argument("--pooling", choices=("frames", "mean"), default="frames", help="CKA samples.")
    analyze.add_argument(
        "--threshold", type=unit_interval, default=0.6, help="Cosine-distance threshold (mismatch)."
    )
    analyze.add_argument(
        "--max-seconds", type=positive_float, default=10.0, help="Crop each clip to this length."
    )
    return analyze


def run(args) -> int:
    """Run a parsed `hf-ser analyze` command (an `AnalysisError` is a usage error, printed by `hf_ser.cli`)."""
    from ..evaluation.analysis import run_analysis

    options = {"names": args.names, "pooling": args.pooling, "threshold": args.threshold}
    models = (args.model_a, args.model_b)
    for model_id in models:
        if not Path(model_id).is_dir():
            raise CommandError(f"the model folder {model_id} does not exist")
    writable_dir(args.output_dir)
    run_analysis(args.kind, *models, args.audio, args.output_dir, max_seconds=args.max_seconds, **options)
    print(f"Wrote the {args.kind} plot and table to {args.output_dir}")
    return 0
