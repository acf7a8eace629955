"""The `hf-ser` command line: train, evaluate, predict, export, push, push-space, analyze, demo.

Every command explains its options with `--help`. Every problem the user can fix (a wrong path, model id, option
value, corpus, recipe, an unwritable output, an unreachable Hub) ends with a one-line error on stderr and exit
status 2, never a traceback: the package's errors share one base class (`hf_ser.errors.HFSERError`), caught once
in `main`, together with file-system and network errors. Output paths are checked before any work is done.
Messages are redacted (`hf_ser.errors.redact_secrets`) so that no token is ever printed. Anything else is a bug:
one line and exit status 1 (set `HF_SER_DEBUG=1` for the traceback).
"""

from __future__ import annotations

import argparse
import math
import os
import sys
from pathlib import Path

from .errors import HFSERError, is_network_error, one_line
from .labels import ATTRIBUTE_LABELS

EXIT_USAGE = 2
EXIT_BUG = 1


class CommandError(HFSERError):
    """An error the user can fix (bad path, bad option): printed as one line."""


def positive_int(text: str) -> int:
    """argparse type: an integer >= 1."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, got {value}")
    return value


def positive_float(text: str) -> float:
    """argparse type: a finite number > 0."""
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a positive number, got {text!r}") from None
    if not math.isfinite(value) or value <= 0:
        raise argparse.ArgumentTypeError(f"must be a finite number above 0, got {text}")
    return value


def unit_interval(text: str) -> float:
    """argparse type: a finite number in [0, 2] (a cosine distance)."""
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number, got {text!r}") from None
    if not math.isfinite(value) or not 0 <= value <= 2:
        raise argparse.ArgumentTypeError(f"must be a cosine distance between 0 and 2, got {text}")
    return value


class OneLineParser(argparse.ArgumentParser):
    """argparse's parser, with usage errors printed as one line (`hf-ser predict: error: ...`) and exit status 2."""

    def error(self, message: str):
        self.exit(EXIT_USAGE, f"{self.prog}: error: {message} (usage: {self.prog} --help)\n")


def build_parser() -> argparse.ArgumentParser:
    parser = OneLineParser(
        prog="hf-ser",
        description="Speech emotion recognition on the Hugging Face stack (Interspeech 2025 SER challenge systems).",
    )
    commands = parser.add_subparsers(
        dest="command", required=True, metavar="COMMAND", parser_class=OneLineParser
    )

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
    evaluate.add_argument(
        "--batch-size", type=positive_int, default=8, help="Clips per batch (length-bucketed)."
    )
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
    predict.add_argument(
        "--batch-size", type=positive_int, default=8, help="Clips per batch (length-bucketed)."
    )
    predict.add_argument(
        "--window", type=positive_float, default=30.0, help="Seconds; longer recordings are windowed."
    )
    predict.add_argument("--skip-errors", action="store_true", help="Keep going past unreadable files.")

    export = commands.add_parser(
        "export",
        help="Export a saved model to ONNX (fp32 or int8), verified against PyTorch, for torch-free inference.",
        description="Writes model.onnx (dynamic batch and time, attention mask input), the config, the feature "
        "extractor, onnx_export.json and a model card section, after checking ONNX Runtime against PyTorch on a "
        "padded batch of clips. The folder runs with hf_ser.onnx.ORTSERModel (onnxruntime + numpy only), "
        'pipeline("audio-classification", model=FOLDER) and hf-ser predict --model FOLDER. Needs hf_ser[onnx].',
    )
    export.add_argument("--model", required=True, help="Folder of a saved hf_ser model.")
    export.add_argument("--output-dir", required=True, help="Where the ONNX folder goes.")
    export.add_argument(
        "--quantize",
        choices=("none", "int8"),
        default="none",
        help="int8: dynamic quantisation (smaller, faster).",
    )
    export.add_argument("--opset", type=int, default=17, help="ONNX opset (default 17).")

    demo = commands.add_parser(
        "demo",
        help="Run the embedded demo: synthesize a corpus, train, evaluate, reload, predict (no corpus, no network).",
    )
    demo.add_argument("--output-dir", default="demo_output", help="Where the corpus, model and report go.")
    demo.add_argument(
        "--steps", type=positive_int, default=None, help="Training steps (default 400, about 2-3 minutes)."
    )
    demo.add_argument(
        "--seconds", type=positive_float, default=None, help="Also stop training after this many seconds."
    )

    analyze = commands.add_parser("analyze", help="Compare two saved models (CKA, mismatch, attention).")
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

    from .ensemble import add_ensemble_parser
    from .hub import add_cli_commands

    add_cli_commands(commands)  # push, push-space
    add_ensemble_parser(commands)  # ensemble create / predict
    from .convert import add_convert_parser

    add_convert_parser(commands)  # convert SRC DST (released checkpoints)
    return parser


