"""Benchmark 10's memory-arena probe: peak RSS of a fresh ONNX Runtime process on the batch-8 workload (base config,
1 thread), fp32 and int8, with ONNX Runtime's CPU memory arena and memory pattern on or off (issue 19).

Usage: python benchmarks/onnx_arena_probe.py [WORKDIR]   (exports the two folders into WORKDIR once, then measures)
"""

import json
import subprocess
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
HERE = Path(sys.argv[1]) if len(sys.argv) > 1 and sys.argv[1] != "child" else Path("onnx_arena_probe")


def child(folder, arena, pattern):
    sys.modules["torch"] = None
    import onnx_benchmark as ob
    import onnxruntime as ort

    from hf_ser.onnx import ORTSERModel

    inputs = ob.features(ob.MEMORY_WORKLOADS["batch8"])
    base = ob._current_rss_mib()
    opts = ort.SessionOptions()
    opts.enable_cpu_mem_arena = arena
    opts.enable_mem_pattern = pattern
    model = ORTSERModel.from_pretrained(folder, num_threads=1, session_options=opts)
    model(**inputs)
    print(
        json.dumps(
            {
                "folder": Path(folder).name,
                "arena": arena,
                "pattern": pattern,
                "peak": ob._rss_mib(),
                "growth": ob._rss_mib() - base,
            }
        )
    )


if __name__ == "__main__":
    if len(sys.argv) > 1 and sys.argv[1] == "child":
        child(sys.argv[2], sys.argv[3] == "1", sys.argv[4] == "1")
        sys.exit()
    import torch

    torch.set_num_threads(1)
    import onnx_benchmark as ob

    from hf_ser import WavLMForMASPClassification, WavLMMASPConfig, export_onnx

    torch.manual_seed(0)
    model = WavLMForMASPClassification(
        WavLMMASPConfig(encoder_config=ob.encoder_config("base"), num_trainable_layers=None)
    ).eval()
    for kind in ("fp32", "int8"):
        if not (HERE / kind / "model.onnx").exists():
            export_onnx(model, HERE / kind, quantize=None if kind == "fp32" else "int8")
    for kind in ("fp32", "int8"):
        for arena, pattern in ((1, 1), (0, 1), (0, 0)):
            out = subprocess.run(
                [sys.executable, __file__, "child", str(HERE / kind), str(arena), str(pattern)],
                capture_output=True,
                text=True,
            )
            print(
                out.stdout.strip().splitlines()[-1] if out.stdout.strip() else out.stderr[-500:], flush=True
            )
