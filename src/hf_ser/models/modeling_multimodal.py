"""`MultimodalSERForRegression`: speech + text emotional attribute prediction with a gender auxiliary head (paper
001: Lertpetchpun et al., "Developing a High-performance Framework for Speech Emotion Recognition in Naturalistic
Conditions Challenge for Emotional Attribute Prediction", Interspeech 2025, Task 2 winner).

Speech branch: WavLM (softmax-weighted sum of all hidden states, fine-tuned) or a frozen Whisper encoder (last
layer), then 1-D pointwise convolutions (256 channels) and masked mean pooling. Text branch: a frozen RoBERTa over
the transcript, pooled. Optional speaker embedding. The concatenation feeds three 2-layer MLPs whose sigmoid
outputs are mapped to the training labels' range (Eq. 2), and a 2-layer gender MLP (Eq. 1, alpha = 1).

This file travels to the Hub with the model (``trust_remote_code``): it imports only torch, transformers and its
sibling files.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn
from transformers import AutoConfig, AutoModel
from transformers import initialization as init
from transformers.modeling_outputs import BaseModelOutput, SequenceClassifierOutput
from transformers.models.whisper.modeling_whisper import WhisperEncoder
from transformers.utils import can_return_tuple

from .configuration_multimodal import LAYER_SUM_ENCODERS, WHISPER_ENCODERS, MultimodalSERConfig
from .losses import auxiliary_cross_entropy, loss_from_config
from .modeling_base import (
    LayerRecorder,
    SERPreTrainedModel,
    eager_attention,
    encoder_frame_mask,
    freeze_modules,
    load_encoder_weights,
    pretrained_encoder_state,
)
from .pooling import MaskedMeanPooling


@dataclass
class MultimodalSEROutput(SequenceClassifierOutput):
    """`SequenceClassifierOutput` whose `logits` are the (batch, 3) arousal/valence/dominance predictions on the
    label scale, plus `aux_logits` of the gender head and the fused `embeddings` fed to the heads."""

    aux_logits: torch.Tensor | None = None
    embeddings: torch.Tensor | None = None


def two_layer_mlp(input_size: int, hidden_size: int, num_outputs: int, dropout: float) -> nn.Sequential:
    """Paper 001's downstream model: Linear, ReLU, Dropout, Linear."""
    return nn.Sequential(
        nn.Linear(input_size, hidden_size),
        nn.ReLU(),
        nn.Dropout(dropout),
        nn.Linear(hidden_size, num_outputs),
    )


class PointwiseConvStack(nn.Module):
    """1-D pointwise (kernel size 1) convolutions over frames, ReLU and dropout between them:
    (batch, frames, dim) -> (batch, frames, channels)."""

    def __init__(self, input_size: int, channels: int, num_layers: int, dropout: float):
        super().__init__()
        layers: list[nn.Module] = []
        for index in range(num_layers):
            layers.append(nn.Conv1d(input_size if index == 0 else channels, channels, kernel_size=1))
            if index < num_layers - 1:
                layers += [nn.ReLU(), nn.Dropout(dropout)]
        self.layers = nn.Sequential(*layers)

    def forward(self, hidden_states: torch.Tensor) -> torch.Tensor:
        return self.layers(hidden_states.transpose(1, 2)).transpose(1, 2)


