"""Where ONNX Runtime's time goes (follow-up of benchmark 10, issue 19): ONNX Runtime's profiler by op type for the
fp32 export and three int8 variants of a WavLM-base-sized random model, one 5.5 s clip, 1 thread.

Variants: hf_ser's int8 (transformer weight MatMuls, per-channel weights), the same with per-tensor weights, and
onnxruntime's default `quantize_dynamic` (every op it can, convolutions included). Writes
benchmarks/onnx_int8_profile.json.

Usage: python benchmarks/onnx_int8_profile.py [WORKDIR]
"""

from __future__ import annotations

import collections
import json
import os
import sys
import time
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent


def profile(path: str, feed: dict, prefix: str) -> dict:
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.intra_op_num_threads = 1
    options.inter_op_num_threads = 1
    options.enable_profiling = True
    options.profile_file_prefix = prefix
    session = ort.InferenceSession(path, options, providers=["CPUExecutionProvider"])
    session.run(None, feed)
    start = time.perf_counter()
    for _ in range(2):
        session.run(None, feed)
    seconds = (time.perf_counter() - start) / 2
    with open(session.end_profiling()) as handle:
        events = json.load(handle)
    by_op: collections.Counter = collections.Counter()
    for event in events:
        if event.get("cat") == "Node" and event["name"].endswith("_kernel_time"):
            by_op[event["args"]["op_name"]] += event["dur"]
    total = sum(by_op.values())
    conv = sum(v for k, v in by_op.items() if k.startswith("Conv"))
    return {
        "s": seconds,
        "MiB": os.path.getsize(path) / 2**20,
        "top_ops": [(k, round(v / total, 3)) for k, v in by_op.most_common(8)],
        "conv_share": round(conv / total, 3),
    }


def main() -> int:
    import onnx
    import torch
    from onnxruntime.quantization import QuantType, quantize_dynamic

    sys.path.insert(0, str(HERE))
    from run_benchmarks import encoder_config

    from hf_ser import WavLMForMASPClassification, WavLMMASPConfig, export_onnx
    from hf_ser.onnx import NumpyFeatureExtractor
    from hf_ser.onnx.export import _QUANTIZABLE

    torch.set_num_threads(1)
    work = Path(sys.argv[1] if len(sys.argv) > 1 else "/tmp/hf_ser_onnx_profile")
    folder = work / "base"
    if not (folder / "model.onnx").exists():
        torch.manual_seed(0)
        config = WavLMMASPConfig(encoder_config=encoder_config("base"), num_trainable_layers=None)
        export_onnx(WavLMForMASPClassification(config).eval(), folder)
    fp32 = str(folder / "model.onnx")
    graph = onnx.load(fp32, load_external_data=False).graph
    weights = {init.name for init in graph.initializer}
    encoder = [
        n.name
        for n in graph.node
        if n.op_type == "MatMul" and n.input[1] in weights and _QUANTIZABLE.search(n.name)
    ]
    options = {
        "int8_perchannel": {
            "per_channel": True,
            "nodes_to_quantize": encoder,
            "op_types_to_quantize": ["MatMul"],
        },
        "int8_pertensor": {
            "per_channel": False,
            "nodes_to_quantize": encoder,
            "op_types_to_quantize": ["MatMul"],
        },
        "int8_default_all_ops": {},
    }
    variants = {"fp32": fp32}
    for name, kwargs in options.items():
        path = str(work / f"base_{name}.onnx")
        if not os.path.exists(path):
            quantize_dynamic(fp32, path, weight_type=QuantType.QInt8, **kwargs)
        variants[name] = path
    rng = np.random.default_rng(0)
    inputs = NumpyFeatureExtractor()([(0.1 * rng.standard_normal(88000)).astype(np.float32)])
    feed = {
        "input_values": inputs["input_values"],
        "attention_mask": inputs["attention_mask"].astype(np.int64),
    }
    results = {}
    for name, path in variants.items():
        results[name] = profile(path, feed, str(work / f"prof_{name}"))
        print(name, json.dumps(results[name]), flush=True)
    (HERE / "onnx_int8_profile.json").write_text(json.dumps(results, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
