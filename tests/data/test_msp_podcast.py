"""The MSP-Podcast builder on generated corpora: splits, labels, O/X, soft labels, transcripts, bad rows."""

from __future__ import annotations

import csv
import logging
import shutil

import numpy as np
import pytest
import soundfile as sf

from hf_ser import EMOTION_LABELS, MSPPodcast, load_msp_podcast
from hf_ser.data import MSPPodcastError, normalise_primary, strip_transcript_prefix
from hf_ser.data.synthetic import make_tiny_corpus

CODES = "ASHUFDCN"
SPLIT_NAMES = {
    "Train": "train",
    "Development": "validation",
    "Test1": "test1",
    "Test2": "test2",
    "Test3": "test3",
}


@pytest.fixture(scope="module")
def base_corpus(tmp_path_factory):
    return make_tiny_corpus(
        tmp_path_factory.mktemp("msp") / "MSP-PODCAST", n_speakers=4, clips_per_class=1, seed=0
    )


@pytest.fixture
def corpus(base_corpus, tmp_path):
    """A private copy that a test may damage."""
    return shutil.copytree(base_corpus, tmp_path / "MSP-PODCAST")


def consensus_rows(root):
    with open(root / "Labels" / "labels_consensus.csv", newline="") as handle:
        return list(csv.DictReader(handle))


