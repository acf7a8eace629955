"""Batch planning shared by the PyTorch and the ONNX Runtime inference paths (torch-free): length buckets,
long-audio windows, and which encoders pad exactly.

Two encoder families are not padding-invariant, so the package batches them only with clips of exactly equal
length: those whose first convolution uses group norm (WavLM-base, wav2vec2-base), which normalises over the padded
length, and data2vec-audio, whose stacked positional convolutions let padded frames leak into the valid ones.
"""

from __future__ import annotations

import math
import numbers
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from ..models.labels import SAMPLING_RATE


def _field(obj: Any, name: str) -> Any:
    """`obj.name` for config objects, `obj[name]` for plain dicts (configs read from JSON without transformers)."""
    if isinstance(obj, dict):
        return obj.get(name)
    return getattr(obj, name, None)


def config_pads_exactly(config: Any) -> bool:
    """True when a model with this config gives a clip the same output whatever it is batched with."""
    # WavLMMASPConfig keeps its encoder under `encoder_config`, MultimodalSERConfig under `audio_config`.
    encoder_config = next(
        (
            sub
            for sub in (_field(config, "encoder_config"), _field(config, "audio_config"))
            if sub is not None
        ),
        config,
    )
    if _field(encoder_config, "model_type") == "data2vec-audio":
        return False
    return (_field(encoder_config, "feat_extract_norm") or "layer") != "group"


def pads_exactly(model) -> bool:
    """True when the model's output for a clip does not depend on what it is batched with."""
    return config_pads_exactly(model.config)


def length_buckets(
    lengths: Sequence[int], batch_size: int, equal_length_only: bool = False
) -> list[list[int]]:
    """Indices grouped into batches of at most `batch_size`, sorted by length (longest first).

    With `equal_length_only`, a batch never mixes lengths."""
    if batch_size < 1:
        raise ValueError(f"batch_size must be >= 1, got {batch_size}.")
    order = sorted(range(len(lengths)), key=lambda i: -lengths[i])
    batches: list[list[int]] = []
    for index in order:
        last = batches[-1] if batches else None
        fits = last is not None and len(last) < batch_size
        if fits and equal_length_only:
            fits = lengths[last[0]] == lengths[index]
        if fits:
            last.append(index)
        else:
            batches.append([index])
    return batches


def window_starts(num_samples: int, window: int, hop: int) -> list[int]:
    """Start samples of windows of `window` samples every `hop` samples; the last window ends at the end."""
    if num_samples <= window:
        return [0]
    starts = list(range(0, num_samples - window + 1, hop))
    if starts[-1] + window < num_samples:
        starts.append(num_samples - window)
    return starts


def window_lengths(
    window_s: float, hop_s: float | None = None, sampling_rate: int = SAMPLING_RATE
) -> tuple[int, int]:
    """Window and hop in samples; `ValueError` unless both are finite numbers of seconds, the window at least 400
    samples at 16 kHz (25 ms, the encoder's receptive field) and the hop positive."""
    hop_s = window_s if hop_s is None else hop_s
    for name, value in (("window_s", window_s), ("hop_s", hop_s)):
        if isinstance(value, bool) or not isinstance(value, numbers.Real) or not math.isfinite(value):
            raise ValueError(f"{name} must be a finite number of seconds, got {value!r}.")
    window, hop = int(window_s * sampling_rate), int(hop_s * sampling_rate)
    if window < sampling_rate * 0.025 or hop < 1:
        raise ValueError(
            f"window_s must be at least 0.025 s and hop_s positive, got {window_s!r} and {hop_s!r}."
        )
    return window, hop


__all__ = [
    "batched_logits",
    "config_pads_exactly",
    "pads_exactly",
    "length_buckets",
    "window_lengths",
    "window_starts",
    "windowed_logits",
]


def windowed_logits(
    waveform: np.ndarray,
    predict_chunk: Callable[[list[np.ndarray]], np.ndarray],
    *,
    window_s: float,
    hop_s: float | None,
    batch_size: int,
    sampling_rate: int,
) -> tuple[np.ndarray, np.ndarray]:
    """Windowed inference over long audio with any engine: `predict_chunk(windows) -> logits` runs on at most
    `batch_size` windows at a time. Returns (start times in seconds, logits per window).

    Windows are cut lazily batch by batch (views, no copies of the whole signal), so memory stays flat with the
    length of the recording. Equal-length windows batch exactly for every encoder."""
    window, hop = window_lengths(window_s, hop_s, sampling_rate)
    starts = window_starts(len(waveform), window, hop)
    logits = [
        predict_chunk([waveform[s : s + window] for s in starts[i : i + batch_size]])
        for i in range(0, len(starts), batch_size)
    ]
    return np.asarray(starts, dtype=np.float64) / sampling_rate, np.concatenate(logits)


def batched_logits(
    waveforms: Sequence[np.ndarray],
    run_batch: Callable[[list[np.ndarray]], Any],
    *,
    batch_size: int,
    num_outputs: int,
    bucket: bool = True,
    equal_length_only: bool = False,
    progress: bool = False,
) -> np.ndarray:
    """Logits (clips, outputs) for waveforms with any engine, in input order: `run_batch(clips) -> (len(clips),
    outputs)` runs each batch (PyTorch or ONNX Runtime), batches are length buckets (`length_buckets`, longest
    first) or, with `bucket=False`, arrival-order slices. The rows are scattered back to the clips' positions."""
    lengths = [len(w) for w in waveforms]
    if bucket:
        batches = length_buckets(lengths, batch_size, equal_length_only=equal_length_only)
    else:
        batches = [
            list(range(i, min(i + batch_size, len(lengths)))) for i in range(0, len(lengths), batch_size)
        ]
    if progress:
        from tqdm.auto import tqdm

        batches = tqdm(batches, desc="predicting", unit="batch")
    results: list[np.ndarray | None] = [None] * len(waveforms)
    for batch in batches:
        logits = np.asarray(run_batch([waveforms[i] for i in batch]), dtype=np.float32)
        for row, index in zip(logits, batch, strict=True):
            results[index] = row
    return np.stack(results) if results else np.zeros((0, num_outputs), dtype=np.float32)
