"""FocalLoss, CCCLoss and inverse-frequency class weights against slow references."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from hf_ser import CCCLoss, FocalLoss, inverse_frequency_class_weights
from hf_ser.models.losses import concordance_correlation_coefficient


def slow_focal(logits, targets, gamma, alpha=None, reduction="mean"):
    """Lin et al.'s focal loss written out sample by sample, class by class, in float64 Python."""
    logits = logits.double().tolist()
    num_classes = len(logits[0])
    alpha = [1.0] * num_classes if alpha is None else list(alpha)
    losses, weights = [], []
    for row, target in zip(logits, targets, strict=True):
        top = max(row)
        log_norm = top + math.log(sum(math.exp(v - top) for v in row))
        dist = (
            target.tolist()
            if target.dim() == 1
            else [1.0 if c == int(target) else 0.0 for c in range(num_classes)]
        )
        loss = 0.0
        for c in range(num_classes):
            log_p = row[c] - log_norm
            loss -= alpha[c] * dist[c] * (1 - math.exp(log_p)) ** gamma * log_p
        losses.append(loss)
        weights.append(sum(alpha[c] * dist[c] for c in range(num_classes)))
    if reduction == "none":
        return torch.tensor(losses)
    if reduction == "sum":
        return torch.tensor(sum(losses))
    return torch.tensor(sum(losses) / sum(weights))


@pytest.mark.parametrize("gamma", [0.0, 0.5, 2.0, 5.0])
@pytest.mark.parametrize("reduction", ["mean", "sum", "none"])
@pytest.mark.parametrize("with_alpha", [False, True])
def test_focal_matches_slow_reference(gamma, reduction, with_alpha):
    torch.manual_seed(0)
    logits = torch.randn(7, 5) * 3
    targets = torch.tensor([0, 1, 2, 3, 4, 4, 1])
    alpha = [0.5, 2.0, 1.0, 3.0, 0.25] if with_alpha else None
    ours = FocalLoss(gamma=gamma, alpha=alpha, reduction=reduction)(logits, targets)
    ref = slow_focal(logits, targets, gamma, alpha, reduction)
    torch.testing.assert_close(ours.double(), ref.double(), rtol=1e-5, atol=1e-6)


def test_soft_targets_match_slow_reference_and_one_hot_equals_hard():
    torch.manual_seed(1)
    logits = torch.randn(6, 4)
    soft = torch.softmax(torch.randn(6, 4), dim=-1)
    alpha = [1.0, 2.0, 0.5, 1.5]
    ours = FocalLoss(gamma=2.0, alpha=alpha)(logits, soft)
    torch.testing.assert_close(
        ours.double(), slow_focal(logits, soft, 2.0, alpha).double(), rtol=1e-5, atol=1e-6
    )
    hard = torch.tensor([3, 0, 1, 2, 2, 0])
    one_hot = torch.nn.functional.one_hot(hard, 4).float()
    loss = FocalLoss(gamma=2.0, alpha=alpha)
    torch.testing.assert_close(loss(logits, one_hot), loss(logits, hard))


@pytest.mark.parametrize("reduction", ["mean", "sum", "none"])
def test_gamma_zero_is_weighted_cross_entropy(reduction):
    torch.manual_seed(2)
    logits = torch.randn(9, 8, requires_grad=True)
    targets = torch.randint(0, 8, (9,))
    weights = torch.rand(8) + 0.1
    ours = FocalLoss(gamma=0.0, alpha=weights, reduction=reduction)(logits, targets)
    ref = torch.nn.functional.cross_entropy(logits, targets, weight=weights, reduction=reduction)
    torch.testing.assert_close(ours, ref)
    grad_ours = torch.autograd.grad(ours.sum(), logits)[0]
    grad_ref = torch.autograd.grad(ref.sum(), logits)[0]
    torch.testing.assert_close(grad_ours, grad_ref)


def test_alpha_is_really_applied():
    torch.manual_seed(3)
    logits = torch.randn(8, 3)
    targets = torch.tensor([0, 0, 0, 0, 0, 0, 1, 2])
    plain = FocalLoss(gamma=2.0, reduction="none")(logits, targets)
    weighted = FocalLoss(gamma=2.0, alpha=[1.0, 4.0, 0.5], reduction="none")(logits, targets)
    torch.testing.assert_close(weighted, plain * torch.tensor([1.0, 4.0, 0.5])[targets])


