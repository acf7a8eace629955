"""The evaluate metric modules: F1 against scikit-learn, CCC against a numpy reference and known values."""

from __future__ import annotations

import evaluate
import numpy as np
import pytest
import torch
from sklearn.metrics import (
    accuracy_score,
    balanced_accuracy_score,
    confusion_matrix,
    f1_score,
    precision_score,
    recall_score,
)

from hf_ser import concordance_correlation_coefficient, load_metric
from hf_ser.evaluation.metrics import available_metrics, metric_path


@pytest.fixture(scope="module")
def f1():
    return load_metric("f1")


@pytest.fixture(scope="module")
def ccc():
    return load_metric("ccc")


def test_available_metrics_and_unknown_name():
    assert {"f1", "ccc"} <= set(available_metrics())
    with pytest.raises(ValueError, match="Unknown metric 'bleu'"):
        load_metric("bleu")
    with pytest.raises(ValueError, match="Unknown metric"):
        metric_path("../metrics")


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_f1_matches_sklearn_on_random_labels(f1, seed):
    rng = np.random.default_rng(seed)
    references = rng.integers(0, 8, size=200)
    # Skewed predictions so that the classes differ in precision and recall.
    predictions = np.where(rng.random(200) < 0.4, references, rng.integers(0, 8, size=200))
    predictions[predictions == 6] = 7  # class 6 is never predicted
    result = f1.compute(predictions=predictions, references=references, return_per_class=True)
    assert result["f1_macro"] == pytest.approx(
        f1_score(references, predictions, average="macro", zero_division=0)
    )
    assert result["f1_micro"] == pytest.approx(f1_score(references, predictions, average="micro"))
    assert result["uar"] == pytest.approx(balanced_accuracy_score(references, predictions))
    assert result["uar"] == pytest.approx(
        recall_score(references, predictions, average="macro", zero_division=0)
    )
    assert result["war"] == pytest.approx(accuracy_score(references, predictions))
    assert result["war"] == pytest.approx(recall_score(references, predictions, average="weighted"))
    # Paper 000's tables: weighted precision / recall / F1 (its recall equals accuracy) and accuracy.
    assert result["accuracy"] == pytest.approx(accuracy_score(references, predictions))
    assert result["precision_weighted"] == pytest.approx(
        precision_score(references, predictions, average="weighted", zero_division=0)
    )
    assert result["recall_weighted"] == pytest.approx(
        recall_score(references, predictions, average="weighted")
    )
    assert result["f1_weighted"] == pytest.approx(
        f1_score(references, predictions, average="weighted", zero_division=0)
    )
    assert result["recall_weighted"] == pytest.approx(result["accuracy"])
    np.testing.assert_allclose(
        result["f1_per_class"], f1_score(references, predictions, average=None, zero_division=0)
    )
    assert result["labels"] == list(range(8))


def test_f1_with_fixed_classes_and_confusion_matrix(f1):
    rng = np.random.default_rng(5)
    references = rng.integers(0, 5, size=60)  # classes 5-7 never occur
    predictions = rng.integers(0, 6, size=60)
    labels = list(range(8))
    result = f1.compute(
        predictions=predictions, references=references, num_labels=8, return_confusion_matrix=True
    )
    assert result["f1_macro"] == pytest.approx(
        f1_score(references, predictions, labels=labels, average="macro", zero_division=0)
    )
    assert result["uar"] == pytest.approx(balanced_accuracy_score(references, predictions))
    np.testing.assert_array_equal(
        result["confusion_matrix"], confusion_matrix(references, predictions, labels=labels)
    )
    # A subset of classes, in a custom order: micro-F1 then differs from accuracy, as in scikit-learn.
    subset = [3, 0, 1]
    result = f1.compute(
        predictions=predictions, references=references, labels=subset, return_confusion_matrix=True
    )
    assert result["f1_micro"] == pytest.approx(
        f1_score(references, predictions, labels=subset, average="micro")
    )
    assert result["f1_macro"] == pytest.approx(
        f1_score(references, predictions, labels=subset, average="macro", zero_division=0)
    )
    np.testing.assert_array_equal(
        result["confusion_matrix"], confusion_matrix(references, predictions, labels=subset)
    )


