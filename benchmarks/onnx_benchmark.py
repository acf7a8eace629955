"""Benchmark 10: ONNX Runtime (fp32, int8) against PyTorch eager (SDPA attention) on CPU (issue 19).

Usage:
    python benchmarks/onnx_benchmark.py                       # base and large configs, writes onnx_results.json
    python benchmarks/onnx_benchmark.py --sizes tiny --repeats 1   # smoke run

For each encoder size (WavLM-base-sized 768 x 12, WavLM-large-sized 1024 x 24; random weights, layer-norm front
end) one `WavLMForMASPClassification` is exported twice with `hf_ser.export_onnx` (fp32, int8). Two workloads of
MSP-Podcast-like lengths: batch 1 (4 clips of 2.75, 5.5, 8.25 and 11 s, one at a time) and batch 8 (one padded
batch of 8 clips from 2.75 to 11 s). Throughput: the three engines run side by side in one process, interleaved,
median of `--repeats`, all with the same thread count (`--threads`, default 1). Peak memory: each engine runs the
batch-8 workload once in a fresh process (PyTorch: torch imported; ONNX Runtime: torch blocked, as in a torch-free
deployment); reported as the process's peak RSS and as the growth over the process after its imports (model plus
inference).
"""

from __future__ import annotations

import argparse
import json
import platform
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

HERE = Path(__file__).parent
SR = 16_000
BATCH1_SECONDS = (2.75, 5.5, 8.25, 11.0)
BATCH8_SECONDS = tuple(np.round(np.linspace(2.75, 11.0, 8), 3).tolist())


def _status_mib(field: str) -> float:
    # /proc's VmHWM is this process's own peak (getrusage's ru_maxrss can carry the parent's peak across exec).
    with open("/proc/self/status") as handle:
        for line in handle:
            if line.startswith(field + ":"):
                return int(line.split()[1]) / 1024.0
    raise RuntimeError(f"no {field} in /proc/self/status")


def _rss_mib() -> float:
    return _status_mib("VmHWM")


def _current_rss_mib() -> float:
    return _status_mib("VmRSS")


def retain_freed_memory() -> None:
    """Make glibc keep the memory a process frees instead of handing every block over 32 MB back to the system.

    Why: on this project's VMs, memory handed back costs about 2 ms/MB to fault in again, against 0.13 ms/MB for
    memory the process kept (README, benchmark 10). PyTorch's tensors go through glibc, so with the default a
    forward pass over large activations re-faults them on every call, while ONNX Runtime's arena keeps its memory.
    `--allocator retain` gives both engines a retaining allocator, as jemalloc or tcmalloc would."""
    import ctypes

    libc = ctypes.CDLL("libc.so.6")
    m_trim_threshold, m_mmap_max = -1, -4  # glibc's mallopt parameter numbers
    if not (libc.mallopt(m_mmap_max, 0) and libc.mallopt(m_trim_threshold, 2**31 - 1)):
        raise RuntimeError("glibc's mallopt refused the retaining settings")


def encoder_config(size: str) -> dict:
    sys.path.insert(0, str(HERE))
    from run_benchmarks import encoder_config as shared

    return shared(size)


def waves(seconds) -> list[np.ndarray]:
    rng = np.random.default_rng(0)
    return [(0.1 * rng.standard_normal(int(s * SR))).astype(np.float32) for s in seconds]


def features(seconds) -> dict[str, np.ndarray]:
    from hf_ser.onnx import NumpyFeatureExtractor

    return NumpyFeatureExtractor()(waves(seconds), sampling_rate=SR)


# ------------------------------------------------------------------------------------------------- memory child
MEMORY_WORKLOADS = {"batch8": BATCH8_SECONDS, "clip11": (11.0,)}


def memory_child(
    engine: str, size: str, folder: str, threads: int, workload: str = "batch8", allocator: str = "default"
) -> dict:
    """Run a workload once in this (fresh) process; report peak and post-import RSS."""
    if allocator == "retain":
        retain_freed_memory()
    seconds = MEMORY_WORKLOADS[workload]
    if engine == "pytorch":
        import torch

        torch.set_num_threads(threads)
        from hf_ser import WavLMForMASPClassification, WavLMMASPConfig

        inputs = features(seconds)
        base = _current_rss_mib()
        model = WavLMForMASPClassification(
            WavLMMASPConfig(encoder_config=encoder_config(size), num_trainable_layers=None)
        ).eval()
        with torch.inference_mode():
            model(
                input_values=torch.from_numpy(inputs["input_values"]),
                attention_mask=torch.from_numpy(inputs["attention_mask"]),
            )
    else:
        sys.modules["torch"] = None  # a torch-free deployment
        from hf_ser.onnx import ORTSERModel

        inputs = features(seconds)
        base = _current_rss_mib()
        model = ORTSERModel.from_pretrained(folder, num_threads=threads)
        model(**inputs)
    return {
        "engine": engine,
        "peak_rss_mib": _rss_mib(),
        "after_imports_mib": base,
        "growth_mib": _rss_mib() - base,
    }


