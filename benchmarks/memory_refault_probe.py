"""Benchmark 10's allocator probe (issue 19): what does it cost a process to use memory it has just freed?

A padded batch of 8 clips of 11 s makes 577 MB activations in the convolutional front end. glibc hands every freed
block over 32 MB back to the system, so the next forward pass faults it in again; ONNX Runtime's arena keeps its
memory. This script times, in one process: allocating, filling and freeing a block of `--mib` MiB `--repeats`
times with glibc's default, then the same after `onnx_benchmark.retain_freed_memory()` (glibc keeps freed memory).
It prints milliseconds per repeat and per MiB; how much the default costs depends on the machine (on this project's
VMs, memory handed back may have to come from the host again).

Usage: python benchmarks/memory_refault_probe.py [--mib 576] [--repeats 6]
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).parent))


def cycle_ms(mib: int, repeats: int) -> list[float]:
    out = []
    for _ in range(repeats):
        start = time.perf_counter()
        block = np.empty(mib * 2**20 // 4, dtype=np.float32)
        block.fill(1.0)
        del block
        out.append(round((time.perf_counter() - start) * 1000, 1))
    return out


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--mib", type=int, default=576)
    parser.add_argument("--repeats", type=int, default=6)
    args = parser.parse_args(argv)
    from onnx_benchmark import retain_freed_memory

    default = cycle_ms(args.mib, args.repeats)
    retain_freed_memory()
    retained = cycle_ms(args.mib, args.repeats)
    report = {
        "mib": args.mib,
        "default_ms": default,
        "retained_ms": retained,
        "default_ms_per_mib_median": round(float(np.median(default)) / args.mib, 3),
        "retained_ms_per_mib_median": round(float(np.median(retained)) / args.mib, 3),
    }
    print(json.dumps(report))
    return 0


if __name__ == "__main__":
    sys.exit(main())
