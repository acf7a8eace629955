"""Pooling equals slow, loop-based references of the papers' equations, and ignores padded frames."""

from __future__ import annotations

import torch

from hf_ser.models.pooling import (
    AttentiveStatisticsPooling,
    MaskedMeanPooling,
    MultiLayerStatisticsPooling,
    weighted_mean_std,
)


def masp_reference(layers: torch.Tensor, lengths: list[int], weights: torch.Tensor) -> torch.Tensor:
    """Paper 000, Eq. 1, one utterance and one layer at a time over its T valid frames."""
    num_layers, batch = layers.shape[:2]
    out = []
    for b in range(batch):
        T = lengths[b]
        feats = []
        for layer in range(num_layers):
            h = layers[layer, b, :T].double()
            mu = h.sum(0) / T
            sigma = torch.sqrt((h**2).sum(0) / T - mu**2)
            feats.append(torch.cat([mu, sigma]))
        numerator = sum(torch.exp(weights[i].double()) * feats[i] for i in range(num_layers))
        out.append(numerator / torch.exp(weights.double()).sum())
    return torch.stack(out)


def mask_from_lengths(lengths, frames):
    return torch.arange(frames)[None, :] < torch.tensor(lengths)[:, None]


def test_masp_matches_equation_1_with_padding():
    torch.manual_seed(0)
    lengths = [7, 12, 3]
    layers = torch.randn(5, 3, 12, 6)
    pool = MultiLayerStatisticsPooling(num_layers=5)
    with torch.no_grad():
        pool.layer_weights.copy_(torch.randn(5))
    got = pool(layers, mask_from_lengths(lengths, 12))
    want = masp_reference(layers, lengths, pool.layer_weights.detach())
    torch.testing.assert_close(got.double(), want, rtol=1e-5, atol=1e-5)


def test_masp_ignores_values_in_padded_frames():
    torch.manual_seed(1)
    layers = torch.randn(3, 2, 10, 4)
    mask = mask_from_lengths([6, 10], 10)
    pool = MultiLayerStatisticsPooling(3)
    garbage = layers.clone()
    garbage[:, 0, 6:] = 1e3
    torch.testing.assert_close(pool(layers, mask), pool(garbage, mask))


def test_masp_over_a_subset_of_layers_renormalises_the_softmax():
    torch.manual_seed(2)
    layers = torch.randn(4, 2, 5, 3)
    pool = MultiLayerStatisticsPooling(4)
    with torch.no_grad():
        pool.layer_weights.copy_(torch.tensor([0.5, -1.0, 2.0, 0.0]))
    present = [0, 2, 3]
    got = pool(layers[present], None, layer_indices=present)
    want = masp_reference(layers[present], [5, 5], pool.layer_weights.detach()[present])
    torch.testing.assert_close(got.double(), want, rtol=1e-5, atol=1e-5)


def test_asp_matches_okabe_reference():
    torch.manual_seed(3)
    hidden = torch.randn(2, 9, 8)
    lengths = [9, 4]
    pool = AttentiveStatisticsPooling(8, attention_size=5)
    got = pool(hidden, mask_from_lengths(lengths, 9))
    for b, T in enumerate(lengths):
        h = hidden[b, :T].double()
        lin1, lin2 = pool.attention[0], pool.attention[2]
        e = torch.stack([lin2(torch.tanh(lin1(h[t].float()))).double().squeeze() for t in range(T)])
        alpha = torch.softmax(e, 0)
        mu = (alpha[:, None] * h).sum(0)
        sigma = torch.sqrt((alpha[:, None] * h**2).sum(0) - mu**2)
        torch.testing.assert_close(got[b].double(), torch.cat([mu, sigma]), rtol=1e-5, atol=1e-5)


def test_masked_mean():
    hidden = torch.arange(12, dtype=torch.float32).view(1, 4, 3).repeat(2, 1, 1)
    got = MaskedMeanPooling()(hidden, mask_from_lengths([2, 4], 4))
    torch.testing.assert_close(got[0], hidden[0, :2].mean(0))
    torch.testing.assert_close(got[1], hidden[1].mean(0))


