"""Benchmark 4's cross-check (issue 14): one training step split into forward, backward and optimizer time, full
fine-tuning against paper 000's partial fine-tuning (15 of 24 layers), one model in memory at a time.

Benchmark 4 keeps both WavLM-large-sized models and their optimizer state in memory and interleaves their steps;
this script builds them one after the other, so the two figures bracket what a user sees. Random weights,
layer-norm front end, batch 2 x 3 s, one thread, the Trainer's default fused AdamW.

Usage: python benchmarks/training_step_breakdown.py [--size large|base] [--steps 3] [--output FILE.json]
"""

from __future__ import annotations

import argparse
import importlib.util
import statistics
import sys
import time
from pathlib import Path

import torch

_spec = importlib.util.spec_from_file_location(
    "run_benchmarks", Path(__file__).with_name("run_benchmarks.py")
)
run_benchmarks = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(run_benchmarks)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--size", default="large", choices=("base", "large"))
    parser.add_argument("--steps", type=int, default=3)
    parser.add_argument("--output", type=Path)
    args = parser.parse_args(argv)

    from hf_ser import WavLMForMASPClassification, WavLMMASPConfig

    torch.set_num_threads(1)
    encoder = run_benchmarks.encoder_config(args.size)
    layers = encoder["num_hidden_layers"]
    waveform, labels = torch.randn(2, 3 * 16_000), torch.tensor([0, 1])
    rows = {}
    for case, trainable in (("full", None), ("partial", round(layers * 15 / 24))):
        torch.manual_seed(0)
        model = WavLMForMASPClassification(
            WavLMMASPConfig(encoder_config=encoder, num_trainable_layers=trainable)
        )
        model.train()
        optimizer = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=1e-5, fused=True)
        samples = []
        for _ in range(args.steps + 1):  # the first step warms up
            start = time.perf_counter()
            loss = model(waveform, labels=labels).loss
            forward = time.perf_counter()
            loss.backward()
            backward = time.perf_counter()
            optimizer.step()
            optimizer.zero_grad(set_to_none=True)
            samples.append((forward - start, backward - forward, time.perf_counter() - backward))
        parts = [statistics.median(values) for values in zip(*samples[1:], strict=True)]
        rows[case] = {
            "trainable_layers": trainable or layers,
            "forward_s": round(parts[0], 3),
            "backward_s": round(parts[1], 3),
            "optimizer_s": round(parts[2], 3),
            "step_s": round(sum(parts), 3),
        }
        del model, optimizer
    rows["partial_speedup"] = round(rows["full"]["step_s"] / rows["partial"]["step_s"], 3)
    run_benchmarks.report_json({"size": args.size, "layers": layers, **rows}, args.output)
    return 0


if __name__ == "__main__":
    sys.exit(main())
