"""`MultiViewSERForRegression`: Interactive Fusion of Multi-View Speech Embeddings (IF-MVSE, paper 003: Liu et al.,
Interspeech 2025 SER challenge, task 2).

Frozen pretrained encoders (Whisper-large-v3's encoder, WavLM-large, HuBERT-large) turn each utterance into one
mean-pooled vector per view ([`extract_view_embeddings`]); the model reads those cached vectors. Each score set S_i
is either a per-view MLP (1024, 512, 1) or a fused pair: dual-feature interactive attention (Eq. 2-4), then the
multi-view self-balancing gate (Eq. 5-6), then the MLP. The prediction is Y_pred = sum_i w_i S_i (Eq. 7) with
weights searched on the development set ([`hf_ser.inference.fusion_search.search_fusion_weights`]); the loss is 1-CCC
(Eq. 8).

This file travels to the Hub with the model (``trust_remote_code``): it imports only torch, transformers (and numpy,
which both depend on) and its sibling files.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np
import torch
from torch import nn
from transformers import (
    AutoConfig,
    AutoModel,
    PreTrainedModel,
    Wav2Vec2FeatureExtractor,
    WhisperFeatureExtractor,
)
from transformers.modeling_outputs import SequenceClassifierOutput
from transformers.utils import can_return_tuple

from .configuration_multiview import MultiViewSERConfig
from .labels import SAMPLING_RATE
from .losses import loss_from_config
from .modeling_base import (
    SERPreTrainedModel,
    encoder_frame_mask,
    freeze_modules,
    load_encoder_weights,
    pretrained_encoder_state,
)


@dataclass
class MultiViewSEROutput(SequenceClassifierOutput):
    """`SequenceClassifierOutput` of [`MultiViewSERForRegression`].

    Args:
        logits (`torch.Tensor` of shape `(batch, num_labels)`): Y_pred of Eq. 7.
        score_sets (`torch.Tensor` of shape `(batch, n_score_sets, num_labels)`): S_1..S_K before weighting; the
            input of the development-set weight search.
        embeddings (`torch.Tensor` of shape `(batch, n_score_sets * mlp_hidden_size)`): every branch's hidden MLP
            layer, concatenated (used by the analysis tools).
    """

    score_sets: torch.Tensor | None = None
    embeddings: torch.Tensor | None = None


def interactive_attention(f1: torch.Tensor, f2: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Dual-feature interactive attention, paper 003 Eq. 2-4: F_inter = F1 * F2, alpha = sigmoid(tanh(F_inter)),
    returns (alpha * F1, alpha * F2).

    Eq. 4 writes alpha_1 and alpha_2 while Eq. 3 defines a single, parameter-free alpha from the symmetric Hadamard
    product; both features are therefore weighted by the same alpha.
    """
    alpha = torch.sigmoid(torch.tanh(f1 * f2))
    return alpha * f1, alpha * f2


class SelfBalancingGate(nn.Module):
    """Multi-view self-balancing gate (MSBG), paper 003 Eq. 5-6.

    p_k = tanh(W^p_k F_k), z_p = sigmoid(W^p_z [F1, F2]), q_k = tanh(W^q_k F^_k), z_q = sigmoid(W^q_z [F^1, F^2]),
    S = z_p p_1 + (1 - z_p) p_2 + z_q q_1 + (1 - z_q) q_2. The W are "weight matrices" in the paper, so the linear
    maps have no bias.
    """

    def __init__(self, input_size: int, output_size: int):
        super().__init__()
        self.primary_1 = nn.Linear(input_size, output_size, bias=False)
        self.primary_2 = nn.Linear(input_size, output_size, bias=False)
        self.primary_gate = nn.Linear(2 * input_size, output_size, bias=False)
        self.interaction_1 = nn.Linear(input_size, output_size, bias=False)
        self.interaction_2 = nn.Linear(input_size, output_size, bias=False)
        self.interaction_gate = nn.Linear(2 * input_size, output_size, bias=False)

    def forward(
        self, f1: torch.Tensor, f2: torch.Tensor, f1_hat: torch.Tensor, f2_hat: torch.Tensor
    ) -> torch.Tensor:
        p1, p2 = torch.tanh(self.primary_1(f1)), torch.tanh(self.primary_2(f2))
        z_p = torch.sigmoid(self.primary_gate(torch.cat([f1, f2], dim=-1)))
        q1, q2 = torch.tanh(self.interaction_1(f1_hat)), torch.tanh(self.interaction_2(f2_hat))
        z_q = torch.sigmoid(self.interaction_gate(torch.cat([f1_hat, f2_hat], dim=-1)))
        return z_p * p1 + (1 - z_p) * p2 + z_q * q1 + (1 - z_q) * q2


