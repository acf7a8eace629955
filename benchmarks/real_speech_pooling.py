"""Real-speech learning check of the poolings (issue 20): mean, MASP and ASP trained from scratch on EmoDB.

A small `WavLMForMASPClassification` (WavLM architecture, width 128, 4 layers, every parameter trainable including
the convolutional feature encoder) is trained through the public API (`FocalLossTrainer`) once per pooling/loss
variant, with the same data, split, seed and budget, and evaluated on two held-out speakers. It prints (and with
`--output` writes) a table of UAR and macro-F1, plus, with `--diagnose`, what issue 20 asks to look at: NaN/inf,
the gradient norm before clipping, the share of the gradient in each part of the model, the scale of the mean and
standard-deviation features, how close the variances come to the floor, MASP's layer weights and ASP's attention.

The corpus is not shipped and nothing is downloaded. Get the Berlin Database of Emotional Speech (EmoDB,
Burkhardt et al., Interspeech 2005; 535 utterances, 10 actors, 7 emotions) from http://emodb.bilderbar.info/
(the `wav/` folder of `download.zip`), or any copy whose files keep the corpus names (``03a01Fa.wav``: speaker 03,
text a01, emotion F = happy, version a). Pass the folder holding the wav files (searched recursively) as
`--data-dir`. Clips are resampled to 16 kHz and cut or zero-padded to `--clip-seconds` (2 s, as in the issue);
the feature extractor normalises each clip.

Usage (one thread; each variant takes minutes to tens of minutes on one CPU core):
    python benchmarks/real_speech_pooling.py --data-dir /path/to/emodb/wav --variants mean-ce masp-ce asp-ce \\
        --output benchmarks/real_speech_pooling.json

A variant is ``<pooling>-<loss>`` with pooling in {mean, masp, asp} and loss in {ce, focal}, optionally followed
by ``+option`` switches (see `VARIANT_OPTIONS`), e.g. ``masp-ce+layernorm``, ``masp-ce+rawlast`` or
``masp-ce+lr=5e-4``; without switches the model's configuration defaults apply.
"""

from __future__ import annotations

import argparse
import json
import math
import re
import sys
import tempfile
import time
from collections import Counter, defaultdict
from pathlib import Path

import numpy as np
import soundfile as sf
import torch
from datasets import Dataset
from transformers import TrainerCallback

from hf_ser import WavLMForMASPClassification, WavLMMASPConfig, build_feature_extractor
from hf_ser.audio import SAMPLING_RATE, resample, to_float32, to_mono
from hf_ser.processing.data_collator import AudioDataCollator
from hf_ser.training.trainer import FocalLossTrainer, SERTrainingArguments, classification_metrics

# EmoDB's emotion letters (German initials): W Wut (anger), L Langeweile (boredom), E Ekel (disgust),
# A Angst (fear), F Freude (happiness), T Trauer (sadness), N neutral.
EMODB_EMOTIONS = {
    "W": "anger",
    "L": "boredom",
    "E": "disgust",
    "A": "fear",
    "F": "happiness",
    "T": "sadness",
    "N": "neutral",
}
EMODB_NAME = re.compile(r"^(?P<speaker>\d\d)(?P<text>[ab]\d\d)(?P<emotion>[WLEAFTN])(?P<version>[a-z])$")

# Extra per-variant switches, ``+name`` or ``+name=value`` after the variant: what each sets.
VARIANT_OPTIONS = {
    "layernorm": "config masp_layer_norm=True (each layer layer-normalised before its statistics)",
    "finalln": "MASP's last layer taken after the encoder's final LayerNorm (the transformers-4 layout the papers "
    "used): config masp_normalized_last_layer=True where hf_ser has it, else applied by this script",
    "rawlast": "MASP's last layer without the final LayerNorm: config masp_normalized_last_layer=False (older hf_ser: "
    "the only behaviour)",
    "lr": "learning rate, e.g. +lr=5e-4",
    "clip": "max_grad_norm, e.g. +clip=0 (no clipping)",
}


# hf_ser versions with `masp_normalized_last_layer` choose MASP's last layer in the config; older ones pooled the
# un-normalised last layer only.
HAS_LAST_LAYER_OPTION = "masp_normalized_last_layer" in WavLMMASPConfig.__annotations__