class MultimodalSERPreTrainedModel(SERPreTrainedModel):
    config: MultimodalSERConfig
    config_class = MultimodalSERConfig
    base_model_prefix = "multimodal_ser"
    input_modalities = ("audio", "text")
    # The loss is a batch statistic (CCC): Trainer must not rescale it by item counts.
    accepts_loss_kwargs = False
    # WavLM has no SDPA path; the encoders pick their own attention implementation.
    _supports_sdpa = False

    # `from_pretrained` also accepts a plain speech encoder checkpoint (see `SERPreTrainedModel`): WavLM, wav2vec2,
    # HuBERT, data2vec-audio, or Whisper, of which the encoder is kept. It then builds a speech-only model
    # (`use_text=False` unless given) around the checkpoint's encoder.
    encoder_checkpoint_types = LAYER_SUM_ENCODERS + WHISPER_ENCODERS

    @classmethod
    def _config_around_encoder(cls, encoder_config, config_kwargs):
        config_kwargs.setdefault("use_text", False)
        return MultimodalSERConfig(audio_config=encoder_config.to_dict(), **config_kwargs)

    @classmethod
    def _encoder_key_mapping(cls, encoder_config, config):
        # Encoder keys lose their task model's prefix and go under `audio_encoder.`; Whisper keeps its encoder.
        if config.is_whisper:
            return {r"^(?:model\.)?encoder\.": "audio_encoder."}
        prefix = encoder_config.model_type.replace("-", "_")
        return {rf"^(?:{prefix}\.)?": "audio_encoder."}

    @torch.no_grad()
    def _init_weights(self, module):
        super()._init_weights(module)
        if isinstance(module, MultimodalSERForRegression) and module.layer_weights is not None:
            init.zeros_(module.layer_weights)  # equal layer weights at the start


