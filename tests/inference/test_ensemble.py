"""Ensembles: the arithmetic (mean of attributes, mean of probabilities, plurality vote), members of tiny random
models, saving and loading as one folder, and the CLI hook."""

from __future__ import annotations

import argparse
import json

import numpy as np
import pytest
import soundfile as sf
import torch
from transformers import AutoFeatureExtractor, pipeline

from hf_ser import WavLMForMASPClassification, predict_logits
from hf_ser.cli.ensemble import add_parser as add_ensemble_parser
from hf_ser.cli.ensemble import run as run_ensemble_command
from hf_ser.inference.ensemble import SEREnsemble, average_predictions, average_probabilities, plurality_vote
from tests.tiny import save_tiny_model, save_tiny_multimodal, tone


def test_average_predictions_is_the_weighted_mean():
    a = np.array([[1.0, 2.0, 3.0], [4.0, 5.0, 6.0]])
    b = np.array([[3.0, 2.0, 1.0], [6.0, 5.0, 4.0]])
    np.testing.assert_allclose(average_predictions([a, b]), [[2.0, 2.0, 2.0], [5.0, 5.0, 5.0]])
    np.testing.assert_allclose(average_predictions([a, b], weights=[3, 1]), 0.75 * a + 0.25 * b)
    with pytest.raises(ValueError, match="differ in shape"):
        average_predictions([a, b[:1]])
    with pytest.raises(ValueError, match="weights"):
        average_predictions([a, b], weights=[1, -1])
    with pytest.raises(ValueError, match="No predictions"):
        average_predictions([])


def test_probability_averaging_and_plurality_voting():
    p1 = np.array([[0.6, 0.3, 0.1], [0.2, 0.5, 0.3], [0.4, 0.35, 0.25]])
    p2 = np.array([[0.5, 0.4, 0.1], [0.1, 0.2, 0.7], [0.1, 0.6, 0.3]])
    p3 = np.array([[0.1, 0.8, 0.1], [0.3, 0.3, 0.4], [0.2, 0.15, 0.65]])
    mean = average_probabilities([p1, p2, p3])
    np.testing.assert_allclose(mean, (p1 + p2 + p3) / 3)
    np.testing.assert_allclose(mean.sum(-1), 1.0)
    # Clip 0: votes 0, 0, 1 -> 0 (although class 1 has the higher mean probability, 0.5 vs 0.4).
    # Clip 1: votes 1, 2, 2 -> 2. Clip 2: votes 0, 1, 2 -> a three-way tie, broken by the mean probability (class 2).
    np.testing.assert_array_equal(plurality_vote([p1, p2, p3]), [0, 2, 2])
    assert mean[0].argmax() == 1  # voting and averaging really differ here
    # Weights count as votes: member 3 alone outweighs the other two.
    np.testing.assert_array_equal(plurality_vote([p1, p2, p3], weights=[1, 1, 3]), [1, 2, 2])
    with pytest.raises(ValueError, match="sum to 1"):
        average_probabilities([np.array([[2.0, -1.0]])])


@pytest.fixture(scope="module")
def classifiers(tmp_path_factory):
    root = tmp_path_factory.mktemp("members")
    for seed in (0, 1, 2):
        save_tiny_model(root / f"clf{seed}", seed=seed)
    return root


def member_probabilities(folder, waves):
    model = WavLMForMASPClassification.from_pretrained(folder).eval()
    logits = predict_logits(model, AutoFeatureExtractor.from_pretrained(folder), waves)
    return torch.softmax(torch.from_numpy(logits), -1).numpy()


