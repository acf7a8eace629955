"""Convert released checkpoints into hf_ser model folders (`save_pretrained` layout, safetensors), so that they load
with `AutoModel`, `pipeline()` and the Space.

Two families are understood, from reading their code (nothing of it is imported or copied):

- The Interspeech 2025 challenge baseline (paper 002; msplabresearch/MSP-Podcast_Challenge_IS2025) into
  [`WavLMForMASPClassification`]:
  * its training code's output folder: `final_ssl.pt` (a `WavLMModel` state dict), `final_pool.pt` (attentive
    statistics pooling: `sap_linear.{weight,bias}` and the scoring vector `attention` of shape (H, 1)),
    `final_ser.pt` (the head: `fc.0.0` Linear(2H -> 1024), `fc.0.1` LayerNorm, `out.0` output layer) and
    `train_norm_stat.pkl` (the training set's waveform mean and standard deviation);
  * the challenge organisers' Hub models built from that code (categorical and multi-attribute): a `config.json`
    with `ssl_type`, `hidden_size`, `classifier_hidden_layers`, `mean`, `std` (...) and one state dict with the
    prefixes `ssl_model.`, `pool_model.`, `ser_model.`.
- Paper 001's released attribute models (tiantiaf0627/vox-profile-release, `WavLMWrapper` / `WhisperWrapper`:
  `backbone_model.`, `model_seq.`, `weights`, `arousal_layer.` ...) into [`MultimodalSERForRegression`],
  speech only. LoRA factors, where present, are merged (loralib's scaling alpha / r with alpha = 1).

What changes in the conversion, and why the outputs stay the released ones:
- The baseline normalises waveforms with the training set's global mean m and standard deviation s,
  (x - m) / (s + 1e-6). That affine map is folded into WavLM's first convolution (weights / (s + 1e-6), a bias of
  -m / (s + 1e-6) times each kernel's sum), so the saved feature extractor does no normalisation
  (`do_normalize=False`). Valid frames never see padding (their receptive fields lie inside the clip), so this is
  exact in padded batches too.
- The baseline's attribute outputs are arousal, dominance, valence on (y - 1) / 6; they are reordered to hf_ser's
  arousal, valence, dominance and, with `output_scale="likert"` (default), mapped back to 1-7 by scaling the
  output layer (the released evaluation does 6 y + 1 and clips to [1, 7]; we do not clip).
  `output_scale="released"` keeps the released scale.
- The released ASP scores frames with a bias-free vector; our last attention layer gets a zero bias (softmax is
  shift-invariant, so any bias would give the same weights).
- Paper 001's heads end in a sigmoid on [0, 1]; `attribute_min` / `attribute_max` are set to 0 / 1 (`"released"`)
  or 1 / 7 (`"likert"`: 1 + 6 sigmoid, the label scale; the release does not state its training scale).

Known differences that remain (documented in docs/fidelity.md): the baseline's evaluation reads only a clip's first
12 s; its pooling counts 1-2 padding frames of a padded clip in a batch; vox-profile's single-clip Whisper path
averages over the whole 15 s window, padding included, where hf_ser averages the clip's frames. Single clips that
fill the window (Whisper) or any single clip (WavLM) give the released outputs.
"""

from __future__ import annotations

import json
import os
import pickle
from pathlib import Path

import torch
from transformers import Wav2Vec2FeatureExtractor, WhisperFeatureExtractor

from ..errors import HFSERError
from ..models.configuration_multimodal import WAVLM_LARGE_KWARGS as MULTIMODAL_WAVLM_KWARGS
from ..models.configuration_multimodal import MultimodalSERConfig
from ..models.configuration_wavlm_masp import EMOTION_LABELS, WAVLM_LARGE_KWARGS, WavLMMASPConfig
from ..models.labels import ATTRIBUTE_LABELS
from ..models.modeling_multimodal import MultimodalSERForRegression
from ..models.modeling_wavlm_masp import WavLMForMASPClassification

