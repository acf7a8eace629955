"""The embedded demo: no corpus, no network. Builds a small `WavLMForMASPClassification` with random weights,
saves it with its feature extractor, reloads it through `pipeline("audio-classification")` and classifies generated
audio (espeak-ng speech when available, tones otherwise)."""

from __future__ import annotations

import shutil
import subprocess
import tempfile
from pathlib import Path

import numpy as np

from .audio import load_audio


def generated_clips(folder: Path, count: int = 3) -> list[Path]:
    """A few wav files of synthesized speech (espeak-ng) or, without it, harmonic tones."""
    folder.mkdir(parents=True, exist_ok=True)
    sentences = ["I can't believe you did that!", "Everything is fine, thank you.", "Oh no, this is terrible news."]
    paths = []
    espeak = shutil.which("espeak-ng")
    for i in range(count):
        path = folder / f"clip_{i}.wav"
        if espeak:
            subprocess.run([espeak, "-w", str(path), "-p", str(30 + 20 * i), sentences[i % len(sentences)]], check=True)
        else:
            import soundfile as sf

            t = np.arange(16000 * 2) / 16000
            sf.write(path, 0.3 * np.sin(2 * np.pi * (150 + 60 * i) * t), 16000)
        paths.append(path)
    return paths


def run_demo(output_dir: str | Path | None = None) -> list[tuple[str, str, float]]:
    """Run the embedded demo; returns (file, top label, score) per clip."""
    import torch
    from transformers import pipeline

    from . import WavLMForMASPClassification, WavLMMASPConfig, build_feature_extractor

    output_dir = Path(output_dir or tempfile.mkdtemp(prefix="hf_ser_demo_"))
    print(f"[hf-ser demo] building a small WavLMForMASPClassification (random weights) in {output_dir}")
    torch.manual_seed(0)
    encoder = {
        "model_type": "wavlm", "hidden_size": 64, "num_hidden_layers": 4, "num_attention_heads": 4,
        "intermediate_size": 128, "conv_dim": (32, 32, 32), "conv_stride": (5, 4, 4), "conv_kernel": (10, 8, 4),
        "num_conv_pos_embeddings": 16, "num_conv_pos_embedding_groups": 4, "feat_extract_norm": "layer",
        "do_stable_layer_norm": True, "num_buckets": 32, "max_bucket_distance": 200,
    }  # fmt: skip
    model = WavLMForMASPClassification(WavLMMASPConfig(encoder_config=encoder, head_hidden_size=64, num_trainable_layers=3))
    model_dir = output_dir / "model"
    model.save_pretrained(model_dir)
    build_feature_extractor().save_pretrained(model_dir)

    clips = generated_clips(output_dir / "audio")
    classifier = pipeline("audio-classification", model=str(model_dir))
    results = []
    for path in clips:
        top = classifier(load_audio(path), top_k=1)[0]
        results.append((path.name, top["label"], top["score"]))
        print(f"[hf-ser demo] {path.name}: {top['label']} ({top['score']:.3f})")
    print("[hf-ser demo] done (random weights: the labels show the plumbing works, not a trained model)")
    return results
