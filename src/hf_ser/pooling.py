"""Temporal pooling of frame-level speech features, always restricted to the valid (unpadded) frames.

- `MaskedMeanPooling`: average of valid frames.
- `AttentiveStatisticsPooling`: Okabe et al., "Attentive Statistics Pooling for Deep Speaker Embedding"
  (Interspeech 2018), the pooling of the Interspeech 2025 challenge baseline (paper 002).
- `MultiLayerStatisticsPooling`: multi-layer attentive statistics pooling, MASP (paper 000, Eq. 1).

This file travels to the Hub with the models (``trust_remote_code``): it imports only torch.
"""

from __future__ import annotations

import contextlib

import torch
from torch import nn

_no_context = contextlib.nullcontext

# Floor under the variance before the square root: keeps sigma's gradient finite on constant inputs.
VARIANCE_FLOOR = 1e-6


def _frame_weights(hidden_states: torch.Tensor, frame_mask: torch.Tensor | None) -> torch.Tensor:
    """(batch, frames) float weights: 1/T_valid on valid frames, 0 on padding."""
    batch, frames = hidden_states.shape[:2]
    if frame_mask is None:
        return hidden_states.new_full((batch, frames), 1.0 / frames)
    mask = frame_mask.to(hidden_states.dtype)
    return mask / mask.sum(dim=1, keepdim=True).clamp(min=1.0)


def weighted_mean_std(
    hidden_states: torch.Tensor, weights: torch.Tensor
) -> tuple[torch.Tensor, torch.Tensor]:
    """Mean and standard deviation over time with frame weights summing to one.

    `hidden_states` is (..., frames, dim) and `weights` (..., frames), broadcastable. sigma is paper 000's Eq. 1
    and Okabe et al.'s Eq. 5-6, sqrt(sum_t w_t h_t^2 - mu^2), computed in its centred form
    sqrt(sum_t w_t (h_t - mu)^2) and in float32 even under autocast: the one-pass difference of moments cancels
    catastrophically when a feature's mean is large against its spread (residual streams of pre-LN encoders): under
    bfloat16 autocast, with feature means of size ~20 and a spread of 0.5 over the frames, the variance came out
    negative or tiny, and was floored, for over half of the features (docs/statistics_pooling.md). The variance is floored at 1e-6
    before the square root, so that sigma's gradient stays finite on constant inputs. Returned in the input dtype.
    """
    dtype = hidden_states.dtype
    device_type = hidden_states.device.type
    # Autocast would run the matrix products below in half precision again; statistics are cheap next to the
    # encoder, so they always run in float32.
    with (
        torch.autocast(device_type, enabled=False)
        if torch.is_autocast_enabled(device_type)
        else _no_context()
    ):
        states = hidden_states.float()
        weights = weights.unsqueeze(-2).float()  # (..., 1, frames)
        mean = torch.matmul(weights, states)  # (..., 1, dim)
        centred = states - mean
        variance = torch.matmul(weights, centred * centred).squeeze(-2)
        std = variance.clamp(min=VARIANCE_FLOOR).sqrt()
    return mean.squeeze(-2).to(dtype), std.to(dtype)


class MaskedMeanPooling(nn.Module):
    """Average of the valid frames: (batch, frames, dim) -> (batch, dim)."""

    def forward(self, hidden_states: torch.Tensor, frame_mask: torch.Tensor | None = None) -> torch.Tensor:
        weights = _frame_weights(hidden_states, frame_mask)
        return torch.matmul(weights.unsqueeze(1), hidden_states).squeeze(1)


class AttentiveStatisticsPooling(nn.Module):
    """Attentive statistics pooling (Okabe et al., 2018): frame scores e_t = v^T tanh(W h_t + b) + k, softmax over
    valid frames, then the attention-weighted mean and standard deviation, concatenated:
    (batch, frames, dim) -> (batch, 2 * dim)."""

    def __init__(self, hidden_size: int, attention_size: int = 128):
        super().__init__()
        self.attention = nn.Sequential(
            nn.Linear(hidden_size, attention_size), nn.Tanh(), nn.Linear(attention_size, 1)
        )

    def forward(self, hidden_states: torch.Tensor, frame_mask: torch.Tensor | None = None) -> torch.Tensor:
        scores = self.attention(hidden_states).squeeze(-1)
        if frame_mask is not None:
            scores = scores.masked_fill(~frame_mask.bool(), torch.finfo(scores.dtype).min)
        weights = torch.softmax(scores, dim=1)
        mean, std = weighted_mean_std(hidden_states, weights)
        return torch.cat([mean, std], dim=-1)


class MultiLayerStatisticsPooling(nn.Module):
    """Multi-layer attentive statistics pooling, MASP (paper 000, Eq. 1).

    For each transformer layer l, f_l = mu_l (+) sigma_l, the temporal mean and standard deviation over the valid
    frames; F = sum_l softmax(w)_l f_l with one learnable weight per layer (initialised equal).

    Args:
        num_layers (`int`): number of layers L whose outputs are pooled.
        layer_norm (`bool`, defaults to `False`): normalise every frame of every layer (layer norm over the feature
            dimension, without learnable parameters, as SUPERB's weighted layer sums offer) before its statistics,
            so that all layers enter the weighted sum on one scale. Not in paper 000; per frame, so padding stays
            exact.

    Inputs:
        hidden_states: the layer outputs, a sequence of (batch, frames, dim) tensors or one stacked
            (layers_present, batch, frames, dim) tensor. Statistics are taken layer by layer, so the layers are never
            copied into one big stack.
        frame_mask: (batch, frames) bool, True on valid frames, or None.
        layer_indices: which of the L layers the stack holds (LayerDrop skips some in training); the softmax is
            taken over those only. None means all L, in order.
    """

    def __init__(self, num_layers: int, layer_norm: bool = False):
        super().__init__()
        self.num_layers = num_layers
        self.layer_norm = layer_norm
        self.layer_weights = nn.Parameter(torch.zeros(num_layers))

    def forward(
        self,
        hidden_states: torch.Tensor | list[torch.Tensor] | tuple[torch.Tensor, ...],
        frame_mask: torch.Tensor | None = None,
        layer_indices: list[int] | None = None,
    ) -> torch.Tensor:
        logits = self.layer_weights if layer_indices is None else self.layer_weights[layer_indices]
        if logits.shape[0] != len(hidden_states):
            raise ValueError(f"MASP got {len(hidden_states)} layers for {logits.shape[0]} layer weights.")
        weights = _frame_weights(hidden_states[0], frame_mask)  # (batch, frames), shared by every layer
        if self.layer_norm:
            hidden_states = [nn.functional.layer_norm(layer, layer.shape[-1:]) for layer in hidden_states]
        per_layer = torch.stack(
            [torch.cat(weighted_mean_std(layer, weights), dim=-1) for layer in hidden_states]
        )
        layer_probs = torch.softmax(logits, dim=0).to(per_layer.dtype)
        return torch.einsum("l,lbd->bd", layer_probs, per_layer)


__all__ = [
    "MaskedMeanPooling",
    "AttentiveStatisticsPooling",
    "MultiLayerStatisticsPooling",
    "weighted_mean_std",
]
