"""benchmarks/real_speech_pooling.py (issue 20's real-speech learning check): corpus reading, speaker split and
variant parsing, on generated files named like EmoDB's (the corpus itself is not shipped)."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from tests.tiny import tone

SCRIPT = Path(__file__).resolve().parents[2] / "benchmarks" / "real_speech_pooling.py"


@pytest.fixture(scope="module")
def check():
    spec = importlib.util.spec_from_file_location("real_speech_pooling", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def write_corpus(root: Path, speakers=("03", "08", "15"), skip=()):
    (root / "wav").mkdir(parents=True)
    for s, speaker in enumerate(speakers):
        for e, emotion in enumerate("WLEAFTN"):
            if (speaker, emotion) in skip:
                continue
            wave = tone(0.3 + 0.1 * e, sr=22050, freq=150 + 40 * e, seed=s)
            sf.write(root / "wav" / f"{speaker}a0{e % 9 + 1}{emotion}a.wav", wave, 22050, subtype="PCM_16")
    sf.write(root / "wav" / "notes.wav", tone(0.2, sr=22050), 22050)  # not an EmoDB name: ignored


def test_corpus_is_read_resampled_and_cut_to_fixed_clips(check, tmp_path):
    write_corpus(tmp_path)
    dataset = check.load_emodb(tmp_path, clip_seconds=0.5)
    assert len(dataset) == 21 and "notes" not in dataset["name"]
    assert {len(a) for a in dataset["audio"]} == {8000}  # 16 kHz, cut or zero-padded to 0.5 s
    short = dataset[dataset["name"].index("03a01Wa")]["audio"]  # 0.3 s of speech, then zeros
    assert np.abs(np.asarray(short[5000:])).max() == 0.0 and np.abs(np.asarray(short[:4000])).max() > 0.1
    labels = sorted(check.EMODB_EMOTIONS)
    assert dataset[dataset["name"].index("08a05Fa")]["label"] == labels.index("F")


def test_split_holds_out_whole_speakers_and_needs_every_class(check, tmp_path):
    write_corpus(tmp_path, skip={("08", "E")})
    dataset = check.load_emodb(tmp_path, clip_seconds=0.5)
    train, test = check.speaker_split(dataset, ["03", "15"])
    assert set(test["speaker"]) == {"03", "15"} and set(train["speaker"]) == {"08"}
    with pytest.raises(SystemExit, match="lack classes"):
        check.speaker_split(dataset, ["08"])
    with pytest.raises(SystemExit, match="not in the corpus"):
        check.speaker_split(dataset, ["99"])
    with pytest.raises(SystemExit, match="No EmoDB-named"):
        check.load_emodb(tmp_path / "wav" / "missing", clip_seconds=0.5)


def test_variants_map_to_configurations(check):
    assert check.parse_variant("masp-focal+layernorm+lr=5e-4") == (
        "masp",
        "focal",
        {"layernorm": "", "lr": "5e-4"},
    )
    config = check.small_wavlm_config("masp", "ce", {"layernorm": ""}, list("abcdefg"))
    assert (
        config.masp_layer_norm and config.num_trainable_layers is None and not config.freeze_feature_encoder
    )
    assert config.encoder_config.hidden_size == 128 and config.encoder_config.num_hidden_layers == 4
    for bad in ("max-ce", "masp-mse", "masp-ce+warp"):
        with pytest.raises(SystemExit):
            check.parse_variant(bad)


def test_a_short_run_reports_final_scores_and_the_learning_curve(check, tmp_path):
    import json

    import torch

    write_corpus(tmp_path / "corpus")
    rows = tmp_path / "rows.jsonl"
    threads = torch.get_num_threads()
    try:
        check.main(
            ["--data-dir", str(tmp_path / "corpus"), "--held-out", "15", "--variants", "masp-ce",
             "--max-steps", "2", "--eval-every", "1", "--clip-seconds", "0.5", "--conv-dim", "8",
             "--batch-size", "4", "--diagnose-every", "1", "--output", str(rows)]
        )  # fmt: skip
    finally:
        torch.set_num_threads(threads)  # the script runs on one thread
    row = json.loads(rows.read_text())
    assert row["variant"] == "masp-ce" and row["steps"] == 2 and 0.0 <= row["uar"] <= 1.0
    # The held-out speakers scored after each step (reported, never used to pick a checkpoint).
    assert [point["step"] for point in row["curve"]] == [1, 2]
    assert all(0.0 <= point["uar"] <= 1.0 for point in row["curve"])
    # Diagnostics for each step: gradient norm before clipping, MASP's layer weights and statistics.
    assert row["nonfinite_grad_steps"] == 0 and row["grad_norm_preclip_max"] > 0
    assert {"layer_weights", "sigma_rms", "grad_share"} <= set(row["diagnostics"][0])
