"""Export hf_ser models to ONNX (fp32 or dynamically quantised int8), verified against PyTorch right after writing.

Exporter: `torch.onnx.export` on its TorchScript path (`dynamo=False`). The dynamo-based exporter fails on a reshape
in WavLM's attention, and optimum's ONNX exporter (`optimum-onnx`) requires transformers < 4.58, so it cannot be
installed next to transformers 5 (see README, "ONNX export"). The graph takes dynamic batch and time axes and the
attention mask, so one file serves every batch and length.

What each model kind exports:
- `WavLMForMASPClassification` (every pooling, WavLM / wav2vec2 / HuBERT / data2vec-audio encoders, classifier or
  attribute regressor): `(input_values, attention_mask) -> (logits, embeddings)`.
- `MultimodalSERForRegression` (WavLM-style speech branch): `(input_values, attention_mask, text_embeds
  [, speaker_embeddings]) -> (logits, [aux_logits,] embeddings)`; the pooled transcript embedding of the frozen text
  encoder is an input (`hf_ser.TextEmbedder` or `model.embed_text` computes it).
- `MultiViewSERForRegression`: the cached view embeddings `(<view>_embedding, ...) -> (logits, score_sets)`.

The convolutional front end of a speech graph runs one clip at a time inside the graph (an ONNX `Scan` over the
batch, `hf_ser.onnx.front_end`): its tensors are the model's largest, and a padded batch of long clips would hold
all of them at once. The outputs are the same numbers; the verification below runs on the rewritten graph.

int8: `onnxruntime.quantization.quantize_dynamic` on the weight matrices of the transformer layers and the feature
projection (per-channel int8 weights, activations quantised per batch at run time). The convolutional front end,
the weight-normed positional convolution, WavLM's gated relative position bias, the attention products of two
activations, the pooling and the head stay in float: they are a small share of the compute and the places where
8-bit rounding costs accuracy.
"""

from __future__ import annotations

import json
import logging
import os
import re
import shutil
import tempfile
import warnings
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from ..inference.batching import config_pads_exactly
from ..models.labels import SAMPLING_RATE
from .front_end import run_front_end_per_clip
from .runtime import (
    CONFIG_FILE,
    EXPORT_INFO_FILE,
    ONNX_FILE,
    ONNXExportError,
    quiet_session_options,
    require,
)

QUANTIZE_CHOICES = (None, "int8")
DEFAULT_OPSET = 17
FP32_TOLERANCE = 1e-4
# Durations (s) of the verification clips: different lengths, so the batch is padded.
VERIFY_SECONDS = (0.9, 0.65, 0.4)
# MatMuls that int8 quantisation may touch: the weight products inside transformer layers and the feature
# projection. WavLM's gru_rel_pos_linear (the position-bias gate) stays in float.
_QUANTIZABLE = re.compile(r"(/layers\.\d+/(?!.*gru_rel_pos).*|/feature_projection/.*)MatMul$")


# ------------------------------------------------------------------------------------------------- wrappers
class _SpeechGraph(nn.Module):
    def __init__(self, model: nn.Module):
        super().__init__()
        self.model = model

    def forward(self, input_values: torch.Tensor, attention_mask: torch.Tensor):
        out = self.model(input_values=input_values, attention_mask=attention_mask, return_dict=True)
        return out.logits, out.embeddings


class _MultimodalGraph(nn.Module):
    def __init__(self, model: nn.Module, input_names: list[str]):
        super().__init__()
        self.model = model
        self.input_names = input_names

    def forward(self, *inputs: torch.Tensor):
        kwargs = dict(zip(self.input_names, inputs, strict=True))
        out = self.model(**kwargs, return_dict=True)
        if out.aux_logits is None:
            return out.logits, out.embeddings
        return out.logits, out.aux_logits, out.embeddings


