"""Batched inference with length bucketing: clips of similar length share a batch, so little compute goes to
padding, and every clip's output is the same as when it runs alone.

Encoders that are not padding-invariant (`hf_ser.inference.batching.pads_exactly`) are batched only with clips of exactly
equal length. Models exported to ONNX (`hf_ser.onnx.ORTSERModel`) are accepted too and run in ONNX Runtime.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

import numpy as np
import torch

from ..audio import prepare_waveform
from ..errors import ModelOutputError
from ..models.labels import SAMPLING_RATE
from .batching import (
    batched_logits,
    length_buckets,
    pads_exactly,
    window_lengths,
    window_starts,
    windowed_logits,
)


def check_finite_outputs(logits, clips: int) -> None:
    """`ModelOutputError` when a model returns NaN or infinite outputs for checked, finite audio."""
    finite = torch.isfinite(logits) if isinstance(logits, torch.Tensor) else np.isfinite(logits)
    if not bool(finite.all()):
        raise ModelOutputError(
            f"The model returned NaN or infinite outputs for {clips} finite clips: its weights are corrupt or "
            "diverged."
        )


@torch.inference_mode()
def predict_logits(
    model,
    feature_extractor,
    waveforms: Sequence[np.ndarray],
    *,
    batch_size: int = 8,
    bucket: bool = True,
    progress: bool = False,
) -> np.ndarray:
    """Logits (clips, outputs) for 16 kHz mono float waveforms, in input order.

    Every waveform is checked by `hf_ser.prepare_waveform` first (NaN/infinite, empty, complex or boolean audio
    raises `AudioError`; clips shorter than 400 samples are zero-padded; integer PCM and multichannel arrays are
    converted). NaN or infinite outputs raise `ModelOutputError` instead of being returned.
    `bucket=False` batches in arrival order (kept for benchmarks and comparisons). An ONNX export
    (`hf_ser.onnx.ORTSERModel`) runs in ONNX Runtime with the same batches and the same checks."""
    if batch_size < 1:
        raise ValueError(f"batch_size must be >= 1, got {batch_size}.")
    waveforms = [prepare_waveform(w, SAMPLING_RATE) for w in waveforms]
    if getattr(model, "is_onnx", False):
        logits = model.predict_logits(
            waveforms,
            feature_extractor=feature_extractor,
            batch_size=batch_size,
            bucket=bucket,
            progress=progress,
        )
        check_finite_outputs(np.asarray(logits), len(waveforms))
        return logits
    model.eval()
    device = next(model.parameters()).device

    def run_batch(clips: list[np.ndarray]) -> np.ndarray:
        inputs = feature_extractor(
            clips, sampling_rate=SAMPLING_RATE, padding=True, return_attention_mask=True, return_tensors="pt"
        )
        logits = model(
            input_values=inputs["input_values"].to(device), attention_mask=inputs["attention_mask"].to(device)
        ).logits
        check_finite_outputs(logits, len(clips))
        return logits.float().cpu().numpy()

    return batched_logits(
        waveforms,
        run_batch,
        batch_size=batch_size,
        num_outputs=model.config.num_labels,
        bucket=bucket,
        equal_length_only=not pads_exactly(model),
        progress=progress,
    )


def classify(
    model, feature_extractor, waveforms: Sequence[np.ndarray], *, batch_size: int = 8
) -> list[dict[str, float]]:
    """Class probabilities per clip as `{label: probability}`, using `config.id2label`."""
    logits = torch.from_numpy(predict_logits(model, feature_extractor, waveforms, batch_size=batch_size))
    probs = torch.softmax(logits, dim=-1).numpy()
    labels = [model.config.id2label[i] for i in range(probs.shape[1])]
    return [dict(zip(labels, map(float, row), strict=True)) for row in probs]


def predict_windows(
    model,
    feature_extractor,
    waveform: np.ndarray,
    *,
    window_s: float = 10.0,
    hop_s: float | None = None,
    batch_size: int = 8,
) -> tuple[np.ndarray, np.ndarray]:
    """Windowed inference over long 16 kHz audio: returns (start times in seconds, logits per window), with memory
    flat in the recording's length (see `hf_ser.inference.batching.windowed_logits`)."""
    return windowed_logits(
        waveform,
        lambda windows: predict_logits(model, feature_extractor, windows, batch_size=batch_size),
        window_s=window_s,
        hop_s=hop_s,
        batch_size=batch_size,
        sampling_rate=SAMPLING_RATE,
    )


def predict_stream_windows(
    model,
    feature_extractor,
    blocks: Iterable[np.ndarray],
    *,
    window_s: float = 10.0,
    hop_s: float | None = None,
    batch_size: int = 8,
) -> tuple[np.ndarray, np.ndarray]:
    """`predict_windows` over audio that arrives in blocks (e.g. `hf_ser.audio.stream_audio(path)`), with the same
    windows (`window_starts`: every `hop_s`, the last one ending at the end) and the same results, but holding at
    most one batch of windows and one block of audio: peak memory does not grow with the recording's length."""
    window, hop = window_lengths(window_s, hop_s)
    buffer = np.zeros(0, dtype=np.float32)
    buffer_start = 0  # sample index of buffer[0] in the whole recording
    next_start = 0
    starts: list[int] = []
    pending: list[np.ndarray] = []
    logits: list[np.ndarray] = []

    def flush() -> None:
        if pending:
            logits.append(predict_logits(model, feature_extractor, pending, batch_size=batch_size))
            pending.clear()

    for block in blocks:
        buffer = np.concatenate([buffer, np.asarray(block, dtype=np.float32)])
        end = buffer_start + buffer.size
        while next_start + window <= end:
            offset = next_start - buffer_start
            pending.append(buffer[offset : offset + window].copy())
            starts.append(next_start)
            next_start += hop
            if len(pending) == batch_size:
                flush()
        # Keep what the next window needs, and the last `window` samples for a final window ending at the end.
        keep_from = min(next_start, end - window) - buffer_start
        if keep_from > 0:
            buffer = buffer[keep_from:]
            buffer_start += keep_from
    total = buffer_start + buffer.size
    if not starts:  # shorter than one window: the whole clip
        pending.append(buffer.copy())
        starts.append(0)
    elif starts[-1] + window < total:
        starts.append(total - window)
        pending.append(buffer[buffer.size - window :].copy())
    flush()
    return np.asarray(starts, dtype=np.float64) / SAMPLING_RATE, np.concatenate(logits)


__all__ = [
    "check_finite_outputs",
    "predict_stream_windows",
    "window_lengths",
    "predict_logits",
    "predict_windows",
    "classify",
    "length_buckets",
    "pads_exactly",
    "window_starts",
]
