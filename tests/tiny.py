"""Tiny random configurations shared by the tests (hidden size 32, 2-4 layers), and helpers that watch batches."""

from __future__ import annotations

import struct
from pathlib import Path

import numpy as np
import torch
from datasets import Dataset
from transformers import PreTrainedTokenizerFast, Wav2Vec2FeatureExtractor, WhisperFeatureExtractor

from hf_ser import (
    AudioDataCollator,
    MultimodalSERConfig,
    MultimodalSERForRegression,
    MultimodalSERProcessor,
    SERTrainingArguments,
    WavLMForMASPClassification,
    WavLMMASPConfig,
    build_feature_extractor,
)

_CONV = {"conv_dim": (16, 16), "conv_stride": (5, 4), "conv_kernel": (10, 8), "conv_bias": True}
_COMMON = {
    "hidden_size": 32,
    "num_hidden_layers": 4,
    "num_attention_heads": 2,
    "intermediate_size": 37,
    "num_conv_pos_embeddings": 16,
    "num_conv_pos_embedding_groups": 2,
    "hidden_dropout": 0.0,
    "attention_dropout": 0.0,
    "activation_dropout": 0.0,
    "feat_proj_dropout": 0.0,
    "mask_time_prob": 0.0,
    **_CONV,
}


def tiny_encoder_config(kind: str = "wavlm", group_norm: bool = False, **overrides) -> dict:
    """A tiny encoder config dict. `group_norm=True` gives the base-style front end (group norm, post-LN)."""
    config = {"model_type": kind, **_COMMON}
    if kind == "wavlm":
        config.update(num_buckets=16, max_bucket_distance=50)
    if group_norm:
        config.update(feat_extract_norm="group", do_stable_layer_norm=False)
    else:
        config.update(feat_extract_norm="layer", do_stable_layer_norm=True)
    config.update(overrides)
    return config


def tiny_whisper_config(**overrides) -> dict:
    """A tiny Whisper config dict. 100 positions = 200 mel frames = 2 s windows (feature extractor chunk_length=2)."""
    config = {
        "model_type": "whisper",
        "d_model": 16,
        "encoder_layers": 2,
        "encoder_attention_heads": 2,
        "decoder_layers": 1,
        "decoder_attention_heads": 2,
        "encoder_ffn_dim": 32,
        "decoder_ffn_dim": 32,
        "num_mel_bins": 80,
        "max_source_positions": 100,
        "max_target_positions": 16,
        "vocab_size": 64,
        "pad_token_id": 0,
        "bos_token_id": 0,
        "eos_token_id": 0,
        "decoder_start_token_id": 1,
    }
    config.update(overrides)
    return config


WORDS = [
    "i",
    "am",
    "so",
    "happy",
    "sad",
    "angry",
    "today",
    "this",
    "is",
    "not",
    "good",
    "great",
    "the",
    "a",
    "you",
    "what",
    "did",
    "say",
]


# ---------------------------------------------------------------------------------------------- tiny builders
def tiny_text_config() -> dict:
    return {
        "model_type": "roberta",
        "vocab_size": len(WORDS) + 4,
        "hidden_size": 16,
        "num_hidden_layers": 2,
        "num_attention_heads": 2,
        "intermediate_size": 32,
        "max_position_embeddings": 64,
        "pad_token_id": 1,
        "bos_token_id": 0,
        "eos_token_id": 2,
        "hidden_dropout_prob": 0.1,
        "attention_probs_dropout_prob": 0.1,
    }


def tiny_tokenizer() -> PreTrainedTokenizerFast:
    """A RoBERTa-style word-level tokenizer built locally (nothing downloaded)."""
    from tokenizers import Tokenizer, models, pre_tokenizers, processors

    vocab = {"<s>": 0, "<pad>": 1, "</s>": 2, "<unk>": 3, **{w: i + 4 for i, w in enumerate(WORDS)}}
    backend = Tokenizer(models.WordLevel(vocab, unk_token="<unk>"))
    backend.pre_tokenizer = pre_tokenizers.Whitespace()
    backend.post_processor = processors.TemplateProcessing(
        single="<s> $A </s>", special_tokens=[("<s>", 0), ("</s>", 2)]
    )
    return PreTrainedTokenizerFast(
        tokenizer_object=backend, bos_token="<s>", eos_token="</s>", pad_token="<pad>", unk_token="<unk>"
    )


