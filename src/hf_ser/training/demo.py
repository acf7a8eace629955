"""The embedded end-to-end demo (`hf-ser demo`, the README's main job): no corpus, no network.

1. synthesizes a small corpus in the MSP-Podcast layout (espeak-ng speech whose pitch, rate and loudness depend on
   the emotion; several voices, so development and test speakers are unseen in training);
2. trains a small `WavLMForMASPClassification` from scratch with `FocalLossTrainer` for a fixed time budget;
3. evaluates it on the held-out voices (macro-F1 against the chance level);
4. saves it, reloads it through `AutoModelForAudioClassification` and `pipeline("audio-classification")`;
5. predicts a few unlabelled clips and writes a report with a confusion-matrix plot.

The model is tiny and trained for a couple of minutes: it shows the whole stack working, not the papers' accuracy.
"""

from __future__ import annotations

import json
import time
from pathlib import Path

import numpy as np
from transformers import TrainerCallback

from ..models.labels import SAMPLING_RATE

# Small enough to train from scratch on 2 CPU cores in minutes; 20 ms frames (stride 320, as WavLM).
DEMO_ENCODER = {
    "model_type": "wavlm",
    "hidden_size": 64,
    "num_hidden_layers": 3,
    "num_attention_heads": 4,
    "intermediate_size": 128,
    "conv_dim": (32, 32, 32, 32, 32),
    "conv_stride": (5, 4, 4, 2, 2),
    "conv_kernel": (10, 8, 4, 4, 4),
    "conv_bias": True,
    "num_conv_pos_embeddings": 16,
    "num_conv_pos_embedding_groups": 4,
    "feat_extract_norm": "layer",
    "do_stable_layer_norm": True,
    "num_buckets": 32,
    "max_bucket_distance": 200,
    "mask_time_prob": 0.0,
    "hidden_dropout": 0.0,
    "attention_dropout": 0.0,
    "feat_proj_dropout": 0.0,
}
# A fixed number of steps keeps the demo deterministic (about 0.35 s a step on 2 CPU cores).
TRAIN_STEPS = 400


class Progress(TrainerCallback):
    """Prints the training loss as it goes; with `seconds`, also stops training once that much time has passed."""

    def __init__(self, seconds: float | None = None):
        self.seconds = seconds
        self.start = time.monotonic()

    def on_step_end(self, args, state, control, **kwargs):
        if self.seconds is not None and time.monotonic() - self.start > self.seconds:
            control.should_training_stop = True
        return control

    def on_log(self, args, state, control, logs=None, **kwargs):
        if logs and "loss" in logs:
            elapsed = time.monotonic() - self.start
            print(
                f"[hf-ser demo]   step {state.global_step}/{state.max_steps}, loss {float(logs['loss']):.3f}, "
                f"{elapsed:.0f} s",
                flush=True,
            )


def say(message: str) -> None:
    print(f"[hf-ser demo] {message}", flush=True)


