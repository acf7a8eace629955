"""int8 vs fp32 agreement on the demo's trained model and its held-out voices (issue 19).

Usage:
    hf-ser demo --output-dir demo_output                 # trains the demo model (a few minutes)
    python benchmarks/onnx_demo_agreement.py demo_output  # exports fp32 and int8, compares, writes JSON

Predicts the demo's held-out voices (validation, test1, test2 of its synthetic corpus) with the PyTorch model, the
fp32 export and the int8 export (length-bucketed batches of 8, as `hf-ser evaluate`; int8 also one clip at a time,
since its activations are quantised per batch), and reports macro-F1 and top-1 agreement with fp32.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("demo_dir", help="Output folder of `hf-ser demo` (holds model/ and corpus/).")
    parser.add_argument(
        "--output", default=None, help="JSON to write (default: DEMO_DIR/onnx_agreement.json)."
    )
    args = parser.parse_args(argv)

    import datasets
    import torch
    from transformers import AutoFeatureExtractor, AutoModelForAudioClassification

    import hf_ser  # noqa: F401
    from hf_ser import export_onnx
    from hf_ser.data import load_msp_podcast
    from hf_ser.evaluation.metrics import load_metric
    from hf_ser.evaluation.report import dataset_waveforms
    from hf_ser.inference.predict import predict_logits
    from hf_ser.onnx import ORTSERModel

    torch.set_num_threads(1)
    demo = Path(args.demo_dir)
    model_dir = demo / "model"
    model = AutoModelForAudioClassification.from_pretrained(model_dir).eval()
    extractor = AutoFeatureExtractor.from_pretrained(model_dir)
    datasets.disable_progress_bars()
    corpus = load_msp_podcast(demo / "corpus", "categorical", cache_dir=demo / "datasets_cache")
    held_out = datasets.concatenate_datasets(
        [corpus[s] for s in ("validation", "test1", "test2") if s in corpus]
    )
    waves = dataset_waveforms(held_out)
    truth = np.asarray(held_out["label"])
    keep = truth >= 0

    folders = {kind: export_onnx(model_dir, demo / f"onnx-{kind}", quantize=None if kind == "fp32" else "int8")
               for kind in ("fp32", "int8")}  # fmt: skip
    sessions = {kind: ORTSERModel.from_pretrained(folder) for kind, folder in folders.items()}
    predicted = {
        "pytorch": predict_logits(model, extractor, waves).argmax(-1),
        "onnx fp32": sessions["fp32"].predict_logits(waves).argmax(-1),
        "onnx int8": sessions["int8"].predict_logits(waves).argmax(-1),
        "onnx int8, batch 1": sessions["int8"].predict_logits(waves, batch_size=1).argmax(-1),
    }
    f1 = load_metric("f1")
    result = {"held_out_clips": int(keep.sum()), "systems": {}}
    for name, labels in predicted.items():
        scores = f1.compute(
            predictions=labels[keep], references=truth[keep], num_labels=model.config.num_labels
        )
        result["systems"][name] = {
            "f1_macro": float(scores["f1_macro"]),
            "top1_agreement_with_pytorch": float(np.mean(labels == predicted["pytorch"])),
            "top1_agreement_with_onnx_fp32": float(np.mean(labels == predicted["onnx fp32"])),
        }
    base = result["systems"]["onnx fp32"]["f1_macro"]
    for name in ("onnx int8", "onnx int8, batch 1"):
        result["systems"][name]["f1_macro_change_vs_fp32"] = result["systems"][name]["f1_macro"] - base
    result["model_MiB"] = {k: (f / "model.onnx").stat().st_size / 2**20 for k, f in folders.items()}
    output = Path(args.output or demo / "onnx_agreement.json")
    output.write_text(json.dumps(result, indent=1))
    print(json.dumps(result, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
