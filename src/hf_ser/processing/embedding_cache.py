"""A disk cache of frozen-encoder embeddings, computed once with `datasets.map` and reused across epochs and runs.

Paper 001 freezes RoBERTa-large (and Whisper-large-v3 in MM-Whisper): their outputs never change during training, so
encoding every transcript again in every one of the 50 epochs is wasted work. `cache_embeddings` adds the outputs as
a dataset column; `MultimodalSERForRegression` takes them back as `text_embeds` (pooled text vectors) or
`audio_hidden_states` (Whisper frame features), via `MultimodalDataCollator(text_embeds_column=...)`.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import datasets
import numpy as np
import torch
from datasets.fingerprint import Hasher

from ..audio import SAMPLING_RATE, load_input
from ..errors import HFSERError


class EmbeddingCacheError(HFSERError, ValueError):
    """The dataset or the embedding function cannot be cached as asked."""


def _as_waveform(value: Any) -> np.ndarray:
    """A decoded `datasets.Audio` value (dict or torchcodec decoder) or an array, as a 16 kHz float32 array: the
    package's one decoder (`hf_ser.audio.load_input`), so other rates are resampled and bad audio is an
    `AudioError`, as in the collators that read the same column."""
    return load_input(value)


def weights_fingerprint(module: torch.nn.Module) -> str:
    """A hash of a module's parameter names, shapes and values: the cache key of an embedding function."""
    digest = hashlib.sha256()
    for name, tensor in module.state_dict().items():
        digest.update(name.encode())
        digest.update(str(tuple(tensor.shape)).encode())
        digest.update(tensor.detach().to("cpu", torch.float32).contiguous().numpy().tobytes())
    return digest.hexdigest()[:16]


def cache_embeddings(
    dataset: datasets.Dataset,
    embed_fn: Callable[[list], np.ndarray | Sequence[np.ndarray]],
    column: str,
    batch_size: int = 8,
    cache_dir: str | os.PathLike | None = None,
    *,
    input_column: str = "audio",
    fingerprint: str | None = None,
) -> datasets.Dataset:
    """Add `column` = `embed_fn(batch of input_column values)` to `dataset`, computed once and cached on disk.

    Args:
        dataset (`datasets.Dataset`): the data (one split).
        embed_fn (`Callable`): maps a list of inputs to an array (batch, dim), or to a list of per-row arrays (e.g.
            (frames, dim) frame features). Audio columns are given as 16 kHz float32 arrays; other columns as
            stored (e.g. transcript strings).
        column (`str`): name of the new column.
        batch_size (`int`, defaults to 8): rows per `embed_fn` call.
        cache_dir (`str` or `os.PathLike`, *optional*): folder of the cache files. Without it, the dataset's own
            cache folder is used (a dataset held only in memory is then recomputed on every call).
        input_column (`str`, defaults to `"audio"`): the column fed to `embed_fn`.
        fingerprint (`str`, *optional*): identifies `embed_fn` in the cache key (for example a model name and
            revision). Defaults to `embed_fn.fingerprint` when it has one (the embedders below hash their weights),
            else to a hash of `embed_fn` itself.

    Returns:
        `datasets.Dataset` with the new column; a second call with the same data, function and `cache_dir` reads it
        from disk without calling `embed_fn`.

    Example:
        >>> embedder = TextEmbedder(model, processor)  # doctest: +SKIP
        >>> train = cache_embeddings(train, embedder, "text_embeds", input_column="transcript", cache_dir="cache")  # doctest: +SKIP
    """
    if batch_size < 1:
        raise EmbeddingCacheError(f"batch_size must be >= 1, got {batch_size}.")
    if input_column not in dataset.column_names:
        raise EmbeddingCacheError(
            f"No column {input_column!r} in the dataset (columns: {dataset.column_names})."
        )
    if column in dataset.column_names:
        raise EmbeddingCacheError(
            f"The dataset already has a column {column!r}; remove it or pick another name."
        )
    is_audio = isinstance(dataset.features.get(input_column), datasets.Audio) or input_column == "audio"
    function_key = fingerprint or getattr(embed_fn, "fingerprint", None) or Hasher.hash(embed_fn)
    new_fingerprint = Hasher.hash((dataset._fingerprint, column, input_column, function_key))

    def embed_batch(batch: dict[str, list]) -> dict[str, list]:
        inputs = batch[input_column]
        if is_audio:
            inputs = [_as_waveform(value) for value in inputs]
        outputs = embed_fn(inputs)
        rows = list(outputs)
        if len(rows) != len(inputs):
            raise EmbeddingCacheError(f"embed_fn returned {len(rows)} embeddings for {len(inputs)} inputs.")
        return {column: [np.asarray(row, dtype=np.float32) for row in rows]}

    map_kwargs: dict[str, Any] = {}
    if cache_dir is not None:
        Path(cache_dir).mkdir(parents=True, exist_ok=True)
        map_kwargs["cache_file_name"] = str(Path(cache_dir) / f"{column}-{new_fingerprint}.arrow")
    return dataset.map(
        embed_batch,
        batched=True,
        batch_size=batch_size,
        load_from_cache_file=True,
        new_fingerprint=new_fingerprint,
        desc=f"Caching {column}",
        **map_kwargs,
    )