def test_std_is_finite_and_differentiable_on_constant_frames():
    hidden = torch.ones(1, 2, 3, 4, requires_grad=True)
    out = MultiLayerStatisticsPooling(1)(hidden[0:1].expand(1, 2, 3, 4))
    out.sum().backward()
    assert torch.isfinite(out).all() and torch.isfinite(hidden.grad).all()


def _offset_frames(mean: float, frames: int = 200, dim: int = 8, seed: int = 3) -> torch.Tensor:
    """(2, frames, dim) bfloat16 activations with a large offset and unit spread, like real encoder outputs."""
    generator = torch.Generator().manual_seed(seed)
    return (mean + torch.randn(2, frames, dim, generator=generator)).to(torch.bfloat16)


def _reference_std(hidden: torch.Tensor, lengths: list[int]) -> torch.Tensor:
    """fp64 population standard deviation of the valid frames of each clip."""
    return torch.stack([hidden[b, :T].double().std(0, correction=0) for b, T in enumerate(lengths)])


def test_statistics_under_bf16_autocast_match_an_fp64_reference():
    """sqrt(E[h^2] - mu^2) in bfloat16 gives sigma 3.0 for a true 1 at mean 100: statistics must run in fp32."""
    for offset in (20.0, 100.0):
        hidden = _offset_frames(offset)
        lengths = [200, 150]
        mask = mask_from_lengths(lengths, 200)
        want_std = _reference_std(hidden, lengths)
        want_mean = torch.stack([hidden[b, :T].double().mean(0) for b, T in enumerate(lengths)])
        with torch.autocast("cpu", dtype=torch.bfloat16):
            masp = MultiLayerStatisticsPooling(1)(hidden[None], mask)
            asp = AttentiveStatisticsPooling(8, 4)
            torch.nn.init.zeros_(asp.attention[2].weight)  # uniform attention: plain mean and std
            asp_out = asp(hidden, mask)
        for pooled in (masp, asp_out):
            assert pooled.dtype == torch.bfloat16
            # bfloat16 output keeps ~3 significant digits: 1 % of sigma, 0.5 % of the mean.
            torch.testing.assert_close(pooled[:, 8:].double(), want_std, rtol=1e-2, atol=1e-2)
            torch.testing.assert_close(pooled[:, :8].double(), want_mean, rtol=5e-3, atol=0)
        mean, std = weighted_mean_std(hidden, mask.float() / mask.sum(1, keepdim=True))
        torch.testing.assert_close(std.double(), want_std, rtol=1e-2, atol=1e-2)


def test_fp32_statistics_match_fp64_at_large_offsets():
    generator = torch.Generator().manual_seed(4)
    hidden = 1e3 + torch.randn(2, 300, 8, generator=generator)
    weights = torch.full((2, 300), 1 / 300)
    _, std = weighted_mean_std(hidden, weights)
    torch.testing.assert_close(std.double(), _reference_std(hidden, [300, 300]), rtol=1e-4, atol=1e-4)


def test_asp_uses_the_released_variance_floor():
    asp = AttentiveStatisticsPooling(4, 2)
    out = asp(torch.ones(1, 5, 4))
    torch.testing.assert_close(out[:, 4:], torch.full((1, 4), 1e-5**0.5))


def test_masp_layer_norm_normalises_each_frame_before_the_statistics_and_ignores_padding():
    torch.manual_seed(5)
    lengths = [7, 12]
    layers = 3.0 + 5.0 * torch.randn(3, 2, 12, 6)
    pool = MultiLayerStatisticsPooling(3, layer_norm=True)
    with torch.no_grad():
        pool.layer_weights.copy_(torch.randn(3))
    mask = mask_from_lengths(lengths, 12)
    got = pool(layers, mask)
    normalised = torch.nn.functional.layer_norm(layers, (6,))
    want = masp_reference(normalised, lengths, pool.layer_weights.detach())
    torch.testing.assert_close(got.double(), want, rtol=1e-5, atol=1e-5)
    assert not torch.allclose(got, MultiLayerStatisticsPooling(3)(layers, mask))
    garbage = layers.clone()
    garbage[:, 0, 7:] = 1e3
    torch.testing.assert_close(pool(garbage, mask), got)