# View sizes of the tiny multi-view model (paper 003's Whisper, WavLM and HuBERT views, shrunk).
TINY_VIEWS = {"whisper": 12, "wavlm": 8, "hubert": 8}


def tiny_multiview_config(**kwargs):
    from hf_ser import MultiViewSERConfig

    kwargs.setdefault("view_names", list(TINY_VIEWS))
    kwargs.setdefault("view_dims", list(TINY_VIEWS.values()))
    kwargs.setdefault(
        "score_sets", [["whisper"], ["whisper", "wavlm"], ["wavlm"], ["hubert", "wavlm"], ["hubert"]]
    )
    kwargs.setdefault("score_weights", [0.02, 0.15, 0.01, 0.8, 0.02])
    return MultiViewSERConfig(fusion_size=8, gate_size=6, mlp_hidden_size=5, **kwargs)


def tiny_views(batch: int = 6, seed: int = 0) -> dict:
    import torch

    generator = torch.Generator().manual_seed(seed)
    return {name: torch.randn(batch, dim, generator=generator) for name, dim in TINY_VIEWS.items()}


def tiny_masp_config(kind: str = "wavlm", group_norm: bool = False, **kwargs) -> WavLMMASPConfig:
    kwargs.setdefault("num_trainable_layers", 2)
    kwargs.setdefault("head_hidden_size", 16)
    return WavLMMASPConfig(encoder_config=tiny_encoder_config(kind, group_norm), **kwargs)


def tiny_masp_model(**kwargs) -> WavLMForMASPClassification:
    return WavLMForMASPClassification(tiny_masp_config(**kwargs))


def save_tiny_model(path, seed: int = 0, **kwargs):
    """Save a tiny model plus its feature extractor in `path`, ready for `pipeline()`."""
    import torch

    torch.manual_seed(seed)
    model = tiny_masp_model(**kwargs)
    model.save_pretrained(path)
    build_feature_extractor().save_pretrained(path)
    return model


def tone(seconds: float = 1.0, sr: int = 16000, freq: float = 220.0, seed: int = 0) -> np.ndarray:
    """A harmonic tone with a little noise: deterministic generated audio."""
    t = np.arange(int(seconds * sr)) / sr
    rng = np.random.default_rng(seed)
    wave = 0.4 * np.sin(2 * np.pi * freq * t) + 0.2 * np.sin(2 * np.pi * 2 * freq * t)
    return (wave + 0.01 * rng.standard_normal(t.size)).astype(np.float32)


def record_batches(model) -> list:
    """The attention mask of every forward call of `model`, appended as it runs."""
    masks: list = []

    def hook(_module, _args, kwargs):
        masks.append(kwargs["attention_mask"].clone())

    model.register_forward_pre_hook(hook, with_kwargs=True)
    return masks


def padded_fraction(masks) -> float:
    """Share of padded positions over all recorded batches."""
    return 1.0 - sum(float(m.sum()) for m in masks) / sum(m.numel() for m in masks)


def write_sparse_wav(path, seconds: float, sr: int = 48000, channels: int = 2):
    """A 16-bit WAV of `seconds` whose first second is a tone and the rest a sparse run of zeros (no disk used):
    long recordings without paying to encode them."""
    frames = int(seconds * sr)
    size = frames * channels * 2
    head = tone(min(1.0, seconds), sr=sr)
    pcm = (np.repeat(head[:, None], channels, axis=1) * 32767).astype("<i2").tobytes()
    with open(path, "wb") as handle:
        handle.write(b"RIFF" + struct.pack("<I", 36 + size) + b"WAVE")
        handle.write(
            b"fmt " + struct.pack("<IHHIIHH", 16, 1, channels, sr, sr * channels * 2, channels * 2, 16)
        )
        handle.write(b"data" + struct.pack("<I", size) + pcm)
        handle.truncate(44 + size)
    return path