class _MultiViewGraph(nn.Module):
    def __init__(self, model: nn.Module, views: list[str]):
        super().__init__()
        self.model = model
        self.views = views

    def forward(self, *embeddings: torch.Tensor):
        # The model's own branches and Eq. 7 weights. Its forward first validates user inputs with Python checks on
        # batch sizes, which tracing cannot follow; the verification compares this graph with that forward.
        views = dict(zip(self.views, embeddings, strict=True))
        scores = [branch(views)[0] for branch in self.model.branches]
        score_sets = torch.stack(scores, dim=1)
        logits = (score_sets * self.model.fusion_weights(score_sets.device, score_sets.dtype)).sum(dim=1)
        return logits, score_sets

    def reference(self, *embeddings: torch.Tensor):
        out = self.model(view_embeddings=dict(zip(self.views, embeddings, strict=True)), return_dict=True)
        return out.logits, out.score_sets


# ------------------------------------------------------------------------------------------------- inputs
def _clips(seed: int, sampling_rate: int) -> list[np.ndarray]:
    """Generated verification audio: harmonic tones with noise, of different lengths."""
    rng = np.random.default_rng(seed)
    clips = []
    for index, seconds in enumerate(VERIFY_SECONDS):
        t = np.arange(int(seconds * sampling_rate)) / sampling_rate
        freq = 120.0 + 60.0 * index
        wave = 0.4 * np.sin(2 * np.pi * freq * t) + 0.2 * np.sin(2 * np.pi * 3 * freq * t)
        clips.append((wave + 0.05 * rng.standard_normal(t.size)).astype(np.float32))
    return clips


class _Spec:
    """What one model kind exports: the wrapper, input/output names, dynamic axes, and verification inputs."""

    def __init__(self, model, feature_extractor, seed: int):
        from ..models.modeling_multimodal import MultimodalSERForRegression
        from ..models.modeling_multiview import MultiViewSERForRegression
        from ..models.modeling_wavlm_masp import WavLMForMASPClassification

        self.model = model
        config = getattr(model, "config", None)
        self.reads_audio = True
        rng = np.random.default_rng(seed + 1)
        batch = len(VERIFY_SECONDS)
        if isinstance(model, WavLMForMASPClassification):
            self.graph = _SpeechGraph(model)
            self.input_names = ["input_values", "attention_mask"]
            self.output_names = ["logits", "embeddings"]
            self.extra: dict[str, np.ndarray] = {}
        elif isinstance(model, MultimodalSERForRegression):
            if config.is_whisper:
                raise ONNXExportError(
                    "ONNX export of MultimodalSERForRegression supports WavLM-style speech branches; this model has "
                    "a Whisper speech branch."
                )
            self.input_names = ["input_values", "attention_mask"]
            self.extra = {}
            if config.use_text:
                self.input_names.append("text_embeds")
                self.extra["text_embeds"] = rng.standard_normal((batch, config.text_config.hidden_size))
            if config.speaker_embedding_size:
                self.input_names.append("speaker_embeddings")
                self.extra["speaker_embeddings"] = rng.standard_normal((batch, config.speaker_embedding_size))
            self.output_names = ["logits"] + (["aux_logits"] if model.gender_head is not None else [])
            self.output_names.append("embeddings")
            self.graph = _MultimodalGraph(model, self.input_names)
        elif isinstance(model, MultiViewSERForRegression):
            self.reads_audio = False
            views = sorted(
                {name for group in config.score_sets for name in group}, key=config.view_names.index
            )
            dims = dict(zip(config.view_names, config.view_dims, strict=True))
            self.input_names = [f"{name}_embedding" for name in views]
            self.extra = {f"{name}_embedding": rng.standard_normal((batch, dims[name])) for name in views}
            self.output_names = ["logits", "score_sets"]
            self.graph = _MultiViewGraph(model, views)
        else:
            raise ONNXExportError(
                f"Cannot export a {type(model).__name__}: hf_ser exports WavLMForMASPClassification, "
                "MultimodalSERForRegression and MultiViewSERForRegression."
            )
        self.extra = {k: v.astype(np.float32) for k, v in self.extra.items()}
        self.audio: dict[str, np.ndarray] = {}
        if self.reads_audio:
            if feature_extractor is None:
                raise ONNXExportError("A speech model needs its feature extractor to be exported with it.")
            rate = getattr(feature_extractor, "sampling_rate", SAMPLING_RATE)
            self.clips = _clips(seed, rate)
            features = feature_extractor(
                self.clips, sampling_rate=rate, padding=True, return_attention_mask=True, return_tensors="np"
            )
            self.audio = {
                "input_values": features["input_values"].astype(np.float32),
                "attention_mask": features["attention_mask"].astype(np.int64),
            }

    def dynamic_axes(self) -> dict[str, dict[int, str]]:
        axes = {name: {0: "batch"} for name in self.input_names + self.output_names}
        for name in ("input_values", "attention_mask"):
            if name in axes:
                axes[name] = {0: "batch", 1: "samples"}
        return axes

    def batch_inputs(self) -> dict[str, np.ndarray]:
        return {name: {**self.audio, **self.extra}[name] for name in self.input_names}

    def single_inputs(self, row: int) -> dict[str, np.ndarray]:
        """Clip `row` alone (unpadded), as the batch would have held it."""
        inputs = {}
        for name, value in self.batch_inputs().items():
            value = value[row : row + 1]
            if name in ("input_values", "attention_mask"):
                length = int(self.audio["attention_mask"][row].sum())
                value = value[:, :length]
            inputs[name] = value
        return inputs

    @torch.inference_mode()
    def torch_outputs(self, inputs: dict[str, np.ndarray]) -> list[np.ndarray]:
        tensors = [torch.from_numpy(np.ascontiguousarray(inputs[name])) for name in self.input_names]
        forward = getattr(self.graph, "reference", self.graph)  # the model's own forward
        return [o.float().numpy() for o in forward(*tensors)]


