"""Batched inference with length bucketing: clips of similar length share a batch, so little compute goes to
padding, and every clip's output is the same as when it runs alone.

Two encoder families are not padding-invariant, so the package batches them only with clips of exactly equal
length: those whose first convolution uses group norm (WavLM-base, wav2vec2-base), which normalises over the padded
length, and data2vec-audio, whose stacked positional convolutions let padded frames leak into the valid ones.
"""

from __future__ import annotations

import numbers
from collections.abc import Iterable, Sequence

import numpy as np
import torch

from .audio import prepare_waveform
from .errors import ModelOutputError
from .feature_extraction import SAMPLING_RATE


def pads_exactly(model) -> bool:
    """True when the model's output for a clip does not depend on what it is batched with."""
    config = model.config
    # WavLMMASPConfig keeps its encoder under `encoder_config`, MultimodalSERConfig under `audio_config`.
    encoder_config = next(
        (
            sub
            for sub in (getattr(config, "encoder_config", None), getattr(config, "audio_config", None))
            if sub is not None
        ),
        config,
    )
    if getattr(encoder_config, "model_type", None) == "data2vec-audio":
        return False
    return getattr(encoder_config, "feat_extract_norm", "layer") != "group"


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
    `bucket=False` batches in arrival order (kept for benchmarks and comparisons)."""
    if batch_size < 1:
        raise ValueError(f"batch_size must be >= 1, got {batch_size}.")
    waveforms = [prepare_waveform(w, SAMPLING_RATE) for w in waveforms]
    model.eval()
    device = next(model.parameters()).device
    lengths = [len(w) for w in waveforms]
    if bucket:
        batches = length_buckets(lengths, batch_size, equal_length_only=not pads_exactly(model))
    else:
        batches = [
            list(range(i, min(i + batch_size, len(lengths)))) for i in range(0, len(lengths), batch_size)
        ]
    results: list[np.ndarray | None] = [None] * len(waveforms)
    if progress:
        from tqdm.auto import tqdm

        batches = tqdm(batches, desc="predicting", unit="batch")
    for batch in batches:
        inputs = feature_extractor(
            [waveforms[i] for i in batch],
            sampling_rate=SAMPLING_RATE,
            padding=True,
            return_attention_mask=True,
            return_tensors="pt",
        )
        logits = model(
            input_values=inputs["input_values"].to(device), attention_mask=inputs["attention_mask"].to(device)
        ).logits
        if not bool(torch.isfinite(logits).all()):
            raise ModelOutputError(
                f"The model returned NaN or infinite outputs for {len(batch)} finite clips: its weights are "
                "corrupt or diverged."
            )
        for row, index in zip(logits.float().cpu().numpy(), batch, strict=True):
            results[index] = row
    return np.stack(results) if results else np.zeros((0, model.config.num_labels), dtype=np.float32)


def classify(
    model, feature_extractor, waveforms: Sequence[np.ndarray], *, batch_size: int = 8
) -> list[dict[str, float]]:
    """Class probabilities per clip as `{label: probability}`, using `config.id2label`."""
    logits = torch.from_numpy(predict_logits(model, feature_extractor, waveforms, batch_size=batch_size))
    probs = torch.softmax(logits, dim=-1).numpy()
    labels = [model.config.id2label[i] for i in range(probs.shape[1])]
    return [dict(zip(labels, map(float, row), strict=True)) for row in probs]


def window_starts(num_samples: int, window: int, hop: int) -> list[int]:
    """Start samples of windows of `window` samples every `hop` samples; the last window ends at the end."""
    if num_samples <= window:
        return [0]
    starts = list(range(0, num_samples - window + 1, hop))
    if starts[-1] + window < num_samples:
        starts.append(num_samples - window)
    return starts


def window_lengths(window_s: float, hop_s: float | None = None) -> tuple[int, int]:
    """Window and hop in samples at 16 kHz; `ValueError` unless both are finite and at least 400 samples
    (25 ms, the encoder's receptive field)."""
    hop_s = window_s if hop_s is None else hop_s
    for name, value in (("window_s", window_s), ("hop_s", hop_s)):
        if isinstance(value, bool) or not isinstance(value, numbers.Real) or not np.isfinite(value):
            raise ValueError(f"{name} must be a finite number of seconds, got {value!r}.")
    window, hop = int(window_s * SAMPLING_RATE), int(hop_s * SAMPLING_RATE)
    if window < 400 or hop < 1:
        raise ValueError(
            f"window_s must be at least 0.025 s and hop_s positive, got {window_s!r} and {hop_s!r}."
        )
    return window, hop


def predict_windows(
    model,
    feature_extractor,
    waveform: np.ndarray,
    *,
    window_s: float = 10.0,
    hop_s: float | None = None,
    batch_size: int = 8,
) -> tuple[np.ndarray, np.ndarray]:
    """Windowed inference over long 16 kHz audio: returns (start times in seconds, logits per window).

    Windows are cut lazily batch by batch (views, no copies of the whole signal), so memory stays flat with the
    length of the recording. Equal-length windows batch exactly for every encoder."""
    window, hop = window_lengths(window_s, hop_s)
    starts = window_starts(len(waveform), window, hop)
    logits = []
    for i in range(0, len(starts), batch_size):
        chunk = [waveform[s : s + window] for s in starts[i : i + batch_size]]
        logits.append(predict_logits(model, feature_extractor, chunk, batch_size=batch_size))
    return np.asarray(starts, dtype=np.float64) / SAMPLING_RATE, np.concatenate(logits)


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
    "predict_logits",
    "predict_windows",
    "predict_stream_windows",
    "window_lengths",
    "classify",
    "length_buckets",
    "pads_exactly",
    "window_starts",
]