# The baseline's attribute outputs, in order (its label loader reads EmoAct, EmoDom, EmoVal).
BASELINE_ATTRIBUTE_ORDER = ("arousal", "dominance", "valence")
HF_SER_ATTRIBUTES = ATTRIBUTE_LABELS
OUTPUT_SCALES = ("likert", "released")
# The baseline adds this to the standard deviation before dividing (utils/dataset/dataset.py).
BASELINE_STD_EPS = 1e-6
# openai/whisper-large-v3's encoder architecture (config.json on the Hub), with vox-profile's 750 positions (15 s).
WHISPER_LARGE_V3_KWARGS = {
    "model_type": "whisper",
    "d_model": 1280,
    "encoder_layers": 32,
    "encoder_attention_heads": 20,
    "encoder_ffn_dim": 5120,
    "decoder_layers": 32,
    "decoder_attention_heads": 20,
    "decoder_ffn_dim": 5120,
    "num_mel_bins": 128,
    "max_source_positions": 750,
    "max_target_positions": 448,
    "vocab_size": 51866,
    "activation_function": "gelu",
    "dropout": 0.0,
    "attention_dropout": 0.0,
    "activation_dropout": 0.0,
}


class ConversionError(HFSERError, ValueError):
    """A source folder that is not a released checkpoint this module understands."""


# ------------------------------------------------------------------------------------------------ reading
def _load_state_dict(path: Path) -> dict[str, torch.Tensor]:
    """A state dict from safetensors, or from a torch pickle with `weights_only=True` (tensors only, no code)."""
    if path.suffix == ".safetensors":
        from safetensors.torch import load_file

        return load_file(str(path))
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as error:  # an unsafe or broken pickle: say which file
        raise ConversionError(f"{path} is not a plain tensor state dict: {error}") from error
    if not isinstance(state, dict):
        raise ConversionError(f"{path} holds a {type(state).__name__}, not a state dict.")
    return state


class _NumbersOnlyUnpickler(pickle.Unpickler):
    """Reads `train_norm_stat.pkl` (a pickled pair of numpy floats) without running any other code."""

    _ALLOWED = {
        ("numpy", "dtype"),
        ("numpy.core.multiarray", "scalar"),
        ("numpy._core.multiarray", "scalar"),
        ("numpy.core.multiarray", "_reconstruct"),
        ("numpy._core.multiarray", "_reconstruct"),
        ("numpy", "ndarray"),
    }

    def find_class(self, module, name):
        if (module, name) not in self._ALLOWED:
            raise ConversionError(
                f"train_norm_stat.pkl refers to {module}.{name}; only numbers are accepted."
            )
        return super().find_class(module, name)


def read_norm_stat(path: str | os.PathLike) -> tuple[float, float]:
    """The baseline's `train_norm_stat.pkl`: (waveform mean, waveform standard deviation) of its training set."""
    with open(path, "rb") as handle:
        values = _NumbersOnlyUnpickler(handle).load()
    try:
        mean, std = (float(v) for v in values)
    except (TypeError, ValueError) as error:
        raise ConversionError(f"{path} does not hold a (mean, std) pair.") from error
    return mean, std


def _read_config(path: Path) -> dict:
    with open(path, encoding="utf-8") as handle:
        return json.load(handle)


def _encoder_config(encoder_config, default: dict, what: str) -> dict:
    if encoder_config is None:
        return dict(default)
    if isinstance(encoder_config, (str, os.PathLike)):
        return _read_config(Path(encoder_config))
    if isinstance(encoder_config, dict):
        return dict(encoder_config)
    return encoder_config.to_dict()


def _weights_file(folder: Path) -> Path:
    for name in ("model.safetensors", "pytorch_model.bin"):
        if (folder / name).is_file():
            return folder / name
    raise ConversionError(f"{folder} has no model.safetensors or pytorch_model.bin.")