# ------------------------------------------------------------------------------------------------- data
def load_emodb(data_dir: Path, clip_seconds: float) -> Dataset:
    """Every EmoDB-named wav under `data_dir` as rows {audio (16 kHz float32), label, speaker, name}."""
    rows = defaultdict(list)
    length = int(round(clip_seconds * SAMPLING_RATE))
    labels = sorted(EMODB_EMOTIONS)
    for path in sorted(data_dir.rglob("*.wav")):
        match = EMODB_NAME.match(path.stem)
        if match is None:
            continue
        array, rate = sf.read(str(path), dtype="int16", always_2d=False)
        wave = resample(to_mono(to_float32(array)), rate)[:length]
        wave = np.pad(wave, (0, length - len(wave))).astype(np.float32)
        rows["audio"].append(wave)
        rows["label"].append(labels.index(match["emotion"]))
        rows["speaker"].append(match["speaker"])
        rows["name"].append(path.stem)
    if not rows:
        raise SystemExit(
            f"No EmoDB-named wav files (like 03a01Fa.wav) under {data_dir}; see this script's docstring."
        )
    return Dataset.from_dict(dict(rows))


def speaker_split(dataset: Dataset, held_out: list[str]) -> tuple[Dataset, Dataset]:
    speakers = set(dataset["speaker"])
    missing = set(held_out) - speakers
    if missing:
        raise SystemExit(f"Held-out speakers {sorted(missing)} are not in the corpus ({sorted(speakers)}).")
    test = dataset.filter(lambda row: row["speaker"] in held_out)
    train = dataset.filter(lambda row: row["speaker"] not in held_out)
    absent = set(range(len(EMODB_EMOTIONS))) - set(test["label"])
    if absent:
        raise SystemExit(f"Held-out speakers {held_out} lack classes {sorted(absent)}; pick others.")
    return train, test


# ------------------------------------------------------------------------------------------------- model
def small_wavlm_config(
    pooling: str, loss: str, options: dict[str, str], labels: list[str], conv_dim: int = 64
) -> WavLMMASPConfig:
    """WavLM architecture (WavLM-large's layer-norm front end and pre-LN layers), width 128, 4 layers, all
    trainable; the 7 convolutions of the waveform encoder have `conv_dim` channels (512 in WavLM; 64 keeps a step
    near 2 s on one CPU thread)."""
    encoder = {
        "model_type": "wavlm",
        "hidden_size": 128,
        "num_hidden_layers": 4,
        "num_attention_heads": 4,
        "intermediate_size": 512,
        "conv_dim": (conv_dim,) * 7,
        "feat_extract_norm": "layer",
        "do_stable_layer_norm": True,
        "conv_bias": False,
        "num_conv_pos_embeddings": 64,
        "num_conv_pos_embedding_groups": 16,
        "num_buckets": 320,
        "max_bucket_distance": 800,
    }
    extra = {}
    if "layernorm" in options:
        extra["masp_layer_norm"] = True
    if HAS_LAST_LAYER_OPTION and ("finalln" in options or "rawlast" in options):
        extra["masp_normalized_last_layer"] = "finalln" in options
    return WavLMMASPConfig(
        encoder_config=encoder,
        pooling=pooling,
        loss=loss,
        focal_gamma=2.0 if loss == "focal" else 0.0,
        num_trainable_layers=None,
        freeze_feature_encoder=False,
        head_hidden_size=128,
        id2label=dict(enumerate(labels)),
        label2id={name: i for i, name in enumerate(labels)},
        **extra,
    )


def _normalise_last_recorded_layer(model: WavLMForMASPClassification) -> None:
    """Make MASP read the last layer after the encoder's final LayerNorm (pre-LN encoders), as `hidden_states[-1]`
    was in transformers 4."""
    recorder, final_norm = model.layer_recorder, model.encoder.encoder.layer_norm
    last = model.config.encoder_config.num_hidden_layers - 1
    stop = recorder.stop

    def stop_and_normalise():
        outputs = stop()
        if last in outputs:
            outputs[last] = final_norm(outputs[last])
        return outputs

    recorder.stop = stop_and_normalise


