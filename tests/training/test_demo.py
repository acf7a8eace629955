"""The README's main job, `hf-ser demo`, end to end in a fresh process: it must learn (macro-F1 clearly above
chance on held-out voices), reload through the Auto classes and pipeline(), and write its report."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest


@pytest.mark.slow
def test_hf_ser_demo_learns_reloads_and_reports(tmp_path):
    exe = shutil.which("hf-ser") or str(Path(sys.executable).parent / "hf-ser")
    result = subprocess.run(
        [exe, "demo", "--output-dir", str(tmp_path)], capture_output=True, text=True, timeout=1200
    )
    assert result.returncode == 0, result.stderr[-3000:]
    summary = json.loads((tmp_path / "summary.json").read_text())
    assert summary["steps"] == 400
    assert summary["f1_macro"] > 2 * summary["chance"], summary  # chance is 1/8 for 8 classes
    assert summary["reloaded_logits_equal"]
    assert len(summary["predictions"]) >= 1
    from hf_ser import EMOTION_LABELS

    for prediction in summary["predictions"]:
        assert prediction["top"][0]["label"] in EMOTION_LABELS
    assert (tmp_path / "report" / "confusion_matrix.png").stat().st_size > 5000
    assert (tmp_path / "model" / "model.safetensors").exists()
    # The saved model's card carries the training set-up and the held-out results.
    from huggingface_hub import ModelCard

    card = ModelCard((tmp_path / "model" / "README.md").read_text())
    results = {(r.dataset_name, r.metric_name): r.metric_value for r in card.data.eval_results}
    assert results[("held_out", "Macro F1")] == round(summary["f1_macro"], 4)
    assert "max_steps" in card.text and card.data.pipeline_tag == "audio-classification"
    for step in ("1/5", "2/5", "3/5", "4/5", "5/5"):
        assert step in result.stdout
