"""Batched inference with length bucketing: clips of similar length share a batch, so little compute goes to
padding, and every clip's output is the same as when it runs alone.

Encoders that are not padding-invariant (`hf_ser.batching.pads_exactly`) are batched only with clips of exactly
equal length. Models exported to ONNX (`hf_ser.onnx.ORTSERModel`) are accepted too and run in ONNX Runtime.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch

from .batching import length_buckets, pads_exactly, window_starts, windowed_logits
from .feature_extraction import SAMPLING_RATE


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

    `bucket=False` batches in arrival order (kept for benchmarks and comparisons). An ONNX export
    (`hf_ser.onnx.ORTSERModel`) runs in ONNX Runtime with the same batches."""
    if getattr(model, "is_onnx", False):
        return model.predict_logits(
            waveforms,
            feature_extractor=feature_extractor,
            batch_size=batch_size,
            bucket=bucket,
            progress=progress,
        )
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
    flat in the recording's length (see `hf_ser.batching.windowed_logits`)."""
    return windowed_logits(
        waveform,
        lambda windows: predict_logits(model, feature_extractor, windows, batch_size=batch_size),
        window_s=window_s,
        hop_s=hop_s,
        batch_size=batch_size,
        sampling_rate=SAMPLING_RATE,
    )


__all__ = ["predict_logits", "predict_windows", "classify", "length_buckets", "pads_exactly", "window_starts"]