def measure_memory(
    engine: str, size: str, folder: Path, threads: int, workload: str = "batch8", allocator: str = "default"
) -> dict:
    cmd = [sys.executable, __file__, "--memory-child", engine, size, str(folder), "--threads", str(threads)]
    cmd += ["--memory-workload", workload, "--allocator", allocator]
    done = subprocess.run(cmd, capture_output=True, text=True, check=True)
    return json.loads(done.stdout.strip().splitlines()[-1])


# ------------------------------------------------------------------------------------------------- timing
def bench_size(
    size: str, repeats: int, threads: int, workdir: Path, warmup: bool = True, allocator: str = "default"
) -> list[dict]:
    import torch

    from hf_ser import WavLMForMASPClassification, WavLMMASPConfig, export_onnx
    from hf_ser.onnx import ORTSERModel

    sys.path.insert(0, str(HERE))
    from run_benchmarks import compare

    torch.set_num_threads(threads)
    torch.manual_seed(0)
    model = WavLMForMASPClassification(
        WavLMMASPConfig(encoder_config=encoder_config(size), num_trainable_layers=None)
    ).eval()
    folders, export_s = {}, {}
    for kind in ("fp32", "int8"):
        start = time.perf_counter()
        folders[kind] = export_onnx(
            model, workdir / f"{size}-{kind}", quantize=None if kind == "fp32" else "int8"
        )
        export_s[kind] = time.perf_counter() - start
        print(f"[onnx bench] {size}: exported {kind} in {export_s[kind]:.0f} s", flush=True)
    sessions = {
        kind: ORTSERModel.from_pretrained(folder, num_threads=threads) for kind, folder in folders.items()
    }
    sizes_mib = {kind: (folder / "model.onnx").stat().st_size / 2**20 for kind, folder in folders.items()}

    rows = []
    workloads = {
        "batch 1": [features([s]) for s in BATCH1_SECONDS],
        "batch 8": [features(BATCH8_SECONDS)],
    }
    for workload, batches in workloads.items():
        outputs: dict[str, list[np.ndarray]] = {}

        def torch_fn(batches=batches, outputs=outputs):
            with torch.inference_mode():
                outputs["pytorch"] = [
                    model(
                        input_values=torch.from_numpy(b["input_values"]),
                        attention_mask=torch.from_numpy(b["attention_mask"]),
                    ).logits.numpy()
                    for b in batches
                ]

        def ort_fn(kind, batches=batches, outputs=outputs):
            def fn():
                outputs[kind] = [sessions[kind](**b)["logits"] for b in batches]

            return fn

        engines = {"pytorch": torch_fn, "fp32": ort_fn("fp32"), "int8": ort_fn("int8")}
        times = compare(engines, repeats, warmup=warmup)
        audio_s = sum(float(b["attention_mask"].sum()) / SR for b in batches)
        reference = np.concatenate(outputs["pytorch"])
        for engine in ("pytorch", "fp32", "int8"):
            got = np.concatenate(outputs[engine])
            row = {
                "benchmark": f"10 ONNX Runtime ({size}, {workload}, {threads} thread{'s' if threads > 1 else ''}"
                f"{', retaining allocator' if allocator == 'retain' else ''})",
                "case": {"pytorch": "PyTorch eager, SDPA attention", "fp32": "ONNX Runtime fp32",
                         "int8": "ONNX Runtime int8 (dynamic)"}[engine],
                "seconds": times[engine],
                "ratio": times["pytorch"] / times[engine],
                "rtf": times[engine] / audio_s,
            }  # fmt: skip
            if engine != "pytorch":
                row["max_abs_logit_diff"] = float(np.abs(got - reference).max())
                row["model_MiB"] = round(sizes_mib[engine], 1)
                row["export_s"] = round(export_s[engine], 1)
                row["target"] = "throughput >= 1.5x" if engine == "fp32" else "throughput >= 2.5x"
            rows.append(row)
            print(f"[onnx bench] {row}", flush=True)

    sessions.clear()  # free the ONNX Runtime sessions before the memory runs
    memory = {
        "pytorch": measure_memory("pytorch", size, folders["fp32"], threads, allocator=allocator),
        "fp32": measure_memory("ort", size, folders["fp32"], threads, allocator=allocator),
        "int8": measure_memory("ort", size, folders["int8"], threads, allocator=allocator),
    }
    names = {
        "pytorch": "PyTorch eager, SDPA attention",
        "fp32": "ONNX Runtime fp32",
        "int8": "ONNX Runtime int8",
    }
    for engine, values in memory.items():
        row = {
            "benchmark": f"10 ONNX Runtime memory ({size}, batch 8, fresh process"
            f"{', retaining allocator' if allocator == 'retain' else ''})",
            "case": names[engine],
            "seconds": None,
            "peak process RSS MiB": round(values["peak_rss_mib"]),
            "growth after imports MiB": round(values["growth_mib"]),
            "memory_ratio": values["peak_rss_mib"] / memory["pytorch"]["peak_rss_mib"],
            "growth_ratio": values["growth_mib"] / memory["pytorch"]["growth_mib"],
        }
        if engine == "int8":
            row["target"] = "peak memory <= 0.5x PyTorch"
        rows.append(row)
        print(f"[onnx bench] {row}", flush=True)
    return rows


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", nargs="+", default=["base", "large"], choices=("tiny", "base", "large"))
    parser.add_argument(
        "--repeats", type=int, default=3, help="Timed repetitions (median); large uses at most 2."
    )
    parser.add_argument("--threads", type=int, default=1, help="Threads for every engine.")
    parser.add_argument(
        "--no-warmup",
        action="store_true",
        help="Skip the untimed first pass (long workloads, loaded machines).",
    )
    parser.add_argument(
        "--allocator",
        choices=("default", "retain"),
        default="default",
        help="retain: glibc keeps freed memory in the process, for every engine (see retain_freed_memory).",
    )
    parser.add_argument("--output", default=str(HERE / "onnx_results.json"))
    parser.add_argument(
        "--memory-child", nargs=3, metavar=("ENGINE", "SIZE", "FOLDER"), help=argparse.SUPPRESS
    )
    parser.add_argument(
        "--memory-workload",
        choices=sorted(MEMORY_WORKLOADS),
        default="batch8",
        help="Workload of the memory runs.",
    )
    parser.add_argument(
        "--memory-only",
        nargs=3,
        metavar=("SIZE", "FP32_FOLDER", "INT8_FOLDER"),
        help="Only the memory runs, on existing export folders.",
    )
    args = parser.parse_args(argv)
    if args.memory_child:
        measured = memory_child(
            *args.memory_child, threads=args.threads, workload=args.memory_workload, allocator=args.allocator
        )
        print(json.dumps(measured))
        return 0
    if args.allocator == "retain":
        retain_freed_memory()
    if args.memory_only:
        size, fp32, int8 = args.memory_only
        rows = []
        for engine, folder in {"pytorch": fp32, "fp32": fp32, "int8": int8}.items():
            kind = "pytorch" if engine == "pytorch" else "ort"
            measured = measure_memory(
                kind, size, Path(folder), args.threads, args.memory_workload, args.allocator
            )
            rows.append({**measured, "engine": engine})
            print(f"[onnx bench] memory {size} {args.memory_workload} {rows[-1]}", flush=True)
        Path(args.output).write_text(json.dumps({"memory": rows}, indent=1))
        return 0
    rows = []
    with tempfile.TemporaryDirectory() as work:
        for size in args.sizes:
            repeats = min(args.repeats, 2) if size == "large" else args.repeats
            rows += bench_size(
                size, repeats, args.threads, Path(work), warmup=not args.no_warmup, allocator=args.allocator
            )
    import onnxruntime
    import torch

    result = {
        "machine": f"{platform.machine()}, {args.threads} thread(s) per engine",
        "allocator": args.allocator,
        "torch": torch.__version__,
        "onnxruntime": onnxruntime.__version__,
        "rows": rows,
    }
    Path(args.output).write_text(json.dumps(result, indent=1))
    print(f"[onnx bench] wrote {args.output}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
