"""Prediction over files, folders and globs of audio in any common format and rate: clips of similar length are
batched together, long recordings are cut into windows, and the results go to a CSV or JSON table (and, on request,
a challenge submission file)."""

from __future__ import annotations

import csv
import glob
import json
import os
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch

from ..audio import AUDIO_SUFFIXES, AudioError, audio_duration, load_audio, stream_audio
from ..errors import HFSERError
from ..models.labels import ATTRIBUTE_LABELS, SAMPLING_RATE
from .predict import predict_logits, predict_stream_windows, window_lengths


class InputError(HFSERError, ValueError):
    """Inputs that name no audio (missing paths, empty folders)."""


def collect_audio_files(inputs: list[str], skipped: list[str] | None = None) -> list[Path]:
    """Expand files, folders (recursively, by audio suffix) and glob patterns into a sorted, de-duplicated list.

    In folders and globs, entries with an audio suffix that are not regular files (folders named `*.wav`, broken
    symlinks, symlink loops) are not predicted: each is appended to `skipped` (with the reason) so the caller can
    say how many there were, never dropped silently. A path given explicitly that cannot be read is an
    `InputError`."""
    skipped = [] if skipped is None else skipped

    def keep(candidates) -> list[Path]:
        kept = []
        for p in sorted(candidates):
            if p.suffix.lower() not in AUDIO_SUFFIXES and not glob_mode:
                continue
            try:
                if p.is_file():
                    kept.append(p)
                elif p.is_dir():
                    skipped.append(f"{p} (a folder)")
                elif p.is_symlink():
                    skipped.append(f"{p} (a broken symlink or a symlink loop)")
                else:
                    skipped.append(f"{p} (not a regular file)")
            except OSError as error:  # e.g. a symlink loop on some platforms
                skipped.append(f"{p} ({error.strerror or type(error).__name__})")
        return kept

    found: list[Path] = []
    for item in inputs:
        path = Path(item)
        glob_mode = False
        if path.is_dir():
            matches = keep(p for p in path.rglob("*") if p.suffix.lower() in AUDIO_SUFFIXES)
            if not matches:
                raise InputError(f"The folder {path} holds no audio files ({', '.join(AUDIO_SUFFIXES)}).")
            found += matches
        elif path.is_file():
            found.append(path)
        elif glob.has_magic(item):
            glob_mode = True
            matches = keep(Path(p) for p in glob.glob(item, recursive=True))
            if not matches:
                raise InputError(f"The pattern {item!r} matches no files.")
            found += matches
        elif path.is_symlink():
            raise InputError(f"{item} is a broken symlink or a symlink loop.")
        else:
            raise InputError(f"No such file or folder: {item}")
    return list(dict.fromkeys(found))


@dataclass
class Prediction:
    file: str
    scores: dict[str, float]
    label: str | None = None
    windows: list[dict] = field(default_factory=list)
    error: str | None = None


def _scores(model, logits: np.ndarray) -> tuple[dict[str, float], str | None]:
    labels = [model.config.id2label[i] for i in range(logits.shape[-1])]
    if getattr(model.config, "problem_type", None) == "regression":
        return dict(zip(labels, map(float, logits), strict=True)), None
    probs = torch.softmax(torch.from_numpy(logits).float(), dim=-1).numpy()
    return dict(zip(labels, map(float, probs), strict=True)), labels[int(probs.argmax())]


def _windowed_prediction(model, path: Path, starts: np.ndarray, logits: np.ndarray) -> Prediction:
    per_window = [_scores(model, row) for row in logits]
    labels = list(per_window[0][0])
    mean = {name: float(np.mean([s[name] for s, _ in per_window])) for name in labels}
    top = None if per_window[0][1] is None else max(mean, key=mean.get)
    windows = [
        {"start_s": float(t), "label": lab, **s} for t, (s, lab) in zip(starts, per_window, strict=True)
    ]
    return Prediction(file=str(path), scores=mean, label=top, windows=windows)