def test_focal_down_weights_easy_examples():
    logits = torch.tensor([[6.0, 0.0], [0.2, 0.0]])  # first is easy, second is hard
    targets = torch.tensor([0, 0])
    ce = FocalLoss(gamma=0.0, reduction="none")(logits, targets)
    fl = FocalLoss(gamma=2.0, reduction="none")(logits, targets)
    assert (fl[0] / ce[0]) < 1e-4 < (fl[1] / ce[1])


def test_focal_confident_predictions_have_finite_gradients():
    logits = torch.tensor([[200.0, 0.0, -50.0]], requires_grad=True)
    for gamma in (0.0, 0.5, 2.0):
        loss = FocalLoss(gamma=gamma)(logits, torch.tensor([0]))
        (grad,) = torch.autograd.grad(loss, logits)
        assert torch.isfinite(loss) and torch.isfinite(grad).all()


def test_focal_bad_input_raises():
    with pytest.raises(ValueError, match="gamma"):
        FocalLoss(gamma=-1.0)
    with pytest.raises(ValueError, match="reduction"):
        FocalLoss(reduction="avg")
    with pytest.raises(ValueError, match="alpha has 2 weights for 3 classes"):
        FocalLoss(alpha=[1.0, 2.0])(torch.randn(2, 3), torch.tensor([0, 1]))
    with pytest.raises(ValueError, match="Class ids"):
        FocalLoss()(torch.randn(2, 3), torch.tensor([0, 3]))
    with pytest.raises(ValueError, match="Soft targets"):
        FocalLoss()(torch.randn(2, 3), torch.rand(2, 4))


def test_inverse_frequency_weights_from_a_dataset_column():
    from datasets import Dataset

    labels = [0] * 6 + [1] * 3 + [2] * 1
    dataset = Dataset.from_dict({"label": labels})
    weights = inverse_frequency_class_weights(dataset["label"], num_classes=3)
    n, c = len(labels), 3
    expected = torch.tensor([n / (c * 6), n / (c * 3), n / (c * 1)])
    torch.testing.assert_close(weights, expected)
    torch.testing.assert_close(inverse_frequency_class_weights(labels), expected)  # num_classes inferred
    with pytest.raises(ValueError, match="never occur"):
        inverse_frequency_class_weights([0, 2], num_classes=3)
    with pytest.raises(ValueError, match="empty"):
        inverse_frequency_class_weights([], num_classes=3)
    with pytest.raises(ValueError, match="lie in"):
        inverse_frequency_class_weights([0, 5], num_classes=3)


# ------------------------------------------------------------------------------------------------ CCC
def numpy_ccc(x: np.ndarray, y: np.ndarray) -> np.ndarray:
    x, y = np.asarray(x, dtype=np.float64), np.asarray(y, dtype=np.float64)
    mx, my = x.mean(0), y.mean(0)
    vx, vy = x.var(0), y.var(0)  # population variance (ddof=0), as in Lin (1989)
    cov = ((x - mx) * (y - my)).mean(0)
    return 2 * cov / (vx + vy + (mx - my) ** 2)


def test_ccc_loss_matches_numpy_reference():
    rng = np.random.default_rng(0)
    y = rng.uniform(1, 7, size=(32, 3))
    x = 0.6 * y + rng.normal(0, 0.8, size=(32, 3)) + 0.5
    ref = 1 - numpy_ccc(x, y)
    xt, yt = torch.tensor(x, dtype=torch.float32), torch.tensor(y, dtype=torch.float32)
    torch.testing.assert_close(
        CCCLoss(reduction="none")(xt, yt).double(), torch.tensor(ref), rtol=1e-5, atol=1e-5
    )
    torch.testing.assert_close(CCCLoss()(xt, yt).double(), torch.tensor(ref.sum()), rtol=1e-5, atol=1e-5)
    torch.testing.assert_close(
        CCCLoss(reduction="mean")(xt, yt).double(), torch.tensor(ref.mean()), rtol=1e-5, atol=1e-5
    )
    weights = [1.0, 2.0, 0.5]
    torch.testing.assert_close(
        CCCLoss(weights=weights)(xt, yt).double(), torch.tensor((ref * weights).sum()), rtol=1e-5, atol=1e-5
    )
    # 1-D input: a single attribute (the challenge baseline trains one model per attribute).
    torch.testing.assert_close(
        CCCLoss()(xt[:, 1], yt[:, 1]).double(), torch.tensor(ref[1]), rtol=1e-5, atol=1e-5
    )


