"""Leave-one-session-out cross-validation (paper 004's protocol) with UAR and WAR."""

from __future__ import annotations

import numpy as np
import pytest
from datasets import Dataset

from hf_ser.data.crossval import (
    CrossValidationError,
    iemocap_session,
    leave_one_session_out,
    recall_scores,
    session_splits,
)


def test_iemocap_session_names():
    assert iemocap_session("Ses01F_impro01_F000") == "Ses01"
    assert iemocap_session("/data/IEMOCAP/Session3/wav/Ses03M_script01_2_F012.wav") == "Ses03"
    with pytest.raises(CrossValidationError, match="not an IEMOCAP"):
        iemocap_session("MSP-PODCAST_0001_0001.wav")


def test_recall_scores_by_hand():
    references = [0, 0, 0, 0, 1, 1, 2, 2]
    predictions = [0, 0, 0, 1, 1, 0, 2, 2]
    scores = recall_scores(references, predictions)
    assert scores["recall_per_class"] == {0: 0.75, 1: 0.5, 2: 1.0}
    assert scores["uar"] == pytest.approx(100 * (0.75 + 0.5 + 1.0) / 3)
    assert scores["war"] == pytest.approx(100 * 6 / 8)


def corpus(rng) -> Dataset:
    names, labels, features = [], [], []
    for session in range(1, 4):
        for i in range(12):
            label = i % 3
            names.append(f"Ses0{session}F_impro01_F{i:03d}")
            labels.append(label)
            features.append(float(label + rng.normal(scale=0.45)))
    data = Dataset.from_dict({"file": names, "label": labels, "feature": features})
    return data.map(lambda row: {"session": iemocap_session(row["file"])})


def test_folds_hold_out_each_session_and_scores_add_up(rng):
    data = corpus(rng)
    seen_test_sessions = []

    def fit_predict(train, test):
        held_out = set(test["session"])
        assert len(held_out) == 1 and held_out.isdisjoint(
            train["session"]
        )  # never trains on the test session
        seen_test_sessions.append(held_out.pop())
        # Nearest class centroid of the 1-D feature, fitted on the training sessions only.
        train_x, train_y = np.array(train["feature"]), np.array(train["label"])
        centroids = np.array([train_x[train_y == c].mean() for c in range(3)])
        return np.abs(np.array(test["feature"])[:, None] - centroids[None]).argmin(1)

    result = leave_one_session_out(data, fit_predict, num_classes=3)
    assert seen_test_sessions == ["Ses01", "Ses02", "Ses03"]
    assert [fold["n"] for fold in result.folds] == [12, 12, 12]
    assert result.uar == pytest.approx(np.mean([f["uar"] for f in result.folds]))
    assert result.war == pytest.approx(np.mean([f["war"] for f in result.folds]))
    pooled_predictions = np.concatenate([result.predictions[s] for s in ("Ses01", "Ses02", "Ses03")])
    pooled_references = np.concatenate(
        [np.array(data["label"])[np.array(data["session"]) == s] for s in ("Ses01", "Ses02", "Ses03")]
    )
    assert result.pooled_war == pytest.approx(100 * np.mean(pooled_predictions == pooled_references))
    assert result.uar > 60  # the feature is informative; chance is 33 %


def test_bad_layouts_are_explained(rng):
    data = corpus(rng)
    with pytest.raises(CrossValidationError, match="no 'speaker' column"):
        next(session_splits(data, "speaker"))
    with pytest.raises(CrossValidationError, match="at least 2 sessions"):
        next(session_splits(data.filter(lambda r: r["session"] == "Ses01")))
    with pytest.raises(CrossValidationError, match="returned 1 predictions"):
        leave_one_session_out(data, lambda train, test: [0])


def test_msp_improv_session_names():
    from hf_ser.data.crossval import corpus_session, msp_improv_session

    assert msp_improv_session("MSP-IMPROV-S01A-F01-P-FM01.wav") == "Session1"
    assert msp_improv_session("/data/improv/session3/S05H/P/MSP-IMPROV-S05H-M03-P-MF14.wav") == "Session3"
    assert msp_improv_session("Audio/session6/x.wav") == "Session6"
    assert corpus_session("MSP-IMPROV-S12S-F05-S-FM02.wav") == "Session5"
    assert corpus_session("Ses02F_script01_1_M010.wav") == "Ses02"
    with pytest.raises(CrossValidationError, match="neither"):
        corpus_session("MSP-PODCAST_0001_0001.wav")