def check_model_source(model_id: str) -> None:
    """`CommandError` unless `model_id` is a saved model folder (with config.json) or looks like a Hub id."""
    path = Path(model_id)
    if path.exists():
        if not path.is_dir():
            raise CommandError(
                f"cannot load model {model_id!r}: it is a file; give the folder written by save_pretrained"
            )
        if not (path / "config.json").is_file():
            raise CommandError(f"cannot load model {model_id!r}: not a saved model folder (no config.json)")
    elif model_id.count("/") != 1 or model_id.startswith(("/", ".")):
        raise CommandError(f"--model {model_id!r} is neither a folder nor a Hub id (org/name).")


def load_audio_model(model_id: str):
    """A saved audio model and its feature extractor (registered hf_ser classes, or ONNX Runtime for an
    `hf-ser export` folder; no remote code: a folder's or repository's code files are never run, and no prompt
    ever offers to)."""
    from huggingface_hub.utils import logging as hub_logging
    from transformers import AutoFeatureExtractor, AutoModelForAudioClassification
    from transformers.utils import logging as hf_logging

    check_model_source(model_id)
    from .onnx import ORTSERModel, is_onnx_folder

    if is_onnx_folder(model_id):  # an `hf-ser export` folder: ONNX Runtime, same predictions
        try:
            model = ORTSERModel.from_pretrained(model_id)
        except ImportError as error:
            raise CommandError(str(error)) from None
        if model.feature_extractor is None:
            raise CommandError(
                f"the ONNX model {model_id!r} does not read audio (inputs {model.input_names})"
            )
        return model, model.feature_extractor
    verbosity, hub_verbosity = hf_logging.get_verbosity(), hub_logging.get_verbosity()
    # The loading report and the Hub client's retry messages are turned into one line below.
    hf_logging.set_verbosity_error()
    hub_logging.set_verbosity_error()
    try:
        model, info = AutoModelForAudioClassification.from_pretrained(
            model_id, trust_remote_code=False, output_loading_info=True
        )
        extractor = AutoFeatureExtractor.from_pretrained(model_id, trust_remote_code=False)
    except Exception as error:
        if isinstance(error, HFSERError) or is_network_error(error):
            raise
        # e.g. a corrupt config or weights file (SafetensorError), a size mismatch, a missing feature extractor.
        if "ignore_mismatched_sizes" in str(error):
            raise CommandError(
                f"cannot load model {model_id!r}: its weights do not match its config (e.g. num_labels)"
            ) from None
        raise CommandError(
            f"cannot load model {model_id!r}: {type(error).__name__}: {one_line(error)}"
        ) from None
    finally:
        hf_logging.set_verbosity(verbosity)
        hub_logging.set_verbosity(hub_verbosity)
    # Weights the checkpoint lacks would be random: a silent wrong answer, so refuse.
    missing = list(info.get("missing_keys") or []) + list(info.get("mismatched_keys") or [])
    if missing:
        shown = ", ".join(str(k if isinstance(k, str) else k[0]) for k in missing[:3])
        raise CommandError(
            f"cannot load model {model_id!r}: {len(missing)} weights are missing or do not match its config "
            f"(e.g. {shown})"
        )
    return model.eval(), extractor


def writable_dir(path: str) -> Path:
    """Create `path` if needed and check that files can be written in it (before any work is done)."""
    folder = Path(path)
    if folder.exists() and not folder.is_dir():
        raise CommandError(f"cannot write to {folder}: it is a file, not a folder")
    try:
        folder.mkdir(parents=True, exist_ok=True)
        probe = folder / ".hf_ser_write_test"
        probe.write_text("")
        probe.unlink()
    except OSError as error:
        raise CommandError(f"cannot write to {folder}: {error.strerror or error}") from None
    return folder


