"""Re-implementations of the released forwards that `hf_ser.publishing.convert` reads, written for the tests from reading the
released code (msplabresearch/MSP-Podcast_Challenge_IS2025, tiantiaf0627/vox-profile-release); module names follow
the released key layouts so their state dicts are the released ones. Nothing here is imported from, or copied
out of, those projects."""

from __future__ import annotations

import numpy as np
import torch
from torch import nn
from transformers import WavLMConfig, WavLMModel, WhisperConfig, WhisperModel


# ------------------------------------------------------------------------------------------------ baseline
class ReleasedASP(nn.Module):
    """The baseline's attentive statistics pooling: per clip, frames up to floor((samples - 1) / 320) + 1,
    tanh(sap_linear(x)) scored by a bias-free vector, softmax, then mean and sqrt(clamp(E[x^2] - mu^2, 1e-5))."""

    def __init__(self, size: int):
        super().__init__()
        self.sap_linear = nn.Linear(size, size)
        self.attention = nn.Parameter(torch.randn(size, 1))

    def forward(self, xs: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        lengths = (torch.div(mask.sum(1) - 1, 320, rounding_mode="floor") + 1).int().tolist()
        pooled = []
        for x, length in zip(xs, lengths, strict=True):
            x = x[:length].unsqueeze(0)
            scores = torch.tanh(self.sap_linear(x)) @ self.attention
            weights = torch.softmax(scores.squeeze(2), dim=1).unsqueeze(2)
            mu = (x * weights).sum(1)
            sigma = torch.sqrt((((x**2) * weights).sum(1) - mu**2).clamp(min=1e-5))
            pooled.append(torch.cat([mu, sigma], 1).squeeze(0))
        return torch.stack(pooled)


class ReleasedHead(nn.Module):
    """The baseline's EmotionRegression: input dropout, blocks of Linear/LayerNorm/ReLU/Dropout, output layer."""

    def __init__(self, input_size: int, hidden: int, num_layers: int, outputs: int, dropout: float = 0.5):
        super().__init__()
        sizes = [input_size] + [hidden] * num_layers
        self.fc = nn.ModuleList(
            nn.Sequential(nn.Linear(sizes[i], hidden), nn.LayerNorm(hidden), nn.ReLU(), nn.Dropout(dropout))
            for i in range(num_layers)
        )
        self.out = nn.Sequential(nn.Linear(hidden, outputs))
        self.inp_drop = nn.Dropout(dropout)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.inp_drop(x)
        for block in self.fc:
            h = block(h)
        return self.out(h)


class ReleasedBaseline(nn.Module):
    """ssl_model / pool_model / ser_model, as the training code (three files) and the Hub models (one) hold them."""

    def __init__(self, encoder_config: dict, head_hidden: int, outputs: int, num_layers: int = 1):
        super().__init__()
        self.ssl_model = WavLMModel(WavLMConfig(**encoder_config))
        size = self.ssl_model.config.hidden_size
        self.pool_model = ReleasedASP(size)
        self.ser_model = ReleasedHead(2 * size, head_hidden, num_layers, outputs)

    def forward(self, wav: np.ndarray, mean: float, std: float) -> torch.Tensor:
        """One clip, normalised with the training set's statistics as the baseline's WavSet does."""
        x = torch.tensor((wav - mean) / (std + 1e-6), dtype=torch.float32)[None]
        mask = torch.ones_like(x)
        hidden = self.ssl_model(x, attention_mask=mask).last_hidden_state
        return self.ser_model(self.pool_model(hidden, mask))


# ------------------------------------------------------------------------------------------------ vox-profile
def _two_layer(hidden: int, outputs: int, sigmoid: bool) -> nn.Sequential:
    layers = [nn.Linear(hidden, hidden), nn.ReLU(), nn.Linear(hidden, outputs)]
    return nn.Sequential(*layers, nn.Sigmoid()) if sigmoid else nn.Sequential(*layers)


class ReleasedVoxProfileDim(nn.Module):
    """vox-profile's WavLMWrapper / WhisperWrapper for arousal, valence, dominance (eval, one clip, no length)."""

    def __init__(
        self, encoder_config: dict, hidden_dim: int = 16, whisper: bool = False, gender: bool = False
    ):
        super().__init__()
        self.whisper = whisper
        if whisper:
            self.backbone_model = WhisperModel(WhisperConfig(**encoder_config))
            size = self.backbone_model.config.d_model
            self.embed_positions = nn.Parameter(
                torch.randn(self.backbone_model.config.max_source_positions, size)
            )
            num_states = self.backbone_model.config.encoder_layers + 1
        else:
            self.backbone_model = WavLMModel(WavLMConfig(**encoder_config))
            size = self.backbone_model.config.hidden_size
            num_states = self.backbone_model.config.num_hidden_layers + 1
        self.model_seq = nn.Sequential(
            nn.Conv1d(size, hidden_dim, 1), nn.ReLU(), nn.Dropout(0.1),
            nn.Conv1d(hidden_dim, hidden_dim, 1), nn.ReLU(), nn.Dropout(0.1),
            nn.Conv1d(hidden_dim, hidden_dim, 1),
        )  # fmt: skip
        self.weights = nn.Parameter(torch.randn(num_states))
        self.arousal_layer = _two_layer(hidden_dim, 1, True)
        self.valence_layer = _two_layer(hidden_dim, 1, True)
        self.dominance_layer = _two_layer(hidden_dim, 1, True)
        if gender:
            self.gender_layer = _two_layer(hidden_dim, 2, False)

    def _hidden_states_v4(self, features: torch.Tensor) -> list[torch.Tensor]:
        return _wavlm_hidden_states_v4(self.backbone_model, features)

    def speech_frames(self, features: torch.Tensor) -> torch.Tensor:
        """The frame features fed to `model_seq`: Whisper's last layer, or WavLM's softmax-weighted hidden states."""
        if self.whisper:
            with torch.no_grad():
                self.backbone_model.encoder.embed_positions.weight.copy_(self.embed_positions)
            return self.backbone_model.encoder(features, output_hidden_states=True).hidden_states[-1]
        stacked = torch.stack(self._hidden_states_v4(features))
        return (torch.softmax(self.weights, -1)[:, None, None, None] * stacked).sum(0)

    def forward(self, features: torch.Tensor) -> tuple[torch.Tensor, ...]:
        """`features`: per-utterance normalised waveform (WavLM) or the log-mel window (Whisper), batch of one."""
        hidden = self.speech_frames(features)
        frames = self.model_seq(hidden.transpose(1, 2)).transpose(1, 2).mean(1)
        outputs = (self.arousal_layer(frames), self.valence_layer(frames), self.dominance_layer(frames))
        if hasattr(self, "gender_layer"):
            outputs += (self.gender_layer(frames),)
        return outputs


def _wavlm_hidden_states_v4(backbone: WavLMModel, features: torch.Tensor) -> list[torch.Tensor]:
    """`hidden_states` as transformers 4 (the release's) returned them for a stable-layer-norm WavLM: each layer's
    input, then the final layer-normed output. transformers 5 records the last layer's output before that norm
    instead, so they are gathered here with hooks."""
    inputs: list[torch.Tensor] = []
    handles = [
        layer.register_forward_pre_hook(lambda module, args, kwargs: inputs.append(args[0] if args else
                                        kwargs["hidden_states"]), with_kwargs=True)
        for layer in backbone.encoder.layers
    ]  # fmt: skip
    try:
        last = backbone(features).last_hidden_state
    finally:
        for handle in handles:
            handle.remove()
    return [*inputs, last]


def add_lora(model: ReleasedVoxProfileDim, rank: int = 4, seed: int = 0) -> dict[str, torch.Tensor]:
    """loralib-style factors on the upper half's feed-forward layers (as the released LoRA models have them): each
    such Linear computes W x + b + (B A x) / rank in eval. Returns the extra state-dict entries; the model computes
    with them through forward hooks."""
    generator = torch.Generator().manual_seed(seed)
    extra = {}
    layers = model.backbone_model.encoder.layers
    for index, layer in enumerate(layers):
        if index <= len(layers) // 2:
            continue
        for name in ("intermediate_dense", "output_dense"):
            linear = getattr(layer.feed_forward, name)
            a = torch.randn(rank, linear.in_features, generator=generator) * 0.3
            b = torch.randn(linear.out_features, rank, generator=generator) * 0.3
            prefix = f"backbone_model.encoder.layers.{index}.feed_forward.{name}."
            extra[prefix + "lora_A"], extra[prefix + "lora_B"] = a, b

            def hook(module, args, output, a=a, b=b):
                return output + (args[0] @ a.T @ b.T) / rank

            linear.register_forward_hook(hook)
    return extra
