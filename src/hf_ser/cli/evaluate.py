"""`hf-ser evaluate`: score a saved model on a corpus split with the challenge metrics and write a report."""

from __future__ import annotations

from pathlib import Path

from ..models.labels import ATTRIBUTE_LABELS
from .common import CommandError, load_audio_model, positive_int, writable_dir

NAME = "evaluate"


def add_parser(commands):
    """Add `hf-ser evaluate` to the `hf-ser` sub-command parser."""
    evaluate = commands.add_parser(
        NAME,
        help="Score a saved model on a corpus split with the challenge metrics; write a report with plots.",
        description="Macro/micro-F1, UAR/WAR and a confusion matrix (categorical models) or CCC per attribute and "
        "scatter plots (attribute models), written to --output-dir as metrics.json, predictions.csv, report.md and "
        "a PNG.",
    )
    evaluate.add_argument("--model", required=True, help="Saved model folder or Hub id.")
    evaluate.add_argument("--data-dir", required=True, help="MSP-Podcast root.")
    evaluate.add_argument("--split", default="validation", help="train, validation, test1 or test2.")
    evaluate.add_argument("--output-dir", required=True, help="Where the report goes.")
    evaluate.add_argument(
        "--batch-size", type=positive_int, default=8, help="Clips per batch (length-bucketed)."
    )
    evaluate.add_argument("--on-error", choices=("raise", "skip"), default="raise", help="Bad corpus rows.")
    return evaluate


def run(args) -> int:
    """Run a parsed `hf-ser evaluate` command."""
    from ..data import load_msp_podcast
    from ..evaluation.report import evaluate_model, is_regression, write_report

    if not Path(args.data_dir, "Labels").is_dir():
        raise CommandError(f"--data-dir {args.data_dir} has no Labels/ folder: is it the MSP-Podcast root?")
    output_dir = writable_dir(args.output_dir)
    model, extractor = load_audio_model(args.model)
    config_name = "attributes" if is_regression(model) else "categorical"
    print(f"[hf-ser evaluate] preparing the {config_name} corpus from {args.data_dir}", flush=True)
    corpus = load_msp_podcast(args.data_dir, config_name, on_error=args.on_error)
    if args.split not in corpus:
        raise CommandError(f"the corpus has no split {args.split!r}; it has {sorted(corpus)}")
    split = corpus[args.split]
    label_columns = ATTRIBUTE_LABELS if config_name == "attributes" else ("label",)
    if len(split) == 0:
        raise CommandError(f"the split {args.split!r} is empty")
    if any(column not in split.column_names for column in label_columns) or any(
        value is None for value in split.select_columns(list(label_columns))[0].values()
    ):
        raise CommandError(
            f"the split {args.split!r} has no labels (the challenge keeps test3's labels hidden); "
            "use hf-ser predict for unlabelled audio"
        )
    print(f"[hf-ser evaluate] predicting {len(corpus[args.split])} clips of {args.split}", flush=True)
    metrics, predictions = evaluate_model(
        model, extractor, corpus[args.split], batch_size=args.batch_size, progress=True
    )
    written = write_report(output_dir, metrics, predictions, model, args.split)
    shown = {k: round(v, 4) for k, v in metrics.items() if isinstance(v, float)}
    print(f"[hf-ser evaluate] {shown}")
    print(f"[hf-ser evaluate] report: {', '.join(str(p) for p in written)}")
    return 0
