"""`WavLMForMASPClassification`: a self-supervised speech encoder with multi-layer attentive statistics pooling
(MASP) and a feed-forward head, partially fine-tuned (paper 000: Uniyal & Abrol, Interspeech 2025 SER challenge).
With `pooling="asp"` and full fine-tuning it is the Interspeech 2025 challenge baseline (paper 002).

This file travels to the Hub with the model (``trust_remote_code``): it imports only torch, transformers and its
sibling files.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn
from transformers import AutoConfig, AutoModel
from transformers import initialization as init
from transformers.modeling_outputs import SequenceClassifierOutput
from transformers.utils import can_return_tuple

from .configuration_wavlm_masp import SUPPORTED_ENCODERS, WavLMMASPConfig
from .losses import loss_from_config
from .modeling_base import (
    LayerRecorder,
    SERPreTrainedModel,
    eager_attention,
    encoder_frame_mask,
    freeze_modules,
    load_encoder_weights,
    pretrained_encoder_state,
)
from .pooling import AttentiveStatisticsPooling, MaskedMeanPooling, MultiLayerStatisticsPooling
from .wavlm_sdpa_attention import set_sdpa_enabled, use_sdpa_attention


@dataclass
class SERClassifierOutput(SequenceClassifierOutput):
    """`SequenceClassifierOutput` plus `embeddings`, the pooled utterance features fed to the head (used by the
    analysis tools: cosine distances between models, paper 004)."""

    embeddings: torch.Tensor | None = None


class FeedForwardHead(nn.Module):
    """The feed-forward head: optional input dropout, an optional projection, `num_layers` blocks of Linear,
    LayerNorm, ReLU and Dropout, then the output layer.

    Paper 000 (`projection=True`, the default): a projection to `hidden_size`, then the blocks. The challenge
    baseline (paper 002, its released `EmotionRegression`): input dropout, no projection, the first block mapping the
    pooled features to `hidden_size` directly."""

    def __init__(
        self,
        input_size: int,
        hidden_size: int,
        num_layers: int,
        dropout: float,
        num_outputs: int,
        input_dropout: float = 0.0,
        projection: bool = True,
    ):
        super().__init__()
        self.input_dropout = nn.Dropout(input_dropout) if input_dropout > 0 else nn.Identity()
        self.projection = nn.Linear(input_size, hidden_size) if projection else None
        sizes = [hidden_size if projection else input_size] + [hidden_size] * num_layers
        self.layers = nn.ModuleList(
            nn.Sequential(
                nn.Linear(sizes[i], hidden_size), nn.LayerNorm(hidden_size), nn.ReLU(), nn.Dropout(dropout)
            )
            for i in range(num_layers)
        )
        self.output = nn.Linear(hidden_size if (projection or num_layers) else input_size, num_outputs)

    def forward(self, features: torch.Tensor) -> torch.Tensor:
        hidden = self.input_dropout(features)
        if self.projection is not None:
            hidden = self.projection(hidden)
        for layer in self.layers:
            hidden = layer(hidden)
        return self.output(hidden)


class WavLMMASPPreTrainedModel(SERPreTrainedModel):
    config: WavLMMASPConfig
    config_class = WavLMMASPConfig
    base_model_prefix = "encoder"
    input_modalities = "audio"
    # WavLM has no SDPA path in transformers; the encoder decides its own attention implementation.
    _supports_sdpa = False
    # Checkpoints saved before the loss was read from the config at every call stored the class weights as a
    # `loss_fct.alpha` buffer; `config.class_weights` holds the same numbers.
    _keys_to_ignore_on_load_unexpected = [r"^loss_fct\."]

    # `from_pretrained` also accepts a plain encoder checkpoint of these families (see `SERPreTrainedModel`).
    encoder_checkpoint_types = SUPPORTED_ENCODERS

    @classmethod
    def _config_around_encoder(cls, encoder_config, config_kwargs):
        return WavLMMASPConfig(encoder_config=encoder_config.to_dict(), **config_kwargs)

    @classmethod
    def _encoder_key_mapping(cls, encoder_config, config):
        # Checkpoint keys of an encoder saved with a task head (`wavlm.`, `wav2vec2.`, `hubert.`, `data2vec_audio.`
        # prefixes) lose that prefix; transformers then prefixes them with our `encoder.`.
        prefix = encoder_config.model_type.replace("-", "_")
        return {rf"^{prefix}\.": ""}

    @torch.no_grad()
    def _init_weights(self, module):
        super()._init_weights(module)
        if isinstance(module, MultiLayerStatisticsPooling):
            init.zeros_(module.layer_weights)  # equal layer weights at the start


class WavLMForMASPClassification(WavLMMASPPreTrainedModel):
    """Speech emotion classifier / attribute regressor of paper 000 (and paper 002's baseline as a configuration).

    `forward(input_values, attention_mask=None, labels=None)` returns a `SequenceClassifierOutput` (with the pooled
    `embeddings`); the loss is computed when `labels` are given: focal or weighted cross-entropy over 8 emotions, or
    1-CCC summed over arousal/valence/dominance for `problem_type="regression"`, as the config's `loss`,
    `focal_gamma`, `class_weights`, `ccc_reduction` and `ccc_weights` say (read at every call).

    Padding: every pooling reads only the valid frames given by the encoder's own
    `_get_feat_extract_output_lengths`. Encoders whose first convolution uses group norm (WavLM-base,
    wav2vec2-base) normalise over the padded length, so padding changes their features; `hf_ser.inference.predict`
    batches such models only with clips of equal length.

    Example:
        >>> from hf_ser import WavLMForMASPClassification
        >>> model = WavLMForMASPClassification.from_encoder_pretrained("microsoft/wavlm-large")  # doctest: +SKIP
    """

    def __init__(self, config: WavLMMASPConfig):
        super().__init__(config)
        self.encoder = AutoModel.from_config(config.encoder_config)
        self.uses_sdpa = config.encoder_config.model_type == "wavlm" and config.wavlm_attention == "sdpa"
        if self.uses_sdpa:
            use_sdpa_attention(self.encoder)
        hidden_size = config.encoder_config.hidden_size
        num_layers = config.encoder_config.num_hidden_layers
        if config.pooling == "masp":
            self.pooling = MultiLayerStatisticsPooling(num_layers, layer_norm=config.masp_layer_norm)
            pooled_size = 2 * hidden_size
        elif config.pooling == "asp":
            self.pooling = AttentiveStatisticsPooling(hidden_size, config.asp_attention_size or hidden_size)
            pooled_size = 2 * hidden_size
        else:
            self.pooling = MaskedMeanPooling()
            pooled_size = hidden_size
        self.head = FeedForwardHead(
            pooled_size,
            config.head_hidden_size,
            config.head_num_layers,
            config.head_dropout,
            config.num_labels,
            input_dropout=config.head_input_dropout,
            projection=config.head_projection,
        )
        self.layer_recorder = LayerRecorder()
        if config.pooling == "masp":
            self.layer_recorder.attach(self.transformer_layers)
        self.apply_freezing()
        self.post_init()

    # ----------------------------------------------------------------------------------------------- freezing
    @property
    def transformer_layers(self) -> nn.ModuleList:
        return self.encoder.encoder.layers

    @property
    def normalizes_after_layers(self) -> bool:
        """Whether the encoder applies its LayerNorm after the transformer layers (the stable-layer-norm variants of
        WavLM, wav2vec2 and HuBERT) rather than before them (base variants, data2vec-audio). Read from the module
        built, since a config may carry `do_stable_layer_norm` for a family that ignores it."""
        return type(self.encoder.encoder).__name__.endswith("StableLayerNorm")

    @property
    def pools_normalized_last_layer(self) -> bool:
        """MASP reads the last layer after the encoder's final LayerNorm (stable-layer-norm encoders only)."""
        return (
            self.config.pooling == "masp"
            and self.config.masp_normalized_last_layer
            and self.normalizes_after_layers
        )

    def apply_freezing(self) -> None:
        """Freeze what `config.num_trainable_layers` and `config.freeze_feature_encoder` say (paper 000: the conv
        feature encoder and the lower 9 of 24 transformer layers).

        Frozen parts get `requires_grad=False` and the convolutional front end is told it is frozen, so autograd
        records nothing below the first trainable layer: the waveform never requires grad, and a backward pass
        stops at the lowest trainable parameter. Parameters that a configuration never uses (the final LayerNorm
        when MASP pools un-normalised layers; the SpecAugment embedding when no time masking is configured) are
        frozen too, so that no trainable parameter goes without a gradient (DistributedDataParallel requires it).
        """
        config = self.config
        encoder = self.encoder
        layers = self.transformer_layers
        num_trainable = len(layers) if config.num_trainable_layers is None else config.num_trainable_layers
        first_trainable = len(layers) - num_trainable
        stable_layer_norm = self.normalizes_after_layers
        freeze_modules([encoder], frozen=False)
        frozen: list[nn.Module | nn.Parameter | None] = []
        if config.freeze_feature_encoder or first_trainable > 0:
            frozen.append(encoder.feature_extractor)
        masked_spec_embed = getattr(encoder, "masked_spec_embed", None)
        if first_trainable > 0:
            # Everything that runs before the first trainable layer is frozen with the lower layers.
            frozen += [encoder.feature_projection, encoder.encoder.pos_conv_embed, masked_spec_embed]
            frozen += layers[:first_trainable]
            if not stable_layer_norm:
                frozen.append(encoder.encoder.layer_norm)  # applied before the layers in this variant
        final_norm_used = (
            not stable_layer_norm or config.pooling != "masp" or self.pools_normalized_last_layer
        )
        if num_trainable == 0 or not final_norm_used:
            frozen.append(encoder.encoder.layer_norm)
        spec_augment = getattr(config.encoder_config, "apply_spec_augment", False) and (
            getattr(config.encoder_config, "mask_time_prob", 0) > 0
        )
        if not spec_augment:
            frozen.append(masked_spec_embed)  # only read by SpecAugment's time masking
        freeze_modules(frozen)
        self._sync_checkpointing()

    def freeze_feature_encoder(self) -> None:
        """Freeze the convolutional waveform encoder (the usual transformers name for it); recorded in the config,
        so that loading and `apply_freezing()` keep it frozen."""
        self.config.freeze_feature_encoder = True
        self.apply_freezing()

    # ----------------------------------------------------------------------------------------------- forward
    def frame_mask(self, num_frames: int, attention_mask: torch.Tensor | None) -> torch.Tensor | None:
        """(batch, frames) bool mask of valid encoder frames, from the encoder's own output-length formula."""
        return encoder_frame_mask(self.encoder, num_frames, attention_mask)

    @can_return_tuple
    def forward(
        self,
        input_values: torch.Tensor,
        attention_mask: torch.Tensor | None = None,
        labels: torch.Tensor | None = None,
        output_hidden_states: bool | None = None,
        output_attentions: bool | None = None,
        **kwargs,
    ) -> SERClassifierOutput:
        r"""
        input_values (`torch.Tensor` of shape `(batch, samples)`): 16 kHz waveforms, normalised by the feature
            extractor.
        attention_mask (`torch.Tensor` of shape `(batch, samples)`, *optional*): 1 on real samples, 0 on padding.
        labels (`torch.Tensor`, *optional*): class ids `(batch,)` or class distributions `(batch, classes)` for
            classification; `(batch, 3)` attribute values for regression.
        output_hidden_states / output_attentions (`bool`, *optional*): return the encoder's hidden states /
            attention weights; default to the config's flags. `return_dict=False` gives `outputs.to_tuple()`.
        """
        output_hidden_states, output_attentions = self._output_flags(output_hidden_states, output_attentions)
        multi_layer = self.config.pooling == "masp"
        if multi_layer:
            self.layer_recorder.start()
        if self.uses_sdpa and output_attentions:
            set_sdpa_enabled(self.encoder, False)  # SDPA returns no attention weights
        try:
            with eager_attention(self.encoder.config, enabled=output_attentions):
                outputs = self.encoder(
                    input_values,
                    attention_mask=attention_mask,
                    output_hidden_states=output_hidden_states,
                    output_attentions=output_attentions,
                    return_dict=True,
                )
        finally:
            layer_outputs = self.layer_recorder.stop()
            if self.uses_sdpa and output_attentions:
                set_sdpa_enabled(self.encoder, True)

        last_hidden = outputs.last_hidden_state
        frame_mask = self.frame_mask(last_hidden.shape[1], attention_mask)
        if multi_layer:
            last_index = self.pooling.num_layers - 1
            if self.pools_normalized_last_layer and last_index in layer_outputs:
                # The last layer as transformers 4 (and the papers) exposed it: after the final LayerNorm.
                layer_outputs[last_index] = last_hidden
            indices = sorted(layer_outputs)
            all_layers = len(indices) == self.pooling.num_layers
            embeddings = self.pooling(
                [layer_outputs[i] for i in indices], frame_mask, None if all_layers else indices
            )
        else:
            embeddings = self.pooling(last_hidden, frame_mask)
        logits = self.head(embeddings)

        loss = None
        if labels is not None:
            loss = self.compute_loss(logits, labels)

        return SERClassifierOutput(
            loss=loss,
            logits=logits,
            hidden_states=outputs.hidden_states,
            attentions=outputs.attentions,
            embeddings=embeddings,
        )

    @property
    def loss_fct(self) -> nn.Module:
        """The loss `self.config` describes (`hf_ser.models.losses.loss_from_config`), built from the config when asked."""
        return loss_from_config(self.config)

    def compute_loss(self, logits: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        """The configured loss (focal, weighted CE, 1-CCC or MSE) between logits and labels, read from the config at
        every call: what `FocalLossTrainer` / `CCCLossTrainer` write there is what is trained and saved."""
        labels = labels.to(logits.device)
        if self.config.problem_type == "regression":
            return self.loss_fct(logits.float(), labels.float().view_as(logits))
        return self.loss_fct(logits, labels)

    # ----------------------------------------------------------------------------------------------- factory
    @classmethod
    def from_encoder_pretrained(
        cls,
        encoder_name_or_path: str,
        *,
        revision: str | None = None,
        cache_dir: str | None = None,
        **config_kwargs,
    ) -> WavLMForMASPClassification:
        """Build the model around a pretrained encoder (e.g. `"microsoft/wavlm-large"`), with a fresh head.

        Weights are read as safetensors only. `config_kwargs` go to [`WavLMMASPConfig`] (pooling, freezing, labels,
        ...). Pair it with `hf_ser.build_feature_extractor(encoder_name_or_path)`.
        """
        hub_kwargs = {"revision": revision, "cache_dir": cache_dir}
        encoder_config = AutoConfig.from_pretrained(encoder_name_or_path, **hub_kwargs)
        config = WavLMMASPConfig(encoder_config=encoder_config.to_dict(), **config_kwargs)
        model = cls(config)
        state = pretrained_encoder_state(encoder_name_or_path, **hub_kwargs)
        load_encoder_weights(model.encoder, state, encoder_name_or_path)
        model.config.name_or_path = encoder_name_or_path
        return model


__all__ = ["WavLMForMASPClassification", "WavLMMASPPreTrainedModel", "SERClassifierOutput", "FeedForwardHead"]
