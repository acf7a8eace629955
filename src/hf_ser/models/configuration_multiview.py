"""Configuration of `MultiViewSERForRegression` (IF-MVSE).

Paper 003 (Liu, Gu, Luo, Zheng, Lu & Zong, "Interactive Fusion of Multi-View Speech Embeddings via Pretrained
Large-Scale Speech Models for Speech Emotional Attribute Prediction in Naturalistic Conditions", Interspeech 2025
SER challenge, task 2, third place): utterance embeddings from frozen Whisper-large-v3 (encoder), WavLM-large and
HuBERT-large, per-view MLPs (1024, 512, 1), dual-feature interactive attention (Eq. 2-4) and a multi-view
self-balancing gate (Eq. 5-6) for the pairs (Whisper, WavLM) and (HuBERT, WavLM), five score sets combined with
weights searched on the development set (Eq. 7), 1-CCC loss (Eq. 8).

This file travels to the Hub with the model (``trust_remote_code``): it imports only transformers and, relatively,
`labels.py` (the attribute names).
"""

from __future__ import annotations

from transformers.configuration_utils import PreTrainedConfig

from .configuration_base import fill_auto_map
from .labels import ATTRIBUTE_LABELS

# Paper 003, Sec. 2.1 and footnotes 1-3: the three views kept after Table 1, with their embedding sizes.
PAPER_VIEW_NAMES = ("whisper", "wavlm", "hubert")
PAPER_VIEW_DIMS = (1280, 1024, 1024)
PAPER_VIEW_ENCODERS = {
    "whisper": "openai/whisper-large-v3",
    "wavlm": "microsoft/wavlm-large",
    "hubert": "facebook/hubert-large-ls960-ft",
}
# Sec. 2.2: S1 Whisper, S2 Whisper x WavLM, S3 WavLM, S4 HuBERT x WavLM, S5 HuBERT.
PAPER_SCORE_SETS = (("whisper",), ("whisper", "wavlm"), ("wavlm",), ("hubert", "wavlm"), ("hubert",))
# Sec. 3.2: the weights the authors found on the development set.
PAPER_SCORE_WEIGHTS = (0.02, 0.15, 0.01, 0.8, 0.02)
LOSS_TARGETS = ("branches", "fused")
CCC_REDUCTIONS = ("sum", "mean")