# ------------------------------------------------------------------------------------------------- verification
def _max_diff(a: list[np.ndarray], b: list[np.ndarray]) -> float:
    return max(float(np.max(np.abs(x - y))) if x.size else 0.0 for x, y in zip(a, b, strict=True))


def _scaled_diff(a: list[np.ndarray], b: list[np.ndarray]) -> float:
    """Largest difference of any output relative to that output's scale (max |reference|, at least 1): absolute for
    outputs within +-1, relative for larger ones (float32 sums in another order differ in proportion to the values)."""
    return max(
        float(np.max(np.abs(x - y)) / max(1.0, float(np.max(np.abs(y))))) if x.size else 0.0
        for x, y in zip(a, b, strict=True)
    )


def _run(session, inputs: dict[str, np.ndarray]) -> list[np.ndarray]:
    return session.run(None, {k: np.ascontiguousarray(v) for k, v in inputs.items()})


def verify_export(spec: _Spec, onnx_path: Path, tolerance: float | None) -> dict[str, Any]:
    """Compare ONNX Runtime with PyTorch on a padded batch of clips of different lengths, and each clip alone.

    With `tolerance` (fp32) a difference above it raises `ONNXExportError`; without (int8), the figures are only
    reported, with the top-class agreement for classifiers."""
    ort = require("onnxruntime")
    session = ort.InferenceSession(
        str(onnx_path), quiet_session_options(), providers=["CPUExecutionProvider"]
    )
    batch = spec.batch_inputs()
    torch_batch = spec.torch_outputs(batch)
    ort_batch = _run(session, batch)
    rows = len(VERIFY_SECONDS)
    single_diffs, independence, torch_independence, scaled = [], [], [], []
    for row in range(rows):
        alone = spec.single_inputs(row)
        ort_alone = _run(session, alone)
        torch_alone = spec.torch_outputs(alone)
        single_diffs.append(_max_diff(ort_alone, torch_alone))
        independence.append(_max_diff([o[row : row + 1] for o in ort_batch], ort_alone))
        scaled.append(
            (
                _scaled_diff(ort_alone, torch_alone),
                _scaled_diff([o[row : row + 1] for o in ort_batch], ort_alone),
            )
        )
        torch_independence.append(_max_diff([o[row : row + 1] for o in torch_batch], torch_alone))
    exact = config_pads_exactly(spec.model.config)
    report: dict[str, Any] = {
        "clips": rows,
        "clip_seconds": list(VERIFY_SECONDS) if spec.reads_audio else None,
        "max_abs_diff_padded_batch": _max_diff(ort_batch, torch_batch),
        "max_abs_diff_single_clips": max(single_diffs),
        "max_abs_diff_batched_vs_alone": max(independence),
        "torch_max_abs_diff_batched_vs_alone": max(torch_independence),
        "encoder_pads_exactly": exact,
        "max_scaled_diff_padded_batch": _scaled_diff(ort_batch, torch_batch),
        "max_scaled_diff_single_clips": max(d for d, _ in scaled),
        "max_scaled_diff_batched_vs_alone": max(d for _, d in scaled),
    }
    logits_ort, logits_torch = ort_batch[0], torch_batch[0]
    if getattr(spec.model.config, "problem_type", None) != "regression" and logits_ort.shape[-1] > 1:
        report["top1_agreement"] = float(np.mean(logits_ort.argmax(-1) == logits_torch.argmax(-1)))
    if tolerance is None:
        return report
    report["tolerance"] = tolerance
    checks = {
        "padded batch": report["max_scaled_diff_padded_batch"],
        "single clips": report["max_scaled_diff_single_clips"],
    }
    if exact:
        checks["a clip batched vs alone"] = report["max_scaled_diff_batched_vs_alone"]
    failed = {k: v for k, v in checks.items() if not v <= tolerance}
    if failed:
        raise ONNXExportError(
            f"ONNX Runtime disagrees with PyTorch beyond {tolerance:g} (relative to outputs larger than 1): "
            + ", ".join(f"{k} {v:.3g}" for k, v in failed.items())
        )
    return report


