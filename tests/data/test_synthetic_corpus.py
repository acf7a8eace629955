"""The tiny MSP-Podcast-layout corpus generator: layout, label consistency, determinism, learnable cues."""

from __future__ import annotations

import csv
from collections import Counter

import numpy as np
import pytest
import soundfile as sf

from hf_ser.data import normalise_primary
from hf_ser.data.synthetic import CLASS_CODES, espeak_available, make_tiny_corpus

CONSENSUS_HEADER = ["FileName", "EmoClass", "EmoAct", "EmoVal", "EmoDom", "SpkrID", "Gender", "Split_Set"]
NAME_TO_CODE = dict(
    zip(
        ("Angry", "Sad", "Happy", "Surprise", "Fear", "Disgust", "Contempt", "Neutral"),
        CLASS_CODES,
        strict=True,
    )
)


def read_consensus(root):
    with open(root / "Labels" / "labels_consensus.csv", newline="") as handle:
        return list(csv.reader(handle))


def read_detailed(root):
    with open(root / "Labels" / "labels_detailed.csv", newline="") as handle:
        return list(csv.reader(handle))


@pytest.fixture(scope="module")
def corpus(tmp_path_factory):
    return make_tiny_corpus(
        tmp_path_factory.mktemp("tiny") / "MSP-PODCAST", n_speakers=5, clips_per_class=1, seed=3
    )