def _merge_lora(state: dict[str, torch.Tensor], alpha: float = 1.0) -> dict[str, torch.Tensor]:
    """Fold loralib factors into their linear layers: W + (B @ A) * alpha / r (loralib's forward in eval)."""
    merged = dict(state)
    for key in [k for k in state if k.endswith(".lora_A")]:
        prefix = key[: -len("lora_A")]
        lora_a, lora_b = merged.pop(key), merged.pop(prefix + "lora_B")
        rank = lora_a.shape[0]
        merged[prefix + "weight"] = merged[prefix + "weight"] + (lora_b @ lora_a) * (alpha / rank)
    return merged


def _strip(state: dict[str, torch.Tensor], prefix: str) -> dict[str, torch.Tensor]:
    return {k[len(prefix) :]: v for k, v in state.items() if k.startswith(prefix)}


def _load_exactly(module: torch.nn.Module, state: dict[str, torch.Tensor], what: str) -> None:
    result = module.load_state_dict(state, strict=False)
    if result.missing_keys or result.unexpected_keys:
        raise ConversionError(
            f"{what}: missing {result.missing_keys[:5]}, unexpected {result.unexpected_keys[:5]} "
            "(is the encoder configuration the one the checkpoint was trained with?)"
        )


# ------------------------------------------------------------------------------------------------ baseline
def _fold_normalisation(encoder_state: dict[str, torch.Tensor], mean: float, std: float) -> dict:
    """Fold (x - mean) / (std + 1e-6) into the first convolution of a WavLM state dict (adds conv biases)."""
    state = dict(encoder_state)
    scale = std + BASELINE_STD_EPS
    weight = state["feature_extractor.conv_layers.0.conv.weight"].double()
    bias = state.get("feature_extractor.conv_layers.0.conv.bias")
    bias = torch.zeros(weight.shape[0], dtype=torch.float64) if bias is None else bias.double()
    state["feature_extractor.conv_layers.0.conv.weight"] = (weight / scale).float()
    state["feature_extractor.conv_layers.0.conv.bias"] = (
        bias - (mean / scale) * weight.sum(dim=(1, 2))
    ).float()
    index = 1
    while f"feature_extractor.conv_layers.{index}.conv.weight" in state:
        key = f"feature_extractor.conv_layers.{index}.conv.bias"
        if key not in state:
            out_channels = state[f"feature_extractor.conv_layers.{index}.conv.weight"].shape[0]
            state[key] = torch.zeros(out_channels)
        index += 1
    return state


def _baseline_sources(src: Path) -> tuple[dict, dict, dict, float, float, dict | None, dict]:
    """(encoder, pooling, head state dicts, mean, std, id2label or None, encoder-config hint) of either layout."""
    if (src / "final_ssl.pt").is_file():
        for name in ("final_pool.pt", "final_ser.pt"):
            if not (src / name).is_file():
                raise ConversionError(f"{src} has final_ssl.pt but no {name} (ASP baselines save all three).")
        if not (src / "train_norm_stat.pkl").is_file():
            raise ConversionError(
                f"{src} has no train_norm_stat.pkl (the training set's waveform statistics)."
            )
        mean, std = read_norm_stat(src / "train_norm_stat.pkl")
        return (
            _load_state_dict(src / "final_ssl.pt"),
            _load_state_dict(src / "final_pool.pt"),
            _load_state_dict(src / "final_ser.pt"),
            mean,
            std,
            None,
            {},
        )
    if (src / "config.json").is_file():
        hub_config = _read_config(src / "config.json")
        if "classifier_hidden_layers" not in hub_config:
            raise ConversionError(f"{src}/config.json is not a challenge-baseline Hub config.")
        state = _load_state_dict(_weights_file(src))
        id2label = hub_config.get("id2label")
        return (
            _strip(state, "ssl_model."),
            _strip(state, "pool_model."),
            _strip(state, "ser_model."),
            float(hub_config.get("mean", 0.0)),
            float(hub_config.get("std", 1.0)),
            {int(k): v for k, v in id2label.items()} if id2label else None,
            hub_config,
        )
    raise ConversionError(
        f"{src} is neither the baseline's training output (final_ssl.pt, final_pool.pt, final_ser.pt) nor one of "
        "its Hub models (config.json with classifier_hidden_layers)."
    )