# ---- factories shared by several test modules
def tiny_multimodal_config(kind: str = "wavlm", **kwargs) -> MultimodalSERConfig:
    audio = tiny_whisper_config() if kind == "whisper" else tiny_encoder_config("wavlm")
    kwargs.setdefault("conv_hidden_size", 8)
    kwargs.setdefault("head_hidden_size", 8)
    return MultimodalSERConfig(audio_config=audio, text_config=tiny_text_config(), **kwargs)


VIEWS = TINY_VIEWS


tiny_config = tiny_multiview_config


def tiny_multimodal_model(kind: str = "wavlm", seed: int = 0, **kwargs) -> MultimodalSERForRegression:
    torch.manual_seed(seed)
    return MultimodalSERForRegression(tiny_multimodal_config(kind, **kwargs))


def tiny_processor(kind: str = "wavlm") -> MultimodalSERProcessor:
    if kind == "whisper":
        extractor = WhisperFeatureExtractor(feature_size=80, chunk_length=2, return_attention_mask=True)
    else:
        extractor = Wav2Vec2FeatureExtractor(
            feature_size=1,
            sampling_rate=16000,
            padding_value=0.0,
            do_normalize=True,
            return_attention_mask=True,
        )
    return MultimodalSERProcessor(extractor, tiny_tokenizer())


def save_tiny_multimodal(path, kind: str = "wavlm", seed: int = 0, **kwargs) -> MultimodalSERForRegression:
    model = tiny_multimodal_model(kind, seed=seed, **kwargs)
    model.save_pretrained(path)
    tiny_processor(kind).save_pretrained(path)
    return model


TEXTS = ["i am so happy today", "this is not good", "what did you say", "great"]


LABELS = [[5.5, 6.0, 4.0], [2.0, 2.5, 3.0], [4.0, 4.0, 4.5], [3.0, 5.0, 2.0]]


def waves(n=4, base=0.5):
    return [tone(base + 0.15 * i, freq=150 + 40 * i, seed=i) for i in range(n)]


FREQS = (150.0, 600.0, 2400.0)


def toy_dataset(per_class=(8, 8), seed: int = 0, seconds: float = 0.25) -> Dataset:
    """Tones whose pitch gives the class and the attributes (a learnable toy task)."""
    rng = np.random.default_rng(seed)
    rows = {"audio": [], "label": [], "arousal": [], "valence": [], "dominance": []}
    for label, count in enumerate(per_class):
        for _ in range(count):
            amplitude = rng.uniform(0.2, 1.0)
            wave = amplitude * tone(
                seconds, freq=FREQS[label] * rng.uniform(0.9, 1.1), seed=int(rng.integers(1e6))
            )
            rows["audio"].append({"array": wave.astype(np.float32), "sampling_rate": 16000})
            rows["label"].append(label)
            # Per-utterance normalisation removes loudness, so every attribute follows the pitch class. Centred
            # near 0 (where a fresh head's outputs are) so that a dozen steps suffice; 1-7 targets need the bias
            # to travel first.
            rows["arousal"].append(-1.0 + 2.0 * label + rng.normal(0, 0.1))
            rows["valence"].append(1.0 - 2.0 * label + rng.normal(0, 0.1))
            rows["dominance"].append(-0.5 + 1.0 * label + rng.normal(0, 0.1))
    return Dataset.from_dict(rows)


def args(tmp_path, **overrides) -> SERTrainingArguments:
    defaults = {
        "output_dir": str(tmp_path / "out"),
        "per_device_train_batch_size": 4,
        "per_device_eval_batch_size": 8,
        "learning_rate": 3e-3,
        "num_train_epochs": 1,
        "report_to": "none",
        "use_cpu": True,
        "save_strategy": "no",
        "logging_steps": 1,
        "seed": 0,
        "disable_tqdm": True,
    }
    return SERTrainingArguments(**{**defaults, **overrides})


def collator(**kwargs) -> AudioDataCollator:
    return AudioDataCollator(build_feature_extractor(), **kwargs)


SPACE_APP = Path(__file__).resolve().parents[1] / "space_app" / "app.py"


def load_space_app(path: Path = SPACE_APP):
    """The Gradio Space's `app.py`, imported from its file (it is not a package), as a fresh module."""
    import importlib.util

    spec = importlib.util.spec_from_file_location("hf_ser_space_app", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module
