"""Configuration of `MultimodalSERForRegression`.

Paper 001 (Lertpetchpun, Feng, Byrd & Narayanan, "Developing a High-performance Framework for Speech Emotion
Recognition in Naturalistic Conditions Challenge for Emotional Attribute Prediction", Interspeech 2025; Task 2
winner): a speech foundation model (WavLM-large with a weighted sum of all hidden layers, fine-tuned, or the last
layer of a frozen Whisper-large-v3 encoder), 1-D pointwise convolutions with 256 channels and mean pooling, a
frozen RoBERTa-large text embedding of the transcript, an optional speaker embedding, three 2-layer MLP heads
(arousal, valence, dominance) with a sigmoid mapped back to the training labels' range (Eq. 2), and an auxiliary
gender head trained with cross-entropy (Eq. 1, alpha = 1).

This file travels to the Hub with the model (``trust_remote_code``): it imports only transformers and, relatively,
`configuration_wavlm_masp.py` (WavLM-large's architecture is defined once, there) and `labels.py`.
"""

from __future__ import annotations

from collections.abc import Sequence

from transformers.configuration_utils import PreTrainedConfig, SubConfigSpec
from transformers.models.auto import AutoConfig

from .configuration_base import fill_auto_map
from .configuration_wavlm_masp import WAVLM_LARGE_KWARGS as WAVLM_MASP_DEFAULT_ENCODER
from .configuration_wavlm_masp import validate_ccc_loss_fields
from .labels import ATTRIBUTE_LABELS

# The multimodal model's outputs: the attributes (kept under this name, which hf_ser exports).
MULTIMODAL_ATTRIBUTES = ATTRIBUTE_LABELS
# Speech encoders read through a weighted sum of all hidden states ("layer_sum") or the last layer ("whisper").
LAYER_SUM_ENCODERS = ("wavlm", "wav2vec2", "hubert", "data2vec-audio")
WHISPER_ENCODERS = ("whisper",)
TEXT_POOLINGS = ("mean", "cls")

# Architectures of microsoft/wavlm-large and FacebookAI/roberta-large (their config.json on the Hub). Random weights;
# `MultimodalSERForRegression.from_encoders_pretrained` loads the real ones.
WAVLM_LARGE_KWARGS = {**WAVLM_MASP_DEFAULT_ENCODER, "layerdrop": 0.0}
ROBERTA_LARGE_KWARGS = {
    "vocab_size": 50265,
    "hidden_size": 1024,
    "num_hidden_layers": 24,
    "num_attention_heads": 16,
    "intermediate_size": 4096,
    "max_position_embeddings": 514,
    "type_vocab_size": 1,
    "layer_norm_eps": 1e-5,
    "pad_token_id": 1,
    "bos_token_id": 0,
    "eos_token_id": 2,
}


