"""Losses for speech emotion recognition.

- `FocalLoss`: multi-class softmax focal loss (Lin et al., "Focal Loss for Dense Object Detection", ICCV 2017),
  used by paper 000 against class imbalance; per-class alpha weights are applied (unlike one public challenge
  implementation that silently dropped them), soft targets accepted.
- `CCCLoss`: 1 - concordance correlation coefficient (Lin, 1989), the attribute loss of papers 001 and 002
  (paper 002, Eq. 1).
- `inverse_frequency_class_weights`: N / (C * n_c), the challenge baseline's weighted cross-entropy weights;
  `set_inverse_frequency_class_weights` writes them into a model config.
- `loss_from_config`, `auxiliary_cross_entropy`: the loss a model config describes. hf_ser's models compute their
  loss with these from their config alone, at every call, so the config (and the `config.json` saved from it) is the
  one description of the loss that was trained; `FocalLossTrainer` / `CCCLossTrainer` only write their arguments
  into the config.

This file travels to the Hub with the models (``trust_remote_code``): it imports only torch (and the standard
library).
"""

from __future__ import annotations

import functools
import logging
from collections.abc import Sequence
from typing import Any

import torch
from torch import nn

logger = logging.getLogger(__name__)

CLASSIFICATION_LOSSES = ("focal", "ce")
REGRESSION_LOSSES = ("ccc", "mse")
CCC_REDUCTIONS = ("sum", "mean")
# Guards the CCC denominator: two identical constant series give 0/0, which we define as perfect agreement (1).
# Far below any real batch's variance, so it never changes a defined value.
CCC_EPS = 1e-8


def inverse_frequency_class_weights(labels: Sequence[int], num_classes: int | None = None) -> torch.Tensor:
    """Class weights N / (C * n_c) (challenge baseline, paper 002) from a label column (e.g. `dataset["label"]`).

    `num_classes` defaults to the largest label + 1. Every class must occur at least once.

    Example:
        >>> inverse_frequency_class_weights([0, 0, 0, 1], num_classes=2)
        tensor([0.6667, 2.0000])
    """
    labels = torch.as_tensor(list(labels), dtype=torch.long)
    if labels.numel() == 0:
        raise ValueError("Cannot compute class weights from an empty label column.")
    if num_classes is None:
        num_classes = int(labels.max()) + 1
    if labels.min() < 0 or labels.max() >= num_classes:
        raise ValueError(
            f"Labels must lie in [0, {num_classes}); got range [{labels.min()}, {labels.max()}]."
        )
    counts = torch.bincount(labels, minlength=num_classes).to(torch.float32)
    missing = (counts == 0).nonzero().flatten().tolist()
    if missing:
        raise ValueError(f"Classes {missing} never occur: their inverse-frequency weight is undefined.")
    return labels.numel() / (num_classes * counts)


def set_inverse_frequency_class_weights(config: Any, labels: Sequence[int]) -> list[float]:
    """Fill `config.class_weights` with the inverse-frequency weights N / (C * n_c) of the training labels (the
    challenge baseline's weighted cross-entropy, paper 002), C being `config.num_labels`, and return them.

    This is what `FocalLossTrainer(class_weights="inverse_frequency")` does; the model then trains with these
    weights and `config.json` records them.

    Example:
        >>> config = WavLMMASPConfig.challenge_baseline()  # doctest: +SKIP
        >>> set_inverse_frequency_class_weights(config, train["label"])  # doctest: +SKIP
    """
    num_classes = getattr(config, "num_labels", None)
    weights = inverse_frequency_class_weights(labels, num_classes=num_classes)
    config.class_weights = [float(w) for w in weights]
    return config.class_weights


