"""Issue 20's collapse probe: what happens to the encoder's residual stream when the small from-scratch model of
`real_speech_pooling.py` trains at a high learning rate.

Trains the same model (WavLM architecture, width 128, 4 layers, everything trainable) on EmoDB through
`FocalLossTrainer` for `--steps` steps at `--lr` (no warm-up, cosine, clipping 1.0, batch 16) and, every 10 steps,
runs a fixed batch of 16 held-out clips and splits the last layer's output *before* the encoder's final LayerNorm
into a vector shared by every frame of every clip, the clips' differences from it, and each clip's frames'
differences from the clip's mean (rms of each), and the same two spreads *after* the LayerNorm, which is what
mean pooling and ASP read. Prints one JSON line per measurement.

Usage: python benchmarks/residual_stream_probe.py --data-dir /path/to/emodb/wav --pooling asp --steps 80 --lr 2e-3
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import sys
import tempfile
from pathlib import Path

import torch
from transformers import TrainerCallback

from hf_ser import WavLMForMASPClassification, build_feature_extractor
from hf_ser.processing.data_collator import AudioDataCollator
from hf_ser.training.trainer import FocalLossTrainer, SERTrainingArguments

_spec = importlib.util.spec_from_file_location(
    "real_speech_pooling", Path(__file__).with_name("real_speech_pooling.py")
)
check = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(check)


def _rms(tensor: torch.Tensor) -> float:
    return round(tensor.pow(2).mean().sqrt().item(), 4)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--data-dir", type=Path, required=True)
    parser.add_argument("--pooling", default="asp", choices=("mean", "masp", "asp"))
    parser.add_argument("--steps", type=int, default=80)
    parser.add_argument("--lr", type=float, default=2e-3)
    parser.add_argument("--conv-dim", type=int, default=32)
    cli = parser.parse_args(argv)
    torch.set_num_threads(1)

    train, test = check.speaker_split(check.load_emodb(cli.data_dir, 2.0), ["15", "16"])
    labels = [check.EMODB_EMOTIONS[key] for key in sorted(check.EMODB_EMOTIONS)]
    torch.manual_seed(0)
    model = WavLMForMASPClassification(check.small_wavlm_config(cli.pooling, "ce", {}, labels, cli.conv_dim))
    collator = AudioDataCollator(build_feature_extractor(), max_duration_s=None)
    probe = collator.for_eval()([test[i] for i in range(0, len(test), 8)])
    captured = {}
    final_norm = model.encoder.encoder.layer_norm
    final_norm.register_forward_hook(
        lambda _m, args, out: captured.update(raw=args[0].detach(), out=out.detach())
    )

    def measure(step: int) -> None:
        training = model.training
        model.eval()
        with torch.no_grad():
            model(probe["input_values"], attention_mask=probe.get("attention_mask"))
        model.train(training)
        raw, out = captured["raw"], captured["out"]
        shared = raw.mean(dim=(0, 1))
        row = {
            "step": step,
            "raw_rms": _rms(raw),
            "raw_shared_rms": _rms(shared),
            "raw_between_clips_rms": _rms(raw.mean(dim=1) - shared),
            "raw_within_clip_rms": _rms(raw - raw.mean(dim=1, keepdim=True)),
            "normed_between_clips_rms": _rms(out.mean(dim=1) - out.mean(dim=(0, 1))),
            "normed_within_clip_rms": _rms(out - out.mean(dim=1, keepdim=True)),
        }
        print(json.dumps(row), flush=True)

    class EveryTenSteps(TrainerCallback):
        def on_step_end(self, args, state, control, **kwargs):
            if state.global_step % 10 == 0:
                measure(state.global_step)

    measure(0)
    with tempfile.TemporaryDirectory() as output_dir:
        args = SERTrainingArguments(
            output_dir=output_dir, per_device_train_batch_size=16, max_steps=cli.steps, learning_rate=cli.lr,
            lr_scheduler_type="cosine", weight_decay=0.01, max_grad_norm=1.0, report_to=[], save_strategy="no",
            logging_strategy="no", seed=0, disable_tqdm=True, use_cpu=True,
        )  # fmt: skip
        trainer = FocalLossTrainer(
            model=model, args=args, train_dataset=train, data_collator=collator, callbacks=[EveryTenSteps()]
        )
        trainer.train()
    return 0


if __name__ == "__main__":
    sys.exit(main())