# ------------------------------------------------------------------------------------------------- diagnostics
def _rms(tensor: torch.Tensor) -> float:
    return tensor.detach().float().pow(2).mean().sqrt().item()


class PoolingProbe:
    """Forward hook on the pooling module: feature scales, variance floor, layer weights, ASP attention."""

    def __init__(self, model: WavLMForMASPClassification):
        self.model = model
        self.last: dict = {}
        self.attention_weights: torch.Tensor | None = None
        model.pooling.register_forward_hook(self.hook)
        if model.config.pooling == "asp":
            model.pooling.attention.register_forward_hook(self.attention_hook)

    def attention_hook(self, module, args, output):
        self.attention_scores = output.detach().squeeze(-1)

    def hook(self, module, args, output):
        if not module.training:
            return
        from hf_ser.models.pooling import VARIANCE_FLOOR, _frame_weights, weighted_mean_std

        hidden, mask = args[0], args[1] if len(args) > 1 else None
        stats: dict = {"nonfinite_pooled": int((~torch.isfinite(output)).sum())}
        with torch.no_grad():
            if self.model.config.pooling == "masp":
                layers = list(hidden)
                weights = _frame_weights(layers[0], mask)
                per = [weighted_mean_std(layer.float(), weights) for layer in layers]
                stats["mu_rms"] = [round(_rms(m), 4) for m, _ in per]
                stats["sigma_rms"] = [round(_rms(s), 4) for _, s in per]
                stats["sigma_min"] = [float(f"{s.min().item():.3g}") for _, s in per]
                stats["at_floor"] = [
                    float((s <= math.sqrt(VARIANCE_FLOOR) * 1.001).float().mean()) for _, s in per
                ]
                stats["layer_weights"] = [
                    round(x, 3) for x in torch.softmax(module.layer_weights.float(), 0).tolist()
                ]
            elif self.model.config.pooling == "asp":
                scores = self.attention_scores
                if mask is not None:
                    scores = scores.masked_fill(~mask.bool(), float("-inf"))
                attention = torch.softmax(scores.float(), dim=1)
                valid = (
                    mask.sum(1).float()
                    if mask is not None
                    else torch.full_like(attention[:, 0], scores.shape[1])
                )
                entropy = -(attention * attention.clamp_min(1e-30).log()).sum(1) / valid.log()
                stats["attn_max"] = round(attention.max(1).values.mean().item(), 4)
                stats["attn_entropy_norm"] = round(entropy.mean().item(), 4)
                stats["score_range"] = round(
                    (scores.masked_fill(~torch.isfinite(scores), 0)).abs().max().item(), 3
                )
                half = output.shape[-1] // 2
                stats["mu_rms"], stats["sigma_rms"] = (
                    round(_rms(output[:, :half]), 4),
                    round(_rms(output[:, half:]), 4),
                )
                stats["sigma_min"] = float(f"{output[:, half:].min().item():.3g}")
                stats["at_floor"] = float(
                    (output[:, half:] <= math.sqrt(VARIANCE_FLOOR) * 1.001).float().mean()
                )
                # The plain (unweighted) statistics of the same frames, for comparison.
                _, plain_sigma = weighted_mean_std(hidden.float(), _frame_weights(hidden, mask))
                stats["plain_sigma_rms"] = round(_rms(plain_sigma), 4)
            else:
                stats["mu_rms"] = round(_rms(output), 4)
            stats["hidden_rms"] = round(_rms(hidden[-1] if isinstance(hidden, (list, tuple)) else hidden), 4)
        self.last = stats