def test_ccc_loss_matches_the_challenge_metric():
    from hf_ser.evaluation.metrics import load_metric

    rng = np.random.default_rng(1)
    y = rng.uniform(1, 7, size=(20, 3))
    x = y + rng.normal(0, 1.0, size=(20, 3))
    metric = load_metric("ccc", keep_in_memory=True).compute(predictions=x.tolist(), references=y.tolist())
    per_attribute = 1 - CCCLoss(reduction="none")(torch.tensor(x), torch.tensor(y))
    expected = [metric["ccc_arousal"], metric["ccc_valence"], metric["ccc_dominance"]]
    np.testing.assert_allclose(per_attribute.numpy(), expected, rtol=1e-5, atol=1e-6)


def test_ccc_is_safe_on_constant_batches():
    constant = torch.full((8, 3), 4.0, requires_grad=True)
    targets = torch.full((8, 3), 4.0)
    loss = CCCLoss()(constant, targets)
    (grad,) = torch.autograd.grad(loss, constant)
    assert loss.item() == 0.0 and torch.isfinite(grad).all()
    # Constant predictions against varying targets: CCC = 0, finite gradients that push predictions to spread.
    varying = torch.linspace(1, 7, 8).unsqueeze(1).repeat(1, 3)
    constant = torch.full((8, 3), 4.0, requires_grad=True)
    loss = CCCLoss(reduction="none")(constant, varying)
    torch.testing.assert_close(loss.detach(), torch.ones(3))
    (grad,) = torch.autograd.grad(loss.sum(), constant)
    assert torch.isfinite(grad).all() and grad.abs().sum() > 0
    torch.testing.assert_close(
        concordance_correlation_coefficient(torch.ones(5), torch.ones(5)), torch.tensor(1.0)
    )


def test_ccc_loss_bad_input_raises():
    with pytest.raises(ValueError, match="shape"):
        CCCLoss()(torch.randn(4, 3), torch.randn(4, 2))
    with pytest.raises(ValueError, match="reduction"):
        CCCLoss(reduction="max")
    with pytest.raises(ValueError, match="NaN"):
        CCCLoss()(torch.randn(1, 3), torch.tensor([[1.0, float("nan"), 2.0]]))  # checked on one clip too


@pytest.mark.parametrize(
    ("shape", "reduction"), [((1, 3), "sum"), ((1, 3), "none"), ((1,), "mean"), ((0, 3), "sum")]
)
def test_ccc_of_fewer_than_two_clips_is_a_zero_loss_that_keeps_the_graph(caplog, shape, reduction):
    """CCC is undefined on one clip: CCCLoss itself gives 0 (with one warning) so a last batch of one clip does not
    end a long training run; the zero keeps the graph, so every parameter still gets a (zero) gradient."""
    from hf_ser import losses

    losses._warn_once.cache_clear()
    predictions = torch.randn(*shape, requires_grad=True)
    with caplog.at_level("WARNING", logger="hf_ser.models.losses"):
        loss = CCCLoss(reduction=reduction, weights=[1.0, 2.0, 3.0] if len(shape) == 2 else None)(
            predictions, torch.ones(shape)
        )
        CCCLoss()(torch.randn(1, 3), torch.ones(1, 3))
    expected_shape = (3,) if reduction == "none" else ()
    assert loss.shape == expected_shape and torch.equal(loss.detach(), torch.zeros(expected_shape))
    (grad,) = torch.autograd.grad(loss.sum(), predictions)
    assert torch.equal(grad, torch.zeros_like(predictions))
    assert sum("fewer than 2 clips" in r.getMessage() for r in caplog.records) == 1  # warned once
    # Two clips are enough for a real value.
    assert CCCLoss()(torch.tensor([[1.0], [2.0]]), torch.tensor([[2.0], [1.0]])).item() == pytest.approx(2.0)


