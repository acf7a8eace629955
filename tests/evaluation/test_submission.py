"""Challenge submission writers: Task 1 `Filename,Prediction`, Task 2 `FileName,EmoAct,EmoVal,EmoDom`."""

from __future__ import annotations

import csv

import numpy as np
import pytest

from hf_ser import EMOTION_LABELS
from hf_ser.evaluation.submission import (
    SubmissionError,
    write_attribute_submission,
    write_categorical_submission,
)

FILES = [f"MSP-PODCAST_test3_{i:04d}.wav" for i in range(1, 9)]


def read(path):
    with open(path, newline="") as handle:
        return list(csv.reader(handle))


def test_categorical_codes_names_and_scores(tmp_path):
    path = write_categorical_submission(tmp_path / "out" / "task1.csv", FILES, list(range(8)))
    rows = read(path)
    assert rows[0] == ["Filename", "Prediction"]
    assert rows[1:] == [[f, c] for f, c in zip(FILES, "ASHUFDCN", strict=True)]
    by_name = read(
        write_categorical_submission(tmp_path / "names.csv", FILES, list(range(8)), label_format="name")
    )
    assert [row[1] for row in by_name[1:]] == list(EMOTION_LABELS)
    # Logits: the argmax is written; a model's own class order is honoured through label_names.
    logits = np.eye(8)[[7, 0, 1, 2, 3, 4, 5, 6]]
    from_scores = read(write_categorical_submission(tmp_path / "scores.csv", FILES, logits))
    assert [row[1] for row in from_scores[1:]] == list("NASHUFDC")
    reordered = list(reversed(EMOTION_LABELS))
    custom = read(
        write_categorical_submission(tmp_path / "custom.csv", FILES[:2], [0, 1], label_names=reordered)
    )
    assert [row[1] for row in custom[1:]] == ["N", "C"]
    as_text = read(write_categorical_submission(tmp_path / "text.csv", FILES[:3], ["happy", "Sad", "U"]))
    assert [row[1] for row in as_text[1:]] == ["H", "S", "U"]


def test_categorical_errors(tmp_path):
    with pytest.raises(SubmissionError, match="2 file names but 3 predictions"):
        write_categorical_submission(tmp_path / "x.csv", FILES[:2], [0, 1, 2])
    with pytest.raises(SubmissionError, match="more than once"):
        write_categorical_submission(tmp_path / "x.csv", [FILES[0], FILES[0]], [0, 1])
    with pytest.raises(SubmissionError, match=r"outside \[0, 8\)"):
        write_categorical_submission(tmp_path / "x.csv", FILES[:2], [0, 8])
    with pytest.raises(SubmissionError, match="Unknown class names"):
        write_categorical_submission(tmp_path / "x.csv", FILES[:1], ["Bored"])
    with pytest.raises(SubmissionError, match="columns"):
        write_categorical_submission(tmp_path / "x.csv", FILES[:2], np.zeros((2, 10)))
    with pytest.raises(SubmissionError, match="not among"):
        write_categorical_submission(
            tmp_path / "x.csv", FILES[:1], [8], label_names=[*EMOTION_LABELS, "Other"]
        )
    with pytest.raises(SubmissionError, match="commas"):
        write_categorical_submission(tmp_path / "x.csv", ["a,b.wav"], [0])
    assert not (tmp_path / "x.csv").exists()  # nothing half-written


def test_attribute_submission(tmp_path):
    predictions = np.array([[4.25, 3.5, 5.0], [0.5, 7.4, 2.0]])
    rows = read(write_attribute_submission(tmp_path / "task2.csv", FILES[:2], predictions))
    assert rows[0] == ["FileName", "EmoAct", "EmoVal", "EmoDom"]
    assert rows[1][0] == FILES[0] and [float(v) for v in rows[1][1:]] == [4.25, 3.5, 5.0]
    assert [float(v) for v in rows[2][1:]] == [1.0, 7.0, 2.0]  # clipped to the 1-7 scale
    with pytest.raises(SubmissionError, match="outside the 1-7 scale"):
        write_attribute_submission(tmp_path / "y.csv", FILES[:2], predictions, clip=False)
    with pytest.raises(SubmissionError, match="N x 3"):
        write_attribute_submission(tmp_path / "y.csv", FILES[:2], predictions[:, :2])
    with pytest.raises(SubmissionError, match="NaN"):
        write_attribute_submission(tmp_path / "y.csv", FILES[:2], [[4.0, np.nan, 4.0], [4.0, 4.0, 4.0]])
