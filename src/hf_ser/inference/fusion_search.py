"""Development-set search of the score-fusion weights of IF-MVSE (paper 003, Eq. 7).

Y_pred = w_1 S_1 + ... + w_K S_K; paper 003 (Sec. 3.2) searches the weights on the validation set, "coarse search
(0-1, step 0.1) then fine search (step 0.01)", maximising CCC. The weights it reports (0.02, 0.15, 0.01, 0.8, 0.02)
sum to 1, so by default the search runs on the simplex (weights >= 0 summing to 1); `simplex=False` searches the
box [0, 1]^K instead. The fine stage searches +-`fine_radius` (default one coarse step) around the coarse optimum.

Every candidate is scored exactly and cheaply: CCC of a linear combination only needs the means and covariances of
the scores, CCC(w) = 2 w.c / (w' C w + var_y + (w.mu - mu_y)^2), with c = cov(S, y) and C = cov(S), so a grid of
millions of weight vectors is scored without forming a single prediction.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..errors import HFSERError

# Weight vectors scored per chunk: bounds memory to a few tens of MB whatever the grid size.
_CHUNK = 200_000


class FusionSearchError(HFSERError, ValueError):
    """Invalid scores or labels for the weight search."""


@dataclass
class FusionSearchResult:
    """Result of [`search_fusion_weights`].

    Args:
        weights (`np.ndarray` of shape `(num_outputs, K)`): the best weights per output (attribute).
        ccc (`np.ndarray` of shape `(num_outputs,)`): development CCC of Y_pred with those weights.
        coarse_weights (`np.ndarray` of shape `(num_outputs, K)`): the optimum of the coarse stage.
    """

    weights: np.ndarray
    ccc: np.ndarray
    coarse_weights: np.ndarray


def _moments(
    scores: np.ndarray, targets: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray, float, float]:
    """Population moments: mean of S, cov(S) (K x K), cov(S, y), mean and variance of y."""
    mu = scores.mean(axis=0)
    centred = scores - mu
    cov = centred.T @ centred / len(scores)
    mu_y = float(targets.mean())
    cross = centred.T @ (targets - mu_y) / len(scores)
    var_y = float(((targets - mu_y) ** 2).mean())
    return mu, cov, cross, mu_y, var_y


def ccc_of_weights(weights: np.ndarray, scores: np.ndarray, targets: np.ndarray) -> np.ndarray:
    """CCC (Lin, 1989; population statistics) of `scores @ w` against `targets` for each row `w` of `weights`.

    Args:
        weights: `(M, K)` candidate weight vectors (or `(K,)`).
        scores: `(n, K)` score sets S_1..S_K of one output.
        targets: `(n,)` true values.
    """
    weights = np.atleast_2d(np.asarray(weights, dtype=np.float64))
    mu, cov, cross, mu_y, var_y = _moments(np.asarray(scores, np.float64), np.asarray(targets, np.float64))
    covariance = weights @ cross
    var_pred = np.einsum("mk,kl,ml->m", weights, cov, weights)
    denominator = var_pred + var_y + (weights @ mu - mu_y) ** 2
    with np.errstate(divide="ignore", invalid="ignore"):
        ccc = np.where(denominator > 0, 2.0 * covariance / denominator, 0.0)
    return ccc


def _grid(lows: np.ndarray, highs: np.ndarray, total: int | None):
    """Integer weight vectors (in units of the step) with lows <= v <= highs, chunked; on the simplex their sum is
    `total` (the last coordinate is then determined by the others)."""
    k = len(lows)
    free = k - 1 if total is not None else k
    axes = [np.arange(lows[i], highs[i] + 1) for i in range(free)]
    # Enumerate the free coordinates in chunks of the first axis to bound memory.
    for first in axes[0] if free > 0 else [None]:
        if free == 0:
            rest = np.zeros((1, 0), dtype=np.int64)
        else:
            grids = np.meshgrid(np.array([first]), *axes[1:], indexing="ij")
            rest = np.stack([g.ravel() for g in grids], axis=1)
        if total is not None:
            last = total - rest.sum(axis=1)
            keep = (last >= lows[-1]) & (last <= highs[-1])
            rest = np.concatenate([rest[keep], last[keep, None]], axis=1)
        for start in range(0, len(rest), _CHUNK):
            yield rest[start : start + _CHUNK]


def _best_on_grid(scores, targets, lows, highs, units: int, simplex: bool) -> tuple[np.ndarray, float]:
    best_ccc, best = -np.inf, None
    for chunk in _grid(lows, highs, units if simplex else None):
        ccc = ccc_of_weights(chunk / units, scores, targets)
        index = int(np.argmax(ccc))
        # Ties keep the first candidate found, so the result is deterministic.
        if ccc[index] > best_ccc + 1e-12:
            best_ccc, best = float(ccc[index]), chunk[index]
    if best is None:
        raise FusionSearchError("The weight grid is empty (no weight vector satisfies the constraints).")
    return best, best_ccc


def search_fusion_weights(
    scores: np.ndarray,
    targets: np.ndarray,
    *,
    coarse_step: float = 0.1,
    fine_step: float = 0.01,
    fine_radius: float | None = None,
    simplex: bool = True,
) -> FusionSearchResult:
    """Grid-search the weights of Eq. 7 (paper 003) maximising the development-set CCC, coarse then fine.

    Args:
        scores (`np.ndarray` of shape `(n, K)` or `(n, K, num_outputs)`): the score sets S_1..S_K on the development
            set (`MultiViewSEROutput.score_sets`).
        targets (`np.ndarray` of shape `(n,)` or `(n, num_outputs)`): the true attribute values.
        coarse_step (`float`, defaults to 0.1), fine_step (`float`, defaults to 0.01): the two grid steps (paper 003).
        fine_radius (`float`, *optional*): half-width of the fine window around the coarse optimum; defaults to one
            coarse step.
        simplex (`bool`, defaults to `True`): weights sum to 1 (as the paper's reported weights do); `False`: each
            weight in [0, 1] independently.

    Returns:
        [`FusionSearchResult`] with one weight row per output; pass `result.weights` to
        `MultiViewSERForRegression.set_fusion_weights`.

    Example:
        >>> result = search_fusion_weights(dev_scores, dev_labels)  # doctest: +SKIP
        >>> model.set_fusion_weights(result.weights)  # doctest: +SKIP
    """
    scores = np.asarray(scores, dtype=np.float64)
    targets = np.asarray(targets, dtype=np.float64)
    if scores.ndim == 2:
        scores = scores[:, :, None]
    if targets.ndim == 1:
        targets = targets[:, None]
    if scores.ndim != 3 or targets.ndim != 2:
        raise FusionSearchError(f"scores must be (n, K) or (n, K, outputs), got shape {scores.shape}.")
    n, k, outputs = scores.shape
    if targets.shape != (n, outputs):
        raise FusionSearchError(
            f"targets have shape {targets.shape}; expected {(n, outputs)} for scores {scores.shape}."
        )
    if n < 2:
        raise FusionSearchError("CCC needs at least 2 development samples.")
    if not (np.isfinite(scores).all() and np.isfinite(targets).all()):
        raise FusionSearchError("scores and targets must be finite.")
    for name, step in (("coarse_step", coarse_step), ("fine_step", fine_step)):
        if not 0 < step <= 1 or abs(round(1 / step) * step - 1) > 1e-9:
            raise FusionSearchError(f"{name} must divide 1 into whole steps, got {step}.")
    if fine_step > coarse_step:
        raise FusionSearchError(f"fine_step ({fine_step}) must not exceed coarse_step ({coarse_step}).")
    fine_radius = coarse_step if fine_radius is None else fine_radius

    coarse_units, fine_units = round(1 / coarse_step), round(1 / fine_step)
    radius_units = round(fine_radius / fine_step)
    weights, cccs, coarse = np.zeros((outputs, k)), np.zeros(outputs), np.zeros((outputs, k))
    for j in range(outputs):
        s, y = scores[:, :, j], targets[:, j]
        zeros, full = np.zeros(k, dtype=np.int64), np.full(k, coarse_units, dtype=np.int64)
        best_coarse, _ = _best_on_grid(s, y, zeros, full, coarse_units, simplex)
        coarse[j] = best_coarse / coarse_units
        centre = np.round(coarse[j] * fine_units).astype(np.int64)
        lows = np.clip(centre - radius_units, 0, fine_units)
        highs = np.clip(centre + radius_units, 0, fine_units)
        best_fine, best_ccc = _best_on_grid(s, y, lows, highs, fine_units, simplex)
        weights[j], cccs[j] = best_fine / fine_units, best_ccc
    return FusionSearchResult(weights=weights, ccc=cccs, coarse_weights=coarse)


__all__ = ["FusionSearchError", "FusionSearchResult", "ccc_of_weights", "search_fusion_weights"]
