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

from .audio import AudioError, load_audio
from .errors import HFSERError
from .feature_extraction import SAMPLING_RATE
from .inference import predict_logits, predict_windows

AUDIO_SUFFIXES = (".wav", ".flac", ".mp3", ".ogg", ".opus", ".m4a", ".aac", ".webm", ".aiff", ".aif")


class InputError(HFSERError, ValueError):
    """Inputs that name no audio (missing paths, empty folders)."""


def collect_audio_files(inputs: list[str]) -> list[Path]:
    """Expand files, folders (recursively, by audio suffix) and glob patterns into a sorted, de-duplicated list."""
    found: list[Path] = []
    for item in inputs:
        path = Path(item)
        if path.is_dir():
            matches = sorted(p for p in path.rglob("*") if p.suffix.lower() in AUDIO_SUFFIXES and p.is_file())
            if not matches:
                raise InputError(f"The folder {path} holds no audio files ({', '.join(AUDIO_SUFFIXES)}).")
            found += matches
        elif path.is_file():
            found.append(path)
        elif glob.has_magic(item):
            matches = sorted(Path(p) for p in glob.glob(item, recursive=True) if Path(p).is_file())
            if not matches:
                raise InputError(f"The pattern {item!r} matches no files.")
            found += matches
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
    `AudioError`, or with `on_error="skip"` get a row with the error."""
    if on_error not in ("raise", "skip"):
        raise ValueError(f"on_error must be 'raise' or 'skip', got {on_error!r}.")
    waves: dict[int, np.ndarray] = {}
    results: list[Prediction | None] = [None] * len(files)
    iterator = enumerate(files)
    if progress:
        from tqdm.auto import tqdm

        iterator = tqdm(iterator, total=len(files), desc="reading audio", unit="file")
    for i, path in iterator:
        try:
            waves[i] = load_audio(path)
        except AudioError as error:
            if on_error == "raise":
                raise
            results[i] = Prediction(file=str(path), scores={}, error=str(error))
    short = [i for i, w in waves.items() if len(w) <= window_s * SAMPLING_RATE]
    if short:
        chosen = [waves[i] for i in short]
        logits = predict_logits(model, feature_extractor, chosen, batch_size=batch_size, progress=progress)
        for i, row in zip(short, logits, strict=True):
            scores, label = _scores(model, row)
            results[i] = Prediction(file=str(files[i]), scores=scores, label=label)
    for i in sorted(set(waves) - set(short)):
        starts, logits = predict_windows(
            model, feature_extractor, waves[i], window_s=window_s, batch_size=batch_size
        )
        per_window = [_scores(model, row) for row in logits]
        labels = list(per_window[0][0])
        mean = {name: float(np.mean([s[name] for s, _ in per_window])) for name in labels}
        top = None if per_window[0][1] is None else max(mean, key=mean.get)
        windows = [
            {"start_s": float(t), "label": lab, **s} for t, (s, lab) in zip(starts, per_window, strict=True)
        ]
        results[i] = Prediction(file=str(files[i]), scores=mean, label=top, windows=windows)
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
    from .submission import write_attribute_submission, write_categorical_submission

    ok = [p for p in predictions if p.error is None]
    names = [Path(p.file).name for p in ok]
    if getattr(model.config, "problem_type", None) == "regression":
        values = np.array([[p.scores[k] for k in ("arousal", "valence", "dominance")] for p in ok])
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