def predict_files(
    model,
    feature_extractor,
    files: list[Path],
    *,
    batch_size: int = 8,
    window_s: float = 30.0,
    on_error: str = "raise",
    progress: bool = False,
) -> list[Prediction]:
    """Predict every file. Clips up to `window_s` run in length-bucketed batches; longer ones are cut into windows
    of `window_s` and their scores averaged (per-window scores kept in `windows`). Unreadable files raise
    `AudioError`, or with `on_error="skip"` get a row with the error.

    Long recordings are never decoded whole: their duration is read from the file's header or container metadata,
    and those longer than `window_s` (or of unknown length) are decoded, resampled and predicted block by block
    (`hf_ser.audio.stream_audio` + `hf_ser.inference.predict.predict_stream_windows`), so peak memory depends on
    `batch_size` and `window_s`, not on the recording's length."""
    if on_error not in ("raise", "skip"):
        raise ValueError(f"on_error must be 'raise' or 'skip', got {on_error!r}.")
    window_lengths(window_s)  # validate before reading anything
    waves: dict[int, np.ndarray] = {}
    long: list[int] = []
    results: list[Prediction | None] = [None] * len(files)
    iterator = enumerate(files)
    if progress:
        from tqdm.auto import tqdm

        iterator = tqdm(iterator, total=len(files), desc="reading audio", unit="file")
    for i, path in iterator:
        try:
            duration = audio_duration(path)
            if duration is None or duration > window_s:
                long.append(i)
            else:
                waves[i] = load_audio(path)
        except AudioError as error:
            if on_error == "raise":
                raise
            results[i] = Prediction(file=str(path), scores={}, error=str(error))
    short = [i for i, w in waves.items() if len(w) <= window_s * SAMPLING_RATE]
    long += [i for i in waves if i not in short]
    if short:
        chosen = [waves[i] for i in short]
        logits = predict_logits(model, feature_extractor, chosen, batch_size=batch_size, progress=progress)
        for i, row in zip(short, logits, strict=True):
            scores, label = _scores(model, row)
            results[i] = Prediction(file=str(files[i]), scores=scores, label=label)
    waves = {i: waves[i] for i in long if i in waves}
    for i in sorted(long):
        blocks = [waves.pop(i)] if i in waves else stream_audio(files[i], block_seconds=min(window_s, 10.0))
        try:
            starts, logits = predict_stream_windows(
                model, feature_extractor, blocks, window_s=window_s, batch_size=batch_size
            )
        except AudioError as error:
            if on_error == "raise":
                raise
            results[i] = Prediction(file=str(files[i]), scores={}, error=str(error))
            continue
        if len(starts) == 1:  # no longer than one window after all (duration unknown from the header)
            scores, label = _scores(model, logits[0])
            results[i] = Prediction(file=str(files[i]), scores=scores, label=label)
        else:
            results[i] = _windowed_prediction(model, files[i], starts, logits)
    return [r for r in results if r is not None]


def write_table(predictions: list[Prediction], path: str | os.PathLike) -> Path:
    """CSV (one row per file: file, label, one column per class/attribute, error) or JSON (with windows)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    if path.suffix.lower() == ".json":
        path.write_text(json.dumps([p.__dict__ for p in predictions], indent=1))
        return path
    columns = next((list(p.scores) for p in predictions if p.scores), [])
    with path.open("w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["file", "label", *columns, "windows", "error"])
        for p in predictions:
            values = [f"{p.scores[c]:.6f}" if c in p.scores else "" for c in columns]
            writer.writerow([p.file, p.label or "", *values, len(p.windows) or 1, p.error or ""])
    return path


def write_submission(predictions: list[Prediction], path: str | os.PathLike, model) -> Path:
    """The challenge submission file (paper 002): `Filename,Prediction` or `FileName,EmoAct,EmoVal,EmoDom`."""
    from ..evaluation.submission import write_attribute_submission, write_categorical_submission

    ok = [p for p in predictions if p.error is None]
    names = [Path(p.file).name for p in ok]
    if getattr(model.config, "problem_type", None) == "regression":
        values = np.array([[p.scores[k] for k in ATTRIBUTE_LABELS] for p in ok])
        return write_attribute_submission(path, names, values)
    return write_categorical_submission(path, names, [p.label for p in ok])


__all__ = [
    "collect_audio_files",
    "predict_files",
    "write_table",
    "write_submission",
    "Prediction",
    "InputError",
]