class MultimodalSERConfig(PreTrainedConfig):
    r"""
    Configuration of [`MultimodalSERForRegression`] (paper 001: MM-WavLM / MM-Whisper).

    Args:
        audio_config (`dict` or `PreTrainedConfig`, *optional*):
            The speech encoder's configuration, nested (never a Hub id). Defaults to `microsoft/wavlm-large`'s
            architecture. WavLM, wav2vec2, HuBERT and data2vec-audio encoders are read through a softmax-weighted sum
            of all their hidden states (input embeddings and every layer, paper 001 Sec. 2.1); a Whisper config
            (`model_type="whisper"`) uses only its encoder, read at the last layer. LayerDrop of layer-sum encoders
            is set to 0, since the weighted sum reads every layer.
        text_config (`dict` or `PreTrainedConfig`, *optional*):
            The text encoder's configuration. Defaults to `FacebookAI/roberta-large`'s architecture.
        use_text (`bool`, *optional*, defaults to `True`):
            Concatenate the text embedding of the transcript ("MM" models). `False` gives the speech-only rows of
            paper 001's Table 2.
        text_pooling (`str`, *optional*, defaults to `"mean"`):
            How the frozen text encoder's last layer becomes one vector: `"mean"` over real tokens, or `"cls"` (the
            first token). Paper 001 does not say; masked mean pooling is our choice.
        conv_hidden_size (`int`, *optional*, defaults to 256):
            Channels of the 1-D pointwise convolutions over the speech frames (paper 001: "filter size 256").
        conv_num_layers (`int`, *optional*, defaults to 3):
            Number of pointwise convolutions (ReLU and dropout between them). The paper gives none; 3 follows the
            authors' released code.
        head_hidden_size (`int`, *optional*, defaults to 256):
            Hidden width of the three attribute MLPs and the gender MLP (2 layers each; paper 001: 256).
        dropout (`float`, *optional*, defaults to 0.1):
            Dropout between the pointwise convolutions (not given in the paper; 0.1 as the authors' released code).
        head_dropout (`float`, *optional*, defaults to 0.0):
            Dropout between the two layers of the attribute and gender MLPs. The released heads have none (Linear,
            ReLU, Linear); the paper gives no value.
        speaker_embedding_size (`int`, *optional*, defaults to 0):
            Size of an optional precomputed speaker embedding concatenated to the representation (paper 001's
            "+S Emb", which hurt on the test set); 0 disables it.
        num_genders (`int`, *optional*, defaults to 2):
            Classes of the auxiliary gender head; 0 removes the head.
        gender_loss_weight (`float`, *optional*, defaults to 1.0):
            alpha of Eq. 1 (paper 001: 1). The term is added only when gender labels are given (the batch key
            `gender`, which `MultimodalDataCollator` writes); label -100 marks clips of unknown gender.
        ccc_reduction (`str`, *optional*, defaults to `"sum"`):
            How the three 1 - CCC terms are combined: `"sum"` (paper 001, Eq. 1) or `"mean"`.
        ccc_weights (`list[float]`, *optional*):
            Per-attribute weights of the 1 - CCC terms, applied before `ccc_reduction`.
        attribute_min (`list[float]`, *optional*, defaults to `[1.0, 1.0, 1.0]`):
            Per-attribute minimum of the training labels, min_j(y_ij) of Eq. 2. Set it from the training set with
            [`MultimodalSERConfig.set_attribute_range`].
        attribute_max (`list[float]`, *optional*, defaults to `[7.0, 7.0, 7.0]`):
            Per-attribute maximum of the training labels, max_j(y_ij) of Eq. 2.
        freeze_audio_encoder (`bool`, *optional*):
            Freeze the whole speech encoder. Defaults to the paper: Whisper frozen, WavLM fine-tuned.
        freeze_feature_encoder (`bool`, *optional*, defaults to `True`):
            Freeze WavLM's convolutional waveform encoder even when the transformer is fine-tuned (as the challenge
            baseline of paper 002 does).
        freeze_text_encoder (`bool`, *optional*, defaults to `True`):
            Freeze the text encoder (paper 001 freezes RoBERTa-large in every setting).
        asr_model (`str`, *optional*, defaults to `"openai/whisper-large-v3"`):
            ASR model that the `speech-emotion-regression` pipeline runs when no transcript is given.
        max_duration_s (`float`, *optional*, defaults to 15.0):
            Longest input used in training (paper 001: 15 s); read by the data collator and the recipe.

    The model computes its loss from `gender_loss_weight`, `ccc_reduction` and `ccc_weights` alone: `CCCLossTrainer`
    writes its loss arguments here, so the saved `config.json` describes the loss that was trained.
    """

    model_type = "multimodal_ser"
    sub_configs_defaults = {
        "audio_config": SubConfigSpec(
            config_class=AutoConfig, model_type="wavlm", init_kwargs=WAVLM_LARGE_KWARGS
        ),
        "text_config": SubConfigSpec(
            config_class=AutoConfig, model_type="roberta", init_kwargs=ROBERTA_LARGE_KWARGS
        ),
    }
    # Trainer.evaluate/predict hand only the attribute predictions to compute_metrics.
    keys_to_ignore_at_inference = ["embeddings", "aux_logits", "hidden_states", "attentions"]

    audio_config: dict | PreTrainedConfig | None = None
    text_config: dict | PreTrainedConfig | None = None
    use_text: bool = True
    text_pooling: str = "mean"
    conv_hidden_size: int = 256
    conv_num_layers: int = 3
    head_hidden_size: int = 256
    dropout: float = 0.1
    head_dropout: float = 0.0
    speaker_embedding_size: int = 0
    num_genders: int = 2
    gender_loss_weight: float = 1.0
    ccc_reduction: str = "sum"
    ccc_weights: list[float] | None = None
    attribute_min: list[float] | None = None
    attribute_max: list[float] | None = None
    freeze_audio_encoder: bool | None = None
    freeze_feature_encoder: bool = True
    freeze_text_encoder: bool = True
    asr_model: str | None = "openai/whisper-large-v3"
    max_duration_s: float = 15.0
    initializer_range: float = 0.02

    def __post_init__(self, **kwargs):
        self.problem_type = "regression"
        if self.id2label is None:
            self.id2label = dict(enumerate(MULTIMODAL_ATTRIBUTES))
            self.label2id = {name: i for i, name in enumerate(MULTIMODAL_ATTRIBUTES)}
        super().__post_init__(**kwargs)
        if self.attribute_min is None:
            self.attribute_min = [1.0] * len(MULTIMODAL_ATTRIBUTES)
        if self.attribute_max is None:
            self.attribute_max = [7.0] * len(MULTIMODAL_ATTRIBUTES)
        self.attribute_min = [float(v) for v in self.attribute_min]
        self.attribute_max = [float(v) for v in self.attribute_max]
        if self.freeze_audio_encoder is None:
            self.freeze_audio_encoder = self.is_whisper
        if not self.is_whisper:
            # The weighted layer sum reads every layer: LayerDrop (0.1 in WavLM's default config) would skip some.
            self.audio_config.layerdrop = 0.0
        fill_auto_map(
            self,
            "configuration_multimodal.MultimodalSERConfig",
            "modeling_multimodal.MultimodalSERForRegression",
        )
        self._validate()

    @property
    def is_whisper(self) -> bool:
        return self.audio_config.model_type in WHISPER_ENCODERS

    def _validate(self) -> None:
        audio_type = self.audio_config.model_type
        if audio_type not in LAYER_SUM_ENCODERS + WHISPER_ENCODERS:
            raise ValueError(
                f"audio_config.model_type={audio_type!r} is not supported; "
                f"use one of {LAYER_SUM_ENCODERS + WHISPER_ENCODERS}."
            )
        if self.text_pooling not in TEXT_POOLINGS:
            raise ValueError(f"text_pooling={self.text_pooling!r}; expected one of {TEXT_POOLINGS}.")
        for name in ("conv_hidden_size", "conv_num_layers", "head_hidden_size"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be >= 1, got {getattr(self, name)}.")
        if self.speaker_embedding_size < 0 or self.num_genders < 0:
            raise ValueError("speaker_embedding_size and num_genders must be >= 0.")
        if self.num_genders == 1:
            raise ValueError("num_genders must be 0 (no gender head) or at least 2.")
        if self.gender_loss_weight < 0:
            raise ValueError(f"gender_loss_weight must be >= 0, got {self.gender_loss_weight}.")
        for name in ("dropout", "head_dropout"):
            if not 0.0 <= getattr(self, name) < 1.0:
                raise ValueError(f"{name} must be in [0, 1), got {getattr(self, name)}.")
        n = len(MULTIMODAL_ATTRIBUTES)
        if len(self.attribute_min) != n or len(self.attribute_max) != n:
            raise ValueError(
                f"attribute_min and attribute_max need {n} values (arousal, valence, dominance)."
            )
        for low, high, name in zip(
            self.attribute_min, self.attribute_max, MULTIMODAL_ATTRIBUTES, strict=True
        ):
            if not high > low:
                raise ValueError(f"attribute_max must exceed attribute_min for {name}: got [{low}, {high}].")
        if self.num_labels != n:
            raise ValueError(
                f"MultimodalSERConfig predicts {n} attributes; got num_labels={self.num_labels}."
            )
        validate_ccc_loss_fields(self)

    def set_attribute_range(self, labels: Sequence[Sequence[float]]) -> None:
        """Set `attribute_min` / `attribute_max` (Eq. 2 of paper 001) from the training labels, rows of
        (arousal, valence, dominance)."""
        rows = [list(map(float, row)) for row in labels]
        if not rows or any(len(row) != len(MULTIMODAL_ATTRIBUTES) for row in rows):
            raise ValueError(
                "set_attribute_range needs a non-empty list of (arousal, valence, dominance) rows."
            )
        columns = list(zip(*rows, strict=True))
        self.attribute_min = [min(column) for column in columns]
        self.attribute_max = [max(column) for column in columns]
        self._validate()


__all__ = ["MultimodalSERConfig", "MULTIMODAL_ATTRIBUTES"]