class TextEmbedder:
    """`embed_fn` of the frozen text branch of a [`MultimodalSERForRegression`]: transcripts -> pooled text
    embeddings (batch, text hidden size), exactly what the model computes on the fly (eval mode, no gradients)."""

    def __init__(self, model, processor):
        if model.text_encoder is None:
            raise EmbeddingCacheError("The model has no text branch (config.use_text=False).")
        if not model.config.freeze_text_encoder:
            raise EmbeddingCacheError(
                "Only a frozen text encoder can be cached (config.freeze_text_encoder=False)."
            )
        self.model = model
        self.processor = processor
        self.fingerprint = "text-" + weights_fingerprint(model.text_encoder) + f"-{model.config.text_pooling}"

    @torch.inference_mode()
    def __call__(self, texts: list[str]) -> np.ndarray:
        tokens = self.processor(text=[text or "" for text in texts])
        device = next(self.model.text_encoder.parameters()).device
        self.model.text_encoder.eval()
        embeds = self.model.embed_text(
            tokens["text_input_ids"].to(device), tokens["text_attention_mask"].to(device)
        )
        return embeds.float().cpu().numpy()


class SpeechFrameEmbedder:
    """`embed_fn` of a frozen speech encoder (MM-Whisper): 16 kHz waveforms -> per-clip (valid frames, dim) frame
    features, fed back as `audio_hidden_states` (the pointwise convolutions and pooling stay trainable)."""

    def __init__(self, model, processor):
        if not (model.config.is_whisper and model.config.freeze_audio_encoder):
            # A WavLM layer sum has trainable layer weights, so its output changes during training.
            raise EmbeddingCacheError("Only a frozen Whisper speech encoder can be cached.")
        self.model = model
        self.processor = processor
        self.fingerprint = "speech-" + weights_fingerprint(model.audio_encoder)

    @torch.inference_mode()
    def __call__(self, waveforms: list[np.ndarray]) -> list[np.ndarray]:
        features = self.processor(audio=waveforms)
        device = next(self.model.audio_encoder.parameters()).device
        self.model.audio_encoder.eval()
        inputs = {k: v.to(device) for k, v in features.items()}
        hidden, mask = self.model.speech_frames(**inputs)
        hidden = hidden.float().cpu().numpy()
        if mask is None:
            return list(hidden)
        lengths = mask.sum(-1).cpu().tolist()
        return [row[: int(length)] for row, length in zip(hidden, lengths, strict=True)]


class SpeakerEmbedder:
    """`embed_fn` of a frozen speaker extractor (paper 001's "+ S Emb", Table 3): 16 kHz waveforms -> one
    L2-normalised x-vector per clip from a transformers `WavLMForXVector` (e.g. `microsoft/wavlm-base-plus-sv`),
    fed back as `speaker_embeddings` through `MultimodalDataCollator(speaker_embeds_column=...)`. Set the model's
    `speaker_embedding_size` to `embedder.size`.

    Paper 001 names no extractor; an x-vector model of the Hugging Face stack is our choice. Clips are embedded one
    at a time: base-size WavLM front ends normalise over the padded length, so batching would change a clip's
    vector.

    Example:
        >>> embedder = SpeakerEmbedder.from_pretrained("microsoft/wavlm-base-plus-sv")  # doctest: +SKIP
        >>> train = cache_embeddings(train, embedder, "speaker_embeds", cache_dir="cache")  # doctest: +SKIP
    """

    def __init__(self, model, feature_extractor, normalize: bool = True):
        if not hasattr(model, "config") or not hasattr(model.config, "xvector_output_dim"):
            raise EmbeddingCacheError(f"{type(model).__name__} is not an x-vector model (WavLMForXVector).")
        self.model = model.eval()
        self.feature_extractor = feature_extractor
        self.normalize = normalize
        self.size = int(model.config.xvector_output_dim)
        self.fingerprint = "speaker-" + weights_fingerprint(model) + f"-{int(normalize)}"

    @classmethod
    def from_pretrained(cls, name_or_path: str = "microsoft/wavlm-base-plus-sv", **kwargs) -> SpeakerEmbedder:
        """Load a `WavLMForXVector` and its feature extractor (safetensors only)."""
        from transformers import AutoFeatureExtractor, WavLMForXVector

        model = WavLMForXVector.from_pretrained(name_or_path, use_safetensors=True, **kwargs)
        return cls(model, AutoFeatureExtractor.from_pretrained(name_or_path, **kwargs))

    @torch.inference_mode()
    def __call__(self, waveforms: list[np.ndarray]) -> np.ndarray:
        device = next(self.model.parameters()).device
        self.model.eval()
        vectors = []
        for waveform in waveforms:
            inputs = self.feature_extractor(waveform, sampling_rate=SAMPLING_RATE, return_tensors="pt")
            vector = self.model(inputs["input_values"].to(device)).embeddings[0].float()
            if self.normalize:
                vector = torch.nn.functional.normalize(vector, dim=-1)
            vectors.append(vector.cpu().numpy())
        return np.stack(vectors)


__all__ = [
    "SpeakerEmbedder",
    "cache_embeddings",
    "TextEmbedder",
    "SpeechFrameEmbedder",
    "EmbeddingCacheError",
    "weights_fingerprint",
]