def writable_file(path: str, what: str = "output") -> Path:
    """Check, before any work, that `path` can be written as a file: not a folder, in a writable folder; an
    existing file must be writable."""
    file = Path(path)
    if file.is_dir():
        raise CommandError(f"cannot write the {what} {file}: it is a folder")
    writable_dir(str(file.parent) if str(file.parent) else ".")
    if file.exists() and not os.access(file, os.W_OK):
        raise CommandError(f"cannot write the {what} {file}: permission denied")
    return file


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


def cmd_predict(args) -> int:
    from .prediction import collect_audio_files, predict_files, write_submission, write_table

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
    from .configuration_wavlm_masp import EMOTION_LABELS

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


def cmd_export(args) -> int:
    source = Path(args.model)
    if not source.is_dir():
        raise CommandError(f"--model {args.model}: no such folder (give the folder of a saved hf_ser model)")
    if not (source / "config.json").is_file():
        raise CommandError(f"--model {args.model} has no config.json: is it a saved model folder?")
    output_dir = writable_dir(args.output_dir)
    if output_dir.resolve() == source.resolve():
        raise CommandError(
            "--output-dir must differ from --model (the export writes its own config and card)"
        )
    quantize = None if args.quantize == "none" else args.quantize
    try:
        from .onnx.export import export_onnx

        print(
            f"[hf-ser export] exporting {source} ({args.quantize}) and checking it against PyTorch",
            flush=True,
        )
        folder = export_onnx(source, output_dir, quantize=quantize, opset=args.opset)
    except ImportError as error:
        raise CommandError(str(error)) from None
    import json

    info = json.loads((folder / "onnx_export.json").read_text())
    check = info["verification"]
    print(
        f"[hf-ser export] wrote {folder / 'model.onnx'}; max |ONNX - PyTorch| on a padded batch: "
        f"{check['max_abs_diff_padded_batch']:.2e}"
        + (f", top-1 agreement {check['top1_agreement']:.0%}" if "top1_agreement" in check else "")
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
    from .analysis import run_analysis

    options = {"names": args.names, "pooling": args.pooling, "threshold": args.threshold}
    models = (args.model_a, args.model_b)
    for model_id in models:
        if not Path(model_id).is_dir():
            raise CommandError(f"the model folder {model_id} does not exist")
    writable_dir(args.output_dir)
    # AnalysisError, AudioError, ... are HFSERErrors: `main` prints them as one line (exit 2).
    run_analysis(args.kind, *models, args.audio, args.output_dir, max_seconds=args.max_seconds, **options)
    print(f"Wrote the {args.kind} plot and table to {args.output_dir}")
    return 0


def report(command: str, error: BaseException) -> int:
    """Print `error` as one redacted line and return the exit status: 2 for what the user can fix, 1 for bugs."""
    if isinstance(error, HFSERError):
        message, status = one_line(error), EXIT_USAGE
    elif is_network_error(error):
        message, status = (
            f"cannot reach the Hugging Face Hub ({type(error).__name__}: {one_line(error)})",
            EXIT_USAGE,
        )
    elif isinstance(error, OSError):
        where = f" ({error.filename})" if getattr(error, "filename", None) else ""
        message, status = f"{error.strerror or one_line(error)}{where}", EXIT_USAGE
    elif isinstance(error, UnicodeDecodeError):
        message, status = f"a file is not valid UTF-8 text ({one_line(error)})", EXIT_USAGE
    else:
        message = (
            f"internal error {type(error).__name__}: {one_line(error)} (set HF_SER_DEBUG=1 for the traceback)"
        )
        status = EXIT_BUG
    print(f"hf-ser {command}: error: {message}", file=sys.stderr)
    return status


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    handlers = {"train": cmd_train, "evaluate": cmd_evaluate, "predict": cmd_predict, "demo": cmd_demo}
    handlers["analyze"] = cmd_analyze
    handlers["export"] = cmd_export
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
    except KeyboardInterrupt:
        print(f"hf-ser {args.command}: interrupted", file=sys.stderr)
        return 130
    except Exception as error:
        if os.environ.get("HF_SER_DEBUG") and not isinstance(error, HFSERError):
            raise
        return report(args.command, error)


if __name__ == "__main__":
    sys.exit(main())
