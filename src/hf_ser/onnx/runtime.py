"""ONNX Runtime inference for exported hf_ser models, with onnxruntime and numpy alone (no torch, no transformers).

An export folder (`hf_ser.export_onnx`) holds `model.onnx`, the model's `config.json`, the feature extractor's
`preprocessor_config.json`, `onnx_export.json` (inputs, outputs, quantisation, verification figures) and a model
card. [`ORTSERModel`] loads it and predicts exactly as the PyTorch path does: the same feature extraction (a numpy
copy of `Wav2Vec2FeatureExtractor`'s per-utterance normalisation), the same length buckets, and the same windows over
long audio (`hf_ser.inference.predict`).
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from ..audio import SAMPLING_RATE, load_input
from ..errors import HFSERError
from ..inference.batching import batched_logits, config_pads_exactly, windowed_logits

ONNX_FILE = "model.onnx"
EXPORT_INFO_FILE = "onnx_export.json"
CONFIG_FILE = "config.json"
FEATURE_EXTRACTOR_FILE = "preprocessor_config.json"
EXTRA_HINT = 'install the ONNX extra: pip install "hf_ser[onnx]"'


class ONNXExportError(HFSERError, ValueError):
    """An export or an export folder that cannot be used (wrong model kind, missing files, failed verification)."""


def require(module: str):
    """Import an optional dependency of the ONNX path, or fail with an error naming the extra that provides it."""
    import importlib

    try:
        return importlib.import_module(module)
    except ImportError as error:
        raise ImportError(f"hf_ser's ONNX support needs the `{module}` package: {EXTRA_HINT}") from error


def quiet_session_options():
    """ONNX Runtime session options that log errors only: at load it warns about optimisations it skips (e.g. sharing
    equal weights of an untrained model across the front end's Scan body), which are not the user's to act on."""
    options = require("onnxruntime").SessionOptions()
    options.log_severity_level = 3
    return options


def is_onnx_folder(path: str | os.PathLike) -> bool:
    """True for a folder written by `hf_ser.export_onnx` (it holds `model.onnx` and `onnx_export.json`)."""
    folder = Path(path)
    return folder.is_dir() and (folder / ONNX_FILE).is_file() and (folder / EXPORT_INFO_FILE).is_file()


class ORTConfig:
    """Read-only attribute view of an exported model's `config.json` (what the prediction code reads from a
    transformers config: `id2label`, `num_labels`, `problem_type`, `model_type`, the encoder's config)."""

    def __init__(self, values: dict[str, Any]):
        self._values = dict(values)
        id2label = values.get("id2label") or {}
        self.id2label = {int(k): v for k, v in id2label.items()}
        self.label2id = {v: k for k, v in self.id2label.items()}

    @property
    def num_labels(self) -> int:
        return len(self.id2label)

    def __getattr__(self, name: str) -> Any:
        try:
            return self.__dict__["_values"][name]
        except KeyError:
            raise AttributeError(name) from None

    def to_dict(self) -> dict[str, Any]:
        return dict(self._values)


class NumpyFeatureExtractor:
    """`transformers.Wav2Vec2FeatureExtractor` in numpy: pads a batch to its longest clip and normalises each clip
    to zero mean and unit variance over its real samples (the same operations in the same order, so the values are
    identical), with the attention mask.

    Args:
        sampling_rate (`int`): the rate the model expects (16 kHz).
        padding_value (`float`): value of padded samples.
        do_normalize (`bool`): per-utterance normalisation.
        padding_side (`str`): "right" or "left".
    """

    model_input_names = ["input_values", "attention_mask"]

    def __init__(
        self,
        sampling_rate: int = SAMPLING_RATE,
        padding_value: float = 0.0,
        do_normalize: bool = True,
        padding_side: str = "right",
        return_attention_mask: bool = True,
    ):
        if padding_side not in ("right", "left"):
            raise ValueError(f"padding_side must be 'right' or 'left', got {padding_side!r}.")
        self.sampling_rate = int(sampling_rate)
        self.padding_value = float(padding_value)
        self.do_normalize = bool(do_normalize)
        self.padding_side = padding_side
        self.return_attention_mask = return_attention_mask

    @classmethod
    def from_pretrained(cls, folder: str | os.PathLike) -> NumpyFeatureExtractor:
        path = Path(folder) / FEATURE_EXTRACTOR_FILE
        if not path.is_file():
            raise ONNXExportError(f"{folder} has no {FEATURE_EXTRACTOR_FILE} (the feature extractor).")
        values = json.loads(path.read_text())
        kind = values.get("feature_extractor_type", "Wav2Vec2FeatureExtractor")
        if kind != "Wav2Vec2FeatureExtractor":
            raise ONNXExportError(
                f"{path} describes a {kind}; only Wav2Vec2FeatureExtractor runs without torch."
            )
        return cls(
            sampling_rate=values.get("sampling_rate", SAMPLING_RATE),
            padding_value=values.get("padding_value", 0.0),
            do_normalize=values.get("do_normalize", True),
            padding_side=values.get("padding_side", "right"),
            return_attention_mask=values.get("return_attention_mask", True),
        )

    def __call__(
        self,
        raw_speech: np.ndarray | Sequence[np.ndarray],
        sampling_rate: int | None = None,
        padding: bool | str = True,
        return_attention_mask: bool | None = None,
        return_tensors: str | None = "np",
        **unused,
    ) -> dict[str, np.ndarray]:
        if return_tensors not in (None, "np"):
            raise ValueError(
                f"NumpyFeatureExtractor returns numpy arrays only (got return_tensors={return_tensors!r})."
            )
        if sampling_rate is not None and int(sampling_rate) != self.sampling_rate:
            raise ValueError(f"The model expects {self.sampling_rate} Hz audio, got {sampling_rate} Hz.")
        if isinstance(raw_speech, np.ndarray) and raw_speech.ndim == 1:
            raw_speech = [raw_speech]
        clips = [np.asarray(clip, dtype=np.float32) for clip in raw_speech]
        if not clips or any(clip.ndim != 1 for clip in clips):
            raise ValueError("Give one mono waveform or a list of mono waveforms (1-D arrays).")
        longest = max(len(clip) for clip in clips)
        values = np.full((len(clips), longest), self.padding_value, dtype=np.float32)
        mask = np.zeros((len(clips), longest), dtype=np.int32)
        for row, clip in enumerate(clips):
            span = (
                slice(0, len(clip)) if self.padding_side == "right" else slice(longest - len(clip), longest)
            )
            values[row, span] = clip
            mask[row, span] = 1
        if self.do_normalize:
            # Wav2Vec2FeatureExtractor.zero_mean_unit_var_norm, step for step (float32 statistics of the padded row's
            # first `length` samples), so both paths give bit-identical inputs.
            for row, length in enumerate(mask.sum(-1)):
                vector = values[row]
                normed = (vector - vector[:length].mean()) / np.sqrt(vector[:length].var() + 1e-7)
                if length < normed.shape[0]:
                    normed[length:] = self.padding_value
                values[row] = normed
        return {"input_values": values, "attention_mask": mask}


def _softmax(logits: np.ndarray) -> np.ndarray:
    shifted = logits - logits.max(axis=-1, keepdims=True)
    exp = np.exp(shifted)
    return exp / exp.sum(axis=-1, keepdims=True)


class ORTSERModel:
    """An exported hf_ser model in ONNX Runtime: torch-free inference with the same results as the PyTorch model.

    Load with `ORTSERModel.from_pretrained(folder)`. `model(**inputs)` runs the graph on numpy arrays and returns
    `{output name: array}`; `predict_logits`, `predict_windows` and `predict` do what `hf_ser.inference.predict` and
    `hf-ser predict` do (feature extraction, length buckets, windows over long audio). `hf_ser.inference.predict` functions,
    `pipeline("audio-classification", model=<folder>)` and `hf-ser predict --model <folder>` accept it too.

    Example:
        >>> from hf_ser.onnx import ORTSERModel
        >>> model = ORTSERModel.from_pretrained("ser-masp-onnx")  # doctest: +SKIP
        >>> model.predict(["clip.wav"])  # doctest: +SKIP
        [{'label': 'neutral', 'scores': {...}, 'windows': []}]
    """

    is_onnx = True

    def __init__(
        self, session, config: dict[str, Any], export_info: dict[str, Any], feature_extractor=None, path=None
    ):
        self.session = session
        self.config = ORTConfig(config)
        self.export_info = export_info
        self.feature_extractor = feature_extractor
        self.path = None if path is None else Path(path)
        self.input_names = [i.name for i in session.get_inputs()]
        self.output_names = [o.name for o in session.get_outputs()]
        self._input_types = {i.name: i.type for i in session.get_inputs()}

    @classmethod
    def from_pretrained(
        cls,
        folder: str | os.PathLike,
        *,
        providers: Sequence[str] | None = None,
        num_threads: int | None = None,
        session_options=None,
    ) -> ORTSERModel:
        """Load an export folder. `num_threads` sets ONNX Runtime's intra-op threads (default: all cores);
        `providers` defaults to the CPU provider."""
        ort = require("onnxruntime")
        folder = Path(folder)
        if not folder.is_dir():
            raise ONNXExportError(f"{folder} is not a folder.")
        if not is_onnx_folder(folder):
            raise ONNXExportError(
                f"{folder} is not an hf_ser ONNX export (it needs {ONNX_FILE} and {EXPORT_INFO_FILE}; "
                "write one with hf_ser.export_onnx or `hf-ser export`)."
            )
        config = json.loads((folder / CONFIG_FILE).read_text())
        export_info = json.loads((folder / EXPORT_INFO_FILE).read_text())
        options = session_options or quiet_session_options()
        if num_threads is not None:
            options.intra_op_num_threads = int(num_threads)
            options.inter_op_num_threads = 1
        session = ort.InferenceSession(
            str(folder / ONNX_FILE),
            sess_options=options,
            providers=list(providers or ["CPUExecutionProvider"]),
        )
        extractor = None
        if "input_values" in export_info.get("inputs", []):
            extractor = NumpyFeatureExtractor.from_pretrained(folder)
        return cls(session, config, export_info, extractor, folder)

    # --------------------------------------------------------------------------------------------- graph
    def __call__(self, **inputs) -> dict[str, np.ndarray]:
        """Run the graph: float inputs as float32, integer ones (masks) as int64. Unknown or missing inputs raise."""
        unknown = sorted(set(inputs) - set(self.input_names))
        missing = sorted(set(self.input_names) - set(inputs))
        if unknown or missing:
            raise ValueError(
                f"The ONNX model takes {self.input_names}; missing {missing}, unexpected {unknown}."
            )
        feed = {}
        for name, value in inputs.items():
            array = np.asarray(value.numpy() if hasattr(value, "numpy") else value)
            dtype = np.int64 if "int64" in self._input_types[name] else np.float32
            feed[name] = np.ascontiguousarray(array, dtype=dtype)
        return dict(zip(self.output_names, self.session.run(None, feed), strict=True))

    @property
    def quantized(self) -> str | None:
        return self.export_info.get("quantize")

    def pads_exactly(self) -> bool:
        """Whether a clip's output is independent of its batch (as in PyTorch: group-norm front ends are not)."""
        return config_pads_exactly(self.config)

    # --------------------------------------------------------------------------------------------- audio
    def _extractor(self, feature_extractor):
        extractor = feature_extractor or self.feature_extractor
        if extractor is None:
            raise ONNXExportError(f"This ONNX model does not read audio (its inputs are {self.input_names}).")
        return extractor

    def predict_logits(
        self,
        waveforms: Sequence[np.ndarray],
        *,
        feature_extractor=None,
        batch_size: int = 8,
        bucket: bool = True,
        progress: bool = False,
    ) -> np.ndarray:
        """Logits (clips, outputs) for 16 kHz mono float waveforms, in input order, in length-bucketed batches
        (`hf_ser.inference.predict.predict_logits`)."""
        extractor = self._extractor(feature_extractor)

        def run_batch(clips: list[np.ndarray]) -> np.ndarray:
            inputs = extractor(
                clips,
                sampling_rate=SAMPLING_RATE,
                padding=True,
                return_attention_mask=True,
                return_tensors="np",
            )
            return self(input_values=inputs["input_values"], attention_mask=inputs["attention_mask"])[
                "logits"
            ]

        return batched_logits(
            waveforms,
            run_batch,
            batch_size=batch_size,
            num_outputs=self.config.num_labels,
            bucket=bucket,
            equal_length_only=not self.pads_exactly(),
            progress=progress,
        )

    def predict_windows(
        self,
        waveform: np.ndarray,
        *,
        window_s: float = 10.0,
        hop_s: float | None = None,
        batch_size: int = 8,
        feature_extractor=None,
    ) -> tuple[np.ndarray, np.ndarray]:
        """Windowed inference over long 16 kHz audio: (start times in seconds, logits per window), as
        `hf_ser.inference.predict.predict_windows`."""
        return windowed_logits(
            waveform,
            lambda windows: self.predict_logits(
                windows, batch_size=batch_size, feature_extractor=feature_extractor
            ),
            window_s=window_s,
            hop_s=hop_s,
            batch_size=batch_size,
            sampling_rate=SAMPLING_RATE,
        )

    def scores(self, logits: np.ndarray) -> tuple[dict[str, float], str | None]:
        """`({label: probability}, top label)` for a classifier, `({attribute: value}, None)` for a regressor."""
        labels = [self.config.id2label[i] for i in range(logits.shape[-1])]
        if getattr(self.config, "problem_type", None) == "regression":
            return dict(zip(labels, map(float, logits), strict=True)), None
        probs = _softmax(logits.astype(np.float32))
        return dict(zip(labels, map(float, probs), strict=True)), labels[int(probs.argmax())]

    def predict(
        self,
        inputs: Iterable[str | os.PathLike | np.ndarray] | str | os.PathLike | np.ndarray,
        *,
        batch_size: int = 8,
        window_s: float = 30.0,
        sampling_rate: int = SAMPLING_RATE,
    ) -> list[dict[str, Any]]:
        """Predict audio files or 16 kHz arrays (arrays at another `sampling_rate` are resampled), as
        `hf-ser predict` does: clips up to `window_s` seconds in length-bucketed batches; longer ones cut into
        windows whose scores are averaged. Returns one `{"label", "scores", "windows"}` per input."""
        if isinstance(inputs, (str, os.PathLike, np.ndarray)):
            inputs = [inputs]
        # The package's one decoder: paths, arrays at `sampling_rate`, `{"array", "sampling_rate"}` dicts.
        waves = [load_input(item, sampling_rate=sampling_rate) for item in inputs]
        results: list[dict[str, Any] | None] = [None] * len(waves)
        short = [i for i, w in enumerate(waves) if len(w) <= window_s * SAMPLING_RATE]
        if short:
            logits = self.predict_logits([waves[i] for i in short], batch_size=batch_size)
            for i, row in zip(short, logits, strict=True):
                scores, label = self.scores(row)
                results[i] = {"label": label, "scores": scores, "windows": []}
        for i in sorted(set(range(len(waves))) - set(short)):
            starts, logits = self.predict_windows(waves[i], window_s=window_s, batch_size=batch_size)
            per_window = [self.scores(row) for row in logits]
            names = list(per_window[0][0])
            mean = {name: float(np.mean([s[name] for s, _ in per_window])) for name in names}
            top = None if per_window[0][1] is None else max(mean, key=mean.get)
            windows = [
                {"start_s": float(t), "label": lab, **s}
                for t, (s, lab) in zip(starts, per_window, strict=True)
            ]
            results[i] = {"label": top, "scores": mean, "windows": windows}
        return results  # type: ignore[return-value]

    def __repr__(self) -> str:
        kind = self.quantized or "fp32"
        return f"ORTSERModel({self.path}, {self.export_info.get('model_class')}, {kind}, inputs={self.input_names})"
