"""Paper 004's Table I protocol: a linear SVM, C chosen inside each training fold, leave-one-session-out."""

from __future__ import annotations

import numpy as np
import pytest

from hf_ser.data.crossval import recall_scores
from hf_ser.evaluation.probing import fit_linear_svm, svm_probe


def corpus(informative: bool, seed: int = 0, sessions: int = 3, per_class: int = 10):
    rng = np.random.default_rng(seed)
    labels = np.tile(np.repeat(np.arange(4), per_class), sessions)
    session = np.repeat([f"Ses0{i + 1}" for i in range(sessions)], 4 * per_class)
    x = rng.standard_normal((labels.size, 6))
    if informative:
        x[np.arange(labels.size), labels] += 3.0  # class c lifts dimension c
    return x, labels, session


def test_probe_equals_a_hand_run_of_the_protocol():
    x, y, s = corpus(informative=True)
    result = svm_probe(x, y, s, system="toy", layer=12, num_classes=4)
    for fold in result.folds:
        test = s == fold["session"]
        search = fit_linear_svm(x[~test], y[~test])  # C chosen on the training sessions only
        assert fold["C"] == search.best_params_["svc__C"]
        assert fold["uar"] == pytest.approx(recall_scores(y[test], search.predict(x[test]), 4)["uar"])
    assert result.uar == pytest.approx(np.mean([f["uar"] for f in result.folds]))
    assert result.uar > 80 and result.war > 80
    chance = svm_probe(*corpus(informative=False), num_classes=4)
    assert chance.uar < 50


def test_per_fold_embeddings_use_each_folds_model():
    """A system fine-tuned per fold: fold k reads the embeddings of the model trained without session k."""
    x, y, s = corpus(informative=True)
    noise, _, _ = corpus(informative=False)
    # Only Ses02's model gives informative embeddings: only that fold can score well.
    per_fold = {"Ses01": noise, "Ses02": x, "Ses03": noise}
    result = svm_probe(per_fold, y, s, num_classes=4)
    uar = {f["session"]: f["uar"] for f in result.folds}
    assert uar["Ses02"] > 80 and uar["Ses01"] < 50 and uar["Ses03"] < 50
