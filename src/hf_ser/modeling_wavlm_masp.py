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
from transformers import AutoConfig, AutoModel, PreTrainedModel
from transformers import initialization as init
from transformers.modeling_outputs import SequenceClassifierOutput

from .configuration_wavlm_masp import WavLMMASPConfig
from .losses import CCCLoss, FocalLoss
from .pooling import AttentiveStatisticsPooling, MaskedMeanPooling, MultiLayerStatisticsPooling
from .wavlm_sdpa_attention import set_sdpa_enabled, use_sdpa_attention


@dataclass
class SERClassifierOutput(SequenceClassifierOutput):
    """`SequenceClassifierOutput` plus `embeddings`, the pooled utterance features fed to the head (used by the
    analysis tools: cosine distances between models, paper 004)."""

    embeddings: torch.Tensor | None = None


class LayerOutputRecorder:
    """Collects each transformer layer's output during one forward pass, keyed by layer index.

    Forward hooks (unlike `output_hidden_states`) say which layers ran when LayerDrop skips some in training. The
    hooks are `_RecordHook` objects pointing at this recorder, so `copy.deepcopy` of the model copies hooks and
    recorder together and the copy records into its own recorder."""

    def __init__(self):
        self.outputs: dict[int, torch.Tensor] | None = None

    def start(self) -> None:
        self.outputs = {}

    def stop(self) -> dict[int, torch.Tensor]:
        outputs, self.outputs = self.outputs or {}, None
        return outputs


class _RecordHook:
    def __init__(self, recorder: LayerOutputRecorder, index: int):
        self.recorder = recorder
        self.index = index

    def __call__(self, module, args, output):
        if self.recorder.outputs is not None:
            self.recorder.outputs[self.index] = output[0] if isinstance(output, tuple) else output


class FeedForwardHead(nn.Module):
    """Paper 000's classifier: a projection, then `num_layers` blocks of Linear, LayerNorm, ReLU and Dropout, then
    the output layer."""

    def __init__(self, input_size: int, hidden_size: int, num_layers: int, dropout: float, num_outputs: int):
        super().__init__()
        self.projection = nn.Linear(input_size, hidden_size)
        self.layers = nn.ModuleList(
            nn.Sequential(
                nn.Linear(hidden_size, hidden_size), nn.LayerNorm(hidden_size), nn.ReLU(), nn.Dropout(dropout)
            )
            for _ in range(num_layers)
        )
        self.output = nn.Linear(hidden_size, num_outputs)

    def forward(self, features: torch.Tensor) -> torch.Tensor:
        hidden = self.projection(features)
        for layer in self.layers:
            hidden = layer(hidden)
        return self.output(hidden)


class WavLMMASPPreTrainedModel(PreTrainedModel):
    config: WavLMMASPConfig
    config_class = WavLMMASPConfig
    base_model_prefix = "encoder"
    main_input_name = "input_values"
    input_modalities = "audio"
    supports_gradient_checkpointing = True
    # WavLM has no SDPA path in transformers; the encoder decides its own attention implementation.
    _supports_sdpa = False

    @classmethod
    def from_pretrained(cls, *args, **kwargs):
        # Safetensors only: a pickle-only checkpoint is refused unless the caller passes use_safetensors=False.
        kwargs.setdefault("use_safetensors", True)
        model = super().from_pretrained(*args, **kwargs)
        # Loading materialises fresh parameters (requires_grad=True): re-apply the configured freezing.
        if hasattr(model, "apply_freezing"):
            model.apply_freezing()
        return model

    @torch.no_grad()
    def _init_weights(self, module):
        super()._init_weights(module)
        if isinstance(module, MultiLayerStatisticsPooling):
            init.zeros_(module.layer_weights)  # equal layer weights at the start


