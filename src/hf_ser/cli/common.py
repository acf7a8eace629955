"""What the `hf-ser` commands share: argparse value types, the one-line usage-error parser, checks of output paths
(done before any work) and loading a saved audio model without remote code."""

from __future__ import annotations

import argparse
import math
import os
from pathlib import Path

from ..errors import HFSERError, is_network_error, one_line

EXIT_USAGE = 2
EXIT_BUG = 1


class CommandError(HFSERError):
    """An error the user can fix (bad path, bad option): printed as one line."""


def _parse(text: str, cast, expected: str):
    """`cast(text)`, or argparse's usage error naming what was `expected`."""
    try:
        return cast(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected {expected}, got {text!r}") from None


def positive_int(text: str) -> int:
    """argparse type: an integer >= 1."""
    value = _parse(text, int, "a positive integer")
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, got {value}")
    return value


def positive_float(text: str) -> float:
    """argparse type: a finite number > 0."""
    value = _parse(text, float, "a positive number")
    if not math.isfinite(value) or value <= 0:
        raise argparse.ArgumentTypeError(f"must be a finite number above 0, got {text}")
    return value


def unit_interval(text: str) -> float:
    """argparse type: a finite number in [0, 2] (a cosine distance)."""
    value = _parse(text, float, "a number")
    if not math.isfinite(value) or not 0 <= value <= 2:
        raise argparse.ArgumentTypeError(f"must be a cosine distance between 0 and 2, got {text}")
    return value


class OneLineParser(argparse.ArgumentParser):
    """argparse's parser, with usage errors printed as one line (`hf-ser predict: error: ...`) and exit status 2."""

    def error(self, message: str):
        self.exit(EXIT_USAGE, f"{self.prog}: error: {message} (usage: {self.prog} --help)\n")


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
    from ..onnx import ORTSERModel, is_onnx_folder

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