def write_consensus(root, rows):
    with open(root / "Labels" / "labels_consensus.csv", "w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)


def expected_sizes(rows, keep):
    sizes = {}
    for row in rows:
        if keep(row):
            split = SPLIT_NAMES[row["Split_Set"]]
            sizes[split] = sizes.get(split, 0) + 1
    return sizes


def test_categorical_splits_labels_and_audio(base_corpus, tmp_path):
    dataset = load_msp_podcast(base_corpus, cache_dir=tmp_path / "cache")
    rows = consensus_rows(base_corpus)
    assert {split: len(ds) for split, ds in dataset.items()} == expected_sizes(
        rows, lambda r: r["EmoClass"] not in "OX" or r["Split_Set"] == "Test3"
    )
    assert dataset["train"].features["label"].names == list(EMOTION_LABELS)
    by_file = {row["FileName"]: row for row in rows}
    for split in ("train", "validation", "test1", "test2"):
        for example in dataset[split].select_columns(["file", "label", "speaker_id", "gender"]):
            row = by_file[example["file"]]
            assert CODES[example["label"]] == row["EmoClass"]
            assert example["speaker_id"] == (None if row["SpkrID"] == "Unknown" else row["SpkrID"])
            assert example["gender"] == (None if row["Gender"] == "Unknown" else row["Gender"])
    assert all(label is None for label in dataset["test3"]["label"])
    # Audio is decoded lazily from the corpus files, at 16 kHz.
    example = dataset["validation"][0]
    samples = example["audio"].get_all_samples()
    expected, rate = sf.read(base_corpus / "Audios" / example["file"], dtype="float32")
    assert samples.sample_rate == rate == 16000
    np.testing.assert_allclose(samples.data.numpy().reshape(-1), expected, atol=1e-4)


def test_other_and_no_agreement_rows(base_corpus, tmp_path):
    rows = consensus_rows(base_corpus)
    with_other = load_msp_podcast(base_corpus, include_other=True, cache_dir=tmp_path / "cache")
    assert with_other["train"].features["label"].names == [*EMOTION_LABELS, "Other", "No agreement"]
    assert {split: len(ds) for split, ds in with_other.items()} == expected_sizes(rows, lambda r: True)
    labels = [
        label for split in ("train", "validation", "test1", "test2") for label in with_other[split]["label"]
    ]
    assert labels.count(8) == sum(r["EmoClass"] == "O" for r in rows) > 0
    assert labels.count(9) == sum(r["EmoClass"] == "X" for r in rows) > 0
    # The attribute configuration keeps O/X rows by default (paper 001) ...
    attributes = load_msp_podcast(base_corpus, "attributes", cache_dir=tmp_path / "cache")
    assert {split: len(ds) for split, ds in attributes.items()} == expected_sizes(rows, lambda r: True)
    assert "label" not in attributes["train"].column_names
    by_file = {row["FileName"]: row for row in rows}
    for example in attributes["train"].select_columns(["file", "arousal", "valence", "dominance"]):
        row = by_file[example["file"]]
        assert [example["arousal"], example["valence"], example["dominance"]] == pytest.approx(
            [float(row["EmoAct"]), float(row["EmoVal"]), float(row["EmoDom"])], abs=1e-5
        )
    assert attributes["test3"]["arousal"] == [None] * len(attributes["test3"])
    # ... and drops them on request.
    no_other = load_msp_podcast(base_corpus, "attributes", include_other=False, cache_dir=tmp_path / "cache")
    assert len(no_other["train"]) == len(attributes["train"]) - sum(
        r["EmoClass"] in ("O", "X") and r["Split_Set"] == "Train" for r in rows
    )


def test_soft_labels_from_detailed_votes(base_corpus, tmp_path):
    dataset = load_msp_podcast(base_corpus, "all", soft_labels=True, cache_dir=tmp_path / "cache")
    votes = {}
    with open(base_corpus / "Labels" / "labels_detailed.csv", newline="") as handle:
        for file_name, annotation in list(csv.reader(handle))[1:]:
            votes.setdefault(file_name, []).append(normalise_primary(annotation.split(";")[1]))
    for split in ("train", "validation"):
        for example in dataset[split].select_columns(["file", "label", "soft_label"]):
            soft = np.array(example["soft_label"])
            assert soft.shape == (8,) and soft.sum() == pytest.approx(1.0)
            assert soft.argmax() == example["label"]  # the consensus is the plurality vote
            named = [
                v for v in votes[example["file"]] if v != "Other"
            ]  # Other votes are not among the 8 classes
            expected = np.array([named.count(name) for name in EMOTION_LABELS]) / len(named)
            np.testing.assert_allclose(soft, expected, atol=1e-6)
    assert dataset["test3"]["soft_label"] == [None] * len(dataset["test3"])
    with_other = load_msp_podcast(
        base_corpus, "categorical", include_other=True, soft_labels=True, cache_dir=tmp_path / "cache"
    )
    soft = np.array([s for s in with_other["train"]["soft_label"]])
    assert soft.shape[1] == 10 and np.allclose(soft.sum(1), 1.0)
    assert soft[:, 8].sum() > 0 and soft[:, 9].sum() == 0  # Other votes count; "No agreement" is never a vote


def test_transcripts(base_corpus, tmp_path):
    dataset = load_msp_podcast(base_corpus, cache_dir=tmp_path / "cache")
    transcripts = dict(zip(dataset["train"]["file"], dataset["train"]["transcript"], strict=True))
    for file_name, transcript in transcripts.items():
        path = base_corpus / "Transcripts" / file_name.replace(".wav", ".txt")
        if path.exists():
            raw = path.read_text().strip()
            assert transcript == raw.split("]: ", 1)[-1] and "]:" not in transcript
        else:
            assert transcript is None
    assert None in transcripts.values()
    assert all(t is None for t in dataset["test3"]["transcript"])
    assert strip_transcript_prefix("[0001_0005]: hello there") == "hello there"
    assert strip_transcript_prefix("no prefix: here") == "no prefix: here"


def test_missing_audio_file_raise_or_skip(corpus, tmp_path, caplog):
    missing = consensus_rows(corpus)[2]["FileName"]
    (corpus / "Audios" / missing).unlink()
    with pytest.raises(
        MSPPodcastError, match=r"missing audio file in Audios/: 1 \(first: " + missing.replace(".", r"\.")
    ):
        load_msp_podcast(corpus, cache_dir=tmp_path / "cache")
    full = load_msp_podcast(corpus, include_other=True, on_error="skip", cache_dir=tmp_path / "cache")
    with caplog.at_level(logging.WARNING, logger="hf_ser.data.msp_podcast"):
        skipped = load_msp_podcast(corpus, on_error="skip", cache_dir=tmp_path / "cache2")
    assert missing not in skipped["train"]["file"] and missing not in full["train"]["file"]
    assert "missing audio file" in caplog.text and missing in caplog.text
    rows = consensus_rows(corpus)
    assert (
        sum(len(ds) for ds in skipped.values())
        == sum(r["EmoClass"] not in "OX" or r["Split_Set"] == "Test3" for r in rows) - 1
    )


def test_bad_rows_are_counted_and_reported(corpus, tmp_path):
    rows = consensus_rows(corpus)
    rows[0]["EmoClass"] = "Z"
    rows[1]["EmoAct"] = "nan"
    rows[3]["EmoDom"] = "9.5"
    rows[4]["Split_Set"] = "Holdout"
    rows.append(dict(rows[5]))  # duplicate file name
    write_consensus(corpus, rows)
    with pytest.raises(MSPPodcastError) as error:
        load_msp_podcast(corpus, "all", cache_dir=tmp_path / "cache")
    message = str(error.value)
    assert "unknown EmoClass" in message and rows[0]["FileName"] in message
    assert "EmoAct: 1 " in message and "EmoDom: 1 " in message
    assert "unknown Split_Set" in message and "'Holdout'" in message
    assert "duplicate FileName" in message
    assert message.startswith(f"5 of the {len(rows)} rows")
    builder = MSPPodcast(
        config_name="all", data_dir=str(corpus), cache_dir=str(tmp_path / "cache"), on_error="skip"
    )
    builder.download_and_prepare()
    dataset = builder.as_dataset()
    dropped = {rows[i]["FileName"] for i in (0, 1, 3, 4)}
    kept = {f for ds in dataset.values() for f in ds["file"]}
    assert not dropped & kept and rows[5]["FileName"] in kept
    assert builder.report.num_dropped == 5
    assert sum(len(ds) for ds in dataset.values()) == len(rows) - 5 - builder.report.excluded_other
    # The categorical configuration does not read attributes, so their damage does not concern it.
    categorical = MSPPodcast(
        config_name="categorical", data_dir=str(corpus), cache_dir=str(tmp_path / "cache"), on_error="skip"
    )
    categorical.download_and_prepare()
    assert categorical.report.num_dropped == 3


def test_missing_columns_and_bad_arguments(corpus, tmp_path):
    rows = [{k: v for k, v in row.items() if k != "EmoVal"} for row in consensus_rows(corpus)]
    write_consensus(corpus, rows)
    assert (
        len(load_msp_podcast(corpus, cache_dir=tmp_path / "cache")["train"]) > 0
    )  # categorical does not need it
    with pytest.raises(MSPPodcastError, match=r"lacks the column\(s\) \['EmoVal'\]"):
        load_msp_podcast(corpus, "attributes", cache_dir=tmp_path / "cache")
    with pytest.raises(MSPPodcastError, match="on_error"):
        load_msp_podcast(corpus, on_error="ignore", cache_dir=tmp_path / "cache")
    with pytest.raises(MSPPodcastError, match="configuration"):
        load_msp_podcast(corpus, "dimensional", cache_dir=tmp_path / "cache")
    with pytest.raises(MSPPodcastError, match="not a directory"):
        load_msp_podcast(tmp_path / "nowhere")
    (corpus / "Labels" / "labels_detailed.csv").unlink()
    with pytest.raises(MSPPodcastError, match="labels_detailed.csv"):
        load_msp_podcast(corpus, soft_labels=True, cache_dir=tmp_path / "cache")


def test_unlisted_test3_audio_and_cache_refresh(corpus, tmp_path):
    first = load_msp_podcast(corpus, cache_dir=tmp_path / "cache")
    # The challenge shipped Test3 audio without labels: files named test3 but absent from the CSV are found.
    audio, rate = sf.read(corpus / "Audios" / first["test3"][0]["file"])
    sf.write(corpus / "Audios" / "MSP-PODCAST_test3_9999.wav", audio, rate)
    rows = consensus_rows(corpus)
    write_consensus(corpus, [row for row in rows if row["Split_Set"] != "Train" or row["EmoClass"] != "A"])
    second = load_msp_podcast(corpus, cache_dir=tmp_path / "cache")  # the corpus changed: prepared again
    assert "MSP-PODCAST_test3_9999.wav" in second["test3"]["file"]
    assert len(second["test3"]) == len(first["test3"]) + 1
    assert 0 not in second["train"]["label"] and 0 in first["train"]["label"]


def test_preparation_never_decodes_audio(corpus, tmp_path):
    """Examples carry paths decoded on access: preparing reads no samples, big corpora stay out of memory."""
    victim = consensus_rows(corpus)[0]["FileName"]
    (corpus / "Audios" / victim).write_bytes(b"not a wav file at all")
    dataset = load_msp_podcast(corpus, cache_dir=tmp_path / "cache")
    index = dataset["train"]["file"].index(victim)
    assert dataset["train"].data.column("audio")[index]["bytes"].as_py() is None  # stored as a path only
    assert dataset["train"].data.column("audio")[index]["path"].as_py().endswith(victim)
    # The decoder raises its own error type; what matters is that it only happens on access.
    with pytest.raises(Exception):  # noqa: B017
        dataset["train"][index]["audio"].get_all_samples()


def test_primary_label_normalisation():
    assert normalise_primary(" happy ") == "Happy"
    assert normalise_primary("Anger") == "Angry"
    assert normalise_primary("Other-Dissapointed") == "Other"
    assert normalise_primary("Dissapointed") == "Other"  # names no class: an Other vote
    assert normalise_primary("  ") is None


def test_soft_labels_from_columnar_detailed_file(corpus, tmp_path):
    """Some releases spell annotations out in columns (EmoClass_Major, ...): both layouts give equal votes."""
    quoted = load_msp_podcast(corpus, soft_labels=True, cache_dir=tmp_path / "cache")
    with open(corpus / "Labels" / "labels_detailed.csv", newline="") as handle:
        rows = list(csv.reader(handle))[1:]
    with open(corpus / "Labels" / "labels_detailed.csv", "w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(
            ["FileName", "Worker", "EmoClass_Major", "EmoClass_Second", "EmoAct", "EmoVal", "EmoDom"]
        )
        for file_name, annotation in rows:
            worker, primary, secondary, arousal, valence, dominance = [
                p.strip() for p in annotation.split(";")
            ][:6]
            writer.writerow([file_name, worker, primary, secondary, arousal[2:], valence[2:], dominance[2:]])
    columnar = load_msp_podcast(corpus, soft_labels=True, cache_dir=tmp_path / "fresh-cache")
    assert columnar["train"]["soft_label"] == quoted["train"]["soft_label"]
    assert quoted["train"]["soft_label"][0] is not None


def test_unreadable_vote_rows(corpus, tmp_path):
    target = consensus_rows(corpus)[0]["FileName"]
    clean = load_msp_podcast(corpus, soft_labels=True, cache_dir=tmp_path / "clean")
    with open(corpus / "Labels" / "labels_detailed.csv", "a", newline="") as handle:
        csv.writer(handle, quoting=csv.QUOTE_ALL).writerow(
            [target, "WORKER99999999; ; Tired; A:4.0; V:4.0; D:4.0;"]
        )
    with pytest.raises(
        MSPPodcastError, match=r"labels_detailed\.csv has rows.*\n  - row without a primary emotion: 1"
    ):
        load_msp_podcast(corpus, soft_labels=True, cache_dir=tmp_path / "cache")
    skipped = load_msp_podcast(corpus, soft_labels=True, on_error="skip", cache_dir=tmp_path / "cache")
    assert skipped["train"]["soft_label"] == clean["train"]["soft_label"]  # the empty vote is left out