def test_f1_perfect_and_bad_input(f1):
    assert f1.compute(predictions=[0, 1, 2], references=[0, 1, 2]) == {
        "f1_macro": 1.0,
        "f1_micro": 1.0,
        "uar": 1.0,
        "war": 1.0,
        "accuracy": 1.0,
        "precision_weighted": 1.0,
        "recall_weighted": 1.0,
        "f1_weighted": 1.0,
    }
    with pytest.raises(ValueError):
        f1.compute(predictions=[0, 1], references=[0, 1, 2])
    with pytest.raises(ValueError, match="either"):
        f1.compute(predictions=[0, 1], references=[0, 1], labels=[0, 1], num_labels=2)


def test_f1_incremental_batches_equal_one_shot(f1):
    rng = np.random.default_rng(3)
    references, predictions = rng.integers(0, 8, 90), rng.integers(0, 8, 90)
    for start in range(0, 90, 30):
        f1.add_batch(predictions=predictions[start : start + 30], references=references[start : start + 30])
    assert f1.compute() == f1.compute(predictions=predictions, references=references)


def _numpy_ccc(x: np.ndarray, y: np.ndarray) -> float:
    """Reference: rho * 2 sx sy / (sx^2 + sy^2 + (mx - my)^2) with population statistics (Lin 1989)."""
    rho = np.corrcoef(x, y)[0, 1]
    sx, sy = x.std(), y.std()
    return 2 * rho * sx * sy / (sx**2 + sy**2 + (x.mean() - y.mean()) ** 2)


def test_ccc_matches_numpy_reference_and_torch_loss(ccc):
    rng = np.random.default_rng(0)
    references = rng.uniform(1, 7, size=(50, 3))
    predictions = 0.6 * references + rng.normal(0, 0.7, size=(50, 3)) + 1.0
    result = ccc.compute(predictions=predictions, references=references)
    expected = [_numpy_ccc(predictions[:, i], references[:, i]) for i in range(3)]
    assert [result[f"ccc_{name}"] for name in ("arousal", "valence", "dominance")] == pytest.approx(expected)
    assert result["ccc_mean"] == pytest.approx(np.mean(expected))
    # The metric and the 1-CCC training loss measure the same thing.
    torch_ccc = concordance_correlation_coefficient(torch.tensor(predictions), torch.tensor(references))
    assert torch_ccc.double().numpy() == pytest.approx(expected, abs=1e-5)


def test_ccc_known_values(ccc):
    x = np.random.default_rng(1).normal(size=40)
    assert ccc.compute(predictions=x, references=x)["ccc"] == pytest.approx(1.0)
    centred = x - x.mean()
    assert ccc.compute(predictions=-centred, references=centred)["ccc"] == pytest.approx(-1.0)
    shifted = ccc.compute(predictions=x + 1.5, references=x)["ccc"]
    pearson = np.corrcoef(x + 1.5, x)[0, 1]
    assert pearson == pytest.approx(1.0)
    assert shifted < pearson - 0.1  # CCC penalises the bias that Pearson's r ignores
    assert shifted == pytest.approx(_numpy_ccc(x + 1.5, x))
    constant = np.full(5, 4.0)
    assert ccc.compute(predictions=constant, references=constant)["ccc"] == 1.0


def test_ccc_shapes_names_and_errors(ccc):
    rng = np.random.default_rng(2)
    two = rng.normal(size=(10, 2))
    result = ccc.compute(predictions=two, references=two + 0.1, attribute_names=["arousal", "valence"])
    assert set(result) == {"ccc_arousal", "ccc_valence", "ccc_mean"}
    with pytest.raises(ValueError, match="attribute_names"):
        ccc.compute(predictions=two, references=two)
    with pytest.raises(ValueError, match="NaN"):
        ccc.compute(predictions=[1.0, float("nan"), 2.0], references=[1.0, 2.0, 3.0])
    with pytest.raises(ValueError, match="at least 2"):
        ccc.compute(predictions=[1.0], references=[1.0])


def test_modules_load_by_path_offline_and_combine():
    f1 = evaluate.load(str(metric_path("f1")))
    ccc = evaluate.load(str(metric_path("ccc")))
    assert (f1.name, ccc.name) == ("f1", "ccc")
    combined = evaluate.combine([f1, ccc])
    result = combined.compute(predictions=[0, 1, 2, 2], references=[0, 1, 1, 2])
    assert result["f1_micro"] == pytest.approx(0.75)
    assert result["ccc"] == pytest.approx(_numpy_ccc(np.array([0, 1, 2, 2.0]), np.array([0, 1, 1, 2.0])))
    # Also by path strings, as evaluate.combine loads them itself.
    by_path = evaluate.combine([str(metric_path("f1")), str(metric_path("ccc"))])
    assert by_path.compute(predictions=[0, 1, 2, 2], references=[0, 1, 1, 2]) == result