@pytest.mark.slow  # three members, four passes
def test_classification_ensemble_combines_members_and_round_trips(classifiers, tmp_path):
    folders = [classifiers / f"clf{seed}" for seed in (0, 1, 2)]
    waves = [tone(0.3 + 0.1 * i, freq=120 + 60 * i, seed=i) for i in range(3)]
    probs = [member_probabilities(folder, waves) for folder in folders]

    ensemble = SEREnsemble(folders)
    assert ensemble.task == "classification" and ensemble.method == "probability"
    np.testing.assert_allclose(ensemble.predict(waves), np.mean(probs, axis=0), atol=1e-6)

    voting = SEREnsemble(folders, method="vote")
    np.testing.assert_array_equal(voting.predict(waves), plurality_vote(probs))
    assert voting(waves)[0]["label"] in ensemble.labels

    saved = voting.save_pretrained(tmp_path / "ens")
    manifest = json.loads((saved / "ensemble.json").read_text())
    assert manifest["method"] == "vote" and manifest["task"] == "classification"
    assert len(manifest["members"]) == 3 and all(not m.startswith("/") for m in manifest["members"])
    reloaded = SEREnsemble.from_pretrained(saved)
    assert [m.parent for m in reloaded.members] == [saved / "members"] * 3
    np.testing.assert_array_equal(reloaded.predict(waves), voting.predict(waves))


def test_regression_ensemble_averages_the_members_pipelines(tmp_path):
    folders = []
    for seed in (0, 1):
        save_tiny_multimodal(tmp_path / f"mm{seed}", seed=seed)
        folders.append(tmp_path / f"mm{seed}")
    waves = [tone(0.4, seed=5), tone(0.6, freq=260, seed=6)]
    texts = ["i am so happy", "this is not good"]
    ensemble = SEREnsemble(folders, weights=[1, 1])
    assert ensemble.method == "mean" and ensemble.labels == ["arousal", "valence", "dominance"]
    singles = []
    for folder in folders:
        regressor = pipeline("speech-emotion-regression", model=str(folder))
        singles.append(
            [
                [regressor(w, transcript=t)[k] for k in ensemble.labels]
                for w, t in zip(waves, texts, strict=True)
            ]
        )
    np.testing.assert_allclose(ensemble.predict(waves, texts), np.mean(singles, axis=0), atol=1e-6)
    linked = SEREnsemble.from_pretrained(ensemble.save_pretrained(tmp_path / "ens", copy_members=False))
    assert linked.members == [folder.resolve() for folder in folders]
    result = linked(waves, texts)
    assert set(result[0]) == {"arousal", "valence", "dominance"}


def test_invalid_ensembles_are_rejected(classifiers, tmp_path):
    save_tiny_model(tmp_path / "reg", problem_type="regression")
    with pytest.raises(ValueError, match="mix attribute regression and classification"):
        SEREnsemble([classifiers / "clf0", tmp_path / "reg"])
    with pytest.raises(ValueError, match="does not fit classification"):
        SEREnsemble([classifiers / "clf0"], method="mean")
    with pytest.raises(ValueError, match="not a saved model folder"):
        SEREnsemble([tmp_path / "missing"])
    with pytest.raises(ValueError, match="not an hf_ser ensemble"):
        SEREnsemble.from_pretrained(tmp_path)
    with pytest.raises(ValueError, match="weights"):
        SEREnsemble([classifiers / "clf0", classifiers / "clf1"], weights=[1.0])


def test_cli_hook_creates_and_predicts(classifiers, tmp_path, capsys):
    parser = argparse.ArgumentParser(prog="hf-ser")
    add_ensemble_parser(parser.add_subparsers(dest="command"))
    members = [str(classifiers / "clf0"), str(classifiers / "clf1")]
    args = parser.parse_args(["ensemble", "create", str(tmp_path / "ens"), "--members", *members])
    assert run_ensemble_command(args) == 0
    sf.write(tmp_path / "a.wav", tone(0.7, sr=22050), 22050)
    args = parser.parse_args(["ensemble", "predict", str(tmp_path / "ens"), str(tmp_path / "a.wav")])
    capsys.readouterr()
    assert run_ensemble_command(args) == 0
    line = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert line["file"].endswith("a.wav")
    assert abs(sum(v for k, v in line.items() if k != "file") - 1.0) < 1e-5
