"""Pooling equals slow, loop-based references of the papers' equations, and ignores padded frames."""

from __future__ import annotations

import torch

from hf_ser.pooling import AttentiveStatisticsPooling, MaskedMeanPooling, MultiLayerStatisticsPooling


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


def test_std_stays_accurate_when_the_mean_dominates_even_under_bf16_autocast():
    # Pre-LN residual streams carry features whose mean is many times their spread; the one-pass
    # sqrt(E[h^2] - mu^2) loses them (under bf16 autocast most came out floored at 1e-3).
    torch.manual_seed(4)
    hidden = 20.0 * torch.randn(1, 1, 64) + 0.5 * torch.randn(2, 50, 64)
    want = hidden.double().std(dim=1, unbiased=False)
    pool = MultiLayerStatisticsPooling(1)
    for autocast in (False, True):
        with torch.autocast("cpu", dtype=torch.bfloat16, enabled=autocast):
            got = pool(hidden[None])[:, 64:]
        torch.testing.assert_close(got.double(), want, rtol=1e-4, atol=1e-6)


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