def convert_challenge_baseline(
    src: str | os.PathLike,
    dst: str | os.PathLike | None = None,
    *,
    encoder_config: dict | str | os.PathLike | None = None,
    output_scale: str = "likert",
) -> WavLMForMASPClassification:
    """Convert a challenge-baseline checkpoint (paper 002's released code, or the organisers' Hub models built from
    it) into a [`WavLMForMASPClassification`]; with `dst`, save it there with its feature extractor.

    Args:
        src: the training code's output folder or a downloaded Hub model folder.
        dst: where to `save_pretrained` the converted model (optional).
        encoder_config: the WavLM configuration (dict, `config.json` path or config); defaults to
            `microsoft/wavlm-large`'s architecture, which the released code and Hub models use.
        output_scale: attribute models only: `"likert"` (1-7, hf_ser's label scale) or `"released"` ((y - 1) / 6).
    """
    if output_scale not in OUTPUT_SCALES:
        raise ValueError(f"output_scale={output_scale!r}; expected one of {OUTPUT_SCALES}.")
    src = Path(src)
    encoder_state, pool_state, head_state, mean, std, id2label, hub_config = _baseline_sources(src)
    num_blocks = len({k.split(".")[1] for k in head_state if k.startswith("fc.")})
    if num_blocks < 1 or "out.0.weight" not in head_state:
        raise ConversionError(f"{src}: the head state dict lacks fc.*/out.0 (keys: {list(head_state)[:5]}).")
    num_outputs, head_hidden = head_state["out.0.weight"].shape
    if id2label and (
        len(id2label) != num_outputs or all(str(v).startswith("LABEL_") for v in id2label.values())
    ):
        id2label = None  # transformers' placeholder names, not the model's classes
    if id2label is None:
        regression = num_outputs == 3
    else:
        regression = {str(v).lower() for v in id2label.values()} <= set(HF_SER_ATTRIBUTES)
    default_encoder = WAVLM_LARGE_KWARGS
    if (
        encoder_config is None
        and hub_config.get("ssl_type", "microsoft/wavlm-large") != "microsoft/wavlm-large"
    ):
        raise ConversionError(f"ssl_type={hub_config['ssl_type']!r}: pass encoder_config for this encoder.")
    encoder = {"model_type": "wavlm", **_encoder_config(encoder_config, default_encoder, "encoder")}
    encoder["conv_bias"] = True  # the folded waveform normalisation lives in the first convolution's bias
    if regression:
        labels = HF_SER_ATTRIBUTES
        problem_type = "regression"
    else:
        names = [id2label[i] for i in range(num_outputs)] if id2label else list(EMOTION_LABELS)
        if len(names) != num_outputs:
            raise ConversionError(f"{num_outputs} outputs for {len(names)} class names.")
        labels, problem_type = names, "single_label_classification"
    dropout = float(hub_config.get("classifier_dropout_prob", 0.5))
    config = WavLMMASPConfig.challenge_baseline(
        problem_type,
        encoder_config=encoder,
        head_hidden_size=int(head_hidden),
        head_num_layers=num_blocks,
        head_dropout=dropout,
        head_input_dropout=dropout,
        id2label=dict(enumerate(labels)),
        label2id={name: i for i, name in enumerate(labels)},
    )
    model = WavLMForMASPClassification(config)

    _load_exactly(model.encoder, _fold_normalisation(encoder_state, mean, std), "encoder")
    hidden = config.encoder_config.hidden_size
    attention = pool_state["attention"]  # (H, 1) scoring vector, no bias
    _load_exactly(
        model.pooling,
        {
            "attention.0.weight": pool_state["sap_linear.weight"],
            "attention.0.bias": pool_state["sap_linear.bias"],
            "attention.2.weight": attention.reshape(1, hidden),
            "attention.2.bias": torch.zeros(1),
        },
        "pooling",
    )
    head = {}
    for key, value in head_state.items():
        if key.startswith("fc."):
            _, block, layer, name = key.split(".")
            head[f"layers.{block}.{layer}.{name}"] = value
    out_weight, out_bias = head_state["out.0.weight"].double(), head_state["out.0.bias"].double()
    if regression:
        order = [BASELINE_ATTRIBUTE_ORDER.index(name) for name in HF_SER_ATTRIBUTES]
        out_weight, out_bias = out_weight[order], out_bias[order]
        if output_scale == "likert":  # y = 6 * y_released + 1
            out_weight, out_bias = 6.0 * out_weight, 6.0 * out_bias + 1.0
    head["output.weight"], head["output.bias"] = out_weight.float(), out_bias.float()
    _load_exactly(model.head, head, "head")
    model.eval()
    if dst is not None:
        _save(model, Wav2Vec2FeatureExtractor(do_normalize=False, return_attention_mask=True), dst)
    return model


