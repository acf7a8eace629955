"""hf_ser benchmarks: ratios measured side by side in one run (issue 9).

Usage:
    python benchmarks/run_benchmarks.py                # WavLM-base-sized random config on CPU, writes results.md
    python benchmarks/run_benchmarks.py --quick        # tiny sizes, a smoke run of every benchmark
    python benchmarks/run_benchmarks.py --device cuda --large --dtype bfloat16   # on a GPU machine

Every comparison runs both sides in the same process on the same inputs, alternating repetitions, and reports the
median time. Random weights: speed does not depend on the values.
"""

from __future__ import annotations

import argparse
import json
import platform
import statistics
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import torch

HERE = Path(__file__).parent
SR = 16_000


# ------------------------------------------------------------------------------------------------- configs
def encoder_config(size: str) -> dict:
    """WavLM-base-sized (768 x 12) or -large-sized (1024 x 24) random configs with a layer-norm conv front end
    (as WavLM-large), so that padded batches are exact for every model compared here."""
    common = {
        "model_type": "wavlm",
        "feat_extract_norm": "layer",
        "do_stable_layer_norm": True,
        "layerdrop": 0.0,
    }
    if size == "tiny":
        return {
            **common, "hidden_size": 64, "num_hidden_layers": 4, "num_attention_heads": 4, "intermediate_size": 128,
            "conv_dim": (32,) * 7, "num_conv_pos_embeddings": 16,
            "num_conv_pos_embedding_groups": 4, "num_buckets": 32, "max_bucket_distance": 100,
        }  # fmt: skip
    if size == "base":
        return {
            **common,
            "hidden_size": 768,
            "num_hidden_layers": 12,
            "num_attention_heads": 12,
            "intermediate_size": 3072,
        }
    return {
        **common,
        "hidden_size": 1024,
        "num_hidden_layers": 24,
        "num_attention_heads": 16,
        "intermediate_size": 4096,
    }


def timeit(fn, repeats: int) -> float:
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def report_json(report, output: Path | None) -> None:
    """Print a probe's JSON report and, with `output`, write it there too (the probes' one output format)."""
    text = json.dumps(report, indent=1)
    print(text)
    if output:
        output.write_text(text + "\n")


def compare(fns: dict, repeats: int, warmup: bool = True) -> dict[str, float]:
    """Median seconds per function, interleaving them so that machine noise hits every side alike. `warmup=False`
    for long workloads, where a first call's set-up cost is negligible."""
    # On a GPU the kernels run asynchronously: wait for them before reading the clock.
    sync = (
        torch.cuda.synchronize
        if torch.cuda.is_available() and torch.cuda.is_initialized()
        else (lambda: None)
    )
    for fn in fns.values() if warmup else ():
        fn()  # warm-up
    samples = {name: [] for name in fns}
    for _ in range(repeats):
        for name, fn in fns.items():
            sync()
            start = time.perf_counter()
            fn()
            sync()
            samples[name].append(time.perf_counter() - start)
    return {name: statistics.median(values) for name, values in samples.items()}


def build_models(size: str, device: str, dtype: torch.dtype):
    from transformers import WavLMConfig, WavLMForSequenceClassification, WavLMModel

    from hf_ser import WavLMForMASPClassification, WavLMMASPConfig

    enc = encoder_config(size)
    torch.manual_seed(0)
    ours = WavLMForMASPClassification(WavLMMASPConfig(encoder_config=enc, num_trainable_layers=None))
    ours_eager = WavLMForMASPClassification(
        WavLMMASPConfig(encoder_config=enc, num_trainable_layers=None, wavlm_attention="eager")
    )
    ours_eager.load_state_dict(ours.state_dict())
    wavlm_config = WavLMConfig(**{k: v for k, v in enc.items() if k != "model_type"}, num_labels=8)
    bare = WavLMModel(wavlm_config)
    bare.load_state_dict(ours.encoder.state_dict())
    hf_cls = WavLMForSequenceClassification(wavlm_config)
    hf_cls.wavlm.load_state_dict(ours.encoder.state_dict())
    models = {"ours_sdpa": ours, "ours_eager": ours_eager, "bare": bare, "hf_cls": hf_cls}
    return {k: m.to(device=device, dtype=dtype).eval() for k, m in models.items()}


def batch_inputs(lengths_s, device, dtype):
    from hf_ser import build_feature_extractor

    rng = np.random.default_rng(0)
    waves = [rng.standard_normal(int(s * SR)).astype(np.float32) * 0.1 for s in lengths_s]
    inputs = build_feature_extractor()(waves, sampling_rate=SR, padding=True, return_tensors="pt")
    return inputs["input_values"].to(device, dtype), inputs["attention_mask"].to(device)


