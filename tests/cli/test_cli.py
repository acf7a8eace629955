"""The `hf-ser` command line, end to end on tiny models and generated audio."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from hf_ser.cli import build_parser, main
from tests.tiny import save_tiny_model, tone

EXE = shutil.which("hf-ser") or str(Path(sys.executable).parent / "hf-ser")
COMMANDS = (
    "train",
    "evaluate",
    "predict",
    "demo",
    "push",
    "push-space",
    "analyze",
    "ensemble",
    "convert",
    "export",
)


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory):
    path = tmp_path_factory.mktemp("cli_model")
    save_tiny_model(path)
    return path


@pytest.fixture(scope="module")
def regression_model_dir(tmp_path_factory):
    path = tmp_path_factory.mktemp("cli_regression_model")
    save_tiny_model(path, problem_type="regression")
    return path


def test_help_lists_every_command_and_explains_options():
    result = subprocess.run([EXE, "--help"], capture_output=True, text=True, timeout=120)
    assert result.returncode == 0
    for command in COMMANDS:
        assert command in result.stdout
    parser = build_parser()
    subparsers = next(a for a in parser._actions if a.dest == "command").choices
    for command in COMMANDS:
        for action in subparsers[command]._actions:
            if action.dest != "help":
                assert action.help, f"hf-ser {command}: option {action.dest} has no help text"


@pytest.mark.parametrize(
    "argv, message",
    [
        (["predict", "does/not/exist.wav", "--model", "x/y"], "No such file or folder"),
        (["train", "--recipe", "missing.yaml", "--output-dir", "{tmp}/o", "--tiny"], "No such recipe"),
        (
            ["evaluate", "--model", "x/y", "--data-dir", "{tmp}", "--output-dir", "{tmp}/o"],
            "no Labels/ folder",
        ),
        (["predict", "{wav}", "--model", "not a model id"], "neither a folder nor a Hub id"),
        (["predict", "{wav}", "--model", "{tmp}/empty_model_dir"], "cannot load model"),
        (["predict", "{wav}", "--model", "{model}", "--output", "/proc/forbidden/out.csv"], "cannot write"),
    ],
)
def test_bad_arguments_give_one_line_errors(argv, message, tmp_path, model_dir, capsys):
    wav = tmp_path / "a.wav"
    sf.write(wav, tone(0.5), 16000)
    (tmp_path / "empty_model_dir").mkdir()
    argv = [a.format(tmp=tmp_path, wav=wav, model=model_dir) for a in argv]
    assert main(argv) == 2
    err = capsys.readouterr().err.strip()
    assert message in err and "Traceback" not in err and len(err.splitlines()) == 1


def test_unknown_option_exits_non_zero():
    result = subprocess.run([EXE, "predict", "--no-such-option"], capture_output=True, text=True, timeout=120)
    assert result.returncode != 0 and "usage" in result.stderr


def test_predict_files_folders_globs_formats_long_audio(tmp_path, model_dir):
    audio = tmp_path / "audio"
    (audio / "sub").mkdir(parents=True)
    sf.write(audio / "a.wav", tone(1.0, sr=44100), 44100)
    sf.write(audio / "sub" / "b.flac", np.stack([tone(0.8, sr=8000), tone(0.8, sr=8000)], 1), 8000)
    sf.write(tmp_path / "long.wav", tone(7.0, seed=3), 16000)
    if shutil.which("ffmpeg"):
        subprocess.run(
            ["ffmpeg", "-loglevel", "error", "-i", str(audio / "a.wav"), str(audio / "c.mp3")], check=True
        )
    out = tmp_path / "out" / "preds.json"
    code = main(["predict", str(audio), str(tmp_path / "*.wav"), "--model", str(model_dir), "--output", str(out),
                 "--window", "3", "--submission", str(tmp_path / "submission.csv")])  # fmt: skip
    assert code == 0
    rows = {Path(r["file"]).name: r for r in json.loads(out.read_text())}
    expected = {"a.wav", "b.flac", "long.wav"} | ({"c.mp3"} if shutil.which("ffmpeg") else set())
    assert set(rows) == expected
    for row in rows.values():
        assert abs(sum(row["scores"].values()) - 1) < 1e-4 and row["label"] in row["scores"]
    assert len(rows["long.wav"]["windows"]) == 3 and not rows["a.wav"]["windows"]
    lines = (tmp_path / "submission.csv").read_text().splitlines()
    assert lines[0] == "Filename,Prediction" and len(lines) == len(expected) + 1

    csv_out = tmp_path / "preds.csv"
    assert main(["predict", str(audio / "a.wav"), "--model", str(model_dir), "--output", str(csv_out)]) == 0
    header = csv_out.read_text().splitlines()[0].split(",")
    assert header[:3] == ["file", "label", "Angry"]


def test_predict_skips_unreadable_files_on_request(tmp_path, model_dir, capsys):
    sf.write(tmp_path / "good.wav", tone(0.5), 16000)
    (tmp_path / "bad.wav").write_bytes(b"not audio" * 50)
    out = tmp_path / "p.csv"
    assert main(["predict", str(tmp_path / "bad.wav"), "--model", str(model_dir), "--output", str(out)]) == 2
    assert "Cannot decode" in capsys.readouterr().err
    args = ["predict", str(tmp_path), "--model", str(model_dir), "--output", str(out), "--skip-errors"]
    assert main(args) == 0
    text = out.read_text()
    assert "good.wav" in text and "bad.wav" in text and "Cannot decode" in text


@pytest.fixture(scope="module")
def tiny_corpus(tmp_path_factory):
    from hf_ser.data.synthetic import make_tiny_corpus

    return make_tiny_corpus(
        tmp_path_factory.mktemp("corpus") / "MSP", n_speakers=4, clips_per_class=1, backend="tones"
    )


def test_evaluate_writes_report_with_confusion_matrix(tmp_path, model_dir, tiny_corpus, monkeypatch):
    monkeypatch.setenv("HF_DATASETS_CACHE", str(tmp_path / "cache"))
    out = tmp_path / "report"
    assert main(["evaluate", "--model", str(model_dir), "--data-dir", str(tiny_corpus), "--split", "validation",
                 "--output-dir", str(out)]) == 0  # fmt: skip
    metrics = json.loads((out / "metrics.json").read_text())
    assert 0 <= metrics["f1_macro"] <= 1 and len(metrics["confusion_matrix"]) == 8
    png = out / "confusion_matrix.png"
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and png.stat().st_size > 5000
    assert "f1_macro" in (out / "report.md").read_text()


def test_evaluate_attribute_model_writes_scatter(tmp_path, regression_model_dir, tiny_corpus, monkeypatch):
    monkeypatch.setenv("HF_DATASETS_CACHE", str(tmp_path / "cache"))
    out = tmp_path / "report"
    assert main(["evaluate", "--model", str(regression_model_dir), "--data-dir", str(tiny_corpus),
                 "--split", "validation", "--output-dir", str(out)]) == 0  # fmt: skip
    metrics = json.loads((out / "metrics.json").read_text())
    assert set(metrics) >= {"ccc_arousal", "ccc_valence", "ccc_dominance", "ccc_mean"}
    assert (out / "scatter.png").stat().st_size > 5000


def test_evaluate_unknown_split(tmp_path, model_dir, tiny_corpus, monkeypatch, capsys):
    monkeypatch.setenv("HF_DATASETS_CACHE", str(tmp_path / "cache"))
    args = ["evaluate", "--model", str(model_dir), "--data-dir", str(tiny_corpus), "--split", "test9"]
    assert main([*args, "--output-dir", str(tmp_path / "o")]) == 2
    assert "no split 'test9'" in capsys.readouterr().err


@pytest.mark.slow
def test_train_tiny_recipe_end_to_end(tmp_path):
    recipe = Path(__file__).resolve().parents[2] / "examples" / "recipes" / "paper000_masp.yaml"
    out = tmp_path / "run"
    result = subprocess.run(
        [EXE, "train", "--recipe", str(recipe), "--tiny", "--output-dir", str(out), "--set", "epochs=1"],
        capture_output=True, text=True, timeout=900,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr[-3000:]
    assert "paper000" in result.stdout or "000" in result.stdout
    assert (out / "best" / "model.safetensors").exists() and (out / "best" / "config.json").exists()
    from huggingface_hub import ModelCard  # the saved model's card carries the development-set results

    card = ModelCard((out / "best" / "README.md").read_text())
    assert {r.dataset_name for r in card.data.eval_results} == {"validation"}
    assert "Macro F1" in {r.metric_name for r in card.data.eval_results}