# ------------------------------------------------------------------------------------------------ vox-profile
def convert_vox_profile(
    src: str | os.PathLike,
    dst: str | os.PathLike | None = None,
    *,
    audio_config: dict | str | os.PathLike | None = None,
    output_scale: str = "likert",
) -> MultimodalSERForRegression:
    """Convert one of paper 001's released attribute models (vox-profile `WavLMWrapper` / `WhisperWrapper`, a
    folder with `config.json` and `model.safetensors`) into a speech-only [`MultimodalSERForRegression`]; with
    `dst`, save it there with its feature extractor (Whisper: `chunk_length=15`, 750 positions, as released).

    Args:
        audio_config: the encoder configuration; defaults to `microsoft/wavlm-large` or `openai/whisper-large-v3`
            (750 positions) by the release's `pretrain_model`.
        output_scale: `"likert"` (1 + 6 sigmoid, the 1-7 label scale) or `"released"` (the sigmoid on [0, 1]).
    """
    if output_scale not in OUTPUT_SCALES:
        raise ValueError(f"output_scale={output_scale!r}; expected one of {OUTPUT_SCALES}.")
    src = Path(src)
    if not (src / "config.json").is_file():
        raise ConversionError(
            f"{src} has no config.json (vox-profile models save their init arguments there)."
        )
    release = _read_config(src / "config.json")
    state = _merge_lora(_load_state_dict(_weights_file(src)))
    if "arousal_layer.0.weight" not in state:
        raise ConversionError(f"{src} is not a vox-profile attribute model (no arousal_layer).")
    pretrain = str(release.get("pretrain_model", ""))
    whisper = "whisper" in pretrain or "backbone_model.encoder.conv1.weight" in state
    if whisper:
        encoder = {"model_type": "whisper", **_encoder_config(audio_config, WHISPER_LARGE_V3_KWARGS, "audio")}
    else:
        encoder = {"model_type": "wavlm", **_encoder_config(audio_config, MULTIMODAL_WAVLM_KWARGS, "audio")}
    hidden_dim = int(release.get("hidden_dim", state["model_seq.0.weight"].shape[0]))
    predict_gender = "gender_layer.0.weight" in state
    low, high = (1.0, 7.0) if output_scale == "likert" else (0.0, 1.0)
    config = MultimodalSERConfig(
        audio_config=encoder,
        use_text=False,
        conv_hidden_size=hidden_dim,
        conv_num_layers=3,
        head_hidden_size=hidden_dim,
        dropout=0.1,
        head_dropout=0.0,
        num_genders=2 if predict_gender else 0,
        attribute_min=[low] * 3,
        attribute_max=[high] * 3,
        freeze_feature_encoder=True,
    )
    model = MultimodalSERForRegression(config)

    if whisper:
        encoder_state = _strip(state, "backbone_model.encoder.")
        if (
            "embed_positions" in state
        ):  # the wrapper swaps these (its first 750 positions) in at every forward
            positions = config.audio_config.max_source_positions
            encoder_state["embed_positions.weight"] = state["embed_positions"][:positions]
    else:
        encoder_state = _strip(state, "backbone_model.")
    _load_exactly(model.audio_encoder, encoder_state, "speech encoder")
    ours = {
        f"conv.layers.{i}.{p}": state[f"model_seq.{i}.{p}"] for i in (0, 3, 6) for p in ("weight", "bias")
    }
    if not whisper:
        weights = state["weights"]
        if weights.shape[0] == config.audio_config.num_hidden_layers:  # use_conv_output=False: layers only
            weights = torch.cat([torch.tensor([torch.finfo(weights.dtype).min]), weights])
        ours["layer_weights"] = weights
    for index, name in enumerate(HF_SER_ATTRIBUTES):
        for ours_index, theirs_index in ((0, 0), (3, 2)):
            for p in ("weight", "bias"):
                ours[f"attribute_heads.{index}.{ours_index}.{p}"] = state[f"{name}_layer.{theirs_index}.{p}"]
    if predict_gender:
        for ours_index, theirs_index in ((0, 0), (3, 2)):
            for p in ("weight", "bias"):
                ours[f"gender_head.{ours_index}.{p}"] = state[f"gender_layer.{theirs_index}.{p}"]
    result = model.load_state_dict(ours, strict=False)
    unexpected = [k for k in result.unexpected_keys]
    missing = [k for k in result.missing_keys if not k.startswith("audio_encoder.")]
    if unexpected or missing:
        raise ConversionError(f"vox-profile head: missing {missing[:5]}, unexpected {unexpected[:5]}")
    model.eval()
    if dst is not None:
        if whisper:
            extractor = WhisperFeatureExtractor(
                feature_size=config.audio_config.num_mel_bins,
                chunk_length=config.audio_config.max_source_positions * 2 // 100,
                return_attention_mask=True,
            )
        else:
            extractor = Wav2Vec2FeatureExtractor(do_normalize=True, return_attention_mask=True)
        _save(model, extractor, dst)
    return model


