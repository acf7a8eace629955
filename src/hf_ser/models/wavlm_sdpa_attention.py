"""WavLM self-attention through `torch.nn.functional.scaled_dot_product_attention`.

transformers' WavLM runs only in eager attention (`F.multi_head_attention_forward`, which also materialises the
head-averaged attention weights). WavLM's gated relative position bias is an additive term on the attention logits,
so it can be handed to SDPA as a float mask, with padded keys set to -inf: the same equation, computed by PyTorch's
fused kernels. Parameters keep their names, so checkpoints load unchanged.

This file travels to the Hub with the model (``trust_remote_code``): it imports only torch and transformers.
"""

from __future__ import annotations

import torch
from torch import nn
from transformers.models.wavlm.modeling_wavlm import WavLMAttention


class WavLMSdpaAttention(WavLMAttention):
    """`WavLMAttention` whose multi-head step runs in SDPA; `use_sdpa=False` falls back to the eager path (needed
    when attention weights are requested, which SDPA does not return)."""

    use_sdpa: bool = True

    @classmethod
    def from_eager(cls, eager: WavLMAttention) -> WavLMSdpaAttention:
        """Wrap an existing attention module, sharing its parameters (no copy)."""
        has_bias = hasattr(eager, "rel_attn_embed")
        with torch.device("meta"):
            module = cls(
                eager.embed_dim,
                eager.num_heads,
                eager.dropout,
                eager.num_buckets,
                eager.max_distance,
                has_relative_position_bias=has_bias,
            )
        for name, child in eager.named_children():
            setattr(module, name, child)
        module.gru_rel_pos_const = eager.gru_rel_pos_const
        return module

    def torch_multi_head_self_attention(
        self,
        hidden_states: torch.Tensor,
        attention_mask: torch.Tensor | None,
        gated_position_bias: torch.Tensor,
    ) -> tuple[torch.Tensor, torch.Tensor | None]:
        if not self.use_sdpa:
            return super().torch_multi_head_self_attention(hidden_states, attention_mask, gated_position_bias)
        batch, length, _ = hidden_states.shape

        def heads(projection: nn.Linear) -> torch.Tensor:
            return (
                projection(hidden_states).view(batch, length, self.num_heads, self.head_dim).transpose(1, 2)
            )

        bias = gated_position_bias.view(batch, self.num_heads, length, length).to(hidden_states.dtype)
        if attention_mask is not None:
            padded_keys = attention_mask.ne(1)[:, None, None, :]
            bias = bias.masked_fill(padded_keys, torch.finfo(bias.dtype).min)
        context = nn.functional.scaled_dot_product_attention(
            heads(self.q_proj),
            heads(self.k_proj),
            heads(self.v_proj),
            attn_mask=bias,
            dropout_p=self.dropout if self.training else 0.0,
        )
        context = context.transpose(1, 2).reshape(batch, length, self.embed_dim)
        return self.out_proj(context), None


def use_sdpa_attention(encoder: nn.Module) -> int:
    """Swap every WavLM attention module of `encoder` for the SDPA one (in place); returns how many were swapped."""
    swapped = 0
    for layer in encoder.encoder.layers:
        attention = layer.attention
        if isinstance(attention, WavLMAttention) and not isinstance(attention, WavLMSdpaAttention):
            layer.attention = WavLMSdpaAttention.from_eager(attention)
            swapped += 1
    return swapped


def set_sdpa_enabled(encoder: nn.Module, enabled: bool) -> None:
    for module in encoder.modules():
        if isinstance(module, WavLMSdpaAttention):
            module.use_sdpa = enabled


__all__ = ["WavLMSdpaAttention", "use_sdpa_attention", "set_sdpa_enabled"]
