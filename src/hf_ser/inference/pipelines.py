"""transformers pipelines for SER, both with length-bucketed batches.

- `"speech-emotion-regression"` ([`SpeechEmotionRegressionPipeline`]): audio (plus an optional transcript) to
  arousal, valence and dominance on the 1-7 scale of MSP-Podcast (papers 001 and 002). `import hf_ser` registers
  the task, so `pipeline("speech-emotion-regression", model=...)` works for [`MultimodalSERForRegression`]
  (speech + text, paper 001) and for speech-only attribute regressors such as `WavLMForMASPClassification` with
  `problem_type="regression"`.
- `"audio-classification"` ([`SERAudioClassificationPipeline`]): `import hf_ser` makes transformers' task use this
  subclass of `AudioClassificationPipeline`. For hf_ser models, a list or dataset of clips called with
  `batch_size > 1` is batched by length (clips of similar length share a batch, results come back in input order); for every other
  model it is transformers' pipeline unchanged.

Why: arrival-order batches of MSP-Podcast-like clips (2.75-11 s) spend about a third of their frames on padding;
length-bucketed batches spend 3 % (benchmark 2 in `benchmarks/`), with the same outputs for padding-invariant
encoders. Encoders that are not padding-invariant (`hf_ser.inference.predict.pads_exactly`) are batched only with clips of
equal length.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable, Iterator, Mapping, Sequence
from typing import Any

import numpy as np
import torch
from torch.utils.data import DataLoader
from transformers import AudioClassificationPipeline, AutoModel, Pipeline, pipeline
from transformers.pipelines import PIPELINE_REGISTRY
from transformers.pipelines.pt_utils import PipelineDataset
from transformers.utils import ModelOutput

from ..audio import SAMPLING_RATE, load_input
from ..errors import ModelOutputError
from ..processing.processing_multimodal import MultimodalSERProcessor
from .predict import length_buckets, pads_exactly

TASK = "speech-emotion-regression"
CLASSIFICATION_TASK = "audio-classification"
# Models whose audio-classification batches the pipeline groups by length.
BUCKETED_MODEL_TYPES = frozenset({"wavlm_masp"})


def _clip_length(features: Mapping[str, Any]) -> int:
    """Valid length of one preprocessed clip: samples of `input_values`, else the attention mask's sum (Whisper's
    fixed-size log-mel window)."""
    if "input_values" in features:
        return int(features["input_values"].shape[-1])
    return int(features["attention_mask"].sum())


def _pad_stack(values: Sequence[torch.Tensor], pad_value: float, side: str) -> torch.Tensor:
    """Concatenate (1, length, ...) tensors along the batch, padding `length` on `side` when it differs."""
    longest = max(v.shape[1] for v in values) if values[0].ndim > 1 else None
    if longest is None or all(v.shape[1] == longest for v in values):
        return torch.cat(list(values), dim=0)
    out = values[0].new_full((len(values), longest, *values[0].shape[2:]), pad_value)
    for row, value in enumerate(values):
        length = value.shape[1]
        if side == "left":
            out[row, longest - length :] = value[0]
        else:
            out[row, :length] = value[0]
    return out


def _sized_and_indexable(inputs: Any) -> bool:
    """Lists, tuples and map-style datasets (`KeyDataset`): what can be windowed and put back in order."""
    if isinstance(inputs, (list, tuple)):
        return True
    if isinstance(inputs, (str, bytes, dict, np.ndarray, torch.Tensor)):
        return False
    return hasattr(inputs, "__len__") and hasattr(inputs, "__getitem__")


def check_finite_logits(logits: torch.Tensor) -> None:
    """`ModelOutputError` when a model returns NaN or infinite outputs for checked, finite audio: its weights are
    corrupt or diverged, and a score computed from them would be meaningless."""
    finite = torch.isfinite(torch.as_tensor(logits))
    if not bool(finite.all()):
        raise ModelOutputError(
            f"The model returned {int((~finite).sum())} NaN or infinite outputs for finite audio: its weights are "
            "corrupt or diverged."
        )


def _only_item(batch: list) -> Any:
    return batch[0]


def _output_row(outputs: Any, row: int) -> Any:
    """Row `row` of a batched forward output, shaped like a batch of one (what `postprocess` expects)."""
    items = {
        key: value[row : row + 1]
        if isinstance(value, torch.Tensor)
        else value[row]
        if isinstance(value, list)
        else value
        for key, value in outputs.items()
    }
    return type(outputs)(**items) if isinstance(outputs, ModelOutput) else items


class LengthBucketedBatches:
    """Pipeline mixin: a list, or any sized indexable input such as `KeyDataset(dataset, "audio")`, called with
    `batch_size > 1` runs in length-bucketed batches.

    Inputs are preprocessed a window of `bucket_window_batches * batch_size` at a time (with `num_workers` > 1 in
    DataLoader workers, as transformers does; decoded audio of a whole long input is never held at once), grouped
    with `hf_ser.inference.predict.length_buckets`, padded per batch, and the results come back in input order (lazily,
    window by window, for datasets). Generators and single inputs take transformers' usual path.
    """

    # How many batches' worth of inputs are decoded and sorted together.
    bucket_window_batches = 32

    def buckets_by_length(self) -> bool:
        return True

    def padding(self) -> dict[str, tuple[float, str]]:
        """(pad value, side) per tensor key of a preprocessed clip."""
        extractor = self.feature_extractor
        value, side = getattr(extractor, "padding_value", 0.0), getattr(extractor, "padding_side", "right")
        return {"input_values": (value, side), "input_features": (value, side), "attention_mask": (0, side)}

    def get_iterator(
        self, inputs, num_workers, batch_size, preprocess_params, forward_params, postprocess_params
    ):
        if batch_size > 1 and _sized_and_indexable(inputs) and self.buckets_by_length():
            return self._bucketed(
                inputs, num_workers, batch_size, preprocess_params, forward_params, postprocess_params
            )
        return super().get_iterator(
            inputs, num_workers, batch_size, preprocess_params, forward_params, postprocess_params
        )

    def collate(self, clips: Sequence[Mapping[str, Any]]) -> dict[str, Any]:
        padding = self.padding()
        batch: dict[str, Any] = {}
        for key in clips[0]:
            values = [clip[key] for clip in clips]
            if isinstance(values[0], torch.Tensor):
                pad_value, side = padding.get(key, (0, "right"))
                batch[key] = _pad_stack(values, pad_value, side)
            else:
                batch[key] = values
        return batch

    def _preprocessed(self, items: list, num_workers: int, preprocess_params) -> list:
        if num_workers <= 1:
            return [self.preprocess(item, **preprocess_params) for item in items]
        dataset = PipelineDataset(items, self.preprocess, preprocess_params)
        return list(DataLoader(dataset, batch_size=1, num_workers=num_workers, collate_fn=_only_item))

    def _bucketed(
        self, inputs, num_workers: int, batch_size: int, preprocess_params, forward_params, postprocess_params
    ) -> Iterator[Any]:
        equal_length_only = not pads_exactly(self.model)
        window = batch_size * self.bucket_window_batches
        for start in range(0, len(inputs), window):
            items = [inputs[i] for i in range(start, min(start + window, len(inputs)))]
            clips = self._preprocessed(items, num_workers, preprocess_params)
            results: list[Any] = [None] * len(clips)
            lengths = [_clip_length(clip) for clip in clips]
            for batch in length_buckets(lengths, batch_size, equal_length_only=equal_length_only):
                outputs = self.forward(self.collate([clips[i] for i in batch]), **forward_params)
                for row, index in enumerate(batch):
                    results[index] = self.postprocess(_output_row(outputs, row), **postprocess_params)
            yield from results


class SERAudioClassificationPipeline(LengthBucketedBatches, AudioClassificationPipeline):
    """transformers' `AudioClassificationPipeline` with length-bucketed batches for hf_ser models.

    `import hf_ser` makes `pipeline("audio-classification", ...)` build this class. With an hf_ser model
    (`WavLMForMASPClassification`), `classifier(list_of_clips, batch_size=8)` groups clips of similar length into
    each batch and returns the results in input order, identical to running the clips one by one (tested); a
    dataset (`KeyDataset`) with `batch_size` is bucketed the same way, window by window. With any other model, and
    for single clips and generators, it behaves exactly as transformers' class.
    """

    def buckets_by_length(self) -> bool:
        return getattr(self.model.config, "model_type", None) in BUCKETED_MODEL_TYPES

    def check_model_type(self, supported_models):
        # An ONNX export (hf_ser.onnx) stands in for the registered PyTorch class of its config.
        if not getattr(self.model, "is_onnx", False):
            super().check_model_type(supported_models)

    def preprocess(self, inputs):
        """Every input (path, URL, bytes, array, tensor, dict at any rate, `AudioDecoder`) goes through
        `hf_ser.audio.load_input`, i.e. `prepare_waveform`: NaN/infinite, empty, complex, boolean and non-numeric
        audio raise `AudioError`, clips shorter than 400 samples are zero-padded, multichannel audio is mixed to
        mono, and other rates are resampled with soxr (no torchaudio)."""
        waveform = load_input(inputs, target_sr=int(self.feature_extractor.sampling_rate))
        return super().preprocess(waveform)

    def postprocess(self, model_outputs, **kwargs):
        check_finite_logits(model_outputs["logits"])
        return super().postprocess(model_outputs, **kwargs)


class SpeechEmotionRegressionPipeline(LengthBucketedBatches, Pipeline):
    """Predict `{"arousal", "valence", "dominance"}` from speech, with an optional transcript.

    Inputs: a 16 kHz mono float array, a path to an audio file, or a dict `{"array" (or "raw"), "sampling_rate",
    "transcript" (optional)}`; a list of these gives a list of results, run in length-bucketed batches with
    `batch_size > 1` (see [`LengthBucketedBatches`]). Other rates are resampled with soxr.

    When the model reads text (`config.use_text`) and no transcript is given, the pipeline transcribes the audio
    first with an ASR model: the `asr_model` argument (a model id or folder, or a ready
    `pipeline("automatic-speech-recognition")` / any callable returning `{"text": ...}`), else the model's
    `config.asr_model` (Whisper-large-v3 by default, as paper 001's transcripts came from Whisper).

    Call arguments: `transcript=` (one string for one input), `return_transcript=True` to add the transcript used.

    Example:
        >>> from transformers import pipeline
        >>> import hf_ser  # registers the task
        >>> regressor = pipeline("speech-emotion-regression", model="path/to/model")  # doctest: +SKIP
        >>> regressor("clip.wav", transcript="I can't believe it!")  # doctest: +SKIP
        {'arousal': 5.1, 'valence': 2.3, 'dominance': 4.6}
    """

    _load_processor = False
    _load_image_processor = False
    _load_video_processor = False
    _load_feature_extractor = None
    _load_tokenizer = None

    def __init__(self, *args, asr_model: str | Callable | None = None, **kwargs):
        super().__init__(*args, **kwargs)
        self.asr_model = asr_model
        self._asr: Callable | None = None
        self.uses_text = bool(getattr(self.model.config, "use_text", False))
        if self.feature_extractor is None:
            raise ValueError(
                "The model folder has no feature extractor (preprocessor_config.json); pass one."
            )
        if self.uses_text and self.tokenizer is None:
            raise ValueError("This model reads transcripts but no tokenizer was found; pass `tokenizer=`.")
        self.multimodal_processor = (
            MultimodalSERProcessor(self.feature_extractor, self.tokenizer) if self.uses_text else None
        )

    # ----------------------------------------------------------------------------------------------- ASR
    @property
    def asr(self) -> Callable:
        """The ASR callable, built on first use."""
        if self._asr is None:
            source = (
                self.asr_model
                if self.asr_model is not None
                else getattr(self.model.config, "asr_model", None)
            )
            if source is None:
                raise ValueError("No transcript given and no ASR model configured (pass `asr_model=`).")
            self._asr = (
                pipeline("automatic-speech-recognition", model=source) if isinstance(source, str) else source
            )
        return self._asr

    def transcribe(self, waveform: np.ndarray) -> str:
        result = self.asr(waveform.copy())
        text = result["text"] if isinstance(result, dict) else str(result)
        return text.strip()

    # ----------------------------------------------------------------------------------------------- steps
    def padding(self) -> dict[str, tuple[float, str]]:
        padding = super().padding()
        if self.tokenizer is not None:
            side = self.tokenizer.padding_side
            padding.update(
                {"text_input_ids": (self.tokenizer.pad_token_id, side), "text_attention_mask": (0, side)}
            )
        return padding

    def _sanitize_parameters(
        self, transcript: str | None = None, return_transcript: bool | None = None, **kwargs
    ):
        preprocess_params = {} if transcript is None else {"transcript": transcript}
        postprocess_params = {} if return_transcript is None else {"return_transcript": return_transcript}
        return preprocess_params, {}, postprocess_params

    @staticmethod
    def _read(inputs: Any) -> tuple[np.ndarray, str | None]:
        """The checked 16 kHz waveform (`hf_ser.audio.load_input`) and the transcript of a dict input."""
        transcript = None
        if isinstance(inputs, Mapping):
            transcript = inputs.get("transcript", inputs.get("text"))
        return load_input(inputs), transcript

    def preprocess(self, inputs, transcript: str | None = None):
        waveform, given = self._read(inputs)
        transcript = transcript if transcript is not None else given
        if self.uses_text and transcript is None:
            transcript = self.transcribe(waveform)
        if self.multimodal_processor is not None:
            model_inputs = self.multimodal_processor(audio=[waveform], text=[transcript], return_tensors="pt")
        else:
            # Whisper encoders take a fixed window; waveform encoders take the clip as it is.
            whisper = type(self.feature_extractor).__name__.startswith("Whisper")
            model_inputs = self.feature_extractor(
                [waveform],
                sampling_rate=SAMPLING_RATE,
                padding="max_length" if whisper else True,
                return_attention_mask=True,
                return_tensors="pt",
            )
        dtype = self.model.dtype
        model_inputs = {k: v.to(dtype) if v.is_floating_point() else v for k, v in model_inputs.items()}
        model_inputs["transcript"] = transcript
        return model_inputs

    def _forward(self, model_inputs):
        transcript = model_inputs.pop("transcript", None)
        outputs = self.model(**model_inputs)
        return {"logits": outputs.logits, "transcript": transcript}

    def postprocess(self, model_outputs, return_transcript: bool = False):
        check_finite_logits(model_outputs["logits"])
        values = model_outputs["logits"][0].float().cpu().numpy()
        id2label = self.model.config.id2label
        result: dict[str, Any] = {str(id2label[i]): float(v) for i, v in enumerate(values)}
        if return_transcript:
            result["transcript"] = model_outputs["transcript"]
        return result


def register_pipelines() -> None:
    """Register the `speech-emotion-regression` task with transformers and make `audio-classification` build
    [`SERAudioClassificationPipeline`] (safe to call repeatedly)."""
    classification = PIPELINE_REGISTRY.supported_tasks[CLASSIFICATION_TASK]
    current = classification["impl"]  # a class, or (transformers >= 5) its dotted path
    if isinstance(current, str):
        module_path, _, name = current.rpartition(".")
        current = getattr(importlib.import_module(module_path), name)
    if issubclass(SERAudioClassificationPipeline, current):
        # Only the class changes: the task's default model and Auto classes stay transformers'.
        classification["impl"] = SERAudioClassificationPipeline
    _accept_onnx_folders(classification)
    if PIPELINE_REGISTRY.supported_tasks.get(TASK, {}).get("impl") is SpeechEmotionRegressionPipeline:
        return
    PIPELINE_REGISTRY.register_pipeline(
        TASK, pipeline_class=SpeechEmotionRegressionPipeline, pt_model=AutoModel, type="multimodal"
    )
    _accept_onnx_folders(PIPELINE_REGISTRY.supported_tasks[TASK])


def _accept_onnx_folders(task: dict) -> None:
    """Put the ONNX Runtime model class first among a task's model classes: `pipeline(task, model=<hf_ser ONNX
    export folder>)` then runs ONNX Runtime, and every other model falls through to the Auto classes."""
    from ..onnx.adapter import ORTModelForAudioClassification

    classes = tuple(task.get("pt") or ())
    if ORTModelForAudioClassification not in classes:
        task["pt"] = (ORTModelForAudioClassification, *classes)


__all__ = [
    "LengthBucketedBatches",
    "SERAudioClassificationPipeline",
    "SpeechEmotionRegressionPipeline",
    "register_pipelines",
    "TASK",
]