# ------------------------------------------------------------------------------------------------ entry point
def _save(model, extractor, dst: str | os.PathLike) -> None:
    dst = Path(dst)
    dst.mkdir(parents=True, exist_ok=True)
    model.save_pretrained(dst)  # safetensors
    extractor.save_pretrained(dst)


def detect_release(src: str | os.PathLike) -> str:
    """`"challenge_baseline"` or `"vox_profile"`: which released layout a folder holds."""
    src = Path(src)
    if not src.is_dir():
        raise ConversionError(f"{src} is not a folder.")
    if (src / "final_ssl.pt").is_file():
        return "challenge_baseline"
    if (src / "config.json").is_file():
        config = _read_config(src / "config.json")
        if "classifier_hidden_layers" in config:
            return "challenge_baseline"
        if "pretrain_model" in config or "hidden_dim" in config:
            return "vox_profile"
    raise ConversionError(
        f"{src}: not a released checkpoint hf_ser converts (the challenge baseline's training output or Hub "
        "model, or a vox-profile attribute model)."
    )


def convert(src: str | os.PathLike, dst: str | os.PathLike, **kwargs):
    """Detect the released layout in `src` and convert it into an hf_ser model folder `dst`."""
    kind = detect_release(src)
    if kind == "challenge_baseline":
        return convert_challenge_baseline(src, dst, **kwargs)
    return convert_vox_profile(src, dst, **kwargs)


__all__ = [
    "ConversionError",
    "convert",
    "convert_challenge_baseline",
    "convert_vox_profile",
    "detect_release",
    "read_norm_stat",
]
