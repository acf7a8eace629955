"""Temporal pooling of frame-level speech features, always restricted to the valid (unpadded) frames.

- `MaskedMeanPooling`: average of valid frames.
- `AttentiveStatisticsPooling`: Okabe et al., "Attentive Statistics Pooling for Deep Speaker Embedding"
  (Interspeech 2018), the pooling of the Interspeech 2025 challenge baseline (paper 002).
- `MultiLayerStatisticsPooling`: multi-layer attentive statistics pooling, MASP (paper 000, Eq. 1).

This file travels to the Hub with the models (``trust_remote_code``): it imports only torch.
"""

from __future__ import annotations

import torch
from torch import nn

# Floor under the variance before the square root: keeps sigma's gradient finite on constant inputs. MASP (paper
# 000, whose Eq. 1 has no floor) uses 1e-6; ASP uses the challenge baseline's released value, 1e-5 (paper 002).
VARIANCE_FLOOR = 1e-6
ASP_VARIANCE_FLOOR = 1e-5
# Statistics are accumulated in float32 at least: sqrt(E[h^2] - mu^2) in bfloat16 is far off for offset activations
# (true sigma 1 at mean 100 gives 3.0).
_LOW_PRECISION = (torch.float16, torch.bfloat16)


def _frame_weights(hidden_states: torch.Tensor, frame_mask: torch.Tensor | None) -> torch.Tensor:
    """(batch, frames) float weights: 1/T_valid on valid frames, 0 on padding; float32 at least (1/T in bfloat16 is
    off by up to 0.4 %, which would bias the mean)."""
    batch, frames = hidden_states.shape[:2]
    dtype = torch.float32 if hidden_states.dtype in _LOW_PRECISION else hidden_states.dtype
    if frame_mask is None:
        return hidden_states.new_full((batch, frames), 1.0 / frames, dtype=dtype)
    mask = frame_mask.to(dtype)
    return mask / mask.sum(dim=1, keepdim=True).clamp(min=1.0)


def weighted_mean_std(
    hidden_states: torch.Tensor, weights: torch.Tensor, variance_floor: float = VARIANCE_FLOOR
) -> tuple[torch.Tensor, torch.Tensor]:
    """Mean and standard deviation over time with frame weights summing to one.

    `hidden_states` is (..., frames, dim) and `weights` (..., frames), broadcastable. Computes paper 000's Eq. 1 and
    Okabe et al.'s Eq. 5-6, sigma = sqrt(sum_t w_t (h_t - mu)^2), in two passes (mean, then the centred second
    moment), which equals sqrt(E[h^2] - mu^2) in exact arithmetic but does not cancel catastrophically. Both passes
    run in float32 (float64 inputs stay float64), also under `torch.autocast`, and the results are cast back to the
    input's dtype. Padding (weight 0) contributes exactly nothing. The variance is floored at `variance_floor`.
    """
    mean, std = _statistics(hidden_states, weights, variance_floor)
    return mean.to(hidden_states.dtype), std.to(hidden_states.dtype)


def _statistics(
    hidden_states: torch.Tensor, weights: torch.Tensor, variance_floor: float
) -> tuple[torch.Tensor, torch.Tensor]:
    """`weighted_mean_std` in the compute dtype (float32 for half-precision inputs), autocast off."""
    compute_dtype = torch.float32 if hidden_states.dtype in _LOW_PRECISION else hidden_states.dtype
    with torch.autocast(device_type=hidden_states.device.type, enabled=False):
        hidden = hidden_states.to(compute_dtype)
        weights = weights.unsqueeze(-2).to(compute_dtype)  # (..., 1, frames)
        mean = torch.matmul(weights, hidden)  # (..., 1, dim)
        centred = hidden - mean
        variance = torch.matmul(weights, centred * centred).squeeze(-2)
        return mean.squeeze(-2), variance.clamp(min=variance_floor).sqrt()


class MaskedMeanPooling(nn.Module):
    """Average of the valid frames: (batch, frames, dim) -> (batch, dim)."""

    def forward(self, hidden_states: torch.Tensor, frame_mask: torch.Tensor | None = None) -> torch.Tensor:
        weights = _frame_weights(hidden_states, frame_mask)
        with torch.autocast(device_type=hidden_states.device.type, enabled=False):
            mean = torch.matmul(weights.unsqueeze(1), hidden_states.to(weights.dtype)).squeeze(1)
        return mean.to(hidden_states.dtype)


class AttentiveStatisticsPooling(nn.Module):
    """Attentive statistics pooling (Okabe et al., 2018): frame scores e_t = v^T tanh(W h_t + b) + k, softmax over
    valid frames, then the attention-weighted mean and standard deviation, concatenated:
    (batch, frames, dim) -> (batch, 2 * dim).

    The challenge baseline's released pooling scores frames with a bias-free vector v; the bias of our last linear
    layer shifts every score equally, which the softmax removes, so the two are the same function. Its variance floor
    is the baseline's 1e-5."""

    def __init__(
        self, hidden_size: int, attention_size: int = 128, variance_floor: float = ASP_VARIANCE_FLOOR
    ):
        super().__init__()
        self.variance_floor = variance_floor
        self.attention = nn.Sequential(
            nn.Linear(hidden_size, attention_size), nn.Tanh(), nn.Linear(attention_size, 1)
        )

    def forward(self, hidden_states: torch.Tensor, frame_mask: torch.Tensor | None = None) -> torch.Tensor:
        scores = self.attention(hidden_states).squeeze(-1)
        if frame_mask is not None:
            scores = scores.masked_fill(~frame_mask.bool(), torch.finfo(scores.dtype).min)
        # Softmax in float32 (at least): frame weights must sum to one for the statistics to be right.
        weights = torch.softmax(scores.to(torch.promote_types(scores.dtype, torch.float32)), dim=1)
        mean, std = weighted_mean_std(hidden_states, weights, self.variance_floor)
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
            [torch.cat(_statistics(layer, weights, VARIANCE_FLOOR), dim=-1) for layer in hidden_states]
        )  # float32 (at least) statistics
        with torch.autocast(device_type=per_layer.device.type, enabled=False):
            layer_probs = torch.softmax(logits.to(per_layer.dtype), dim=0)
            pooled = torch.einsum("l,lbd->bd", layer_probs, per_layer)
        return pooled.to(hidden_states[0].dtype)


__all__ = [
    "MaskedMeanPooling",
    "AttentiveStatisticsPooling",
    "MultiLayerStatisticsPooling",
    "weighted_mean_std",
]
