"""`hf-ser predict`: predict emotions for audio files, folders or globs; write a table (and a submission)."""

from __future__ import annotations

import sys

from ..models.labels import ATTRIBUTE_LABELS
from .common import CommandError, load_audio_model, positive_float, positive_int, writable_file

NAME = "predict"


def add_parser(commands):
    """Add `hf-ser predict` to the `hf-ser` sub-command parser."""
    predict = commands.add_parser(
        NAME,
        help="Predict emotions for audio files, folders or globs; write a CSV/JSON table (and a submission).",
        description="Reads any common format and rate (resampled to 16 kHz, mixed to mono). Clips of similar "
        "length are batched together; recordings longer than --window are cut into windows whose scores are "
        "averaged (per-window scores in the JSON output).",
    )
    predict.add_argument(
        "inputs", nargs="+", help="Audio files, folders (searched recursively) or glob patterns."
    )
    predict.add_argument("--model", required=True, help="Saved model folder or Hub id.")
    predict.add_argument("--output", default="predictions.csv", help="Table to write: .csv or .json.")
    predict.add_argument("--submission", default=None, help="Also write a challenge submission CSV here.")
    predict.add_argument(
        "--batch-size", type=positive_int, default=8, help="Clips per batch (length-bucketed)."
    )
    predict.add_argument(
        "--window", type=positive_float, default=30.0, help="Seconds; longer recordings are windowed."
    )
    predict.add_argument("--skip-errors", action="store_true", help="Keep going past unreadable files.")
    return predict


def run(args) -> int:
    """Run a parsed `hf-ser predict` command."""
    from ..inference.files import collect_audio_files, predict_files, write_submission, write_table

    skipped: list[str] = []
    files = collect_audio_files(args.inputs, skipped=skipped)
    writable_file(args.output, "table")
    if args.submission:
        writable_file(args.submission, "submission")
    model, extractor = load_audio_model(args.model)
    if args.submission:
        check_submission_labels(model)
    if skipped:
        print(
            f"[hf-ser predict] skipped {len(skipped)} entries that are not audio files, e.g. {skipped[0]}",
            file=sys.stderr,
        )
    print(f"[hf-ser predict] {len(files)} files", flush=True)
    predictions = predict_files(
        model,
        extractor,
        files,
        batch_size=args.batch_size,
        window_s=args.window,
        on_error="skip" if args.skip_errors else "raise",
        progress=True,
    )
    failed = [p for p in predictions if p.error]
    if len(failed) == len(predictions):
        raise CommandError(f"none of the {len(predictions)} files could be read, e.g. {failed[0].error}")
    table = write_table(predictions, args.output)
    print(f"[hf-ser predict] wrote {table}")
    if args.submission:
        print(f"[hf-ser predict] wrote submission {write_submission(predictions, args.submission, model)}")
    if failed:
        print(
            f"[hf-ser predict] {len(failed)} files could not be read, e.g. {failed[0].error}", file=sys.stderr
        )
    return 0


def check_submission_labels(model) -> None:
    """`CommandError` (before any prediction) when the model's outputs cannot make a challenge submission."""
    from ..models.configuration_wavlm_masp import EMOTION_LABELS

    labels = [str(model.config.id2label[i]) for i in range(model.config.num_labels)]
    if getattr(model.config, "problem_type", None) == "regression":
        missing = [name for name in ATTRIBUTE_LABELS if name not in labels]
        if missing:
            raise CommandError(
                f"--submission needs arousal, valence and dominance outputs; the model has {labels}"
            )
    else:
        unknown = [label for label in labels if label not in EMOTION_LABELS]
        if unknown:
            raise CommandError(
                f"--submission needs the challenge's classes {list(EMOTION_LABELS)}; the model also predicts {unknown}"
            )
