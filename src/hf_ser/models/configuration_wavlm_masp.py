"""Configuration of `WavLMForMASPClassification`.

Paper 000 (Uniyal & Abrol, "From Pretraining to Performance: Benchmarking Self-Supervised Speech Models
for Interspeech-25 SER Challenge"): WavLM-large, multi-layer attentive statistics pooling (MASP, Eq. 1),
15 of 24 transformer layers fine-tuned, a feed-forward head with LayerNorm/ReLU/dropout 0.3, focal loss.

Paper 002 (Naini et al., "The Interspeech 2025 Challenge on Speech Emotion Recognition in Naturalistic
Conditions"): the challenge baseline is the same family with attentive statistics pooling on the last
layer, full fine-tuning, weighted cross-entropy (categorical) or 1-CCC (attributes); see
`WavLMMASPConfig.challenge_baseline`.

This file travels to the Hub with the model (``trust_remote_code``): it imports only transformers and, relatively,
`labels.py` (the class and attribute names).
"""

from __future__ import annotations

from transformers.configuration_utils import PreTrainedConfig, SubConfigSpec
from transformers.models.auto import AutoConfig

from .configuration_base import fill_auto_map
from .labels import ATTRIBUTE_LABELS, EMOTION_LABELS

SUPPORTED_ENCODERS = ("wavlm", "wav2vec2", "hubert", "data2vec-audio")
POOLINGS = ("masp", "asp", "mean")
WAVLM_ATTENTIONS = ("sdpa", "eager")
LOSSES = ("focal", "ce", "ccc", "mse")
CCC_REDUCTIONS = ("sum", "mean")

# microsoft/wavlm-large's architecture (config.json on the Hub); weights come from `from_encoder_pretrained`.
WAVLM_LARGE_KWARGS = {
    "hidden_size": 1024,
    "num_hidden_layers": 24,
    "num_attention_heads": 16,
    "intermediate_size": 4096,
    "feat_extract_norm": "layer",
    "do_stable_layer_norm": True,
    "conv_bias": False,
    "hidden_dropout": 0.1,
    "attention_dropout": 0.1,
    "feat_proj_dropout": 0.1,
    "mask_time_prob": 0.075,
    "num_buckets": 320,
    "max_bucket_distance": 800,
}


def validate_ccc_loss_fields(config: PreTrainedConfig) -> None:
    """Check `ccc_reduction` and `ccc_weights`, the 1 - CCC settings that every hf_ser config holds."""
    if config.ccc_reduction not in CCC_REDUCTIONS:
        raise ValueError(f"ccc_reduction={config.ccc_reduction!r}; expected one of {CCC_REDUCTIONS}.")
    if config.ccc_weights is not None and len(config.ccc_weights) != config.num_labels:
        raise ValueError(
            f"ccc_weights has {len(config.ccc_weights)} entries for {config.num_labels} outputs."
        )