class WavLMForMASPClassification(WavLMMASPPreTrainedModel):
    """Speech emotion classifier / attribute regressor of paper 000 (and paper 002's baseline as a configuration).

    `forward(input_values, attention_mask=None, labels=None)` returns a `SequenceClassifierOutput` (with the pooled
    `embeddings`); the loss is computed when `labels` are given: focal or weighted cross-entropy over 8 emotions, or
    1-CCC summed over arousal/valence/dominance for `problem_type="regression"`.

    Padding: every pooling reads only the valid frames given by the encoder's own
    `_get_feat_extract_output_lengths`. Encoders whose first convolution uses group norm (WavLM-base,
    wav2vec2-base) normalise over the padded length, so padding changes their features; `hf_ser.inference`
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
        )
        if config.loss == "focal":
            self.loss_fct = FocalLoss(gamma=config.focal_gamma, alpha=config.class_weights)
        elif config.loss == "ce":
            self.loss_fct = FocalLoss(
                gamma=0.0, alpha=config.class_weights
            )  # gamma=0 is (weighted) CE exactly
        elif config.loss == "ccc":
            self.loss_fct = CCCLoss(reduction="sum")
        else:
            self.loss_fct = nn.MSELoss()
        self.layer_recorder = LayerOutputRecorder()
        if config.pooling == "masp":
            for index, layer in enumerate(self.transformer_layers):
                layer.register_forward_hook(_RecordHook(self.layer_recorder, index))
        self.apply_freezing()
        self.post_init()

    # ----------------------------------------------------------------------------------------------- freezing
    @property
    def transformer_layers(self) -> nn.ModuleList:
        return self.encoder.encoder.layers

    def apply_freezing(self) -> None:
        """Freeze what `config.num_trainable_layers` and `config.freeze_feature_encoder` say (paper 000: the conv
        feature encoder and the lower 9 of 24 transformer layers). Frozen parameters get `requires_grad=False`, so
        autograd keeps no activations or gradients for them."""
        config = self.config
        layers = self.transformer_layers
        num_trainable = len(layers) if config.num_trainable_layers is None else config.num_trainable_layers
        first_trainable = len(layers) - num_trainable
        for parameter in self.encoder.parameters():
            parameter.requires_grad = True
        frozen: list[nn.Module | nn.Parameter] = []
        if config.freeze_feature_encoder or first_trainable > 0:
            frozen.append(self.encoder.feature_extractor)
        if first_trainable > 0:
            # Everything that runs before the first trainable layer is frozen with the lower layers.
            frozen += [
                self.encoder.feature_projection,
                self.encoder.encoder.pos_conv_embed,
                *layers[:first_trainable],
            ]
            if getattr(self.encoder, "masked_spec_embed", None) is not None:
                frozen.append(self.encoder.masked_spec_embed)
            if not getattr(config.encoder_config, "do_stable_layer_norm", False):
                frozen.append(self.encoder.encoder.layer_norm)  # applied before the layers in this variant
        if num_trainable == 0:
            frozen.append(self.encoder.encoder.layer_norm)
        for item in frozen:
            params = [item] if isinstance(item, nn.Parameter) else item.parameters()
            for parameter in params:
                parameter.requires_grad = False

    def freeze_feature_encoder(self) -> None:
        """Freeze the convolutional waveform encoder (the usual transformers name for it)."""
        self.encoder.feature_extractor._freeze_parameters()

    # ----------------------------------------------------------------------------------------------- forward
    def frame_mask(self, num_frames: int, attention_mask: torch.Tensor | None) -> torch.Tensor | None:
        """(batch, frames) bool mask of valid encoder frames, from the encoder's own output-length formula."""
        if attention_mask is None:
            return None
        return self.encoder._get_feature_vector_attention_mask(num_frames, attention_mask)

    def forward(
        self,
        input_values: torch.Tensor,
        attention_mask: torch.Tensor | None = None,
        labels: torch.Tensor | None = None,
        output_hidden_states: bool | None = None,
        output_attentions: bool | None = None,
        return_dict: bool | None = None,
        **kwargs,
    ) -> SERClassifierOutput | tuple:
        r"""
        input_values (`torch.Tensor` of shape `(batch, samples)`): 16 kHz waveforms, normalised by the feature
            extractor.
        attention_mask (`torch.Tensor` of shape `(batch, samples)`, *optional*): 1 on real samples, 0 on padding.
        labels (`torch.Tensor`, *optional*): class ids `(batch,)` or class distributions `(batch, classes)` for
            classification; `(batch, 3)` attribute values for regression.
        """
        return_dict = return_dict if return_dict is not None else self.config.return_dict
        multi_layer = self.config.pooling == "masp"
        if multi_layer:
            self.layer_recorder.start()
        if self.uses_sdpa and output_attentions:
            set_sdpa_enabled(self.encoder, False)  # SDPA returns no attention weights
        try:
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

        if not return_dict:
            output = (logits, outputs.hidden_states, outputs.attentions)
            return ((loss,) + output) if loss is not None else output
        return SERClassifierOutput(
            loss=loss,
            logits=logits,
            hidden_states=outputs.hidden_states,
            attentions=outputs.attentions,
            embeddings=embeddings,
        )

    def compute_loss(self, logits: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        """The configured loss (focal, weighted CE, 1-CCC or MSE) between logits and labels."""
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
        encoder = AutoModel.from_pretrained(encoder_name_or_path, use_safetensors=True, **hub_kwargs)
        missing, unexpected = model.encoder.load_state_dict(encoder.state_dict(), strict=False)
        if missing:
            raise ValueError(f"{encoder_name_or_path} lacks encoder weights: {missing[:5]} ...")
        del encoder
        model.config.name_or_path = encoder_name_or_path
        return model


__all__ = ["WavLMForMASPClassification", "WavLMMASPPreTrainedModel", "SERClassifierOutput", "FeedForwardHead"]