# ------------------------------------------------------------------------------------------------- quantisation
def quantize_int8(fp32_path: Path, int8_path: Path) -> list[str]:
    """Dynamic int8 quantisation of the transformer layers' weight MatMuls; returns the quantised node names."""
    onnx = require("onnx")
    quantization = require("onnxruntime.quantization")
    graph = onnx.load(str(fp32_path), load_external_data=False).graph
    weights = {init.name for init in graph.initializer}
    nodes = [
        node.name
        for node in graph.node
        if node.op_type == "MatMul" and node.input[1] in weights and _QUANTIZABLE.search(node.name)
    ]
    if not nodes:
        raise ONNXExportError("Found no transformer weight MatMuls to quantise in the exported graph.")
    root = logging.getLogger()
    level = root.level
    # The quantiser advises shape pre-processing on the root logger at every call.
    root.setLevel(logging.ERROR)
    try:
        quantization.quantize_dynamic(
            str(fp32_path),
            str(int8_path),
            op_types_to_quantize=["MatMul"],
            nodes_to_quantize=nodes,
            per_channel=True,
            weight_type=quantization.QuantType.QInt8,
        )
    finally:
        root.setLevel(level)
    return nodes


def _front_end_per_clip(source: Path, target: Path) -> bool:
    """Write `source` to `target` with the convolutional front end run one clip at a time where the graph allows
    (`hf_ser.onnx.front_end`); returns whether it did."""
    onnx = require("onnx")
    model = onnx.load(str(source))
    rewritten = run_front_end_per_clip(model)
    onnx.save(model, str(target))
    return rewritten