# ------------------------------------------------------------------------------------------------- benchmarks
def bench_overhead(args, dtype) -> list[dict]:
    """1. Pooling + head cost over the bare encoder, and transformers' classifier, on the same batch."""
    models = build_models(args.size, args.device, dtype)
    x, mask = batch_inputs([args.clip_s] * args.batch, args.device, dtype)

    def run(name):
        def fn():
            with torch.inference_mode():
                models[name](x, attention_mask=mask)

        return fn

    t = compare({name: run(name) for name in ("bare", "ours_eager", "hf_cls", "ours_sdpa")}, args.repeats)
    return [
        {"benchmark": "1 inference overhead", "case": "bare WavLMModel (eager)", "seconds": t["bare"], "ratio": 1.0},
        {"benchmark": "1 inference overhead", "case": "WavLMForSequenceClassification (eager)", "seconds": t["hf_cls"],
         "ratio": t["hf_cls"] / t["bare"]},
        {"benchmark": "1 inference overhead", "case": "WavLMForMASPClassification, eager attention (pooling+head overhead)",
         "seconds": t["ours_eager"], "ratio": t["ours_eager"] / t["bare"], "target": "<= 1.03"},
        {"benchmark": "1 inference overhead", "case": "WavLMForMASPClassification, SDPA attention (default)",
         "seconds": t["ours_sdpa"], "ratio": t["ours_sdpa"] / t["bare"]},
    ]  # fmt: skip