# ------------------------------------------------------------------------------------------------ from the config
def test_loss_from_config_reads_every_loss_field():
    from types import SimpleNamespace

    from hf_ser import loss_from_config

    torch.manual_seed(4)
    logits, targets = torch.randn(6, 3), torch.tensor([0, 1, 2, 2, 1, 0])
    weights = [0.5, 2.0, 1.0]
    focal = loss_from_config(
        SimpleNamespace(loss="focal", focal_gamma=1.5, class_weights=weights, num_labels=3)
    )
    torch.testing.assert_close(focal(logits, targets), FocalLoss(gamma=1.5, alpha=weights)(logits, targets))
    # "ce" ignores focal_gamma: weighted cross-entropy exactly.
    ce = loss_from_config(SimpleNamespace(loss="ce", focal_gamma=3.0, class_weights=weights, num_labels=3))
    want = torch.nn.functional.cross_entropy(logits, targets, weight=torch.tensor(weights))
    torch.testing.assert_close(ce(logits, targets), want)
    # A config without loss fields (a plain transformers classifier): focal loss with gamma 2, no weights.
    torch.testing.assert_close(
        loss_from_config(SimpleNamespace())(logits, targets), FocalLoss()(logits, targets)
    )
    # Regression: 1 - CCC with the configured reduction and per-attribute weights; default sum.
    x, y = torch.randn(8, 3), torch.randn(8, 3)
    ccc = loss_from_config(
        SimpleNamespace(
            problem_type="regression", ccc_reduction="mean", ccc_weights=[1.0, 0.0, 2.0], num_labels=3
        )
    )
    torch.testing.assert_close(ccc(x, y), CCCLoss(reduction="mean", weights=[1.0, 0.0, 2.0])(x, y))
    torch.testing.assert_close(
        loss_from_config(SimpleNamespace(problem_type="regression"))(x, y), CCCLoss()(x, y)
    )
    mse = loss_from_config(SimpleNamespace(problem_type="regression", loss="mse"))
    torch.testing.assert_close(mse(x, y), torch.nn.functional.mse_loss(x, y))


@pytest.mark.parametrize(
    ("fields", "match"),
    [
        ({"class_weights": [1.0, 2.0], "num_labels": 3}, "class_weights has 2"),
        ({"problem_type": "regression", "ccc_weights": [1.0], "num_labels": 3}, "ccc_weights has 1"),
        ({"problem_type": "regression", "ccc_reduction": "none"}, "ccc_reduction"),
        ({"problem_type": "regression", "loss": "focal"}, "classification loss"),
        ({"loss": "hinge"}, "hinge"),
        ({"focal_gamma": -1.0}, "gamma"),
    ],
)
def test_loss_from_config_rejects_bad_settings(fields, match):
    from types import SimpleNamespace

    from hf_ser import loss_from_config

    with pytest.raises(ValueError, match=match):
        loss_from_config(SimpleNamespace(**fields))


def test_set_inverse_frequency_class_weights_fills_the_config():
    from hf_ser import WavLMMASPConfig, set_inverse_frequency_class_weights

    config = WavLMMASPConfig.challenge_baseline(
        encoder_config={
            "model_type": "wavlm",
            "hidden_size": 16,
            "num_hidden_layers": 1,
            "num_attention_heads": 2,
        },
        id2label={0: "a", 1: "b", 2: "c"},
    )
    labels = [0] * 6 + [1] * 3 + [2]
    weights = set_inverse_frequency_class_weights(config, labels)
    assert config.class_weights == weights == pytest.approx([10 / 18, 10 / 9, 10 / 3])
    assert all(type(w) is float for w in config.class_weights)  # JSON-serialisable in config.json
    with pytest.raises(ValueError, match="never occur"):  # num_classes is the config's (3), not max label + 1
        set_inverse_frequency_class_weights(config, [0, 1, 1])


def test_auxiliary_cross_entropy_ignores_unknown_labels_and_keeps_the_graph():
    from hf_ser.models.losses import auxiliary_cross_entropy

    logits = torch.randn(4, 2, requires_grad=True)
    labels = torch.tensor([0, -100, 1, 1])
    want = torch.nn.functional.cross_entropy(logits[[0, 2, 3]], labels[[0, 2, 3]])
    torch.testing.assert_close(auxiliary_cross_entropy(logits, labels), want)
    for nothing_known in (None, torch.full((4,), -100)):
        zero = auxiliary_cross_entropy(logits, nothing_known)
        (grad,) = torch.autograd.grad(zero, logits)
        assert zero.item() == 0.0 and torch.equal(grad, torch.zeros_like(logits))