class WavLMMASPConfig(PreTrainedConfig):
    r"""
    Configuration of [`WavLMForMASPClassification`] (paper 000; the challenge baseline of paper 002 via
    [`WavLMMASPConfig.challenge_baseline`]).

    Args:
        encoder_config (`dict` or `PreTrainedConfig`, *optional*):
            The speech encoder's configuration, nested (never a Hub id). Defaults to the architecture of
            `microsoft/wavlm-large` (random weights). WavLM, wav2vec2, HuBERT and data2vec-audio configs are
            accepted (papers 000 and 004 compare them).
        pooling (`str`, *optional*, defaults to `"masp"`):
            `"masp"`: multi-layer attentive statistics pooling (paper 000, Eq. 1): per transformer layer the mean
            and standard deviation over valid frames, concatenated, combined across layers with softmax weights.
            `"asp"`: attentive statistics pooling (Okabe et al., 2018) on the last layer, the challenge baseline.
            `"mean"`: masked mean of the last layer.
        masp_normalized_last_layer (`bool`, *optional*, defaults to `True`):
            For encoders with a final LayerNorm after the transformer layers (`do_stable_layer_norm`: WavLM-large,
            wav2vec2-large, HuBERT-large), MASP pools the last layer after that LayerNorm: the last of the hidden
            states in transformers 4, which the papers used (transformers 5's `hidden_states` end with the
            un-normalised residual stream instead). `False` pools the un-normalised last layer; the final LayerNorm
            is then unused and kept frozen. Other encoders normalise inside every layer and ignore this flag.
        masp_layer_norm (`bool`, *optional*, defaults to `False`):
            MASP only: layer-normalise every frame of every layer (no learnable parameters, as SUPERB-style
            weighted layer sums offer) before its mean and standard deviation, so that every layer's statistics are
            on one scale. Not in paper 000. Measured on real speech (issue 20, docs/statistics_pooling.md): it keeps
            MASP learning at a learning rate (2e-3, from scratch) where the raw residual stream grows large and
            default MASP collapses.
        asp_attention_size (`int`, *optional*, defaults to 128):
            Hidden size of the ASP frame-attention network (Okabe et al. leave it free). `None` uses the encoder's
            hidden size, as the challenge's released baseline code does; [`challenge_baseline`] sets that (paper
            002 itself does not state the size).
        num_trainable_layers (`int`, *optional*, defaults to 15):
            How many of the encoder's top transformer layers are fine-tuned; everything below them (convolutional
            feature encoder, projection, positional convolution, lower layers) is frozen. Paper 000's best: 15 of
            WavLM-large's 24 (lower 9 frozen). `None` fine-tunes every layer.
        freeze_feature_encoder (`bool`, *optional*, defaults to `True`):
            Freeze the convolutional waveform encoder even when every transformer layer is trained.
        layerdrop (`float`, *optional*, defaults to 0.0):
            LayerDrop applied to the encoder (overrides `encoder_config.layerdrop`). Paper 000 does not use it and
            WavLM-large's Hub config has 0.1; we default to 0 because the multi-layer pooling reads every layer.
            With `layerdrop > 0`, MASP weights only the layers that ran (softmax renormalised over them).
        head_hidden_size (`int`, *optional*, defaults to 1024):
            Width of the projection and the fully connected layers. Paper 000 gives no width; 1024 follows the
            challenge baseline's head (paper 002).
        head_num_layers (`int`, *optional*, defaults to 2):
            Number of fully connected blocks (Linear, LayerNorm, ReLU, Dropout) after the projection (or, with
            `head_projection=False`, in all, the first one reading the pooled features).
        head_dropout (`float`, *optional*, defaults to 0.3):
            Dropout of the head's blocks (paper 000: 0.3).
        head_input_dropout (`float`, *optional*, defaults to 0.0):
            Dropout on the pooled features before the head (the challenge baseline's released head: 0.5).
        head_projection (`bool`, *optional*, defaults to `True`):
            Paper 000's head projects the pooled features to `head_hidden_size` before the blocks; `False` gives the
            challenge baseline's head, whose first block reads the pooled features directly.
        loss (`str`, *optional*):
            `"focal"` (paper 000) or `"ce"` (paper 002, with `class_weights`) for classification; `"ccc"` (1-CCC,
            paper 002) or `"mse"` for regression. Defaults to `"focal"` / `"ccc"` by `problem_type`.
        focal_gamma (`float`, *optional*, defaults to 2.0):
            Focal loss focusing parameter (Lin et al., 2017).
        class_weights (`list[float]`, *optional*):
            Per-class weights (alpha of focal loss, weights of cross-entropy), e.g. the baseline's N / (C * n_c)
            (`hf_ser.models.losses.set_inverse_frequency_class_weights` fills them from the training labels).
        ccc_reduction (`str`, *optional*, defaults to `"sum"`):
            How the per-attribute 1 - CCC terms are combined: `"sum"` (paper 001) or `"mean"`.
        ccc_weights (`list[float]`, *optional*):
            Per-attribute weights of the 1 - CCC terms, applied before `ccc_reduction`.

        The model computes its loss from these fields alone (`hf_ser.models.losses.loss_from_config`), at every call:
        `FocalLossTrainer` / `CCCLossTrainer` write their loss arguments here, so the saved `config.json` describes
        the loss that was trained.
        wavlm_attention (`str`, *optional*, defaults to `"sdpa"`):
            How a WavLM encoder computes self-attention: `"sdpa"` feeds WavLM's gated relative position bias to
            `torch.nn.functional.scaled_dot_product_attention` as an additive mask (same outputs as eager to 1e-4
            in fp32, faster, no attention-weight tensor); `"eager"` is transformers' own path. Requests for attention
            weights (`output_attentions=True`) always run eager. Other encoders use transformers' implementation.
        problem_type (`str`, *optional*, defaults to `"single_label_classification"`):
            `"single_label_classification"` (8 emotions) or `"regression"` (arousal, valence, dominance).
    """

    model_type = "wavlm_masp"
    sub_configs_defaults = {
        "encoder_config": SubConfigSpec(
            config_class=AutoConfig, model_type="wavlm", init_kwargs=WAVLM_LARGE_KWARGS
        ),
    }

    encoder_config: dict | PreTrainedConfig | None = None
    pooling: str = "masp"
    masp_normalized_last_layer: bool = True
    masp_layer_norm: bool = False
    asp_attention_size: int | None = 128
    num_trainable_layers: int | None = 15
    freeze_feature_encoder: bool = True
    layerdrop: float = 0.0
    head_hidden_size: int = 1024
    head_num_layers: int = 2
    head_dropout: float = 0.3
    head_input_dropout: float = 0.0
    head_projection: bool = True
    loss: str | None = None
    focal_gamma: float = 2.0
    class_weights: list[float] | None = None
    ccc_reduction: str = "sum"
    ccc_weights: list[float] | None = None
    wavlm_attention: str = "sdpa"
    initializer_range: float = 0.02

    def __post_init__(self, **kwargs):
        if self.problem_type is None:
            self.problem_type = "single_label_classification"
        if self.id2label is None and kwargs.get("num_labels") is None:
            names = ATTRIBUTE_LABELS if self.problem_type == "regression" else EMOTION_LABELS
            self.id2label = dict(enumerate(names))
            self.label2id = {name: i for i, name in enumerate(names)}
        super().__post_init__(**kwargs)
        if self.loss is None:
            self.loss = "ccc" if self.problem_type == "regression" else "focal"
        self.encoder_config.layerdrop = self.layerdrop
        fill_auto_map(
            self,
            "configuration_wavlm_masp.WavLMMASPConfig",
            "modeling_wavlm_masp.WavLMForMASPClassification",
            audio_classifier=True,
        )
        self._validate()

    def to_diff_dict(self) -> dict:
        """transformers' diff, always with the label map: transformers leaves out a two-label map with its default
        names (`LABEL_0`, `LABEL_1`), and this config fills in the 8 emotions when it is given no map, so a
        binary classifier would come back from `config.json` with 8 labels."""
        diff = super().to_diff_dict()
        if self.id2label is not None:
            diff.setdefault("id2label", {str(i): name for i, name in self.id2label.items()})
            if self.label2id is not None:  # transformers 5 leaves it None when only id2label was given
                diff.setdefault("label2id", dict(self.label2id))
        return diff

    def _validate(self) -> None:
        if self.encoder_config.model_type not in SUPPORTED_ENCODERS:
            raise ValueError(
                f"encoder_config.model_type={self.encoder_config.model_type!r} is not supported; "
                f"use one of {SUPPORTED_ENCODERS}."
            )
        if self.pooling not in POOLINGS:
            raise ValueError(f"pooling={self.pooling!r}; expected one of {POOLINGS}.")
        if self.wavlm_attention not in WAVLM_ATTENTIONS:
            raise ValueError(f"wavlm_attention={self.wavlm_attention!r}; expected one of {WAVLM_ATTENTIONS}.")
        if self.loss not in LOSSES:
            raise ValueError(f"loss={self.loss!r}; expected one of {LOSSES}.")
        regression = self.problem_type == "regression"
        if regression != (self.loss in ("ccc", "mse")):
            raise ValueError(f"loss={self.loss!r} does not fit problem_type={self.problem_type!r}.")
        if self.problem_type not in ("single_label_classification", "regression"):
            raise ValueError(f"problem_type={self.problem_type!r} is not supported.")
        n_layers = self.encoder_config.num_hidden_layers
        if self.num_trainable_layers is not None and not 0 <= self.num_trainable_layers <= n_layers:
            raise ValueError(
                f"num_trainable_layers must be in [0, {n_layers}] (or None) for a {n_layers}-layer encoder, "
                f"got {self.num_trainable_layers}."
            )
        if self.asp_attention_size is not None and self.asp_attention_size < 1:
            raise ValueError(f"asp_attention_size must be positive (or None), got {self.asp_attention_size}.")
        for name in ("head_dropout", "head_input_dropout"):
            if not 0.0 <= getattr(self, name) < 1.0:
                raise ValueError(f"{name} must be in [0, 1), got {getattr(self, name)}.")
        if self.head_num_layers < 0 or (not self.head_projection and self.head_num_layers < 1):
            raise ValueError(
                f"head_num_layers={self.head_num_layers}: at least 1 without a projection, 0 or more with one."
            )
        if not 0.0 <= self.layerdrop < 1.0:
            raise ValueError(f"layerdrop must be in [0, 1), got {self.layerdrop}.")
        if self.class_weights is not None and len(self.class_weights) != self.num_labels:
            raise ValueError(
                f"class_weights has {len(self.class_weights)} entries for {self.num_labels} labels."
            )
        if self.focal_gamma < 0:
            raise ValueError(f"focal_gamma must be >= 0, got {self.focal_gamma}.")
        validate_ccc_loss_fields(self)

    @staticmethod
    def challenge_baseline_kwargs(problem_type: str = "single_label_classification") -> dict:
        """The configuration fields [`challenge_baseline`] sets, for factories such as `from_encoder_pretrained`."""
        return {
            "pooling": "asp",
            "asp_attention_size": None,
            "num_trainable_layers": None,
            "loss": "ccc" if problem_type == "regression" else "ce",
            "head_hidden_size": 1024,
            "head_num_layers": 1,
            "head_projection": False,
            "head_input_dropout": 0.5,
            "head_dropout": 0.5,
        }

    @classmethod
    def challenge_baseline(
        cls, problem_type: str = "single_label_classification", **kwargs
    ) -> WavLMMASPConfig:
        """The Interspeech 2025 challenge baseline (paper 002) as its released code builds it: attentive statistics
        pooling on WavLM-large's last layer (frame attention as wide as the encoder), every transformer layer
        fine-tuned, and the released head `EmotionRegression(2H, 1024, 1, outputs, dropout=0.5)`: input dropout 0.5,
        one block Linear(2H -> 1024), LayerNorm, ReLU, Dropout 0.5, then the output layer (2.11M parameters at
        WavLM-large size). Weighted cross-entropy (pass `class_weights`) or 1-CCC."""
        defaults = cls.challenge_baseline_kwargs(problem_type)
        defaults.update(kwargs)
        return cls(problem_type=problem_type, **defaults)


__all__ = ["WavLMMASPConfig", "EMOTION_LABELS", "ATTRIBUTE_LABELS"]
