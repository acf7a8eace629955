"""Challenge submission files for the Interspeech 2025 SER challenge (paper 002, Naini et al.).

- Task 1 (categorical): `Filename,Prediction`, one row per test clip, the predicted primary emotion.
- Task 2 (attributes): `FileName,EmoAct,EmoVal,EmoDom`, arousal, valence and dominance on the corpus's 1-7
  scale.

Both writers check what they write (one row per distinct file, known classes, finite values) and raise
`SubmissionError` with a message that says what is wrong, so a malformed file is never uploaded.
"""

from __future__ import annotations

import csv
import os
from collections import Counter
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from ..data.msp_podcast import (
    EMOTION_CODES,  # consensus codes, in the challenge class order of EMOTION_LABELS
)
from ..errors import HFSERError
from ..models.configuration_wavlm_masp import EMOTION_LABELS

ATTRIBUTE_RANGE = (1.0, 7.0)


class SubmissionError(HFSERError, ValueError):
    """The predictions cannot be written as a valid challenge submission."""


def _check_file_names(file_names: Sequence[str], num_predictions: int) -> list[str]:
    names = [str(name).strip() for name in file_names]
    if not names:
        raise SubmissionError("No file names: a submission needs one row per test clip.")
    if len(names) != num_predictions:
        raise SubmissionError(f"{len(names)} file names but {num_predictions} predictions.")
    bad = [name for name in names if not name or any(char in name for char in ',\n\r"')]
    if bad:
        raise SubmissionError(
            f"{len(bad)} file names are empty or contain commas, quotes or newlines: {bad[:3]}"
        )
    duplicates = [name for name, count in Counter(names).items() if count > 1]
    if duplicates:
        raise SubmissionError(f"{len(duplicates)} file names occur more than once, e.g. {duplicates[:3]}.")
    return names


def write_categorical_submission(
    path: str | os.PathLike,
    file_names: Sequence[str],
    predictions: Sequence[int] | Sequence[str] | np.ndarray,
    *,
    label_names: Sequence[str] = EMOTION_LABELS,
    label_format: str = "code",
) -> Path:
    """Write a Task 1 submission: `Filename,Prediction`.

    Args:
        path (`str` or `os.PathLike`): the CSV to write (parent folders are created).
        file_names (`Sequence[str]`): the test clips' file names (e.g. `MSP-PODCAST_test3_0001.wav`).
        predictions: class ids (N,), scores or logits (N, C) whose argmax is taken, or class names / codes.
        label_names (`Sequence[str]`, defaults to the challenge order): names of the class ids (a model's
            `config.id2label` values).
        label_format (`str`, defaults to `"code"`): `"code"` writes the one-letter consensus codes of
            `labels_consensus.csv` (A, S, H, U, F, D, C, N); `"name"` writes the names (Angry, Sad, ...).

    Returns:
        `Path`: the written file.

    Example:
        >>> write_categorical_submission("task1.csv", ["a.wav", "b.wav"], [0, 7])  # rows: a.wav,A / b.wav,N
    """
    if label_format not in ("code", "name"):
        raise SubmissionError(f"label_format must be 'code' or 'name', got {label_format!r}.")
    label_names = [str(name) for name in label_names]
    unknown = [name for name in label_names if name not in EMOTION_LABELS]
    if unknown:
        raise SubmissionError(
            f"Labels {unknown} are not among the challenge's 8 classes {list(EMOTION_LABELS)}."
        )

    values = np.asarray(predictions)
    if values.ndim == 2:  # scores: one column per class
        if values.shape[1] != len(label_names):
            raise SubmissionError(f"Scores have {values.shape[1]} columns for {len(label_names)} classes.")
        values = values.argmax(axis=1)
    if values.ndim != 1:
        raise SubmissionError(
            f"Predictions must be (N,) class ids/names or (N, C) scores; got shape {values.shape}."
        )

    if values.dtype.kind in "iu":
        out_of_range = [int(v) for v in values if not 0 <= v < len(label_names)]
        if out_of_range:
            raise SubmissionError(
                f"Class ids {sorted(set(out_of_range))[:5]} lie outside [0, {len(label_names)})."
            )
        classes = [label_names[int(v)] for v in values]
    elif values.dtype.kind in "US":
        by_text = {name.lower(): name for name in EMOTION_LABELS} | {
            code.lower(): name for code, name in zip(EMOTION_CODES, EMOTION_LABELS, strict=True)
        }
        unknown = sorted({str(v) for v in values if str(v).strip().lower() not in by_text})
        if unknown:
            raise SubmissionError(
                f"Unknown class names {unknown[:5]}; expected {list(EMOTION_LABELS)} or codes."
            )
        classes = [by_text[str(v).strip().lower()] for v in values]
    else:
        raise SubmissionError(f"Predictions of dtype {values.dtype} are neither class ids nor class names.")

    names = _check_file_names(file_names, len(classes))
    if label_format == "code":
        classes = [EMOTION_CODES[EMOTION_LABELS.index(name)] for name in classes]
    return _write(path, ["Filename", "Prediction"], zip(names, classes, strict=True))


def write_attribute_submission(
    path: str | os.PathLike,
    file_names: Sequence[str],
    predictions: Sequence[Sequence[float]] | np.ndarray,
    *,
    clip: bool = True,
) -> Path:
    """Write a Task 2 submission: `FileName,EmoAct,EmoVal,EmoDom`.

    Args:
        path (`str` or `os.PathLike`): the CSV to write (parent folders are created).
        file_names (`Sequence[str]`): the test clips' file names.
        predictions (N x 3): arousal, valence, dominance (in that order, as `hf_ser.ATTRIBUTE_LABELS`) on 1-7.
        clip (`bool`, defaults to `True`): clip values to [1, 7], as the challenge baseline does when it maps
            its (x - 1) / 6 outputs back; with `clip=False` values outside the scale raise `SubmissionError`.

    Returns:
        `Path`: the written file.
    """
    values = np.asarray(predictions, dtype=np.float64)
    if values.ndim != 2 or values.shape[1] != 3:
        raise SubmissionError(
            f"Attribute predictions must be N x 3 (arousal, valence, dominance); got {values.shape}."
        )
    if not np.isfinite(values).all():
        raise SubmissionError(
            f"{int((~np.isfinite(values)).sum())} attribute predictions are NaN or infinite."
        )
    low, high = ATTRIBUTE_RANGE
    if clip:
        values = np.clip(values, low, high)
    elif ((values < low) | (values > high)).any():
        raise SubmissionError(
            f"Attribute predictions span [{values.min():.3g}, {values.max():.3g}], outside the 1-7 scale; "
            "map (x - 1) / 6 outputs back with 1 + 6x, or pass clip=True."
        )
    names = _check_file_names(file_names, len(values))
    rows = ([name, *(f"{v:.6f}" for v in row)] for name, row in zip(names, values, strict=True))
    return _write(path, ["FileName", "EmoAct", "EmoVal", "EmoDom"], rows)


def _write(path: str | os.PathLike, header: list[str], rows) -> Path:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(header)
        writer.writerows(rows)
    return path


__all__ = ["SubmissionError", "write_attribute_submission", "write_categorical_submission"]