class DiagnosticsCallback(TrainerCallback):
    """Every `every` steps: grad norm before clipping (from the Trainer's log), post-clip gradient shares by model
    part, non-finite gradients, and the pooling probe's statistics."""

    def __init__(self, model, probe: PoolingProbe, every: int):
        self.model, self.probe, self.every = model, probe, every
        self.records: list[dict] = []
        self.nonfinite_grad_steps = 0
        self.max_grad_norm_seen = 0.0
        self.grad_norms: list[float] = []

    @staticmethod
    def part(name: str) -> str:
        if name.startswith("encoder.feature_extractor"):
            return "conv"
        if name.startswith("encoder."):
            return "transformer"
        return name.split(".")[0]  # pooling / head

    def on_pre_optimizer_step(self, args, state, control, **kwargs):
        norms = defaultdict(float)
        bad = 0
        for name, parameter in self.model.named_parameters():
            if parameter.grad is None:
                continue
            grad = parameter.grad.detach().float()
            bad += int((~torch.isfinite(grad)).sum())
            norms[self.part(name)] += grad.pow(2).sum().item()
        if bad:
            self.nonfinite_grad_steps += 1
        if state.global_step % self.every == 0:
            total = math.sqrt(sum(norms.values())) or 1.0
            self.pending = {
                "step": state.global_step,
                "grad_share": {k: round(math.sqrt(v) / total, 3) for k, v in norms.items()},
                **self.probe.last,
            }

    def on_log(self, args, state, control, logs=None, **kwargs):
        logs = logs or {}
        if "grad_norm" in logs:
            self.grad_norms.append(float(logs["grad_norm"]))
        pending = getattr(self, "pending", None)
        if pending is not None and "loss" in logs:
            pending.update(
                loss=round(logs["loss"], 4), grad_norm_preclip=round(logs.get("grad_norm", float("nan")), 3)
            )
            self.records.append(pending)
            print("diag", json.dumps(pending), flush=True)
            self.pending = None


# ------------------------------------------------------------------------------------------------- runs
def parse_variant(variant: str) -> tuple[str, str, dict[str, str]]:
    base, *switches = variant.split("+")
    pooling, _, loss = base.partition("-")
    if pooling not in ("mean", "masp", "asp") or loss not in ("ce", "focal"):
        raise SystemExit(f"Variant {variant!r}: expected <mean|masp|asp>-<ce|focal>[+option...].")
    options = {}
    for switch in switches:
        name, _, value = switch.partition("=")
        if name not in VARIANT_OPTIONS:
            raise SystemExit(f"Unknown option {name!r} in {variant!r}; known: {sorted(VARIANT_OPTIONS)}.")
        options[name] = value
    return pooling, loss, options


