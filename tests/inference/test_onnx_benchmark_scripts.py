"""Benchmark 10's scripts (issue 19) on the tiny config: `onnx_benchmark.py` with the retaining allocator writes
its rows, and `onnx_ceiling_probe.py` reads them back and derives achieved rates and ceilings from counted work."""

from __future__ import annotations

import importlib.util
import json
import subprocess
import sys
from pathlib import Path

import pytest

pytest.importorskip("onnxruntime")

BENCHMARKS = Path(__file__).resolve().parents[2] / "benchmarks"


def load(name: str):
    spec = importlib.util.spec_from_file_location(name, BENCHMARKS / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.mark.slow
def test_benchmark_rows_feed_the_ceiling_probe(tmp_path):
    results = tmp_path / "results.json"
    subprocess.run(
        [sys.executable, str(BENCHMARKS / "onnx_benchmark.py"), "--sizes", "tiny", "--repeats", "1",
         "--no-warmup", "--allocator", "retain", "--output", str(results)],
        check=True, capture_output=True, text=True,
    )  # fmt: skip
    written = json.loads(results.read_text())
    assert written["allocator"] == "retain"
    timed = [row for row in written["rows"] if row["seconds"] is not None]
    assert len(timed) == 6 and all("retaining allocator" in row["benchmark"] for row in timed)
    memory = [row for row in written["rows"] if row["seconds"] is None]
    assert [row["case"] for row in memory] == [
        "PyTorch eager, SDPA attention", "ONNX Runtime fp32", "ONNX Runtime int8",
    ]  # fmt: skip

    probe = load("onnx_ceiling_probe")
    report_path = tmp_path / "ceiling.json"
    probe.main(["--size", "tiny", "--results", str(results), "--repeats", "1", "--output", str(report_path)])
    report = json.loads(report_path.read_text())
    assert set(report["peak_gflops"]) == {"pytorch fp32", "onnxruntime fp32", "onnxruntime int8"}
    assert all(value > 0 for value in report["peak_gflops"].values())
    one, eight = report["workloads"]
    for entry in (one, eight):
        work = entry["gflop"]
        assert work["quantised"] > 0 and work["float"] > 0 and work["attention"] > 0
        assert work["total"] == pytest.approx(work["quantised"] + work["float"] + work["attention"], abs=0.2)
        assert set(entry["measured_s"]) == {"pytorch", "fp32", "int8"}
        # A ceiling is an upper bound on what the engine could do; it is derived, not measured, so only its
        # consistency is checked: int8's bound is at least fp32's whenever int8 products are the faster ones.
        assert entry["ceiling_ratio"]["fp32"] > 0
        if report["peak_gflops"]["onnxruntime int8"] >= report["peak_gflops"]["onnxruntime fp32"]:
            assert entry["ceiling_ratio"]["int8"] >= entry["ceiling_ratio"]["fp32"]
    # The padded batch computes all eight clips at the longest one's length.
    longest = probe.clip_flops("tiny", [11.0])[11.0]
    assert eight["gflop"]["quantised"] == pytest.approx(8 * longest["quantised"], rel=1e-3, abs=0.05)


def test_workload_work_adds_clips_or_pads_to_the_longest():
    probe = load("onnx_ceiling_probe")
    per_clip = {1.0: {"quantised": 1.0, "float": 2.0, "attention": 0.5},
                2.0: {"quantised": 2.0, "float": 4.0, "attention": 2.0}}  # fmt: skip
    assert probe.workload_flops(per_clip, [1.0, 2.0], batch=False)["total"] == pytest.approx(11.5)
    assert probe.workload_flops(per_clip, [1.0, 2.0], batch=True)["total"] == pytest.approx(16.0)


def test_measured_seconds_reads_one_size_and_workload(tmp_path):
    probe = load("onnx_ceiling_probe")
    rows = [
        {"benchmark": "10 ONNX Runtime (base, batch 1, 1 thread)", "case": "PyTorch eager, SDPA attention",
         "seconds": 8.0},
        {"benchmark": "10 ONNX Runtime (base, batch 1, 1 thread)", "case": "ONNX Runtime fp32", "seconds": 6.0},
        {"benchmark": "10 ONNX Runtime (large, batch 1, 1 thread)", "case": "ONNX Runtime fp32", "seconds": 9.0},
        {"benchmark": "10 ONNX Runtime memory (base, batch 8, fresh process)", "case": "ONNX Runtime fp32",
         "seconds": None},
    ]  # fmt: skip
    path = tmp_path / "r.json"
    path.write_text(json.dumps({"rows": rows}))
    assert probe.measured_seconds(path, "base") == {"batch 1": {"pytorch": 8.0, "fp32": 6.0}}
