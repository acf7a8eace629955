"""Preprocessing for `MultimodalSERForRegression` (paper 001): the speech encoder's feature extractor and the text
encoder's tokenizer in one processor that `save_pretrained` keeps next to the model, plus a data collator that
turns dataset rows (audio, transcript, attributes, gender, cached embeddings) into model batches."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace
from typing import Any

import numpy as np
import torch
from transformers import AutoFeatureExtractor, AutoTokenizer, ProcessorMixin
from transformers.feature_extraction_utils import BatchFeature

from ..audio import SAMPLING_RATE, load_input
from ..models.configuration_multimodal import MULTIMODAL_ATTRIBUTES
from .data_collator import AudioDataCollator, CollatorError


class MultimodalSERProcessor(ProcessorMixin):
    r"""Feature extractor (speech branch) + tokenizer (text branch) of [`MultimodalSERForRegression`].

    `processor(audio=[...], text=[...])` returns `input_values` + `attention_mask` (WavLM-style encoders) or
    `input_features` + `attention_mask` (Whisper: log-mel padded to its window, 15 s in paper 001), and `text_input_ids` +
    `text_attention_mask`.

    Args:
        feature_extractor: a `Wav2Vec2FeatureExtractor` (WavLM) or `WhisperFeatureExtractor` (Whisper).
        tokenizer: the text encoder's tokenizer (RoBERTa-large in paper 001).
        max_text_length (`int`, *optional*, defaults to 128): transcripts are truncated to this many tokens.

    Example:
        >>> processor = MultimodalSERProcessor.from_encoders_pretrained(  # doctest: +SKIP
        ...     "microsoft/wavlm-large", "FacebookAI/roberta-large"
        ... )
        >>> batch = processor(audio=[waveform], text=["I am so happy"])  # doctest: +SKIP
    """

    def __init__(self, feature_extractor, tokenizer, max_text_length: int = 128):
        self.max_text_length = max_text_length
        super().__init__(feature_extractor, tokenizer)

    @classmethod
    def from_encoders_pretrained(
        cls, audio_name_or_path: str, text_name_or_path: str, whisper_window_s: float = 15.0, **hub_kwargs
    ) -> MultimodalSERProcessor:
        """The encoders' own preprocessing, with the attention mask switched on (pooling needs it). A Whisper
        feature extractor gets `chunk_length=whisper_window_s` (paper 001: 15 s), matching
        `MultimodalSERForRegression.from_encoders_pretrained`."""
        feature_extractor = AutoFeatureExtractor.from_pretrained(audio_name_or_path, **hub_kwargs)
        if type(feature_extractor).__name__.startswith("Whisper"):
            feature_extractor = AutoFeatureExtractor.from_pretrained(
                audio_name_or_path, chunk_length=int(whisper_window_s), **hub_kwargs
            )
        feature_extractor.return_attention_mask = True
        tokenizer = AutoTokenizer.from_pretrained(text_name_or_path, **hub_kwargs)
        return cls(feature_extractor, tokenizer)

    @property
    def is_whisper(self) -> bool:
        return type(self.feature_extractor).__name__.startswith("Whisper")

    def __call__(
        self,
        audio: np.ndarray | Sequence[np.ndarray] | None = None,
        text: str | Sequence[str] | None = None,
        sampling_rate: int = SAMPLING_RATE,
        return_tensors: str = "pt",
        **kwargs,
    ) -> BatchFeature:
        """Prepare a batch. Each waveform goes through the package's one decoder (`hf_ser.audio.load_input`) at
        `sampling_rate`: other rates are resampled to 16 kHz, bad audio raises `AudioError`."""
        if audio is None and text is None:
            raise ValueError("MultimodalSERProcessor needs `audio`, `text`, or both.")
        data: dict[str, Any] = {}
        if audio is not None:
            # One clip (a 1-D array or tensor, a path, bytes, a dict) or a batch of them.
            single = getattr(audio, "ndim", None) == 1 or isinstance(audio, (str, bytes, dict))
            waveforms = [
                load_input(w, sampling_rate=sampling_rate) for w in ([audio] if single else list(audio))
            ]
            # Whisper pads to its fixed window; WavLM pads to the longest clip of the batch.
            padding = "max_length" if self.is_whisper else True
            features = self.feature_extractor(
                [np.asarray(w, dtype=np.float32) for w in waveforms],
                sampling_rate=SAMPLING_RATE,
                padding=padding,
                return_attention_mask=True,
                return_tensors=return_tensors,
            )
            data.update(features)
        if text is not None:
            texts = [text] if isinstance(text, str) else list(text)
            tokens = self.tokenizer(
                texts,
                padding=True,
                truncation=True,
                max_length=self.max_text_length,
                return_tensors=return_tensors,
            )
            data["text_input_ids"] = tokens["input_ids"]
            data["text_attention_mask"] = tokens["attention_mask"]
        return BatchFeature(data)


@dataclass
class MultimodalDataCollator:
    """Collate dataset rows for [`MultimodalSERForRegression`] (use with `Trainer(data_collator=...)`).

    Rows hold `audio` (a 16 kHz array, or a datasets `Audio` dict), a transcript, the three attributes (or one
    `labels` column of 3 values), optionally `gender` (string or id; unknown -> -100) and cached embeddings. Clips
    longer than `max_duration_s` are cropped (paper 001: 15 s), randomly when `random_crop`.

    Args:
        processor ([`MultimodalSERProcessor`]): preprocessing of the model.
        text_column (`str`, defaults to `"transcript"`): transcript column; ignored when `text_embeds_column` is set.
        label_columns (`Sequence[str]`, defaults to `("arousal", "valence", "dominance")`): attribute columns.
        gender_column (`str`, *optional*, defaults to `"gender"`): gender column, mapped through `gender2id`.
        gender2id (`dict`, defaults to `{"Female": 0, "Male": 1}`): MSP-Podcast's gender strings.
        text_embeds_column / audio_embeds_column (`str`, *optional*): columns of cached frozen-encoder outputs
            (`hf_ser.cache_embeddings`): pooled text vectors, or (frames, dim) Whisper frame features.
        speaker_embeds_column (`str`, *optional*): column of cached speaker embeddings (paper 001's "+ S Emb",
            e.g. `hf_ser.processing.embedding_cache.SpeakerEmbedder` x-vectors), passed as `speaker_embeddings`.
        max_duration_s (`float`, defaults to 15.0), random_crop (`bool`, defaults to `False`), seed (`int`).
        gender_key (`str`, defaults to `"gender"`): batch key of the gender ids. The model's forward adds the gender
            term (alpha = `config.gender_loss_weight`) for `"gender"`, with a plain `Trainer` and with
            `hf_ser.CCCLossTrainer` alike.
    """

    processor: MultimodalSERProcessor
    text_column: str = "transcript"
    label_columns: Sequence[str] = MULTIMODAL_ATTRIBUTES
    gender_column: str | None = "gender"
    gender2id: dict | None = None
    text_embeds_column: str | None = None
    audio_embeds_column: str | None = None
    speaker_embeds_column: str | None = None
    max_duration_s: float = 15.0
    random_crop: bool = False
    seed: int = 0
    gender_key: str = "gender"

    def __post_init__(self):
        self._rng = np.random.default_rng(self.seed)
        if self.gender2id is None:
            self.gender2id = {"Female": 0, "Male": 1}

    def for_eval(self) -> MultimodalDataCollator:
        """The same collator with deterministic (leading) crops, used by hf_ser's trainers for evaluation."""
        return replace(self, random_crop=False)

    def _waveform(self, audio: Any) -> np.ndarray:
        # The package's one audio check (hf_ser.audio.load_input): NaN/empty/complex audio raises AudioError, other
        # rates are resampled, short clips padded.
        waveform = load_input(audio)
        limit = int(self.max_duration_s * SAMPLING_RATE)
        if waveform.shape[0] > limit:
            start = int(self._rng.integers(0, waveform.shape[0] - limit + 1)) if self.random_crop else 0
            waveform = waveform[start : start + limit]
        return waveform

    def _gender_id(self, value: Any) -> int:
        if value is None:
            return -100
        if isinstance(value, str):
            return self.gender2id.get(value, -100)
        return int(value)

    def __call__(self, rows: list[dict[str, Any]]) -> dict[str, torch.Tensor]:
        batch: dict[str, torch.Tensor] = {}
        if self.audio_embeds_column is not None:
            frames = [
                torch.as_tensor(np.asarray(row[self.audio_embeds_column]), dtype=torch.float32)
                for row in rows
            ]
            longest = max(f.shape[0] for f in frames)
            hidden = torch.zeros(len(frames), longest, frames[0].shape[1])
            mask = torch.zeros(len(frames), longest, dtype=torch.bool)
            for i, f in enumerate(frames):
                hidden[i, : f.shape[0]] = f
                mask[i, : f.shape[0]] = True
            batch["audio_hidden_states"], batch["audio_frame_mask"] = hidden, mask
            audio = None
        else:
            audio = [self._waveform(row["audio"]) for row in rows]
        if self.text_embeds_column is not None:
            batch["text_embeds"] = torch.as_tensor(
                np.stack([np.asarray(row[self.text_embeds_column]) for row in rows]), dtype=torch.float32
            )
            text = None
        else:
            text = [row[self.text_column] or "" for row in rows] if self.text_column in rows[0] else None
        if audio is not None or text is not None:
            batch.update(self.processor(audio=audio, text=text))
        if self.speaker_embeds_column is not None:
            batch["speaker_embeddings"] = torch.as_tensor(
                np.stack([np.asarray(row[self.speaker_embeds_column]) for row in rows]), dtype=torch.float32
            )
        labels = None
        if "labels" in rows[0]:
            labels = torch.tensor([row["labels"] for row in rows], dtype=torch.float32)
        elif all(column in rows[0] for column in self.label_columns):
            labels = torch.tensor([[row[c] for c in self.label_columns] for row in rows], dtype=torch.float32)
        if labels is not None:
            finite = torch.isfinite(labels).reshape(len(rows), -1).all(dim=1)
            if not bool(finite.all()):
                # One NaN target turns the weights into NaN under the CCC loss while the logged loss reads 0.
                bad = (~finite).nonzero().flatten().tolist()
                raise CollatorError(
                    f"NaN or infinite attribute labels at batch rows "
                    f"{AudioDataCollator._row_names(rows, bad, 'audio')}: fix or drop these rows."
                )
            batch["labels"] = labels
        if self.gender_column is not None and self.gender_column in rows[0]:
            batch[self.gender_key] = torch.tensor([self._gender_id(row[self.gender_column]) for row in rows])
        return batch


__all__ = ["MultimodalSERProcessor", "MultimodalDataCollator"]