def bench_batching(args, dtype) -> list[dict]:
    """2. Realistic length mix (2.75-11 s): arrival-order padded batches vs length-bucketed batches."""
    from hf_ser import build_feature_extractor
    from hf_ser.inference.predict import length_buckets, predict_logits

    models = build_models(args.size, args.device, dtype)
    model = models["ours_sdpa"]
    fe = build_feature_extractor()
    rng = np.random.default_rng(1)
    lengths_s = rng.uniform(2.75, 11.0, size=args.n_clips) * args.length_scale
    waves = [rng.standard_normal(int(s * SR)).astype(np.float32) * 0.1 for s in lengths_s]
    lengths = [len(w) for w in waves]

    def padded_fraction(batches):
        real = sum(lengths)
        total = sum(max(lengths[i] for i in b) * len(b) for b in batches)
        return 1 - real / total

    arrival_batches = [
        list(range(i, min(i + args.batch, len(waves)))) for i in range(0, len(waves), args.batch)
    ]
    bucket_batches = length_buckets(lengths, args.batch)
    outputs = {}

    def run(bucket):
        def fn():
            outputs[bucket] = predict_logits(model, fe, waves, batch_size=args.batch, bucket=bucket)

        return fn

    t = compare({"arrival": run(False), "bucketed": run(True)}, max(1, args.repeats // 2))
    max_diff = float(np.abs(outputs[True] - outputs[False]).max())
    return [
        {"benchmark": "2 batching", "case": f"arrival order ({args.n_clips} clips, batch {args.batch})",
         "seconds": t["arrival"], "ratio": 1.0, "padded_frames": padded_fraction(arrival_batches)},
        {"benchmark": "2 batching", "case": "length-bucketed (hf_ser default)", "seconds": t["bucketed"],
         "ratio": t["arrival"] / t["bucketed"], "padded_frames": padded_fraction(bucket_batches),
         "max_abs_logit_diff": max_diff, "target": "throughput >= 1.5x, padding < 5%"},
    ]  # fmt: skip


def bench_entry_points(args, dtype) -> list[dict]:
    """8. The batched entry points users call: `pipeline("audio-classification")` on a list with batch_size and
    `FocalLossTrainer.evaluate`, each in arrival order (transformers' defaults) vs hf_ser's length buckets."""
    import tempfile

    from datasets import Dataset
    from transformers import AudioClassificationPipeline, pipeline

    from hf_ser import AudioDataCollator, FocalLossTrainer, SERTrainingArguments, build_feature_extractor

    model = build_models(args.size, args.device, dtype)["ours_sdpa"]
    fe = build_feature_extractor()
    rng = np.random.default_rng(2)
    n_clips = max(8, args.n_clips * 3 // 4)
    lengths_s = rng.uniform(2.75, 11.0, size=n_clips) * args.length_scale
    waves = [rng.standard_normal(int(s * SR)).astype(np.float32) * 0.1 for s in lengths_s]
    device = torch.device(args.device)
    ours = pipeline("audio-classification", model=model, feature_extractor=fe, device=device, top_k=None)
    theirs = pipeline(
        "audio-classification", model=model, feature_extractor=fe, device=device, top_k=None,
        pipeline_class=AudioClassificationPipeline,
    )  # fmt: skip
    outputs: dict[str, object] = {}

    def classify(name, classifier):
        def fn():
            outputs[name] = classifier(waves, batch_size=args.batch)

        return fn

    fns = {"pipe_arrival": classify("pipe_arrival", theirs), "pipe_bucketed": classify("pipe_bucketed", ours)}
    eval_rows = dtype == torch.float32  # the collator feeds float32 inputs
    if eval_rows:
        data = Dataset.from_dict(
            {
                "audio": [{"array": w, "sampling_rate": SR} for w in waves],
                "label": [i % 8 for i in range(n_clips)],
            }
        )
        workdir = tempfile.mkdtemp()

        def evaluate(bucketing):
            trainer = FocalLossTrainer(
                model=model,
                args=SERTrainingArguments(
                    workdir, per_device_eval_batch_size=args.batch, eval_length_bucketing=bucketing,
                    report_to="none", use_cpu=args.device == "cpu", disable_tqdm=True,
                ),
                eval_dataset=data,
                data_collator=AudioDataCollator(fe, max_duration_s=None),
            )  # fmt: skip

            def fn():
                outputs[f"eval_{bucketing}"] = trainer.predict(data).predictions

            return fn

        fns.update({"eval_arrival": evaluate(False), "eval_bucketed": evaluate(True)})
    t = compare(fns, 1, warmup=False)

    def scores(results):
        return np.array([[r["score"] for r in sorted(one, key=lambda r: r["label"])] for one in results])

    pipe_diff = float(np.abs(scores(outputs["pipe_arrival"]) - scores(outputs["pipe_bucketed"])).max())
    name = f"8 entry points ({n_clips} clips of 2.75-11 s, batch {args.batch})"
    rows = [
        {"benchmark": name, "case": "pipeline(list, batch_size): transformers' AudioClassificationPipeline",
         "seconds": t["pipe_arrival"], "ratio": 1.0},
        {"benchmark": name, "case": "pipeline(list, batch_size): hf_ser's SERAudioClassificationPipeline (default)",
         "seconds": t["pipe_bucketed"], "ratio": t["pipe_arrival"] / t["pipe_bucketed"], "max_abs_score_diff": pipe_diff},
    ]  # fmt: skip
    if eval_rows:
        eval_diff = float(np.abs(outputs["eval_False"] - outputs["eval_True"]).max())
        rows += [
            {"benchmark": name, "case": "FocalLossTrainer.predict, dataset order (eval_length_bucketing=False)",
             "seconds": t["eval_arrival"], "ratio": 1.0},
            {"benchmark": name, "case": "FocalLossTrainer.predict, longest first (default)",
             "seconds": t["eval_bucketed"], "ratio": t["eval_arrival"] / t["eval_bucketed"],
             "max_abs_logit_diff": eval_diff},
        ]  # fmt: skip
    return rows


def loop_masp_reference(layers, lengths, weights):
    """Per-utterance loop like the challenge baseline's pooling code."""
    out = []
    probs = torch.softmax(weights, 0)
    for b, length in enumerate(lengths):
        feats = 0
        for layer in range(layers.shape[0]):
            h = layers[layer, b, :length]
            mu = h.mean(0)
            sigma = torch.sqrt((h**2).mean(0) - mu**2 + 1e-6)
            feats = feats + probs[layer] * torch.cat([mu, sigma])
        out.append(feats)
    return torch.stack(out)


def loop_asp_reference(pool, hidden, lengths):
    out = []
    for b, length in enumerate(lengths):
        h = hidden[b, :length]
        alpha = torch.softmax(pool.attention(h).squeeze(-1), 0)
        mu = (alpha[:, None] * h).sum(0)
        sigma = torch.sqrt(((alpha[:, None] * h**2).sum(0) - mu**2).clamp(min=1e-6))
        out.append(torch.cat([mu, sigma]))
    return torch.stack(out)


def bench_pooling(args, dtype) -> list[dict]:
    """3. Vectorised masked MASP/ASP vs a per-utterance loop at batch 32, with two reference rows each.

    - "loop overhead only": the same loop over 1-frame, 1-dimensional clips: the per-clip dispatch cost, which is
      what vectorising removes.
    - "floor": the least data work any exact implementation must do. MASP must read every valid frame of every
      layer once (timed as one sum over a tensor holding only those frames); ASP must run its attention MLP on every
      valid frame (timed on the valid frames packed together)."""
    from hf_ser.models.pooling import AttentiveStatisticsPooling, MultiLayerStatisticsPooling

    enc = encoder_config(args.size)
    layers_n, dim = enc["num_hidden_layers"], enc["hidden_size"]
    frames = int(args.clip_s * 50)
    rng = torch.Generator().manual_seed(0)
    hidden = torch.randn(layers_n, 32, frames, dim, generator=rng).to(args.device, dtype)
    lengths = torch.randint(frames // 4, frames + 1, (32,), generator=rng).tolist()
    mask = (torch.arange(frames)[None] < torch.tensor(lengths)[:, None]).to(args.device)
    masp = MultiLayerStatisticsPooling(layers_n).to(args.device, dtype)
    asp = AttentiveStatisticsPooling(dim, dim).to(args.device, dtype)  # as wide as the baseline's attention
    valid_all_layers = torch.cat([hidden[:, b, :n] for b, n in enumerate(lengths)], dim=1).contiguous()
    valid_last_layer = valid_all_layers[-1].contiguous()
    one_frame = torch.randn(layers_n, 32, 1, 1, generator=rng).to(args.device, dtype)
    one_frame_asp = AttentiveStatisticsPooling(1, 1).to(args.device, dtype)
    with torch.inference_mode():
        diff_masp = (
            (masp(hidden, mask) - loop_masp_reference(hidden, lengths, masp.layer_weights)).abs().max().item()
        )
        diff_asp = (asp(hidden[-1], mask) - loop_asp_reference(asp, hidden[-1], lengths)).abs().max().item()

        t = compare(
            {
                "masp_vec": lambda: masp(hidden, mask),
                "masp_loop": lambda: loop_masp_reference(hidden, lengths, masp.layer_weights),
                "masp_overhead": lambda: loop_masp_reference(one_frame, [1] * 32, masp.layer_weights),
                "masp_floor": lambda: valid_all_layers.sum(),
                "asp_vec": lambda: asp(hidden[-1], mask),
                "asp_loop": lambda: loop_asp_reference(asp, hidden[-1], lengths),
                "asp_overhead": lambda: loop_asp_reference(one_frame_asp, one_frame[-1], [1] * 32),
                "asp_floor": lambda: asp.attention(valid_last_layer),
            },
            max(args.repeats * 2, 25),  # cheap calls: many repetitions steady the medians
        )
    rows = []
    for name, label, diff in (("masp", "MASP", diff_masp), ("asp", "ASP", diff_asp)):
        loop, vec = t[f"{name}_loop"], t[f"{name}_vec"]
        overhead, floor = t[f"{name}_overhead"], t[f"{name}_floor"]
        floor_case = "one read of the valid frames" if name == "masp" else "attention MLP on the valid frames"
        rows += [
            {"benchmark": "3 pooling (batch 32)", "case": f"{label} per-utterance loop", "seconds": loop, "ratio": 1.0},
            {"benchmark": "3 pooling (batch 32)", "case": f"{label} vectorised masked (hf_ser)", "seconds": vec,
             "ratio": loop / vec, "max_abs_diff": diff, "target": "speed-up >= 10x"},
            {"benchmark": "3 pooling (batch 32)", "case": f"{label} reference: loop overhead only", "seconds": overhead,
             "share_of_loop": overhead / loop},
            {"benchmark": "3 pooling (batch 32)", "case": f"{label} reference: floor, {floor_case}", "seconds": floor,
             "share_of_loop": floor / loop},
        ]  # fmt: skip
    return rows


def _saved_tensor_bytes(step) -> int:
    """Bytes of the distinct tensors autograd keeps for backward during `step()`: the activation memory of a
    training step (weights and optimizer state excluded), measured the same way on any device."""
    storages: dict[int, int] = {}

    def pack(tensor):
        storage = tensor.untyped_storage()
        storages[storage.data_ptr()] = storage.nbytes()
        return tensor

    with torch.autograd.graph.saved_tensors_hooks(pack, lambda tensor: tensor):
        step()
    return sum(storages.values())


def bench_training_step(args, dtype) -> list[dict]:
    """4. One optimizer step (forward, backward, AdamW): the code before issue 14 (transformers' waveform encoder
    marks the waveform as requiring grad, so autograd runs back through every frozen layer), full fine-tuning now,
    and paper 000's partial fine-tuning now. One thread. Three encoders: WavLM-large's 24 x 1024, where paper 000
    trains 15 of 24 layers (the issue's partial fine-tuning target; the code before is left out there, it would
    need a third copy of the 315M-parameter model and its optimizer state in memory); WavLM-base's 12 x 768; and
    the 12 x 384 of the configuration issue 14 was measured on. The 12-layer encoders train 8 layers, the same
    share. The convolutional front end costs the same at every width, so its (frozen) share of the step is largest
    at width 384."""
    if args.quick:
        return _training_step_rows(args, dtype, "tiny", encoder_config("tiny"))
    narrow = {
        **encoder_config("base"),
        "hidden_size": 384,
        "num_attention_heads": 6,
        "intermediate_size": 1536,
    }
    return (
        _training_step_rows(args, dtype, "large", encoder_config("large"), cases=("full", "partial"))
        + _training_step_rows(args, dtype, "base", encoder_config("base"))
        + _training_step_rows(args, dtype, "base, width 384 (issue 14's configuration)", narrow)
    )


def _training_step_rows(
    args, dtype, size: str, enc: dict, cases: tuple[str, ...] = ("before", "full", "partial")
) -> list[dict]:
    from hf_ser import WavLMForMASPClassification, WavLMMASPConfig

    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    n_layers = enc["num_hidden_layers"]
    partial = round(n_layers * 15 / 24)
    torch.manual_seed(0)
    trainable_layers = {"before": None, "full": None, "partial": partial}
    models = {
        name: WavLMForMASPClassification(
            WavLMMASPConfig(encoder_config=enc, num_trainable_layers=trainable_layers[name])
        )
        for name in cases
    }
    reference = models[cases[0]].state_dict()
    for model in models.values():
        model.load_state_dict(reference)
        model.to(args.device, dtype).train()
    del reference
    if "before" in models:
        # What every encoder family's feature encoder did before: it sets `waveform.requires_grad = True` in
        # training.
        models["before"].encoder.feature_extractor._requires_grad = True
    x = torch.randn(2, int(args.train_clip_s * SR), device=args.device, dtype=dtype)
    labels = torch.randint(0, 8, (2,), device=args.device)
    # The fused AdamW is what the Trainer runs by default (`optim="adamw_torch_fused"`); torch's un-fused AdamW
    # loops over the parameters on CPU and took 4x as long (0.16 s against 0.04 s for the 25.6M parameters at
    # width 384), a cost the Trainer does not pay.
    optimizers = {
        name: torch.optim.AdamW([p for p in m.parameters() if p.requires_grad], lr=1e-5, fused=True)
        for name, m in models.items()
    }

    def step_of(name):
        def step():
            models[name](x, labels=labels).loss.backward()
            optimizers[name].step()
            optimizers[name].zero_grad(set_to_none=True)

        return step

    times = compare({name: step_of(name) for name in models}, args.repeats)
    memory = {name: _saved_tensor_bytes(step_of(name)) / 2**20 for name in models}
    trainable = {
        name: sum(p.numel() for p in m.parameters() if p.requires_grad) for name, m in models.items()
    }
    torch.set_num_threads(threads)
    bench = f"4 training step ({size}, 1 thread, batch 2 x {args.train_clip_s:g} s)"
    names = {
        "before": "full fine-tuning, before issue 14 (waveform requires grad)",
        "full": "full fine-tuning",
        "partial": f"{partial} trainable layers of {n_layers} (paper 000's share)",
    }
    first = times[cases[0]]
    return [
        {"benchmark": bench, "case": names[name], "seconds": times[name], "ratio": first / times[name],
         "vs_full_fine_tuning": times["full"] / times[name], "activation_MiB": memory[name],
         "activation_vs_full": memory[name] / memory["full"], "trainable_params": trainable[name]}
        for name in models
    ]  # fmt: skip


def bench_training_epoch(args, dtype) -> list[dict]:
    """9. One training epoch through `FocalLossTrainer` on an MSP-Podcast-like length mix (2.75-11 s, uniform):
    length-grouped batches (the default) vs random batches; the same clips, the padded share of frames. The paper's
    partial fine-tuning, one thread; runs interleaved."""
    import datasets

    from hf_ser import WavLMForMASPClassification, WavLMMASPConfig, build_feature_extractor
    from hf_ser.processing.data_collator import AudioDataCollator
    from hf_ser.training.trainer import FocalLossTrainer, SERTrainingArguments

    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    size = "tiny" if args.quick else "base"
    enc = encoder_config(size)
    scale = 0.1 if args.quick else 1.0
    n_clips = 16 if args.quick else args.epoch_clips
    rng = np.random.default_rng(0)
    seconds = rng.uniform(2.75, 11.0, n_clips) * scale
    data = datasets.Dataset.from_dict(
        {
            "audio": [
                {"array": (0.1 * rng.standard_normal(int(s * SR))).astype(np.float32), "sampling_rate": SR}
                for s in seconds
            ],
            "label": rng.integers(0, 8, n_clips).tolist(),
        }
    )
    torch.manual_seed(0)
    config = WavLMMASPConfig(
        encoder_config=enc, num_trainable_layers=round(enc["num_hidden_layers"] * 15 / 24)
    )
    initial = WavLMForMASPClassification(config).state_dict()
    padded = {}

    def epoch(grouping: bool):
        def run():
            model = WavLMForMASPClassification(config)
            model.load_state_dict(initial)
            masks = []
            model.register_forward_pre_hook(
                lambda _m, _a, kw: masks.append(
                    kw["attention_mask"].sum().item() / kw["attention_mask"].numel()
                ),
                with_kwargs=True,
            )
            training_args = SERTrainingArguments(
                output_dir=str(HERE / ".bench_epoch"), per_device_train_batch_size=4, num_train_epochs=1,
                report_to="none", use_cpu=args.device == "cpu", save_strategy="no", disable_tqdm=True, seed=0,
                train_length_grouping=grouping, logging_strategy="no",
            )  # fmt: skip
            trainer = FocalLossTrainer(
                model=model,
                args=training_args,
                train_dataset=data,
                data_collator=AudioDataCollator(build_feature_extractor()),
            )
            trainer.train()
            padded[grouping] = 1.0 - float(np.mean(masks))

        return run

    times = compare({"random": epoch(False), "grouped": epoch(True)}, max(1, args.repeats - 1), warmup=False)
    torch.set_num_threads(threads)
    bench = f"9 training epoch ({size}, {n_clips} clips of 2.75-11 s, batch 4, 1 thread)"
    return [
        {"benchmark": bench, "case": "random batches", "seconds": times["random"], "ratio": 1.0,
         "padded_share": padded[False]},
        {"benchmark": bench, "case": "length-grouped batches (default)", "seconds": times["grouped"],
         "ratio": times["random"] / times["grouped"], "padded_share": padded[True]},
    ]  # fmt: skip


def bench_frozen_encoder(args, dtype) -> list[dict]:
    """5. Head training with a frozen encoder: cached embeddings vs re-encoding the audio every epoch."""
    from hf_ser import build_feature_extractor
    from hf_ser.models.pooling import MaskedMeanPooling

    models = build_models(args.size, args.device, dtype)
    encoder = models["bare"]
    fe = build_feature_extractor()
    rng = np.random.default_rng(2)
    waves = [
        rng.standard_normal(int(s * SR)).astype(np.float32) * 0.1
        for s in rng.uniform(2.75, 6, args.n_cache_clips)
    ]
    labels = torch.from_numpy(rng.uniform(1, 7, (len(waves), 3)).astype(np.float32)).to(args.device)
    pool = MaskedMeanPooling()
    dim = encoder.config.hidden_size
    torch.manual_seed(0)
    head = torch.nn.Sequential(torch.nn.Linear(dim, 256), torch.nn.ReLU(), torch.nn.Linear(256, 3)).to(
        args.device, dtype
    )
    optim = torch.optim.AdamW(head.parameters(), lr=1e-3)
    batches = [list(range(i, min(i + args.batch, len(waves)))) for i in range(0, len(waves), args.batch)]

    def embed(indices):
        inputs = fe([waves[i] for i in indices], sampling_rate=SR, padding=True, return_tensors="pt")
        with torch.no_grad():
            hidden = encoder(
                inputs["input_values"].to(args.device, dtype),
                attention_mask=inputs["attention_mask"].to(args.device),
            ).last_hidden_state
            mask = encoder._get_feature_vector_attention_mask(
                hidden.shape[1], inputs["attention_mask"].to(args.device)
            )
            return pool(hidden, mask)

    def head_step(features, indices):
        loss = torch.nn.functional.mse_loss(head(features).float(), labels[indices])
        loss.backward()
        optim.step()
        optim.zero_grad()

    def epoch_reencode():
        for indices in batches:
            head_step(embed(indices), indices)

    cache_start = time.perf_counter()
    cache = torch.cat([embed(indices) for indices in batches])  # the one-off encoding pass (epoch 1)
    cache_seconds = time.perf_counter() - cache_start

    def epoch_cached():
        for indices in batches:
            head_step(cache[indices], indices)

    t = compare({"reencode": epoch_reencode, "cached": epoch_cached}, max(1, args.repeats // 2))
    return [
        {"benchmark": f"5 frozen encoder ({args.n_cache_clips} clips/epoch)", "case": "re-encode every epoch",
         "seconds": t["reencode"], "ratio": 1.0},
        {"benchmark": f"5 frozen encoder ({args.n_cache_clips} clips/epoch)", "case": "cached embeddings, epoch >= 2",
         "seconds": t["cached"], "ratio": t["reencode"] / t["cached"], "one_off_cache_s": cache_seconds,
         "target": "speed-up >= 20x"},
    ]  # fmt: skip


LONG_AUDIO_CHILD = r"""
import json, resource, sys, time, numpy as np, torch
sys.path.insert(0, sys.argv[1])
from run_benchmarks import encoder_config
from hf_ser import WavLMForMASPClassification, WavLMMASPConfig, build_feature_extractor
from hf_ser.inference.predict import predict_windows
size, minutes, device = sys.argv[2], float(sys.argv[3]), sys.argv[4]
torch.manual_seed(0)
model = WavLMForMASPClassification(WavLMMASPConfig(encoder_config=encoder_config(size), num_trainable_layers=None)).to(device)
wave = (np.random.default_rng(0).standard_normal(int(minutes * 60 * 16000)) * 0.1).astype(np.float32)
before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
start = time.perf_counter()
starts, logits = predict_windows(model, build_feature_extractor(), wave, window_s=10.0, batch_size=4)
seconds = time.perf_counter() - start
peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
print(json.dumps({"seconds": seconds, "rtf": seconds / (minutes * 60), "peak_mib": peak, "windows": len(starts),
                  "audio_mib": wave.nbytes / 2**20, "before_mib": before}))
"""


def bench_long_audio(args, dtype) -> list[dict]:
    """6. Windowed inference on long recordings: real-time factor, and peak memory for 2 vs 10 minutes."""
    rows = []
    for minutes in (args.long_minutes / 5, args.long_minutes):
        result = subprocess.run(
            [sys.executable, "-c", LONG_AUDIO_CHILD, str(HERE), args.size, str(minutes), args.device],
            capture_output=True, text=True, check=True,
        )  # fmt: skip
        r = json.loads(result.stdout.strip().splitlines()[-1])
        rows.append(
            {"benchmark": "6 long audio (10 s windows)", "case": f"{minutes:g} min recording", "seconds": r["seconds"],
             "rtf": r["rtf"], "peak process RSS MiB": r["peak_mib"], "audio MiB": r["audio_mib"], "windows": r["windows"]}
        )  # fmt: skip
    rows[1]["memory_ratio_vs_short"] = rows[1]["peak process RSS MiB"] / rows[0]["peak process RSS MiB"]
    return rows


ATTENTION_CHILD = r"""
import json, resource, sys, time, torch
sys.path.insert(0, sys.argv[1])
from run_benchmarks import encoder_config
from hf_ser import WavLMForMASPClassification, WavLMMASPConfig
size, attention, seconds, batch, device = sys.argv[2], sys.argv[3], float(sys.argv[4]), int(sys.argv[5]), sys.argv[6]
torch.manual_seed(0)
config = WavLMMASPConfig(encoder_config=encoder_config(size), num_trainable_layers=None, wavlm_attention=attention)
model = WavLMForMASPClassification(config).to(device).eval()
x = torch.randn(batch, int(seconds * 16000), device=device)
with torch.inference_mode():
    model(x)  # warm-up
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    if device == "cuda":
        torch.cuda.reset_peak_memory_stats()
    times = []
    for _ in range(3):
        start = time.perf_counter()
        model(x)
        if device == "cuda":
            torch.cuda.synchronize()
        times.append(time.perf_counter() - start)
peak = torch.cuda.max_memory_allocated() / 2**20 if device == "cuda" else resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
print(json.dumps({"seconds": sorted(times)[1], "peak_mib": peak}))
"""


def bench_attention(args, dtype) -> list[dict]:
    """7. WavLM self-attention: transformers' eager path vs hf_ser's SDPA path (speed and peak memory), longer clips."""
    seconds = 2.0 if args.quick else 10.0
    rows = {}
    for attention in ("eager", "sdpa"):
        result = subprocess.run(
            [sys.executable, "-c", ATTENTION_CHILD, str(HERE), args.size, attention, str(seconds), "4", args.device],
            capture_output=True, text=True, check=True,
        )  # fmt: skip
        rows[attention] = json.loads(result.stdout.strip().splitlines()[-1])
    memory_kind = "peak GPU memory MiB" if args.device == "cuda" else "peak process RSS MiB"
    name = f"7 WavLM attention (batch 4 x {seconds:g} s)"
    eager, sdpa = rows["eager"], rows["sdpa"]
    return [
        {"benchmark": name, "case": "eager (transformers)", "seconds": eager["seconds"], "ratio": 1.0,
         memory_kind: eager["peak_mib"]},
        {"benchmark": name, "case": "SDPA with the gated position bias as mask (hf_ser default)",
         "seconds": sdpa["seconds"], "ratio": eager["seconds"] / sdpa["seconds"], memory_kind: sdpa["peak_mib"],
         "memory_ratio": sdpa["peak_mib"] / eager["peak_mib"]},
    ]  # fmt: skip


BENCHMARKS = {
    "overhead": bench_overhead,
    "batching": bench_batching,
    "pooling": bench_pooling,
    "training": bench_training_step,
    "epoch": bench_training_epoch,
    "frozen": bench_frozen_encoder,
    "long": bench_long_audio,
    "attention": bench_attention,
    "entry": bench_entry_points,
}


def to_markdown(rows: list[dict], header: str) -> str:
    lines = [header, "", "| benchmark | case | seconds | ratio | details |", "|---|---|---|---|---|"]
    for row in rows:
        details = ", ".join(
            f"{k}={v:.4g}" if isinstance(v, float) else f"{k}={v}"
            for k, v in row.items()
            if k not in ("benchmark", "case", "seconds", "ratio")
        )
        ratio = f"{row['ratio']:.2f}x" if "ratio" in row else ""
        lines.append(f"| {row['benchmark']} | {row['case']} | {row['seconds']:.4f} | {ratio} | {details} |")
    return "\n".join(lines) + "\n"


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--quick", action="store_true", help="Tiny sizes: checks that every benchmark runs.")
    parser.add_argument("--only", nargs="*", choices=list(BENCHMARKS), help="Run only these benchmarks.")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--dtype", default="float32", choices=["float32", "bfloat16"])
    parser.add_argument("--large", action="store_true", help="Use the WavLM-large-sized config (GPU).")
    parser.add_argument("--output", type=Path, default=HERE / "results.md")
    parser.add_argument(
        "--clips", type=int, default=None, help="Clips in the batching benchmark (default 64)."
    )
    args = parser.parse_args(argv)
    args.size = "tiny" if args.quick else ("large" if args.large else "base")
    args.batch = 4 if args.quick else 8
    args.clip_s = 1.0 if args.quick else 4.0
    args.repeats = 2 if args.quick else 3
    args.n_clips = args.clips or (12 if args.quick else 64)
    args.length_scale = 0.2 if args.quick else 1.0
    args.train_clip_s = 0.5 if args.quick else 3.0
    args.epoch_clips = 32
    args.n_cache_clips = 8 if args.quick else 32
    args.long_minutes = 0.5 if args.quick else 10.0
    torch.set_num_threads(torch.get_num_threads())
    dtype = getattr(torch, args.dtype)

    rows = []
    for name in args.only or list(BENCHMARKS):
        print(f"[bench] {name} ...", flush=True)
        new_rows = BENCHMARKS[name](args, dtype)
        for row in new_rows:
            print(
                "   ", {k: (round(v, 4) if isinstance(v, float) else v) for k, v in row.items()}, flush=True
            )
        rows += new_rows
    header = (
        f"# hf_ser benchmarks\n\nMachine: {platform.processor() or platform.machine()}, {torch.get_num_threads()} "
        f"threads, device={args.device}, dtype={args.dtype}, torch {torch.__version__}; encoder size: {args.size} "
        f"(random weights, layer-norm conv front end). Ratios are measured side by side in one run (median of "
        f"interleaved repetitions). Ratio column: speed-up over the benchmark's first row (> 1 is faster), except "
        f"benchmark 1, where it is time relative to the bare encoder (the target is <= 1.03)."
    )
    json_path = args.output.with_suffix(".json")
    if args.only and json_path.exists():
        # Re-running some benchmarks replaces their rows and keeps the others from the earlier run.
        redone = {row["benchmark"].split(" ")[0] for row in rows}
        kept = [
            row for row in json.loads(json_path.read_text()) if row["benchmark"].split(" ")[0] not in redone
        ]
        rows = sorted(kept + rows, key=lambda row: row["benchmark"].split(" ")[0])
        header += f" Re-run alone afterwards: {', '.join(sorted(redone))}."
    text = to_markdown(rows, header)
    args.output.write_text(text)
    json_path.write_text(json.dumps(rows, indent=1))
    print(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