# ------------------------------------------------------------------------------------------------- card
def _card_section(info: dict[str, Any]) -> str:
    v = info["verification"]
    lines = [
        "## ONNX export",
        "",
        f"This folder holds `{ONNX_FILE}`, exported from `{info['model_class']}` with hf_ser {info['hf_ser_version']} "
        f"(`torch.onnx.export`, TorchScript path, opset {info['opset']}, torch {info['torch_version']}), "
        + (
            "fp32."
            if info["quantize"] is None
            else "then dynamically quantised to int8 (weights per channel, "
            "activations per batch at run time; convolutions, position bias, pooling and head in float)."
        ),
        f"Inputs: {', '.join(f'`{n}`' for n in info['inputs'])} (dynamic batch"
        + (" and time" if "input_values" in info["inputs"] else "")
        + f"); outputs: {', '.join(f'`{n}`' for n in info['outputs'])}.",
        "",
    ]
    if info.get("front_end") == "per clip (Scan)":
        lines += [
            "The convolutional front end runs one clip at a time inside the graph (an ONNX `Scan` over the batch), "
            "so a batch of long clips never holds the whole batch's front-end activations at once; each clip's "
            "numbers are the same as in a batched run.",
            "",
        ]
    lines += [
        f"Checked right after writing with onnxruntime {info['onnxruntime_version']} against PyTorch on a padded "
        f"batch of {v['clips']} clips of different lengths and on each clip alone:",
        "",
        "| check | max abs difference |",
        "|---|---|",
        f"| padded batch, ONNX Runtime vs PyTorch | {v['max_abs_diff_padded_batch']:.3g} |",
        f"| each clip alone, ONNX Runtime vs PyTorch | {v['max_abs_diff_single_clips']:.3g} |",
        f"| a clip batched vs alone (ONNX Runtime) | {v['max_abs_diff_batched_vs_alone']:.3g} |",
        f"| a clip batched vs alone (PyTorch) | {v['torch_max_abs_diff_batched_vs_alone']:.3g} |",
        "",
    ]
    if "top1_agreement" in v:
        lines += [f"Top-class agreement with PyTorch on these clips: {v['top1_agreement']:.0%}.", ""]
    if info["quantize"] is None:
        lines += [
            f"Tolerance: {v['tolerance']:g} (fp32; relative to the output's magnitude where it exceeds 1).",
            "",
        ]
    if not v["encoder_pads_exactly"]:
        lines += [
            "This encoder is not padding-invariant (group-norm front end or data2vec-audio), in PyTorch as in ONNX: "
            "hf_ser batches its clips only with clips of equal length.",
            "",
        ]
    lines += [
        'Run it without PyTorch (`pip install "hf_ser[onnx]"`):',
        "",
        "```python",
        "from hf_ser.onnx import ORTSERModel",
        'model = ORTSERModel.from_pretrained("path/to/this/folder")',
        'model.predict(["clip.wav"])',
        "```",
        "",
    ]
    return "\n".join(lines)


def _write_card(source: Path | None, output_dir: Path, info: dict[str, Any]) -> None:
    card = output_dir / "README.md"
    text = ""
    if source is not None and (source / "README.md").is_file():
        text = (source / "README.md").read_text()
        text = re.sub(r"\n## ONNX export\n.*?(?=\n## |\Z)", "\n", text, flags=re.S).rstrip() + "\n\n"
    else:
        text = f"# {info['model_class']} (ONNX)\n\n"
    card.write_text(text + _card_section(info))


# ------------------------------------------------------------------------------------------------- export
def _load(model_or_path, feature_extractor):
    source = None
    if isinstance(model_or_path, (str, os.PathLike)):
        from transformers import AutoFeatureExtractor, AutoModel

        from ..registration import register_auto_classes

        register_auto_classes()

        source = Path(model_or_path)
        if not source.is_dir():
            raise ONNXExportError(f"{source} is not a folder holding a saved hf_ser model.")
        if not (source / CONFIG_FILE).is_file():
            raise ONNXExportError(f"{source} has no {CONFIG_FILE}: is it a saved model folder?")
        try:
            model = AutoModel.from_pretrained(source)
        except (OSError, ValueError, KeyError) as error:
            first = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
            raise ONNXExportError(f"cannot load a model from {source}: {first}") from None
        if feature_extractor is None and (source / "preprocessor_config.json").is_file():
            feature_extractor = AutoFeatureExtractor.from_pretrained(source)
    else:
        model = model_or_path
    if feature_extractor is None and getattr(model, "main_input_name", None) == "input_values":
        from ..processing.feature_extraction import build_feature_extractor

        feature_extractor = build_feature_extractor()
    return model, feature_extractor, source


