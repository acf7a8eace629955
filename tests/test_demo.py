"""The README's main job runs end to end (console script, fresh process)."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path


def test_hf_ser_demo_runs_and_prints_labels(tmp_path):
    exe = shutil.which("hf-ser") or str(Path(sys.executable).parent / "hf-ser")
    result = subprocess.run([exe, "demo", "--output-dir", str(tmp_path)], capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stderr[-3000:]
    from hf_ser import EMOTION_LABELS

    lines = [line for line in result.stdout.splitlines() if ".wav:" in line]
    assert lines and all(any(label in line for label in EMOTION_LABELS) for line in lines)