class MultiViewSERConfig(PreTrainedConfig):
    r"""
    Configuration of [`MultiViewSERForRegression`] (IF-MVSE, paper 003).

    The model reads cached utterance embeddings, one vector per view (see
    [`hf_ser.models.modeling_multiview.extract_view_embeddings`]); the frozen encoders are not part of it, which is what
    makes training on cached features cheap.

    Args:
        view_names (`list[str]`, *optional*, defaults to `["whisper", "wavlm", "hubert"]`):
            Names of the views, in the order a stacked `(batch, n_views, dim)` input uses.
        view_dims (`list[int]`, *optional*, defaults to `[1280, 1024, 1024]`):
            Embedding size of each view (Whisper-large-v3's encoder: 1280; WavLM/HuBERT-large: 1024).
        view_encoders (`dict[str, str]`, *optional*):
            Informational: which pretrained encoder produced each view (defaults to the paper's Hub ids). Nothing is
            downloaded from it; `extract_view_embeddings` is given the encoders explicitly.
        view_encoder_configs (`dict[str, dict]`, *optional*):
            Nested configurations of frozen encoders kept inside the model, so that it also reads raw 16 kHz audio
            (`input_values`) and works in `pipeline("speech-emotion-regression")`. Usually filled by
            `MultiViewSERForRegression.from_encoders_pretrained`. Without it the model reads cached embeddings only.
        score_sets (`list[list[str]]`, *optional*, defaults to the paper's S1..S5):
            Each entry is one view (a per-view MLP) or a pair of views `[F1, F2]` (interactive attention, gate, MLP).
        score_weights (`list[float]` or `list[list[float]]`, *optional*, defaults to `[0.02, 0.15, 0.01, 0.8, 0.02]`):
            w_1..w_K of Eq. 7, one per score set, or one list per output (attribute) when the weights were searched
            per attribute. Defaults to the values of paper 003 (Sec. 3.2); set your own with
            `hf_ser.inference.fusion_search.search_fusion_weights` on the development set.
        fusion_size (`int`, *optional*, defaults to 1024):
            Common size d of the views: a view of another size goes through a linear projection first (paper 003
            maps Whisper's 1280 to 1024 so that the Hadamard product of Eq. 2 is defined).
        gate_size (`int`, *optional*, defaults to 1024):
            Output size of W^p_1, W^p_2, W^q_1, W^q_2, W^p_z, W^q_z (Eq. 5). Paper 003 gives no size; 1024 makes the
            fused vector S the same size as a view, so every branch's MLP is the paper's (1024, 512, 1).
        mlp_hidden_size (`int`, *optional*, defaults to 512):
            Hidden layer of the MLPs (1024, 512, 1).
        dropout (`float`, *optional*, defaults to 0.5):
            Dropout after the MLPs' hidden ReLU (paper 003, Sec. 3.2).
        loss_target (`str`, *optional*, defaults to `"branches"`):
            `"branches"`: the 1-CCC loss (Eq. 8) of every score set S_i, summed; the branches share no parameters,
            so this trains the five predictors exactly as five separate models would be trained, and the weights of
            Eq. 7 are searched afterwards on the development set (paper 003, Sec. 3.2). `"fused"`: 1-CCC of
            Y_pred of Eq. 7 with the current `score_weights`.
        ccc_reduction (`str`, *optional*, defaults to `"sum"`):
            How the per-output 1 - CCC terms of Eq. 8 are combined: `"sum"` or `"mean"`.
        ccc_weights (`list[float]`, *optional*):
            Per-output weights of the 1 - CCC terms, applied before `ccc_reduction`.
        problem_type (`str`, *optional*, defaults to `"regression"`): only regression is supported.
        num_labels / id2label: the outputs; defaults to arousal, valence, dominance. Paper 003 trains one model per
            attribute: pass `id2label={0: "arousal"}` for that.

    The model computes its loss from `loss_target`, `ccc_reduction` and `ccc_weights` alone: `CCCLossTrainer` writes
    its loss arguments here, so the saved `config.json` describes the loss that was trained.
    """

    model_type = "multiview_ser"

    view_names: list[str] | None = None
    view_dims: list[int] | None = None
    view_encoders: dict[str, str] | None = None
    view_encoder_configs: dict | None = None
    score_sets: list[list[str]] | None = None
    score_weights: list | None = None
    fusion_size: int = 1024
    gate_size: int = 1024
    mlp_hidden_size: int = 512
    dropout: float = 0.5
    loss_target: str = "branches"
    ccc_reduction: str = "sum"
    ccc_weights: list[float] | None = None
    initializer_range: float = 0.02

    def __post_init__(self, **kwargs):
        if self.problem_type is None:
            self.problem_type = "regression"
        if self.id2label is None and kwargs.get("num_labels") is None:
            self.id2label = dict(enumerate(ATTRIBUTE_LABELS))
            self.label2id = {name: i for i, name in enumerate(ATTRIBUTE_LABELS)}
        if self.view_names is None:
            self.view_names = list(PAPER_VIEW_NAMES)
            if self.view_dims is None:
                self.view_dims = list(PAPER_VIEW_DIMS)
            if self.view_encoders is None:
                self.view_encoders = dict(PAPER_VIEW_ENCODERS)
        self.view_names = list(self.view_names)
        if self.view_dims is None:
            self.view_dims = [self.fusion_size] * len(self.view_names)
        self.view_dims = [int(d) for d in self.view_dims]
        if self.score_sets is None:
            self.score_sets = (
                [list(s) for s in PAPER_SCORE_SETS]
                if tuple(self.view_names) == PAPER_VIEW_NAMES
                else [[name] for name in self.view_names]
            )
        self.score_sets = [list(s) for s in self.score_sets]
        if self.score_weights is None:
            if len(self.score_sets) == len(PAPER_SCORE_WEIGHTS) and self.score_sets == [
                list(s) for s in PAPER_SCORE_SETS
            ]:
                self.score_weights = list(PAPER_SCORE_WEIGHTS)
            else:
                self.score_weights = [1.0 / len(self.score_sets)] * len(self.score_sets)
        if self.view_encoder_configs is not None:
            # Stored as plain dicts (with their model_type) so that config.json stays self-contained.
            self.view_encoder_configs = {
                name: cfg.to_dict() if isinstance(cfg, PreTrainedConfig) else dict(cfg)
                for name, cfg in self.view_encoder_configs.items()
            }
        super().__post_init__(**kwargs)
        fill_auto_map(
            self, "configuration_multiview.MultiViewSERConfig", "modeling_multiview.MultiViewSERForRegression"
        )
        self._validate()

    def _validate(self) -> None:
        names = self.view_names
        if not names:
            raise ValueError("view_names must name at least one view.")
        if len(set(names)) != len(names):
            raise ValueError(f"view_names has duplicates: {names}.")
        if len(self.view_dims) != len(names):
            raise ValueError(f"view_dims has {len(self.view_dims)} entries for {len(names)} views.")
        if any(d <= 0 for d in self.view_dims):
            raise ValueError(f"view_dims must be positive, got {self.view_dims}.")
        if not self.score_sets:
            raise ValueError("score_sets must contain at least one score set.")
        for score_set in self.score_sets:
            if len(score_set) not in (1, 2):
                raise ValueError(f"A score set is one view or a pair of views, got {score_set}.")
            unknown = [v for v in score_set if v not in names]
            if unknown:
                raise ValueError(f"score set {score_set} names unknown views {unknown}; views are {names}.")
            if len(score_set) == 2 and score_set[0] == score_set[1]:
                raise ValueError(f"A fused pair needs two different views, got {score_set}.")
        self.score_weight_matrix()  # validates the shape
        for name, cfg in (self.view_encoder_configs or {}).items():
            if name not in names:
                raise ValueError(f"view_encoder_configs names unknown view {name!r}; views are {names}.")
            if "model_type" not in cfg:
                raise ValueError(f"view_encoder_configs[{name!r}] needs a model_type.")
            size = cfg.get("d_model") if cfg["model_type"] == "whisper" else cfg.get("hidden_size")
            expected = self.view_dims[names.index(name)]
            if size is not None and size != expected:
                raise ValueError(
                    f"The {name!r} encoder outputs {size} features but view_dims says {expected}."
                )
        if self.problem_type != "regression":
            raise ValueError(
                f"MultiViewSERConfig supports problem_type='regression' only, got {self.problem_type!r}."
            )
        if self.loss_target not in LOSS_TARGETS:
            raise ValueError(f"loss_target={self.loss_target!r}; expected one of {LOSS_TARGETS}.")
        if self.ccc_reduction not in CCC_REDUCTIONS:
            raise ValueError(f"ccc_reduction={self.ccc_reduction!r}; expected one of {CCC_REDUCTIONS}.")
        if self.ccc_weights is not None and len(self.ccc_weights) != self.num_labels:
            raise ValueError(
                f"ccc_weights has {len(self.ccc_weights)} entries for {self.num_labels} outputs."
            )
        if not 0.0 <= self.dropout < 1.0:
            raise ValueError(f"dropout must be in [0, 1), got {self.dropout}.")
        for field in ("fusion_size", "gate_size", "mlp_hidden_size"):
            if getattr(self, field) <= 0:
                raise ValueError(f"{field} must be positive, got {getattr(self, field)}.")

    def score_weight_matrix(self) -> list[list[float]]:
        """The weights of Eq. 7 as a `(num_labels, n_score_sets)` nested list (one row per output)."""
        weights = self.score_weights
        n_sets = len(self.score_sets)
        if weights and isinstance(weights[0], (list, tuple)):
            rows = [list(map(float, row)) for row in weights]
            if len(rows) != self.num_labels:
                raise ValueError(f"score_weights has {len(rows)} rows for {self.num_labels} outputs.")
        else:
            rows = [list(map(float, weights))] * self.num_labels
        if any(len(row) != n_sets for row in rows):
            raise ValueError(
                f"score_weights needs {n_sets} weights per output (one per score set), got {weights}."
            )
        return rows


__all__ = ["MultiViewSERConfig", "PAPER_SCORE_SETS", "PAPER_SCORE_WEIGHTS", "PAPER_VIEW_NAMES"]