class MultimodalSERForRegression(MultimodalSERPreTrainedModel):
    """Speech + text emotional attribute regressor of paper 001 (MM-WavLM, MM-Whisper, and their ablations).

    `forward` returns a [`MultimodalSEROutput`] whose `logits` are (batch, 3) arousal/valence/dominance values in
    `[config.attribute_min, config.attribute_max]`. The loss is computed when `labels` are given: the sum over the
    three attributes of 1 - CCC, plus `config.gender_loss_weight` times the gender cross-entropy when `gender` labels
    are given (paper 001, Eq. 1 with beta = 0: the speaker-prediction term hurt and is not implemented). The loss
    is read from the config at every call (`gender_loss_weight`, `ccc_reduction`, `ccc_weights`).

    Frozen encoders (the text encoder; Whisper) run without gradients and stay in eval mode during training, so
    their outputs are deterministic and can be cached once (`hf_ser.cache_embeddings`) and passed back as
    `text_embeds` / `audio_hidden_states`.

    Example:
        >>> from hf_ser import MultimodalSERForRegression
        >>> model = MultimodalSERForRegression.from_encoders_pretrained(  # doctest: +SKIP
        ...     "microsoft/wavlm-large", "FacebookAI/roberta-large"
        ... )
    """

    def __init__(self, config: MultimodalSERConfig):
        super().__init__(config)
        audio_config = config.audio_config
        if config.is_whisper:
            self.audio_encoder = WhisperEncoder(audio_config)
            audio_size = audio_config.d_model
            self.layer_weights = None
        else:
            self.audio_encoder = AutoModel.from_config(audio_config)
            audio_size = audio_config.hidden_size
            # One weight per hidden state: the input embeddings plus every transformer layer.
            self.layer_weights = nn.Parameter(torch.zeros(audio_config.num_hidden_layers + 1))
            # Layer inputs captured by hooks: `output_hidden_states` of transformers 5 is not reliable for WavLM
            # with an attention mask (it drops one state), so the weighted sum reads the layers directly.
            self.layer_recorder = LayerRecorder()
            self.layer_recorder.attach(self.audio_encoder.encoder.layers, inputs=True)
        self.conv = PointwiseConvStack(
            audio_size, config.conv_hidden_size, config.conv_num_layers, config.dropout
        )
        self.pooling = MaskedMeanPooling()
        fused_size = config.conv_hidden_size
        if config.use_text:
            self.text_encoder = AutoModel.from_config(config.text_config, add_pooling_layer=False)
            fused_size += config.text_config.hidden_size
        else:
            self.text_encoder = None
        fused_size += config.speaker_embedding_size
        self.attribute_heads = nn.ModuleList(
            two_layer_mlp(fused_size, config.head_hidden_size, 1, config.head_dropout)
            for _ in range(config.num_labels)
        )
        self.gender_head = (
            two_layer_mlp(fused_size, config.head_hidden_size, config.num_genders, config.head_dropout)
            if config.num_genders
            else None
        )
        self.apply_freezing()
        self.post_init()

    # ----------------------------------------------------------------------------------------------- freezing
    def frozen_modules(self) -> list[nn.Module]:
        """Encoders that are frozen as a whole (they run without gradients and in eval mode)."""
        frozen = []
        if self.config.freeze_audio_encoder:
            frozen.append(self.audio_encoder)
        if self.text_encoder is not None and self.config.freeze_text_encoder:
            frozen.append(self.text_encoder)
        return frozen

    def apply_freezing(self) -> None:
        """Freeze as paper 001 does: text encoder and Whisper frozen, WavLM fine-tuned (its convolutional waveform
        encoder frozen when `config.freeze_feature_encoder`). Frozen parts stop autograd (the waveform never
        requires grad); the SpecAugment embedding is frozen when no time masking is configured, since nothing else
        reads it."""
        config = self.config
        freeze_modules([self.audio_encoder, self.text_encoder], frozen=False)
        frozen: list[nn.Module | nn.Parameter | None] = list(self.frozen_modules())
        if not config.is_whisper:
            if config.freeze_feature_encoder:
                frozen.append(self.audio_encoder.feature_extractor)
            audio_config = config.audio_config
            if not (getattr(audio_config, "apply_spec_augment", False) and audio_config.mask_time_prob > 0):
                frozen.append(getattr(self.audio_encoder, "masked_spec_embed", None))
        freeze_modules(frozen)
        self._sync_checkpointing()

    def freeze_feature_encoder(self) -> None:
        """Freeze the convolutional waveform encoder; recorded in the config so that loading keeps it frozen."""
        self.config.freeze_feature_encoder = True
        self.apply_freezing()

    def train(self, mode: bool = True):
        super().train(mode)
        # Frozen encoders are feature extractors: no dropout, so cached and on-the-fly features agree.
        for module in self.frozen_modules():
            module.eval()
        return self

    # ----------------------------------------------------------------------------------------------- branches
    def speech_frames(
        self,
        input_values: torch.Tensor | None = None,
        attention_mask: torch.Tensor | None = None,
        input_features: torch.Tensor | None = None,
    ) -> tuple[torch.Tensor, torch.Tensor | None]:
        """The encoder's frame features before the convolutions, and their (batch, frames) validity mask.

        WavLM-style encoders take 16 kHz `input_values` with a sample-level `attention_mask`; Whisper takes log-mel
        `input_features` (padded to its window) with a mel-frame-level `attention_mask`."""
        hidden, mask, _ = self._encode_speech(input_values, attention_mask, input_features)
        return hidden, mask

    def _encode_speech(
        self,
        input_values: torch.Tensor | None,
        attention_mask: torch.Tensor | None,
        input_features: torch.Tensor | None,
        output_hidden_states: bool = False,
        output_attentions: bool = False,
    ) -> tuple[torch.Tensor, torch.Tensor | None, BaseModelOutput]:
        """`speech_frames`, plus the speech encoder's own output (with its hidden states / attentions on request)."""
        flags = {"output_hidden_states": output_hidden_states, "output_attentions": output_attentions}
        frozen = self.config.freeze_audio_encoder
        with (
            torch.set_grad_enabled(torch.is_grad_enabled() and not frozen),
            eager_attention(self.audio_encoder.config, enabled=output_attentions),
        ):
            if self.config.is_whisper:
                if input_features is None:
                    raise ValueError(
                        "A Whisper speech branch needs `input_features` (log-mel, WhisperFeatureExtractor)."
                    )
                encoded = self.audio_encoder(input_features, return_dict=True, **flags)
                hidden = encoded.last_hidden_state
                mask = encoder_frame_mask(self.audio_encoder, hidden.shape[1], attention_mask, hidden.device)
                return hidden, mask, encoded
            if input_values is None:
                raise ValueError("A WavLM-style speech branch needs `input_values` (16 kHz waveforms).")
            self.layer_recorder.start()
            try:
                encoded = self.audio_encoder(
                    input_values, attention_mask=attention_mask, return_dict=True, **flags
                )
            finally:
                states = self.layer_recorder.stop()
        num_layers = len(self.audio_encoder.encoder.layers)
        # Hidden states as transformers' output_hidden_states used to define them: the input of the first layer,
        # the outputs of the others, and the final (normalised) last_hidden_state.
        stacked = torch.stack([states[i] for i in range(num_layers)] + [encoded.last_hidden_state])
        weights = torch.softmax(self.layer_weights, dim=0).to(stacked.dtype)
        hidden = torch.einsum("l,lbtd->btd", weights, stacked)
        return hidden, encoder_frame_mask(self.audio_encoder, hidden.shape[1], attention_mask), encoded

    def pool_speech(self, hidden_states: torch.Tensor, frame_mask: torch.Tensor | None) -> torch.Tensor:
        """Pointwise convolutions, then the mean over valid frames: (batch, channels)."""
        return self.pooling(self.conv(hidden_states), frame_mask)

    def embed_text(
        self, text_input_ids: torch.Tensor, text_attention_mask: torch.Tensor | None = None
    ) -> torch.Tensor:
        """The transcript's pooled text embedding (batch, text hidden size) from the (frozen) text encoder."""
        if self.text_encoder is None:
            raise ValueError("This model has no text branch (config.use_text=False).")
        if text_attention_mask is None:
            text_attention_mask = torch.ones_like(text_input_ids)
        with torch.set_grad_enabled(torch.is_grad_enabled() and not self.config.freeze_text_encoder):
            hidden = self.text_encoder(
                input_ids=text_input_ids, attention_mask=text_attention_mask
            ).last_hidden_state
        if self.config.text_pooling == "cls":
            return hidden[:, 0]
        return self.pooling(hidden, text_attention_mask.bool())

    def scale_outputs(self, raw: torch.Tensor) -> torch.Tensor:
        """Eq. 2 of paper 001: sigmoid to [0, 1], then min-max mapped to the training labels' range."""
        # Read from the config each time (no buffer): the range is data set after construction, and buffers are not
        # materialised from the checkpoint when the model is built on the meta device.
        low = torch.tensor(self.config.attribute_min, device=raw.device, dtype=raw.dtype)
        high = torch.tensor(self.config.attribute_max, device=raw.device, dtype=raw.dtype)
        return torch.sigmoid(raw) * (high - low) + low

    # ----------------------------------------------------------------------------------------------- forward
    @can_return_tuple
    def forward(
        self,
        input_values: torch.Tensor | None = None,
        attention_mask: torch.Tensor | None = None,
        input_features: torch.Tensor | None = None,
        text_input_ids: torch.Tensor | None = None,
        text_attention_mask: torch.Tensor | None = None,
        text_embeds: torch.Tensor | None = None,
        audio_hidden_states: torch.Tensor | None = None,
        audio_frame_mask: torch.Tensor | None = None,
        speaker_embeddings: torch.Tensor | None = None,
        labels: torch.Tensor | None = None,
        gender: torch.Tensor | None = None,
        output_hidden_states: bool | None = None,
        output_attentions: bool | None = None,
        **kwargs,
    ) -> MultimodalSEROutput:
        r"""
        input_values (`torch.Tensor` of shape `(batch, samples)`, *optional*): 16 kHz waveforms (WavLM branch).
        attention_mask (`torch.Tensor`, *optional*): validity of `input_values` samples, or of `input_features`
            mel frames for Whisper.
        input_features (`torch.Tensor` of shape `(batch, mels, 3000)`, *optional*): log-mel input (Whisper branch).
        text_input_ids / text_attention_mask (`torch.Tensor` of shape `(batch, tokens)`, *optional*): the tokenized
            transcript.
        text_embeds (`torch.Tensor` of shape `(batch, text_hidden)`, *optional*): precomputed (cached) pooled text
            embeddings, used instead of running the frozen text encoder.
        audio_hidden_states (`torch.Tensor` of shape `(batch, frames, dim)`, *optional*): precomputed frame features
            of a frozen speech encoder, with `audio_frame_mask` (batch, frames), used instead of running it.
        speaker_embeddings (`torch.Tensor` of shape `(batch, speaker_embedding_size)`, *optional*): required when
            `config.speaker_embedding_size > 0`.
        labels (`torch.Tensor` of shape `(batch, 3)`, *optional*): arousal, valence, dominance.
        gender (`torch.Tensor` of shape `(batch,)`, *optional*): gender class ids (-100 = unknown) for the auxiliary
            loss: the batch key that `MultimodalDataCollator` and `AudioDataCollator(aux_label_column=...)` write and
            hf_ser's trainers pass on. `aux_labels`, hf_ser's former name, is still accepted.
        output_hidden_states / output_attentions (`bool`, *optional*): return the speech encoder's hidden states /
            attention weights (None when cached `audio_hidden_states` are given); default to the config's flags.
            `return_dict=False` gives `outputs.to_tuple()`.
        """
        output_hidden_states, output_attentions = self._output_flags(output_hidden_states, output_attentions)
        unknown = sorted(set(kwargs) - {"aux_labels"})
        if unknown:
            raise TypeError(f"MultimodalSERForRegression.forward got unexpected arguments {unknown}.")
        if gender is None:
            # The former batch key of the gender ids (collators built with gender_key="aux_labels").
            gender = kwargs.pop("aux_labels", None)
        if audio_hidden_states is not None:
            if not (self.config.is_whisper and self.config.freeze_audio_encoder):
                # A WavLM layer sum has trainable weights: its output cannot be computed ahead of training.
                raise ValueError("Cached `audio_hidden_states` need a frozen Whisper speech encoder.")
            hidden, frame_mask, encoded = audio_hidden_states, audio_frame_mask, BaseModelOutput()
        else:
            hidden, frame_mask, encoded = self._encode_speech(
                input_values, attention_mask, input_features, output_hidden_states, output_attentions
            )
        parts = [self.pool_speech(hidden, None if frame_mask is None else frame_mask.bool())]

        if self.config.use_text:
            if text_embeds is None:
                if text_input_ids is None:
                    raise ValueError(
                        "This model reads the transcript: pass `text_input_ids` or cached `text_embeds`."
                    )
                text_embeds = self.embed_text(text_input_ids, text_attention_mask)
            parts.append(text_embeds.to(parts[0].dtype))
        if self.config.speaker_embedding_size:
            if speaker_embeddings is None:
                raise ValueError(
                    f"config.speaker_embedding_size={self.config.speaker_embedding_size}: pass `speaker_embeddings`."
                )
            parts.append(speaker_embeddings.to(parts[0].dtype))
        embeddings = torch.cat(parts, dim=-1)

        raw = torch.cat([head(embeddings) for head in self.attribute_heads], dim=-1)
        logits = self.scale_outputs(raw)
        aux_logits = self.gender_head(embeddings) if self.gender_head is not None else None

        loss = None
        if labels is not None:
            loss = self.compute_loss(logits, labels, aux_logits, gender)

        return MultimodalSEROutput(
            loss=loss,
            logits=logits,
            hidden_states=encoded.hidden_states,
            attentions=encoded.attentions,
            aux_logits=aux_logits,
            embeddings=embeddings,
        )

    def compute_loss(
        self,
        logits: torch.Tensor,
        labels: torch.Tensor,
        aux_logits: torch.Tensor | None = None,
        gender: torch.Tensor | None = None,
    ) -> torch.Tensor:
        """Eq. 1 of paper 001: sum over attributes of (1 - CCC) + alpha * CE(gender) when gender labels are given,
        with alpha = `config.gender_loss_weight` and the 1 - CCC terms combined as `config.ccc_reduction` says."""
        labels = labels.to(logits.device).float().view_as(logits)
        loss = loss_from_config(self.config)(logits.float(), labels)
        if aux_logits is None or not self.config.gender_loss_weight:
            return loss
        # Without any known gender in the batch the term is a zero that keeps the gender head in the graph.
        return loss + self.config.gender_loss_weight * auxiliary_cross_entropy(aux_logits, gender)

    # ----------------------------------------------------------------------------------------------- factory
    @classmethod
    def from_encoders_pretrained(
        cls,
        audio_name_or_path: str = "microsoft/wavlm-large",
        text_name_or_path: str | None = "FacebookAI/roberta-large",
        *,
        revision: str | None = None,
        cache_dir: str | None = None,
        whisper_window_s: float = 15.0,
        **config_kwargs,
    ) -> MultimodalSERForRegression:
        """Build the model around pretrained encoders with fresh convolutions and heads.

        A Whisper encoder reads a `whisper_window_s` window (paper 001 and its release: 15 s, the first 750 of
        Whisper's 1,500 positions, with `chunk_length=15` in the feature extractor; see
        `MultimodalSERProcessor.from_encoders_pretrained`). Whisper has no attention mask, so the window changes
        the real frames' outputs: use the window the model was trained with.

        `audio_name_or_path` is a WavLM-style model (`"microsoft/wavlm-large"`, MM-WavLM) or a Whisper model
        (`"openai/whisper-large-v3"`, MM-Whisper: only its encoder is kept); `text_name_or_path` is the text encoder
        (`"FacebookAI/roberta-large"`), or None for a speech-only model. Weights are read as safetensors only.
        `config_kwargs` go to [`MultimodalSERConfig`]. Pair it with
        `hf_ser.MultimodalSERProcessor.from_encoders_pretrained(audio_name_or_path, text_name_or_path)`.
        """
        hub = {"revision": revision, "cache_dir": cache_dir}
        audio_config = AutoConfig.from_pretrained(audio_name_or_path, **hub)
        if audio_config.model_type == "whisper":
            # 50 encoder positions per second (10 ms mel hop, stride-2 convolution): 750 for 15 s.
            positions = int(round(whisper_window_s * 50))
            if not 0 < positions <= audio_config.max_source_positions:
                raise ValueError(
                    f"whisper_window_s={whisper_window_s} needs {positions} positions; {audio_name_or_path} has "
                    f"{audio_config.max_source_positions} ({audio_config.max_source_positions / 50:g} s)."
                )
            audio_config.max_source_positions = positions
        text_config = (
            AutoConfig.from_pretrained(text_name_or_path, **hub).to_dict() if text_name_or_path else None
        )
        config_kwargs.setdefault("use_text", text_name_or_path is not None)
        config = MultimodalSERConfig(
            audio_config=audio_config.to_dict(), text_config=text_config, **config_kwargs
        )
        model = cls(config)
        audio_state = pretrained_encoder_state(audio_name_or_path, **hub)  # Whisper: its encoder only
        if config.is_whisper:
            positions = config.audio_config.max_source_positions
            audio_state["embed_positions.weight"] = audio_state["embed_positions.weight"][:positions]
        load_encoder_weights(model.audio_encoder, audio_state, audio_name_or_path)
        del audio_state
        if text_name_or_path is not None:
            text_state = pretrained_encoder_state(text_name_or_path, add_pooling_layer=False, **hub)
            load_encoder_weights(model.text_encoder, text_state, text_name_or_path)
            del text_state
        model.apply_freezing()
        model.config.name_or_path = audio_name_or_path
        model.pretrained_from = tuple(str(name) for name in (audio_name_or_path, text_name_or_path) if name)
        return model


__all__ = ["MultimodalSERForRegression", "MultimodalSERPreTrainedModel", "MultimodalSEROutput"]