def test_layout_and_audio_format(corpus):
    rows = read_consensus(corpus)
    assert rows[0] == CONSENSUS_HEADER
    files = [row[0] for row in rows[1:]]
    assert sorted(files) == sorted(path.name for path in (corpus / "Audios").iterdir())
    # 5 speakers x 8 classes + 5 O/X + 4 unknown-speaker + 8 Test3 clips
    assert len(files) == 5 * 8 + 5 + 4 + 8
    for name in files[:: max(1, len(files) // 12)]:
        info = sf.info(corpus / "Audios" / name)
        assert (info.samplerate, info.channels) == (16000, 1)
        assert 0.5 <= info.duration <= 3.0
        audio, _ = sf.read(corpus / "Audios" / name)
        assert np.abs(audio).max() > 0.1  # real signal, not silence


def test_splits_speakers_and_test3(corpus):
    rows = [dict(zip(CONSENSUS_HEADER, row, strict=True)) for row in read_consensus(corpus)[1:]]
    assert {row["Split_Set"] for row in rows} == {"Train", "Development", "Test1", "Test2", "Test3"}
    speakers = {
        split: {r["SpkrID"] for r in rows if r["Split_Set"] == split and r["SpkrID"] != "Unknown"}
        for split in ("Train", "Development", "Test1", "Test2")
    }
    for split, ids in speakers.items():  # speaker-independent splits
        for other, other_ids in speakers.items():
            assert split == other or not ids & other_ids
    test3 = [r for r in rows if r["Split_Set"] == "Test3"]
    assert test3 and all("test3" in r["FileName"] for r in test3)
    assert all(r["EmoClass"] == r["EmoAct"] == "" for r in test3)
    assert not any((corpus / "Transcripts" / r["FileName"].replace(".wav", ".txt")).exists() for r in test3)
    assert any(r["SpkrID"] == "Unknown" and r["Split_Set"] == "Train" for r in rows)
    classes = Counter(r["EmoClass"] for r in rows)
    assert classes["O"] > 0 and classes["X"] > 0
    assert {r["Gender"] for r in rows} >= {"Male", "Female"}


def test_consensus_is_derived_from_detailed_votes(corpus):
    consensus = {row[0]: row for row in read_consensus(corpus)[1:] if row[7] != "Test3"}
    votes, ratings = {}, {}
    primaries = set()
    for file_name, annotation in read_detailed(corpus)[1:]:
        fields = [part.strip() for part in annotation.split(";")]
        assert fields[0].startswith("WORKER") and fields[3].startswith("A:") and fields[5].startswith("D:")
        primaries.add(fields[1])
        label = normalise_primary(fields[1])
        votes.setdefault(file_name, []).append(NAME_TO_CODE.get(label, "O"))
        ratings.setdefault(file_name, []).append([float(fields[i][2:]) for i in (3, 4, 5)])
    assert set(votes) == set(consensus)
    assert any(p.startswith("Other-") for p in primaries) and "Dissapointed" in primaries
    for file_name, row in consensus.items():
        counts = Counter(votes[file_name]).most_common()
        tie = len(counts) > 1 and counts[0][1] == counts[1][1]
        assert row[1] == ("X" if tie else counts[0][0]), file_name
        np.testing.assert_allclose(
            [float(v) for v in row[2:5]], np.mean(ratings[file_name], axis=0), atol=1e-5
        )


def test_transcripts_some_prefixed_some_missing(corpus):
    texts = [path.read_text() for path in (corpus / "Transcripts").iterdir()]
    assert any(text.startswith("[") and "]:" in text for text in texts)
    assert any(not text.startswith("[") for text in texts)
    labelled = [row[0] for row in read_consensus(corpus)[1:] if row[7] != "Test3"]
    missing = [
        name for name in labelled if not (corpus / "Transcripts" / name.replace(".wav", ".txt")).exists()
    ]
    assert 0 < len(missing) < len(labelled) // 4


def test_deterministic_and_tone_fallback(tmp_path):
    first = make_tiny_corpus(tmp_path / "a", n_speakers=2, clips_per_class=1, n_test3=2, backend="tones")
    second = make_tiny_corpus(tmp_path / "b", n_speakers=2, clips_per_class=1, n_test3=2, backend="tones")
    assert read_consensus(first) == read_consensus(second)
    assert read_detailed(first) == read_detailed(second)
    name = read_consensus(first)[1][0]
    np.testing.assert_array_equal(sf.read(first / "Audios" / name)[0], sf.read(second / "Audios" / name)[0])
    other_seed = make_tiny_corpus(
        tmp_path / "c", n_speakers=2, clips_per_class=1, n_test3=2, seed=1, backend="tones"
    )
    assert read_detailed(other_seed) != read_detailed(first)


def test_bad_arguments(tmp_path):
    with pytest.raises(ValueError, match="n_speakers"):
        make_tiny_corpus(tmp_path / "x", n_speakers=0)
    with pytest.raises(ValueError, match="backend"):
        make_tiny_corpus(tmp_path / "x", backend="festival")
    (tmp_path / "full").mkdir()
    (tmp_path / "full" / "keep.txt").write_text("x")
    with pytest.raises(ValueError, match="not empty"):
        make_tiny_corpus(tmp_path / "full")


def _features(audio: np.ndarray) -> np.ndarray:
    """Band log-energies (mean, std over loud frames) and duration: a deliberately simple front end."""
    frames = np.lib.stride_tricks.sliding_window_view(audio - audio.mean(), 400)[::160] * np.hanning(400)
    bands = np.log(
        (np.abs(np.fft.rfft(frames, 512)) ** 2)[:, :256].reshape(len(frames), 32, 8).sum(-1) + 1e-8
    )
    loud = bands.max(1) > bands.max() - 6
    return np.concatenate([bands[loud].mean(0), bands[loud].std(0), [loud.mean(), audio.size / 16000]])


@pytest.mark.slow
@pytest.mark.skipif(not espeak_available(), reason="espeak-ng is not installed")
def test_emotion_cues_generalise_to_held_out_voices(tmp_path):
    """A linear classifier on simple spectral features, trained on the Train voices, recognises new voices."""
    from sklearn.linear_model import LogisticRegression
    from sklearn.metrics import f1_score
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    root = make_tiny_corpus(
        tmp_path / "c", n_speakers=8, clips_per_class=2, n_other=0, n_unknown_speaker=0, n_test3=0
    )
    rows = [row for row in read_consensus(root)[1:] if row[1] in CLASS_CODES]
    features = np.stack([_features(sf.read(root / "Audios" / row[0])[0]) for row in rows])
    labels = np.array([CLASS_CODES.index(row[1]) for row in rows])
    train = np.array([row[7] == "Train" for row in rows])
    classifier = make_pipeline(StandardScaler(), LogisticRegression(max_iter=3000)).fit(
        features[train], labels[train]
    )
    macro_f1 = f1_score(labels[~train], classifier.predict(features[~train]), average="macro")
    assert macro_f1 > 0.5, macro_f1  # chance is 0.125