class FocalLoss(nn.Module):
    """Multi-class softmax focal loss, FL = -sum_c alpha_c * q_c * (1 - p_c)^gamma * log p_c.

    With hard labels q is one-hot, giving Lin et al.'s -alpha_y (1 - p_y)^gamma log p_y; with soft labels q is a
    class distribution. gamma = 0 gives (weighted) cross-entropy exactly; `reduction="mean"` divides by the sum of
    the alpha weights of the targets, as `torch.nn.functional.cross_entropy` does, so that identity holds for the
    mean too. For soft targets the same denominator is sum_n sum_c alpha_c q_nc (the batch size without alpha); torch's
    soft-target cross-entropy divides by the batch size instead, so the two differ only when alpha is given.

    Args:
        gamma (`float`, defaults to 2.0): focusing parameter.
        alpha (`Sequence[float]` or `torch.Tensor`, *optional*): per-class weights.
        reduction (`str`, defaults to `"mean"`): `"mean"`, `"sum"` or `"none"`.

    Inputs: logits (batch, classes); targets (batch,) class ids or (batch, classes) distributions.

    Example:
        >>> loss = FocalLoss(gamma=2.0)(torch.randn(4, 8), torch.tensor([0, 3, 7, 1]))
    """

    def __init__(
        self, gamma: float = 2.0, alpha: Sequence[float] | torch.Tensor | None = None, reduction: str = "mean"
    ):
        super().__init__()
        if gamma < 0:
            raise ValueError(f"gamma must be >= 0, got {gamma}.")
        if reduction not in ("mean", "sum", "none"):
            raise ValueError(f"reduction must be 'mean', 'sum' or 'none', got {reduction!r}.")
        self.gamma = gamma
        self.reduction = reduction
        self.register_buffer("alpha", None if alpha is None else torch.as_tensor(alpha, dtype=torch.float32))

    def forward(self, logits: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
        log_probs = torch.log_softmax(logits.float(), dim=-1)
        num_classes = log_probs.shape[-1]
        if logits.dim() != 2:
            raise ValueError(f"logits must be (batch, classes), got shape {tuple(logits.shape)}.")
        if targets.dim() == log_probs.dim():
            if targets.shape != log_probs.shape:
                raise ValueError(
                    f"Soft targets {tuple(targets.shape)} must match logits {tuple(logits.shape)}."
                )
            target_dist = targets.to(log_probs.dtype)
        else:
            if targets.shape != log_probs.shape[:1]:
                raise ValueError(
                    f"Targets {tuple(targets.shape)} must be (batch,) class ids for logits {tuple(logits.shape)}."
                )
            if targets.is_floating_point():
                # Float class ids (a column with missing values): NaN would crash one_hot, 2.7 would truncate to 2.
                bad = ~torch.isfinite(targets) | (targets != targets.round())
                if bool(bad.any()):
                    rows = bad.nonzero().flatten().tolist()[:5]
                    raise ValueError(
                        f"Class ids must be whole numbers; batch rows {rows} have {targets[rows].tolist()}."
                    )
            if targets.numel() and (targets.min() < 0 or targets.max() >= num_classes):
                raise ValueError(
                    f"Class ids must lie in [0, {num_classes}); got [{targets.min()}, {targets.max()}]."
                )
            target_dist = nn.functional.one_hot(targets.long(), num_classes).to(log_probs.dtype)
        class_weights = torch.ones(num_classes, device=logits.device) if self.alpha is None else self.alpha
        class_weights = class_weights.to(log_probs.device, log_probs.dtype)
        if class_weights.shape != (num_classes,):
            raise ValueError(f"alpha has {class_weights.numel()} weights for {num_classes} classes.")
        # 1 - p as -expm1(log p): exact for confident predictions, where 1 - exp(.) cancels catastrophically.
        if self.gamma == 0:
            modulating = torch.ones_like(log_probs)  # avoids 0 ** 0's NaN gradient at p = 1
        else:
            # The floor keeps gamma < 1's infinite slope of x ** gamma at x = 0 (p = 1) out of the gradient.
            one_minus_p = (-torch.expm1(log_probs)).clamp(min=torch.finfo(log_probs.dtype).tiny)
            modulating = one_minus_p.pow(self.gamma)
        per_sample = -(class_weights * target_dist * modulating * log_probs).sum(dim=-1)
        if self.reduction == "none":
            return per_sample
        if self.reduction == "sum":
            return per_sample.sum()
        return per_sample.sum() / (target_dist * class_weights).sum().clamp(
            min=torch.finfo(log_probs.dtype).tiny
        )


def concordance_correlation_coefficient(predictions: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
    """Lin's CCC per column with population statistics: 2 cov / (var_x + var_y + (mu_x - mu_y)^2).

    Inputs are (n,) or (n, attributes); returns a scalar or (attributes,). Two identical constant series give 1.
    """
    x = predictions.float()
    y = targets.float()
    mean_x, mean_y = x.mean(dim=0), y.mean(dim=0)
    var_x = (x - mean_x).pow(2).mean(dim=0)
    var_y = (y - mean_y).pow(2).mean(dim=0)
    covariance = ((x - mean_x) * (y - mean_y)).mean(dim=0)
    denominator = var_x + var_y + (mean_x - mean_y).pow(2)
    ccc = 2.0 * covariance / denominator.clamp(min=CCC_EPS)
    # Identical series (including constant ones) agree perfectly.
    return torch.where(denominator <= CCC_EPS, torch.ones_like(ccc), ccc)


class CCCLoss(nn.Module):
    """1 - CCC per attribute (papers 001 and 002), combined over attributes.

    Args:
        reduction (`str`, defaults to `"sum"`): `"sum"` (paper 001: sum over arousal, valence, dominance), `"mean"`
            or `"none"` (per attribute).
        weights (`Sequence[float]`, *optional*): per-attribute weights applied before the reduction.

    Inputs: predictions and targets of shape (batch,) or (batch, attributes). CCC is undefined on a single clip: a
    batch of one gives a loss of 0 (with a warning, once) instead of an error, so that a data set whose last batch
    holds one clip trains to the end.
    """

    def __init__(self, reduction: str = "sum", weights: Sequence[float] | None = None):
        super().__init__()
        if reduction not in ("mean", "sum", "none"):
            raise ValueError(f"reduction must be 'mean', 'sum' or 'none', got {reduction!r}.")
        self.reduction = reduction
        self.register_buffer(
            "weights", None if weights is None else torch.as_tensor(weights, dtype=torch.float32)
        )

    def forward(self, predictions: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
        if predictions.shape != targets.shape:
            raise ValueError(
                f"predictions {tuple(predictions.shape)} and targets {tuple(targets.shape)} differ in shape."
            )
        finite = torch.isfinite(targets)
        if not bool(finite.all()):
            # One NaN target would turn every weight into NaN while the logged loss reads 0.
            rows = (~finite).reshape(finite.shape[0], -1).any(dim=1).nonzero().flatten().tolist()[:5]
            raise ValueError(f"NaN or infinite CCC targets at batch rows {rows}.")
        if predictions.shape[0] < 2:
            # CCC is undefined on one clip. A data set whose size leaves a last batch of 1 would otherwise crash after
            # hours of training: that batch contributes nothing (a zero that keeps the graph, so every parameter still
            # gets a gradient, as DistributedDataParallel requires). `dataloader_drop_last=True` avoids such batches.
            _warn_once("A batch of fewer than 2 clips has no CCC: its CCC loss is 0 (skipped).")
            loss = (predictions.float() * 0.0).sum(dim=0)
        else:
            loss = 1.0 - concordance_correlation_coefficient(predictions, targets)
        if self.weights is not None:
            loss = loss * self.weights.to(loss.device)
        if self.reduction == "sum":
            return loss.sum()
        if self.reduction == "mean":
            return loss.mean()
        return loss


@functools.cache
def _warn_once(message: str) -> None:
    logger.warning(message)


def loss_from_config(config: Any) -> nn.Module:
    """The task loss that a model config describes: hf_ser's one reading of the loss settings.

    Reads `problem_type`, `loss` (`"focal"` or `"ce"` for classification, `"ccc"` or `"mse"` for regression; by
    default `"ccc"` when `problem_type="regression"`, else `"focal"`), `focal_gamma` (2.0), `class_weights` (the
    focal loss's alpha, the cross-entropy's weights), `ccc_reduction` (`"sum"`) and `ccc_weights` (per-attribute
    weights of 1 - CCC). Fields a config lacks take these defaults, so the multimodal and multi-view configs (1 - CCC
    only, no `loss` field) and plain transformers configs are read the same way.

    `"ce"` is `FocalLoss(gamma=0)`, which is (weighted) cross-entropy exactly.

    Example:
        >>> loss_fct = loss_from_config(model.config)  # doctest: +SKIP
        >>> loss = loss_fct(logits, labels)  # doctest: +SKIP
    """
    regression = getattr(config, "problem_type", None) == "regression"
    kind = getattr(config, "loss", None) or ("ccc" if regression else "focal")
    num_labels = getattr(config, "num_labels", None)
    if kind in CLASSIFICATION_LOSSES:
        if regression:
            raise ValueError(
                f"loss={kind!r} is a classification loss; the config has problem_type='regression'."
            )
        weights = getattr(config, "class_weights", None)
        if weights is not None and num_labels is not None and len(weights) != num_labels:
            raise ValueError(f"class_weights has {len(weights)} entries for {num_labels} labels.")
        gamma = 0.0 if kind == "ce" else float(getattr(config, "focal_gamma", 2.0))
        return FocalLoss(gamma=gamma, alpha=weights)
    if kind == "ccc":
        reduction = getattr(config, "ccc_reduction", "sum")
        if reduction not in CCC_REDUCTIONS:
            raise ValueError(f"ccc_reduction={reduction!r}; expected one of {CCC_REDUCTIONS}.")
        weights = getattr(config, "ccc_weights", None)
        if weights is not None and num_labels is not None and len(weights) != num_labels:
            raise ValueError(f"ccc_weights has {len(weights)} entries for {num_labels} outputs.")
        return CCCLoss(reduction=reduction, weights=weights)
    if kind == "mse":
        return nn.MSELoss()
    raise ValueError(f"loss={kind!r}; expected one of {CLASSIFICATION_LOSSES + REGRESSION_LOSSES}.")


def auxiliary_cross_entropy(aux_logits: torch.Tensor, aux_labels: torch.Tensor | None) -> torch.Tensor:
    """Cross-entropy of an auxiliary head (paper 001's gender head, Eq. 1); labels of -100 (unknown) are ignored.

    Without any known label (`aux_labels` is None or all -100) the term is a zero that keeps the head in the graph,
    so that every trainable parameter gets a (zero) gradient, as DistributedDataParallel requires.
    """
    known = None if aux_labels is None else aux_labels.to(aux_logits.device).long().view(-1)
    if known is None or not bool((known != -100).any()):
        return aux_logits.float().sum() * 0.0
    return nn.functional.cross_entropy(aux_logits.float(), known, ignore_index=-100)


__all__ = [
    "FocalLoss",
    "CCCLoss",
    "auxiliary_cross_entropy",
    "concordance_correlation_coefficient",
    "inverse_frequency_class_weights",
    "loss_from_config",
    "set_inverse_frequency_class_weights",
]