class ScoreMLP(nn.Module):
    """The (1024, 512, 1) MLP of paper 003 (Sec. 3.2): Linear, ReLU, Dropout(0.5), Linear to the outputs."""

    def __init__(self, input_size: int, hidden_size: int, num_outputs: int, dropout: float):
        super().__init__()
        self.hidden = nn.Sequential(nn.Linear(input_size, hidden_size), nn.ReLU(), nn.Dropout(dropout))
        self.output = nn.Linear(hidden_size, num_outputs)

    def forward(self, features: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        hidden = self.hidden(features)
        return self.output(hidden), hidden


class ScoreBranch(nn.Module):
    """One score set S_i: one view through the MLP, or a pair through Eq. 2-6 and the MLP.

    A view whose size differs from `fusion_size` is first projected linearly (paper 003: Whisper 1280 -> 1024). Each
    branch owns its projections, so the branches share no parameters.
    """

    def __init__(self, views: Sequence[str], view_dims: Mapping[str, int], config: MultiViewSERConfig):
        super().__init__()
        self.views = list(views)
        d = config.fusion_size
        self.projections = nn.ModuleDict(
            {name: nn.Linear(view_dims[name], d) for name in self.views if view_dims[name] != d}
        )
        self.gate = SelfBalancingGate(d, config.gate_size) if len(self.views) == 2 else None
        mlp_input = config.gate_size if self.gate is not None else d
        self.mlp = ScoreMLP(mlp_input, config.mlp_hidden_size, config.num_labels, config.dropout)

    def forward(self, embeddings: Mapping[str, torch.Tensor]) -> tuple[torch.Tensor, torch.Tensor]:
        features = [
            self.projections[name](embeddings[name]) if name in self.projections else embeddings[name]
            for name in self.views
        ]
        if self.gate is None:
            return self.mlp(features[0])
        f1, f2 = features
        f1_hat, f2_hat = interactive_attention(f1, f2)
        return self.mlp(self.gate(f1, f2, f1_hat, f2_hat))


class MultiViewSERPreTrainedModel(SERPreTrainedModel):
    config: MultiViewSERConfig
    config_class = MultiViewSERConfig
    base_model_prefix = "multiview"
    main_input_name = "view_embeddings"
    input_modalities = "audio"
    # The optional view encoders are frozen feature extractors; the fusion heads have no layers to checkpoint.
    supports_gradient_checkpointing = False


class MultiViewSERForRegression(MultiViewSERPreTrainedModel):
    """IF-MVSE emotional attribute regressor (paper 003) on cached multi-view utterance embeddings.

    `forward(view_embeddings=..., labels=None)` accepts the views as a mapping `{view name: (batch, dim)}`, a
    sequence in `config.view_names` order, or a tensor `(batch, n_views, dim)` when all views have one size; the
    views may also be passed as keyword arguments named `<view>_embedding` (one dataset column per view). It
    returns a [`MultiViewSEROutput`] whose `logits` are Y_pred (Eq. 7) and whose `score_sets` are S_1..S_K.

    Example:
        >>> from hf_ser import MultiViewSERConfig, MultiViewSERForRegression
        >>> model = MultiViewSERForRegression(MultiViewSERConfig())  # the paper's three views and five score sets
        >>> out = model(view_embeddings={"whisper": torch.randn(4, 1280), "wavlm": torch.randn(4, 1024),
        ...                              "hubert": torch.randn(4, 1024)})
        >>> out.logits.shape, out.score_sets.shape
        (torch.Size([4, 3]), torch.Size([4, 5, 3]))
    """

    def __init__(self, config: MultiViewSERConfig):
        super().__init__(config)
        view_dims = dict(zip(config.view_names, config.view_dims, strict=True))
        self.branches = nn.ModuleList(ScoreBranch(views, view_dims, config) for views in config.score_sets)
        # Optional frozen encoders, so that the model also reads raw audio (pipelines); None: cached embeddings only.
        self.view_encoders = None
        self._whisper_extractors: dict[str, WhisperFeatureExtractor] = {}
        if config.view_encoder_configs:
            self.view_encoders = nn.ModuleDict(
                {name: _build_view_encoder(cfg) for name, cfg in config.view_encoder_configs.items()}
            )
            for name, encoder in self.view_encoders.items():
                if encoder.config.model_type == "whisper":
                    self._whisper_extractors[name] = _whisper_extractor(encoder.config)
        self.post_init()
        self.apply_freezing()

    def apply_freezing(self) -> None:
        """The view encoders are frozen feature extractors (paper 003, Sec. 2.1); only the fusion heads train."""
        freeze_modules([self.view_encoders])

    def train(self, mode: bool = True):
        super().train(mode)
        if self.view_encoders is not None:
            self.view_encoders.eval()  # frozen feature extractors: no dropout while the heads train
        return self

    @staticmethod
    def audio_feature_extractor(sampling_rate: int = SAMPLING_RATE) -> Wav2Vec2FeatureExtractor:
        """The extractor to save with a model that holds its encoders: it pads raw audio and returns the mask but
        does not normalise, because each view normalises its own input (Whisper needs the raw amplitude)."""
        return Wav2Vec2FeatureExtractor(
            feature_size=1,
            sampling_rate=sampling_rate,
            padding_value=0.0,
            do_normalize=False,
            return_attention_mask=True,
        )

    @torch.no_grad()
    def embed_audio(
        self, input_values: torch.Tensor, attention_mask: torch.Tensor | None = None
    ) -> dict[str, torch.Tensor]:
        """Mean-pooled utterance embeddings of every view from raw 16 kHz audio `(batch, samples)`, computed by the
        frozen encoders the model holds: the same values as [`extract_view_embeddings`] with each encoder's own
        feature extractor (per-utterance normalisation for the wav2vec2 family, log-mel for Whisper)."""
        if self.view_encoders is None:
            raise ValueError(
                "This model holds no encoders and reads cached embeddings only (view_embeddings=...); build it with "
                "MultiViewSERForRegression.from_encoders_pretrained to feed it raw audio."
            )
        if input_values.dim() != 2:
            raise ValueError(f"input_values must be (batch, samples), got {tuple(input_values.shape)}.")
        batch, width = input_values.shape
        lengths = attention_mask.sum(-1).long() if attention_mask is not None else torch.full((batch,), width)
        clips = [input_values[i, : int(lengths[i])].float() for i in range(batch)]
        views = {}
        for name, encoder in self.view_encoders.items():
            parameter = next(encoder.parameters())
            if name in self._whisper_extractors:
                features = self._whisper_extractors[name](
                    [c.cpu().numpy() for c in clips],
                    sampling_rate=SAMPLING_RATE,
                    return_tensors="pt",
                    return_attention_mask=True,
                )
                inputs = {"input_features": features["input_features"].to(parameter.device, parameter.dtype)}
                mask = features["attention_mask"].to(parameter.device)
            else:
                # Wav2Vec2FeatureExtractor(do_normalize=True): zero mean, unit variance over the real samples.
                padded = torch.zeros(batch, int(lengths.max()), device=parameter.device)
                mask = torch.zeros(batch, padded.shape[1], dtype=torch.long, device=parameter.device)
                for i, clip in enumerate(clips):
                    clip = clip.to(parameter.device)
                    padded[i, : clip.numel()] = (clip - clip.mean()) / torch.sqrt(
                        clip.var(unbiased=False) + 1e-7
                    )
                    mask[i, : clip.numel()] = 1
                inputs = {"input_values": padded.to(parameter.dtype)}
            views[name] = _encode_pooled(encoder, inputs, mask)
        return views

    @classmethod
    def from_encoders_pretrained(
        cls,
        encoders: Mapping[str, str],
        *,
        revision: str | None = None,
        cache_dir: str | None = None,
        **config_kwargs,
    ) -> MultiViewSERForRegression:
        """Build IF-MVSE holding frozen pretrained encoders, e.g. the paper's
        `{"whisper": "openai/whisper-large-v3", "wavlm": "microsoft/wavlm-large",
        "hubert": "facebook/hubert-large-ls960-ft"}` (`configuration_multiview.PAPER_VIEW_ENCODERS`), with fresh
        fusion heads. Such a model reads raw audio as well as cached embeddings; save it with
        `audio_feature_extractor()` for `pipeline("speech-emotion-regression")`. Weights are read as safetensors."""
        hub_kwargs = {"revision": revision, "cache_dir": cache_dir}
        configs, dims, states = {}, [], {}
        for name, path in encoders.items():
            encoder_config = AutoConfig.from_pretrained(path, **hub_kwargs)
            # Whisper: only the encoder is used (paper 003, Sec. 2.1)
            states[name] = pretrained_encoder_state(path, **hub_kwargs)
            configs[name] = encoder_config.to_dict()
            dims.append(
                encoder_config.d_model
                if encoder_config.model_type == "whisper"
                else encoder_config.hidden_size
            )
        config_kwargs.setdefault("view_names", list(encoders))
        config_kwargs.setdefault("view_dims", dims)
        config_kwargs.setdefault("view_encoders", dict(encoders))
        model = cls(MultiViewSERConfig(view_encoder_configs=configs, **config_kwargs))
        for name, state in states.items():
            load_encoder_weights(model.view_encoders[name], state, encoders[name])
        model.pretrained_from = tuple(str(path) for path in encoders.values())
        return model

    def fusion_weights(
        self, device: torch.device | None = None, dtype: torch.dtype | None = None
    ) -> torch.Tensor:
        """The weights of Eq. 7 as a `(n_score_sets, num_labels)` tensor, read from the config every call so that
        a weight search applied to the config takes effect immediately."""
        weights = torch.tensor(self.config.score_weight_matrix(), dtype=dtype or torch.float32, device=device)
        return weights.T

    def set_fusion_weights(self, weights: Sequence[float] | Sequence[Sequence[float]] | np.ndarray) -> None:
        """Store searched weights (one per score set, or a `(num_labels, n_score_sets)` matrix) in the config."""
        weights = np.asarray(weights, dtype=np.float64)
        self.config.score_weights = weights.tolist()
        self.config.score_weight_matrix()  # validates

    def _views(self, view_embeddings, view_kwargs: dict) -> dict[str, torch.Tensor]:
        names = self.config.view_names
        if view_embeddings is None:
            view_embeddings = {
                name: view_kwargs[f"{name}_embedding"] for name in names if f"{name}_embedding" in view_kwargs
            }
        if isinstance(view_embeddings, torch.Tensor):
            if view_embeddings.dim() != 3 or view_embeddings.shape[1] != len(names):
                raise ValueError(
                    f"A tensor input must have shape (batch, {len(names)} views, dim); got {tuple(view_embeddings.shape)}."
                )
            view_embeddings = list(view_embeddings.unbind(1))
        if isinstance(view_embeddings, (list, tuple)):
            if len(view_embeddings) != len(names):
                raise ValueError(
                    f"Got {len(view_embeddings)} views; the model expects {names} in that order."
                )
            view_embeddings = dict(zip(names, view_embeddings, strict=True))
        if not isinstance(view_embeddings, Mapping):
            raise TypeError(
                f"view_embeddings must be a mapping, sequence or tensor, got {type(view_embeddings).__name__}."
            )
        needed = {name for views in self.config.score_sets for name in views}
        missing = sorted(needed - set(view_embeddings))
        if missing:
            raise ValueError(
                f"Missing view embeddings {missing}; pass them in view_embeddings or as <view>_embedding."
            )
        parameter = next(self.parameters())
        views = {}
        for name, dim in zip(names, self.config.view_dims, strict=True):
            if name not in needed:
                continue
            tensor = torch.as_tensor(view_embeddings[name]).to(parameter.device, parameter.dtype)
            if tensor.dim() != 2 or tensor.shape[-1] != dim:
                raise ValueError(f"View {name!r} must have shape (batch, {dim}); got {tuple(tensor.shape)}.")
            views[name] = tensor
        # Compared pairwise, not through a Python set: sizes are symbolic under torch.export with a dynamic batch.
        first = next(iter(views.values()))
        if any(tensor.shape[0] != first.shape[0] for tensor in views.values()):
            raise ValueError(
                f"Views disagree on the batch size: { {k: v.shape[0] for k, v in views.items()} }."
            )
        return views

    @can_return_tuple
    def forward(
        self,
        view_embeddings: Mapping[str, torch.Tensor] | Sequence[torch.Tensor] | torch.Tensor | None = None,
        labels: torch.Tensor | None = None,
        input_values: torch.Tensor | None = None,
        attention_mask: torch.Tensor | None = None,
        output_hidden_states: bool | None = None,
        output_attentions: bool | None = None,
        **kwargs,
    ) -> MultiViewSEROutput:
        r"""
        view_embeddings (mapping, sequence or `torch.Tensor`): the cached utterance embeddings of every view (see the
            class docstring); alternatively keyword arguments `<view>_embedding`.
        labels (`torch.Tensor` of shape `(batch, num_labels)` or `(batch,)`, *optional*): attribute values; the loss
            is 1-CCC summed over outputs (Eq. 8; `config.ccc_reduction`, `config.ccc_weights`), for every score set
            (`loss_target="branches"`) or for Y_pred.
        input_values (`torch.Tensor` of shape `(batch, samples)`, *optional*): raw (not normalised) 16 kHz audio,
            used when no embeddings are given and the model holds its encoders (`from_encoders_pretrained`).
        attention_mask (`torch.Tensor` of shape `(batch, samples)`, *optional*): 1 on real samples of
            `input_values`.
        output_hidden_states / output_attentions: not available (the model reads pooled utterance embeddings);
            requesting them, here or through the config, raises an error. `return_dict=False` gives
            `outputs.to_tuple()`.
        """
        if any(self._output_flags(output_hidden_states, output_attentions)):
            raise ValueError(
                "MultiViewSERForRegression reads pooled utterance embeddings: it has no hidden states or attention "
                "weights to return (output_hidden_states / output_attentions must be off, in the call and the config)."
            )
        unknown = sorted(k for k in kwargs if not k.endswith("_embedding"))
        if unknown:
            raise TypeError(f"MultiViewSERForRegression.forward got unexpected arguments {unknown}.")
        given = view_embeddings is not None or any(k.endswith("_embedding") for k in kwargs)
        if not given and input_values is not None:
            view_embeddings = self.embed_audio(input_values, attention_mask)
        views = self._views(view_embeddings, kwargs)
        scores, hiddens = zip(*(branch(views) for branch in self.branches), strict=True)
        score_sets = torch.stack(scores, dim=1)  # (batch, K, labels)
        weights = self.fusion_weights(score_sets.device, score_sets.dtype)  # (K, labels)
        logits = (score_sets * weights).sum(dim=1)  # Eq. 7
        embeddings = torch.cat(hiddens, dim=-1)

        loss = None
        if labels is not None:
            labels = labels.to(logits.device, torch.float32).view(logits.shape[0], -1)
            if labels.shape[-1] != logits.shape[-1]:
                raise ValueError(f"labels have {labels.shape[-1]} columns for {logits.shape[-1]} outputs.")
            # Read from the config at every call: what CCCLossTrainer writes there is what is trained and saved.
            loss_fct = loss_from_config(self.config)
            if self.config.loss_target == "fused":
                loss = loss_fct(logits.float(), labels)
            else:
                loss = sum(loss_fct(score_sets[:, k].float(), labels) for k in range(score_sets.shape[1]))

        return MultiViewSEROutput(loss=loss, logits=logits, score_sets=score_sets, embeddings=embeddings)


# ---------------------------------------------------------------------------------------------- view embeddings
def _build_view_encoder(config_dict: dict) -> PreTrainedModel:
    """A randomly initialised encoder from a nested config (weights come from `from_pretrained`); Whisper keeps
    only its encoder."""
    config_dict = dict(config_dict)
    config = AutoConfig.for_model(config_dict.pop("model_type"), **config_dict)
    if config.model_type == "whisper":
        from transformers.models.whisper.modeling_whisper import WhisperEncoder

        return WhisperEncoder(config)
    return AutoModel.from_config(config)


def _whisper_extractor(config) -> WhisperFeatureExtractor:
    """Whisper's log-mel front end sized for this encoder (30 s and 128 mels for large-v3)."""
    samples = config.max_source_positions * 2 * 160  # two mel frames per position, hop of 160 samples
    if samples % SAMPLING_RATE:
        raise ValueError(
            f"max_source_positions={config.max_source_positions} is not a whole number of seconds."
        )
    return WhisperFeatureExtractor(feature_size=config.num_mel_bins, chunk_length=samples // SAMPLING_RATE)


def _encode_pooled(
    encoder: PreTrainedModel, inputs: Mapping[str, torch.Tensor], attention_mask: torch.Tensor | None
) -> torch.Tensor:
    """Run a frozen encoder and average its last hidden state over each clip's valid frames."""
    if "input_features" in inputs:
        # Whisper's encoder attends to the whole 30 s window; its mask is for pooling only.
        hidden = encoder(input_features=inputs["input_features"]).last_hidden_state
    else:
        hidden = encoder(inputs["input_values"], attention_mask=attention_mask).last_hidden_state
    mask = encoder_frame_mask(encoder, hidden.shape[1], attention_mask)
    if mask is None:
        return hidden.mean(dim=1)
    weights = mask.to(hidden.dtype).unsqueeze(-1)
    return (hidden * weights).sum(dim=1) / weights.sum(dim=1).clamp(min=1.0)


@torch.no_grad()
def mean_pooled_embeddings(
    encoder: PreTrainedModel, feature_extractor, waveforms: Sequence[np.ndarray], batch_size: int = 4
) -> np.ndarray:
    """Masked mean of a frozen encoder's last hidden state over each utterance's valid frames (paper 003, Sec. 2.1).

    Works for raw-waveform encoders (WavLM, HuBERT, wav2vec2, data2vec-audio with a `Wav2Vec2FeatureExtractor`) and
    for Whisper's encoder (`WhisperEncoder` or `WhisperModel`, with a `WhisperFeatureExtractor`): Whisper pads every
    clip to 30 s; only the frames covering the real audio are averaged. Returns `(n, hidden_size)` float32.
    """
    encoder.eval()
    if hasattr(encoder, "get_encoder") and getattr(encoder.config, "is_encoder_decoder", False):
        encoder = encoder.get_encoder()
    sampling_rate = getattr(feature_extractor, "sampling_rate", SAMPLING_RATE)
    device = next(encoder.parameters()).device
    out = []
    for start in range(0, len(waveforms), batch_size):
        batch = [np.asarray(w, dtype=np.float32) for w in waveforms[start : start + batch_size]]
        # Whisper's extractor pads to its fixed 30 s window ("max_length"); raw-waveform ones pad to the longest clip.
        padding = "max_length" if "input_features" in feature_extractor.model_input_names else True
        inputs = feature_extractor(
            batch,
            sampling_rate=sampling_rate,
            return_tensors="pt",
            padding=padding,
            return_attention_mask=True,
        )
        inputs = {k: v.to(device) for k, v in inputs.items()}
        attention_mask = inputs.pop("attention_mask", None)
        out.append(_encode_pooled(encoder, inputs, attention_mask).float().cpu().numpy())
    return np.concatenate(out, axis=0)


def extract_view_embeddings(
    waveforms: Sequence[np.ndarray], encoders: Mapping[str, tuple], batch_size: int = 4
) -> dict[str, np.ndarray]:
    """Embed 16 kHz waveforms with every view's frozen encoder: `{view: (n, dim)}`.

    Args:
        waveforms: 16 kHz mono float arrays.
        encoders: `{view name: (encoder model, feature extractor)}`, e.g.
            `{"wavlm": (AutoModel.from_pretrained("microsoft/wavlm-large"), build_feature_extractor(...)), ...}`.
        batch_size: clips per forward pass.

    The result feeds `MultiViewSERForRegression(view_embeddings=...)`; to cache it in a dataset column use one
    `embed_fn` per view with `hf_ser.processing.embedding_cache.cache_embeddings`.
    """
    return {
        name: mean_pooled_embeddings(model, extractor, waveforms, batch_size)
        for name, (model, extractor) in encoders.items()
    }


__all__ = [
    "MultiViewSERForRegression",
    "MultiViewSERPreTrainedModel",
    "MultiViewSEROutput",
    "SelfBalancingGate",
    "interactive_attention",
    "extract_view_embeddings",
    "mean_pooled_embeddings",
]