def export_onnx(
    model_or_path,
    output_dir: str | os.PathLike,
    quantize: str | None = None,
    *,
    feature_extractor=None,
    opset: int = DEFAULT_OPSET,
    tolerance: float = FP32_TOLERANCE,
    seed: int = 0,
) -> Path:
    """Export an hf_ser model to an ONNX folder and verify it against PyTorch.

    Args:
        model_or_path: a `WavLMForMASPClassification`, `MultimodalSERForRegression` or `MultiViewSERForRegression`,
            or the folder of a saved one.
        output_dir: where `model.onnx`, `config.json`, the feature extractor, `onnx_export.json` and `README.md`
            (the model card with an "ONNX export" section) are written.
        quantize: None (fp32) or `"int8"` (dynamic quantisation of the transformer layers' weight products).
        feature_extractor: the model's feature extractor (default: the folder's, else hf_ser's standard one).
        opset: ONNX opset.
        tolerance: largest accepted difference between ONNX Runtime and PyTorch (fp32), absolute for outputs within
            +-1 and relative to the output's largest magnitude beyond.
        seed: seed of the generated verification inputs.

    The fp32 graph is always verified (a padded batch of clips of different lengths and each clip alone, and, for
    padding-invariant encoders, that a clip's output does not depend on its batch); a failure raises
    `ONNXExportError` and leaves no `model.onnx`. For int8 the differences to PyTorch and the top-class agreement
    are measured and recorded. Returns the output folder, loadable with `hf_ser.onnx.ORTSERModel`.
    """
    if quantize not in QUANTIZE_CHOICES:
        raise ONNXExportError(f"quantize must be None or 'int8', got {quantize!r}.")
    ort = require("onnxruntime")
    require("onnx")
    model, feature_extractor, source = _load(model_or_path, feature_extractor)
    spec = _Spec(model, feature_extractor, seed)
    output_dir = Path(output_dir)
    output_dir.mkdir(parents=True, exist_ok=True)
    was_training = model.training
    model.eval()
    spec.graph.eval()
    try:
        with tempfile.TemporaryDirectory(dir=output_dir) as work:
            traced_path, fp32_path = Path(work) / "traced.onnx", Path(work) / "fp32.onnx"
            example = tuple(torch.from_numpy(v) for v in spec.batch_inputs().values())
            with warnings.catch_warnings(), torch.inference_mode(False), torch.no_grad():
                warnings.simplefilter("ignore")  # tracer warnings about Python control flow on shapes
                torch.onnx.export(
                    spec.graph,
                    example,
                    str(traced_path),
                    dynamo=False,
                    input_names=spec.input_names,
                    output_names=spec.output_names,
                    dynamic_axes=spec.dynamic_axes(),
                    opset_version=opset,
                    do_constant_folding=True,
                )
            per_clip = _front_end_per_clip(traced_path, fp32_path)
            verification = verify_export(spec, fp32_path, tolerance)
            quantized_nodes = None
            final = fp32_path
            if quantize == "int8":
                # Quantise the traced graph (the quantiser need not walk the Scan's body), then rewrite the same way.
                final = Path(work) / "int8.onnx"
                quantized_nodes = quantize_int8(traced_path, Path(work) / "int8_traced.onnx")
                _front_end_per_clip(Path(work) / "int8_traced.onnx", final)
                int8 = verify_export(spec, final, None)
                verification = {**int8, "fp32": verification}
            (output_dir / ONNX_FILE).unlink(missing_ok=True)
            shutil.move(str(final), output_dir / ONNX_FILE)
    finally:
        model.train(was_training)
    from importlib.metadata import version

    model.config.save_pretrained(output_dir)
    if feature_extractor is not None:
        feature_extractor.save_pretrained(output_dir)
    info = {
        "format": "hf_ser-onnx",
        "model_class": type(model).__name__,
        "inputs": spec.input_names,
        "outputs": spec.output_names,
        "dynamic_axes": {k: {str(a): n for a, n in v.items()} for k, v in spec.dynamic_axes().items()},
        "quantize": quantize,
        "quantized_nodes": None if quantized_nodes is None else len(quantized_nodes),
        "opset": opset,
        "exporter": "torch.onnx.export (TorchScript, dynamo=False)",
        "front_end": "per clip (Scan)" if per_clip else "batched",
        "hf_ser_version": version("hf_ser"),
        "torch_version": torch.__version__,
        "onnxruntime_version": ort.__version__,
        "verification": verification,
    }
    (output_dir / EXPORT_INFO_FILE).write_text(json.dumps(info, indent=2) + "\n")
    _write_card(source, output_dir, info)
    return output_dir


__all__ = ["export_onnx", "verify_export", "quantize_int8", "QUANTIZE_CHOICES"]