def run_variant(variant: str, train: Dataset, test: Dataset, cli) -> dict:
    pooling, loss, options = parse_variant(variant)
    torch.manual_seed(cli.seed)
    labels = [EMODB_EMOTIONS[k] for k in sorted(EMODB_EMOTIONS)]
    model = WavLMForMASPClassification(small_wavlm_config(pooling, loss, options, labels, cli.conv_dim))
    if "finalln" in options and not HAS_LAST_LAYER_OPTION:
        _normalise_last_recorded_layer(model)
    probe = PoolingProbe(model)
    diagnostics = DiagnosticsCallback(model, probe, every=cli.diagnose_every)
    steps_per_epoch = math.ceil(len(train) / cli.batch_size)
    with tempfile.TemporaryDirectory() as output_dir:
        args = SERTrainingArguments(
            output_dir=output_dir,
            per_device_train_batch_size=cli.batch_size,
            per_device_eval_batch_size=32,
            num_train_epochs=cli.epochs,
            max_steps=cli.max_steps or -1,
            learning_rate=float(options.get("lr") or cli.lr),
            lr_scheduler_type="cosine",
            warmup_steps=int(cli.warmup * (cli.max_steps or cli.epochs * steps_per_epoch)),
            weight_decay=0.01,
            max_grad_norm=float(options.get("clip") or cli.max_grad_norm),
            logging_steps=cli.diagnose_every,
            # The learning curve: the held-out speakers are scored every `--eval-every` steps. The curve is
            # reported next to the final figures; no checkpoint is selected by it.
            eval_strategy="steps" if cli.eval_every else "no",
            eval_steps=cli.eval_every or None,
            save_strategy="no",
            report_to=[],
            seed=cli.seed,
            dataloader_num_workers=0,
            disable_tqdm=True,
            use_cpu=True,
        )
        trainer = FocalLossTrainer(
            model=model,
            args=args,
            train_dataset=train,
            eval_dataset=test if cli.eval_every else None,
            data_collator=AudioDataCollator(build_feature_extractor(), max_duration_s=None),
            compute_metrics=classification_metrics(),
            callbacks=[diagnostics],
        )
        start = time.perf_counter()
        result = trainer.train()
        seconds = time.perf_counter() - start
        curve = [
            {
                "step": log["step"],
                "uar": round(log["eval_uar"], 4),
                "f1_macro": round(log["eval_f1_macro"], 4),
            }
            for log in trainer.state.log_history
            if "eval_uar" in log
        ]
        prediction = trainer.predict(test)
        metrics = prediction.metrics
        predictions = prediction.predictions
        predictions = predictions[0] if isinstance(predictions, tuple) else predictions
    predicted = Counter(np.asarray(predictions).argmax(-1).tolist())
    norms = np.array(diagnostics.grad_norms) if diagnostics.grad_norms else np.array([np.nan])
    return {
        "variant": variant,
        "uar": metrics.get("test_uar"),
        "f1_macro": metrics.get("test_f1_macro"),
        "eval_loss": metrics.get("test_loss"),
        "train_loss": result.training_loss,
        "steps": result.global_step,
        "train_seconds": round(seconds, 1),
        "predicted_classes": len(predicted),
        "nonfinite_grad_steps": diagnostics.nonfinite_grad_steps,
        "grad_norm_preclip_median": float(np.nanmedian(norms)),
        "grad_norm_preclip_max": float(np.nanmax(norms)),
        "curve": curve,
        "diagnostics": diagnostics.records,
    }


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "--data-dir", type=Path, required=True, help="folder with EmoDB wav files (recursive)"
    )
    parser.add_argument("--variants", nargs="+", default=["mean-ce", "masp-ce", "masp-focal", "asp-ce"])
    parser.add_argument(
        "--held-out", nargs="+", default=["15", "16"], help="test speakers (default: a man and a woman)"
    )
    parser.add_argument("--clip-seconds", type=float, default=2.0)
    parser.add_argument("--epochs", type=float, default=40)
    parser.add_argument("--max-steps", type=int, default=0, help="overrides --epochs when > 0")
    parser.add_argument("--batch-size", type=int, default=16)
    parser.add_argument("--lr", type=float, default=2e-3)
    parser.add_argument("--warmup", type=float, default=0.0, help="warm-up as a fraction of the steps")
    parser.add_argument("--max-grad-norm", type=float, default=1.0)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument(
        "--conv-dim", type=int, default=64, help="channels of the convolutional waveform encoder"
    )
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--diagnose-every", type=int, default=25)
    parser.add_argument(
        "--eval-every",
        type=int,
        default=0,
        help="score the test speakers every N steps (learning curve; 0: off)",
    )
    parser.add_argument("--output", type=Path, help="append results (JSON lines) to this file")
    cli = parser.parse_args(argv)
    torch.set_num_threads(cli.threads)

    dataset = load_emodb(cli.data_dir, cli.clip_seconds)
    train, test = speaker_split(dataset, cli.held_out)
    print(f"{len(train)} training clips, {len(test)} test clips (speakers {cli.held_out})", flush=True)
    results = []
    for variant in cli.variants:
        print(f"== {variant}", flush=True)
        row = run_variant(variant, train, test, cli)
        row.update(
            held_out=cli.held_out,
            seed=cli.seed,
            epochs=cli.epochs,
            max_steps=cli.max_steps,
            lr=cli.lr,
            warmup=cli.warmup,
            batch_size=cli.batch_size,
            clip_seconds=cli.clip_seconds,
            conv_dim=cli.conv_dim,
        )
        results.append(row)
        print("result", json.dumps({k: v for k, v in row.items() if k != "diagnostics"}), flush=True)
        if cli.output:
            with cli.output.open("a") as handle:
                handle.write(json.dumps(row) + "\n")
    print("\n| variant | UAR | macro-F1 | classes predicted | steps | train s |\n|---|---|---|---|---|---|")
    for row in results:
        print(
            f"| {row['variant']} | {row['uar']:.3f} | {row['f1_macro']:.3f} | {row['predicted_classes']} | "
            f"{row['steps']} | {row['train_seconds']:.0f} |"
        )


if __name__ == "__main__":
    sys.exit(main())