def run_demo(
    output_dir: str | Path = "demo_output",
    train_steps: int = TRAIN_STEPS,
    train_seconds: float | None = None,
    seed: int = 0,
    learning_rate: float = 1e-3,
    focal_gamma: float = 2.0,
    encoder: dict | None = None,
    max_duration_s: float = 3.0,
    normalize_per_utterance: bool = False,
) -> dict:
    """Run the demo in `output_dir`; returns a summary dict (also written as `summary.json`)."""
    import datasets
    import torch
    from transformers import AutoFeatureExtractor, AutoModelForAudioClassification, pipeline

    from ..audio import load_audio
    from ..data import load_msp_podcast
    from ..data.synthetic import espeak_available, make_tiny_corpus
    from ..evaluation.report import evaluate_model, write_report
    from ..models.configuration_wavlm_masp import WavLMMASPConfig
    from ..models.modeling_wavlm_masp import WavLMForMASPClassification
    from ..processing.data_collator import AudioDataCollator
    from ..processing.feature_extraction import build_feature_extractor
    from .trainer import FocalLossTrainer, SERTrainingArguments

    started = time.monotonic()
    output_dir = Path(output_dir)
    output_dir.mkdir(parents=True, exist_ok=True)
    torch.manual_seed(seed)

    corpus_dir = output_dir / "corpus"
    if not (corpus_dir / "Labels" / "labels_consensus.csv").exists():
        backend = "espeak-ng speech" if espeak_available() else "generated tones (espeak-ng not found)"
        say(f"1/5 synthesizing a small MSP-Podcast-layout corpus with {backend} in {corpus_dir}")
        make_tiny_corpus(corpus_dir, n_speakers=8, clips_per_class=4, seed=seed, n_other=4, n_test3=8)
    else:
        say(f"1/5 reusing the corpus in {corpus_dir}")
    datasets.disable_progress_bars()
    corpus = load_msp_podcast(corpus_dir, "categorical", cache_dir=output_dir / "datasets_cache")
    held_out = datasets.concatenate_datasets(
        [corpus[s] for s in ("validation", "test1", "test2") if s in corpus]
    )
    say(f"   train: {len(corpus['train'])} clips; held-out voices: {len(held_out)} clips; 8 emotions")

    budget = f"{train_steps} steps" + ("" if train_seconds is None else f", at most {train_seconds:.0f} s")
    say(f"2/5 training a small WavLMForMASPClassification from scratch (FocalLossTrainer, {budget})")
    config = WavLMMASPConfig(
        encoder_config=encoder or DEMO_ENCODER,
        pooling="masp",
        num_trainable_layers=None,  # from scratch: every layer learns
        freeze_feature_encoder=False,
        head_hidden_size=64,
        head_dropout=0.1,
        focal_gamma=focal_gamma,  # the model's config owns its loss
    )
    model = WavLMForMASPClassification(config)
    extractor = build_feature_extractor()
    # Like the challenge baseline (paper 002), which normalises with the training set's global statistics rather
    # than per utterance, the demo keeps each clip's loudness: one of the synthetic emotions' cues.
    extractor.do_normalize = normalize_per_utterance
    args = SERTrainingArguments(
        output_dir=str(output_dir / "checkpoints"),
        max_steps=train_steps,
        learning_rate=learning_rate,
        # A warm-up and 1e-3: from scratch at 2e-3, the encoder can collapse in its first steps (all frames alike),
        # and whether it does varied from run to run (see docs/statistics_pooling.md).
        lr_scheduler_type="constant_with_warmup",
        warmup_steps=max(1, train_steps // 10),
        per_device_train_batch_size=8,
        per_device_eval_batch_size=8,
        weight_decay=0.01,
        save_strategy="no",
        eval_strategy="no",
        logging_strategy="steps",
        logging_steps=20,
        report_to="none",
        use_cpu=True,
        seed=seed,
        disable_tqdm=True,
    )
    trainer = FocalLossTrainer(
        model=model,
        args=args,
        train_dataset=corpus["train"],
        data_collator=AudioDataCollator(extractor, max_duration_s=max_duration_s, class_labels=True),
        processing_class=extractor,
        callbacks=[Progress(train_seconds)],
    )
    trainer.train()
    say(f"   trained {trainer.state.global_step} steps")

    say("3/5 evaluating on the held-out voices")
    metrics, predictions = evaluate_model(model, extractor, held_out)
    chance = 1.0 / config.num_labels
    say(
        f"   macro-F1 {metrics['f1_macro']:.3f}, micro-F1 {metrics['f1_micro']:.3f} (chance about {chance:.3f})"
    )

    # Evaluated outside the trainer (the report needs the predictions): recorded on the card by hand.
    model.model_card_data.add_eval_results("held_out", metrics)

    say("4/5 saving, then reloading through AutoModelForAudioClassification and pipeline()")
    model_dir = output_dir / "model"
    model.save_pretrained(model_dir)
    extractor.save_pretrained(model_dir)
    reloaded = AutoModelForAudioClassification.from_pretrained(model_dir).eval()
    AutoFeatureExtractor.from_pretrained(model_dir)
    classifier = pipeline("audio-classification", model=str(model_dir))

    say("5/5 predicting unlabelled clips and writing the report")
    audio_dir = corpus_dir / "Audios"
    examples = sorted(audio_dir.glob("*test3*.wav"))[:4] or sorted(audio_dir.glob("*.wav"))[:4]
    shown = []
    for path in examples:
        top = classifier(load_audio(path), top_k=2)
        shown.append({"file": path.name, "top": top})
        say(
            f"   {path.name}: {top[0]['label']} ({top[0]['score']:.2f}), then {top[1]['label']} ({top[1]['score']:.2f})"
        )
    with torch.no_grad():
        check = load_audio(examples[0])
        same = np.allclose(
            reloaded(**extractor(check, sampling_rate=SAMPLING_RATE, return_tensors="pt")).logits.numpy(),
            model.eval()(**extractor(check, sampling_rate=SAMPLING_RATE, return_tensors="pt")).logits.numpy(),
            atol=1e-5,
        )
    written = write_report(output_dir / "report", metrics, predictions, model, "held-out voices")
    summary = {
        "train_clips": len(corpus["train"]),
        "held_out_clips": len(held_out),
        "steps": trainer.state.global_step,
        "f1_macro": metrics["f1_macro"],
        "f1_micro": metrics["f1_micro"],
        "chance": chance,
        "reloaded_logits_equal": bool(same),
        "predictions": shown,
        "report": [str(p) for p in written],
        "seconds": time.monotonic() - started,
    }
    (output_dir / "summary.json").write_text(json.dumps(summary, indent=1))
    verdict = "above" if metrics["f1_macro"] > 1.5 * chance else "NOT clearly above"
    say(
        f"done in {summary['seconds']:.0f} s: macro-F1 {metrics['f1_macro']:.3f} is {verdict} chance ({chance:.3f})"
    )
    say(f"model: {model_dir}   report: {output_dir / 'report' / 'report.md'}")
    return summary
