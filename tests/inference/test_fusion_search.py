"""The Eq. 7 weight search of paper 003: exact CCC of combinations, recovery of planted weights."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from hf_ser import MultiViewSERConfig, MultiViewSERForRegression, concordance_correlation_coefficient
from hf_ser.inference.fusion_search import FusionSearchError, ccc_of_weights, search_fusion_weights


def test_ccc_of_weights_equals_ccc_of_the_combined_prediction(rng):
    scores, targets = rng.normal(size=(200, 4)), rng.normal(size=200) * 2 + 3
    weights = rng.uniform(size=(7, 4))
    fast = ccc_of_weights(weights, scores, targets)
    for w, value in zip(weights, fast, strict=True):
        direct = concordance_correlation_coefficient(torch.tensor(scores @ w), torch.tensor(targets))
        assert value == pytest.approx(direct.item(), abs=1e-6)  # the torch reference runs in float32


@pytest.mark.parametrize("planted", [(0.02, 0.15, 0.01, 0.8, 0.02), (0.3, 0.0, 0.45, 0.0, 0.25)])
def test_simplex_search_recovers_planted_weights(rng, planted):
    scores = rng.normal(size=(400, 5))
    targets = scores @ np.array(planted)  # the planted combination is the only perfect (CCC = 1) one
    result = search_fusion_weights(scores, targets)
    np.testing.assert_allclose(result.weights[0], planted, atol=1e-9)
    assert result.ccc[0] == pytest.approx(1.0)
    # The coarse stage (step 0.1) lands within one coarse step of every planted weight.
    assert np.all(np.abs(result.coarse_weights[0] - planted) <= 0.1 + 1e-9)


def test_box_search_and_per_attribute_weights(rng):
    scores = rng.normal(size=(300, 3, 2))
    planted = np.array([[0.7, 0.2, 0.05], [0.0, 0.33, 0.9]])  # second row does not sum to 1
    targets = np.stack([scores[:, :, j] @ planted[j] for j in range(2)], axis=1)
    result = search_fusion_weights(scores, targets, simplex=False)
    np.testing.assert_allclose(result.weights, planted, atol=1e-9)
    # On the simplex the second row cannot be reached exactly, so its CCC is lower.
    constrained = search_fusion_weights(scores, targets)
    assert constrained.ccc[1] < result.ccc[1]
    np.testing.assert_allclose(constrained.weights.sum(axis=1), 1.0)


def test_noisy_scores_beat_every_single_score(rng):
    truth = rng.normal(size=1000)
    # Five noisy predictors of different quality; the best weighted mix beats the best single one.
    scores = np.stack([truth + rng.normal(scale=s, size=1000) for s in (1.5, 0.8, 2.0, 0.6, 1.0)], axis=1)
    result = search_fusion_weights(scores, truth)
    single = max(ccc_of_weights(np.eye(5)[k], scores, truth)[0] for k in range(5))
    assert result.ccc[0] > single + 0.02
    assert result.weights[0, 3] == result.weights[0].max()  # the least noisy predictor weighs most


def test_weights_drive_the_model(rng):
    torch.manual_seed(0)
    config = MultiViewSERConfig(
        view_names=["a", "b"], view_dims=[6, 6], fusion_size=6, gate_size=4, mlp_hidden_size=4
    )
    model = MultiViewSERForRegression(config).eval()
    views = {"a": torch.randn(50, 6), "b": torch.randn(50, 6)}
    out = model(view_embeddings=views)
    targets = out.score_sets[:, 1, :].detach().numpy()  # planted: the second score set alone
    result = search_fusion_weights(out.score_sets.detach().numpy(), targets)
    np.testing.assert_allclose(result.weights, [[0.0, 1.0]] * 3, atol=1e-9)
    model.set_fusion_weights(result.weights)
    torch.testing.assert_close(model(view_embeddings=views).logits, out.score_sets[:, 1, :])


@pytest.mark.parametrize(
    "scores, targets, kwargs, message",
    [
        (np.zeros((5, 2)), np.zeros(4), {}, "targets have shape"),
        (np.zeros((1, 2)), np.zeros(1), {}, "at least 2"),
        (np.full((5, 2), np.nan), np.zeros(5), {}, "finite"),
        (np.zeros((5, 2)), np.zeros(5), {"coarse_step": 0.3}, "whole steps"),
        (np.zeros((5, 2)), np.zeros(5), {"coarse_step": 0.01, "fine_step": 0.1}, "must not exceed"),
    ],
)
def test_bad_inputs_are_explained(scores, targets, kwargs, message):
    with pytest.raises(FusionSearchError, match=message):
        search_fusion_weights(scores, targets, **kwargs)
