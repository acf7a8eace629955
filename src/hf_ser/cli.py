"""The `hf-ser` command line: train, evaluate, predict, push, push-space, analyze, demo.

Every command explains its options with `--help`; a wrong path, model id or argument ends with a one-line error
and a non-zero exit status, never a traceback.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

EXIT_USAGE = 2


class CommandError(Exception):
    """An error the user can fix (bad path, bad option): printed as one line."""


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="hf-ser",
        description="Speech emotion recognition on the Hugging Face stack (Interspeech 2025 SER challenge systems).",
    )
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    train = commands.add_parser(
        "train",
        help="Train with a paper's recipe (examples/recipes/*.yaml) on the MSP-Podcast corpus.",
        description="Run a recipe: its YAML names the paper's training script and hyperparameters. Example: "
        "hf-ser train --recipe examples/recipes/paper000_masp.yaml --data-dir /data/MSP-PODCAST "
        "--model microsoft/wavlm-large --output-dir runs/masp",
    )
    train.add_argument("--recipe", required=True, help="Recipe YAML file (see examples/recipes/).")
    train.add_argument("--data-dir", help="MSP-Podcast root (Audios/, Labels/, Transcripts/).")
    train.add_argument(
        "--model", help="Pretrained speech encoder, e.g. microsoft/wavlm-large (recipe default)."
    )
    train.add_argument("--output-dir", required=True, help="Where checkpoints and the final model go.")
    train.add_argument(
        "--tiny", action="store_true", help="Smoke run: generated corpus and a tiny random model."
    )
    train.add_argument(
        "--set",
        nargs="*",
        default=[],
        metavar="KEY=VALUE",
        help="Override recipe arguments, e.g. --set epochs=3.",
    )

    evaluate = commands.add_parser(
        "evaluate",
        help="Score a saved model on a corpus split with the challenge metrics; write a report with plots.",
        description="Macro/micro-F1, UAR/WAR and a confusion matrix (categorical models) or CCC per attribute and "
        "scatter plots (attribute models), written to --output-dir as metrics.json, predictions.csv, report.md and "
        "a PNG.",
    )
    evaluate.add_argument("--model", required=True, help="Saved model folder or Hub id.")
    evaluate.add_argument("--data-dir", required=True, help="MSP-Podcast root.")
    evaluate.add_argument("--split", default="validation", help="train, validation, test1 or test2.")
    evaluate.add_argument("--output-dir", required=True, help="Where the report goes.")
    evaluate.add_argument("--batch-size", type=int, default=8, help="Clips per batch (length-bucketed).")
    evaluate.add_argument("--on-error", choices=("raise", "skip"), default="raise", help="Bad corpus rows.")

    predict = commands.add_parser(
        "predict",
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
    predict.add_argument("--batch-size", type=int, default=8, help="Clips per batch (length-bucketed).")
    predict.add_argument(
        "--window", type=float, default=30.0, help="Seconds; longer recordings are windowed."
    )
    predict.add_argument("--skip-errors", action="store_true", help="Keep going past unreadable files.")

    demo = commands.add_parser(
        "demo",
        help="Run the embedded demo: synthesize a corpus, train, evaluate, reload, predict (no corpus, no network).",
    )
    demo.add_argument("--output-dir", default="demo_output", help="Where the corpus, model and report go.")
    demo.add_argument(
        "--steps", type=int, default=None, help="Training steps (default 400, about 2-3 minutes)."
    )
    demo.add_argument(
        "--seconds", type=float, default=None, help="Also stop training after this many seconds."
    )

    analyze = commands.add_parser("analyze", help="Compare two saved models (CKA, mismatch, attention).")
    analyze.add_argument("kind", choices=("cka", "mismatch", "attention"), help="Which analysis.")
    analyze.add_argument("--model-a", required=True, help="Folder of the first saved model.")
    analyze.add_argument("--model-b", required=True, help="Folder of the second saved model.")
    analyze.add_argument("--audio", nargs="+", required=True, help="Audio files and/or folders of them.")
    analyze.add_argument("--output-dir", required=True, help="Where to write the PNG plots and CSV tables.")
    analyze.add_argument("--names", nargs=2, default=None, metavar=("A", "B"), help="Labels of the models.")
    analyze.add_argument("--pooling", choices=("frames", "mean"), default="frames", help="CKA samples.")
    analyze.add_argument("--threshold", type=float, default=0.6, help="Cosine-distance threshold (mismatch).")
    analyze.add_argument("--max-seconds", type=float, default=10.0, help="Crop each clip to this length.")

    from .ensemble import add_ensemble_parser
    from .hub import add_cli_commands

    add_cli_commands(commands)  # push, push-space
    add_ensemble_parser(commands)  # ensemble create / predict
    from .convert import add_convert_parser

    add_convert_parser(commands)  # convert SRC DST (released checkpoints)
    return parser


def load_audio_model(model_id: str):
    """A saved audio model and its feature extractor (registered hf_ser classes; no remote code)."""
    from transformers import AutoFeatureExtractor, AutoModelForAudioClassification

    if not Path(model_id).exists() and model_id.count("/") != 1:
        raise CommandError(f"--model {model_id!r} is neither a folder nor a Hub id (org/name).")
    try:
        model = AutoModelForAudioClassification.from_pretrained(model_id)
        extractor = AutoFeatureExtractor.from_pretrained(model_id)
    except (OSError, ValueError) as error:
        first_line = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
        raise CommandError(f"cannot load model {model_id!r}: {first_line}") from None
    return model.eval(), extractor


def writable_dir(path: str) -> Path:
    folder = Path(path)
    try:
        folder.mkdir(parents=True, exist_ok=True)
        probe = folder / ".hf_ser_write_test"
        probe.write_text("")
        probe.unlink()
    except OSError as error:
        raise CommandError(f"cannot write to {folder}: {error.strerror or error}") from None
    return folder


def cmd_train(args) -> int:
    from .recipes import load_recipe, parse_overrides, run_recipe

    recipe = load_recipe(args.recipe)
    overrides = parse_overrides(args.set)
    overrides["output-dir"] = str(writable_dir(args.output_dir))
    if args.tiny:
        overrides["tiny"] = True
    elif args.data_dir:
        if recipe.corpus == "msp-podcast" and not Path(args.data_dir, "Labels").is_dir():
            raise CommandError(
                f"--data-dir {args.data_dir} has no Labels/ folder: is it the MSP-Podcast root?"
            )
        overrides["data-dir"] = args.data_dir
    else:
        raise CommandError("give --data-dir (the corpus) or --tiny (a generated corpus)")
    if args.model:
        overrides["model"] = args.model
    run_recipe(recipe, overrides)
    return 0


def cmd_evaluate(args) -> int:
    from .data import load_msp_podcast
    from .evaluation import evaluate_model, is_regression, write_report

    if not Path(args.data_dir, "Labels").is_dir():
        raise CommandError(f"--data-dir {args.data_dir} has no Labels/ folder: is it the MSP-Podcast root?")
    output_dir = writable_dir(args.output_dir)
    model, extractor = load_audio_model(args.model)
    config_name = "attributes" if is_regression(model) else "categorical"
    print(f"[hf-ser evaluate] preparing the {config_name} corpus from {args.data_dir}", flush=True)
    corpus = load_msp_podcast(args.data_dir, config_name, on_error=args.on_error)
    if args.split not in corpus:
        raise CommandError(f"the corpus has no split {args.split!r}; it has {sorted(corpus)}")
    print(f"[hf-ser evaluate] predicting {len(corpus[args.split])} clips of {args.split}", flush=True)
    metrics, predictions = evaluate_model(
        model, extractor, corpus[args.split], batch_size=args.batch_size, progress=True
    )
    written = write_report(output_dir, metrics, predictions, model, args.split)
    shown = {k: round(v, 4) for k, v in metrics.items() if isinstance(v, float)}
    print(f"[hf-ser evaluate] {shown}")
    print(f"[hf-ser evaluate] report: {', '.join(str(p) for p in written)}")
    return 0


def cmd_predict(args) -> int:
    from .prediction import collect_audio_files, predict_files, write_submission, write_table

    files = collect_audio_files(args.inputs)
    writable_dir(str(Path(args.output).parent))
    model, extractor = load_audio_model(args.model)
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
    table = write_table(predictions, args.output)
    print(f"[hf-ser predict] wrote {table}")
    if args.submission:
        print(f"[hf-ser predict] wrote submission {write_submission(predictions, args.submission, model)}")
    failed = [p for p in predictions if p.error]
    if failed:
        print(
            f"[hf-ser predict] {len(failed)} files could not be read, e.g. {failed[0].error}", file=sys.stderr
        )
    return 0


def cmd_demo(args) -> int:
    from .demo import run_demo

    kwargs = {"train_seconds": args.seconds}
    if args.steps is not None:
        kwargs["train_steps"] = args.steps
    run_demo(writable_dir(args.output_dir), **kwargs)
    return 0


def cmd_analyze(args) -> int:
    from .analysis import AnalysisError, run_analysis

    options = {"names": args.names, "pooling": args.pooling, "threshold": args.threshold}
    models = (args.model_a, args.model_b)
    try:
        run_analysis(args.kind, *models, args.audio, args.output_dir, max_seconds=args.max_seconds, **options)
    except AnalysisError as error:
        raise CommandError(str(error)) from error
    print(f"Wrote the {args.kind} plot and table to {args.output_dir}")
    return 0


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    from .analysis import AnalysisError
    from .audio import AudioError
    from .hub import PublishError
    from .prediction import InputError
    from .recipes import RecipeError

    user_errors = (
        CommandError,
        AudioError,
        InputError,
        RecipeError,
        AnalysisError,
        PublishError,
        FileNotFoundError,
    )

    handlers = {"train": cmd_train, "evaluate": cmd_evaluate, "predict": cmd_predict, "demo": cmd_demo}
    handlers["analyze"] = cmd_analyze
    try:
        if args.command in ("push", "push-space"):
            from .hub import run_cli

            return run_cli(args)
        if args.command == "ensemble":
            from .ensemble import run_ensemble_command

            return run_ensemble_command(args)
        if args.command == "convert":
            from .convert import run_convert_command

            return run_convert_command(args)
        return handlers[args.command](args)
    except user_errors as error:
        print(f"hf-ser {args.command}: error: {error}", file=sys.stderr)
        return EXIT_USAGE
    except KeyboardInterrupt:
        print(f"hf-ser {args.command}: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
