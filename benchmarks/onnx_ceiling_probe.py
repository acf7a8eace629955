"""Benchmark 10's ceiling probe (issue 19): how much faster than PyTorch can any ONNX graph run on this CPU?

The models are compute-bound: almost all of their work is matrix products and convolutions. So the best any engine
can do is to run all of that work at the rate of its fastest matrix product. This script measures those rates and
derives the ceilings:

1. Matrix-product rates, one thread, on the transformer's own shapes (the frames of a 2.75 s and an 11 s clip,
   times width x 4*width and 4*width x width): PyTorch's fp32 `matmul` (what PyTorch eager runs), ONNX Runtime's
   fp32 MatMul, and its dynamically quantised int8 MatMul (per-channel int8 weights, as `export_onnx` writes). Each
   is the median of `--repeats` runs; the fastest shape sets each engine's peak.
2. The work per workload (batch 1: four clips of 2.75-11 s one at a time; batch 8: the same eight-clip padded batch
   as benchmark 10), counted with torch's `FlopCounterMode`, plus the attention products, which it does not see
   (4 x batch x frames^2 x width per layer). The work is split into the products that int8 export quantises
   (transformer and feature-projection weights) and the rest (convolutional front end, positional convolution,
   attention products), which stays float.
3. From the engines' measured times in a benchmark-10 result file (`--results`): each engine's achieved GFLOP/s
   and share of its peak, and two ceilings for the throughput ratio over the measured PyTorch time:
   fp32 = all the work at ONNX Runtime's fp32 peak; int8 = the quantised products at the int8 peak and the rest at
   the fp32 peak; int8_everything = all the work, front end and attention included, at the int8 peak (what
   quantising every product could give at best). These are upper bounds: real graphs also run layer norms,
   softmax, masking and copies, and convolutions and small products run below a large product's rate.

Usage:
    python benchmarks/onnx_ceiling_probe.py --size base --results benchmarks/onnx_results_base_idle.json
    python benchmarks/onnx_ceiling_probe.py --size large --results benchmarks/onnx_results_large_idle.json
"""

from __future__ import annotations

import argparse
import json
import logging
import re
import sys
import tempfile
from pathlib import Path

import numpy as np

HERE = Path(__file__).parent
sys.path.insert(0, str(HERE))
from run_benchmarks import compare, encoder_config, report_json  # noqa: E402  (a sibling script, not a package)

SR = 16_000
# The module names whose weight products `export_onnx(quantize="int8")` quantises (same rule as its MatMul regex).
QUANTISED = re.compile(r"(\.layers\.\d+\.(?!.*gru_rel_pos).*|\.feature_projection\..*)")


def matmul_rates(width: int, frames: list[int], repeats: int) -> list[dict]:
    """GFLOP/s of PyTorch fp32, ONNX Runtime fp32 and ONNX Runtime int8 on (frames x width) @ (width x 4 width)
    and (frames x 4 width) @ (4 width x width)."""
    import onnx
    import onnxruntime as ort
    import torch
    from onnx import TensorProto, helper, numpy_helper
    from onnxruntime.quantization import QuantType, quantize_dynamic

    logging.getLogger().setLevel(logging.ERROR)  # quantize_dynamic's pre-processing advice
    options = ort.SessionOptions()
    options.intra_op_num_threads = options.inter_op_num_threads = 1
    rng = np.random.default_rng(0)
    rows = []
    with tempfile.TemporaryDirectory() as work:
        for k, n in ((width, 4 * width), (4 * width, width)):
            weight = (rng.standard_normal((k, n)) / np.sqrt(k)).astype(np.float32)
            graph = helper.make_graph(
                [helper.make_node("MatMul", ["x", "w"], ["y"])], "product",
                [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["frames", k])],
                [helper.make_tensor_value_info("y", TensorProto.FLOAT, ["frames", n])],
                [numpy_helper.from_array(weight, "w")],
            )  # fmt: skip
            fp32_path, int8_path = Path(work) / "fp32.onnx", Path(work) / "int8.onnx"
            onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)]), fp32_path)
            quantize_dynamic(fp32_path, int8_path, per_channel=True, weight_type=QuantType.QInt8)
            sessions = {
                name: ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
                for name, path in (("onnxruntime fp32", fp32_path), ("onnxruntime int8", int8_path))
            }
            torch_weight = torch.from_numpy(weight)
            for m in frames:
                x = rng.standard_normal((m, k)).astype(np.float32)
                torch_x = torch.from_numpy(x)
                flops = 2.0 * m * k * n
                runs = {"pytorch fp32": lambda a=torch_x, b=torch_weight: torch.matmul(a, b)}
                for name, session in sessions.items():
                    runs[name] = lambda session=session, x=x: session.run(None, {"x": x})
                # Interleaved, after one warm-up call each (first-touch allocations, weight packing).
                for name, seconds in compare(runs, repeats).items():
                    rows.append({"engine": name, "shape": [m, k, n], "gflops": flops / seconds / 1e9})
    return rows


def clip_flops(size: str, seconds: list[float]) -> dict[float, dict[str, float]]:
    """Work (GFLOP) of one clip of each length: quantised products, other float work, attention products. A padded
    batch computes every row at its longest clip's length, so a batch's work is its size times the longest's."""
    import torch
    from torch.utils.flop_counter import FlopCounterMode

    from hf_ser import WavLMForMASPClassification, WavLMMASPConfig

    config = encoder_config(size)
    model = WavLMForMASPClassification(
        WavLMMASPConfig(encoder_config=config, num_trainable_layers=None)
    ).eval()
    linear_names = {
        f"{type(model).__name__}.{name}"
        for name, module in model.named_modules()
        if isinstance(module, torch.nn.Linear) and QUANTISED.search("." + name)
    }
    out = {}
    for s in sorted(set(seconds)):
        samples = int(s * SR)
        counter = FlopCounterMode(display=False)
        # no_grad, not inference_mode: under inference_mode the weight-normed positional convolution fails here
        with torch.no_grad(), counter:
            model(
                input_values=torch.zeros(1, samples), attention_mask=torch.ones(1, samples, dtype=torch.long)
            )
        counts = counter.get_flop_counts()
        everything = sum(counts["Global"].values())
        quantised = sum(sum(counts[name].values()) for name in linear_names if name in counts)
        frames = int(model.encoder._get_feat_extract_output_lengths(torch.tensor(samples)))
        attention = 4.0 * frames**2 * config["hidden_size"] * config["num_hidden_layers"]
        out[s] = {
            "quantised": quantised / 1e9,
            "float": (everything - quantised) / 1e9,
            "attention": attention / 1e9,
        }
    return out


def workload_flops(per_clip: dict[float, dict[str, float]], seconds, batch: bool) -> dict[str, float]:
    clips = [max(seconds)] * len(seconds) if batch else list(seconds)
    totals = {key: sum(per_clip[s][key] for s in clips) for key in ("quantised", "float", "attention")}
    totals["total"] = sum(totals.values())
    return totals


def measured_seconds(results: Path, size: str) -> dict[str, dict[str, float]]:
    """{workload: {engine: seconds}} from a benchmark-10 result file."""
    names = {"PyTorch eager, SDPA attention": "pytorch", "ONNX Runtime fp32": "fp32",
             "ONNX Runtime int8 (dynamic)": "int8"}  # fmt: skip
    out: dict[str, dict[str, float]] = {}
    for row in json.loads(results.read_text())["rows"]:
        match = re.match(rf"10 ONNX Runtime \({size}, (batch \d)", row["benchmark"])
        if match and row.get("seconds") and row["case"] in names:
            out.setdefault(match.group(1), {})[names[row["case"]]] = row["seconds"]
    return out


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--size", choices=("tiny", "base", "large"), default="base")
    parser.add_argument("--results", type=Path, required=True, help="A benchmark-10 result file (json).")
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--output", type=Path)
    args = parser.parse_args(argv)

    import torch

    torch.set_num_threads(1)
    import onnx_benchmark as ob

    width = encoder_config(args.size)["hidden_size"]
    rates = matmul_rates(width, frames=[137, 549], repeats=args.repeats)
    peak = {engine: max(r["gflops"] for r in rates if r["engine"] == engine) for engine in
            ("pytorch fp32", "onnxruntime fp32", "onnxruntime int8")}  # fmt: skip
    measured = measured_seconds(args.results, args.size)
    report = {
        "size": args.size,
        "results_file": str(args.results),
        "matmul_gflops": [{**r, "gflops": round(r["gflops"], 1)} for r in rates],
        "peak_gflops": {k: round(v, 1) for k, v in peak.items()},
        "workloads": [],
    }
    per_clip = clip_flops(args.size, list(ob.BATCH1_SECONDS) + [max(ob.BATCH8_SECONDS)])
    for workload, seconds, batch in (
        ("batch 1", ob.BATCH1_SECONDS, False),
        ("batch 8", ob.BATCH8_SECONDS, True),
    ):
        work = workload_flops(per_clip, seconds, batch)
        times = measured.get(workload, {})
        entry = {"workload": workload, "gflop": {k: round(v, 1) for k, v in work.items()}}
        if times:
            float_work = work["float"] + work["attention"]
            best_fp32 = work["total"] / peak["onnxruntime fp32"]
            best_int8 = float_work / peak["onnxruntime fp32"] + work["quantised"] / peak["onnxruntime int8"]
            own_peak = {"pytorch": peak["pytorch fp32"], "fp32": peak["onnxruntime fp32"]}
            entry["measured_s"] = {k: round(v, 2) for k, v in times.items()}
            entry["achieved_gflops"] = {k: round(work["total"] / v, 1) for k, v in times.items()}
            entry["share_of_own_fp32_peak"] = {
                k: round(work["total"] / times[k] / own_peak[k], 3) for k in own_peak if k in times
            }
            entry["measured_ratio"] = {k: round(times["pytorch"] / v, 2) for k, v in times.items()}
            entry["ceiling_ratio"] = {
                "fp32": round(times["pytorch"] / best_fp32, 2),
                "int8": round(times["pytorch"] / best_int8, 2),
                "int8_everything": round(times["pytorch"] / (work["total"] / peak["onnxruntime int8"]), 2),
            }
        report["workloads"].append(entry)
    report_json(report, args.output)
    return 0


if __name__ == "__main__":
    sys.exit(main())
