"""Custom transformers pipelines: `"speech-emotion-regression"`, audio (plus an optional transcript) to arousal,
valence and dominance on the 1-7 scale of MSP-Podcast (papers 001 and 002).

`import hf_ser` registers the task, so `pipeline("speech-emotion-regression", model=...)` works for
[`MultimodalSERForRegression`] (speech + text, paper 001) and for speech-only attribute regressors such as
`WavLMForMASPClassification` with `problem_type="regression"`.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from typing import Any

import numpy as np
from transformers import AutoModel, Pipeline, pipeline
from transformers.pipelines import PIPELINE_REGISTRY

from .audio import SAMPLING_RATE, AudioError, load_audio, prepare_waveform
from .processing_multimodal import MultimodalSERProcessor

TASK = "speech-emotion-regression"


class SpeechEmotionRegressionPipeline(Pipeline):
    """Predict `{"arousal", "valence", "dominance"}` from speech, with an optional transcript.

    Inputs: a 16 kHz mono float array, a path to an audio file, or a dict `{"array" (or "raw"), "sampling_rate",
    "transcript" (optional)}`; a list of these gives a list of results. Other rates are resampled with soxr.

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
    def _sanitize_parameters(
        self, transcript: str | None = None, return_transcript: bool | None = None, **kwargs
    ):
        preprocess_params = {} if transcript is None else {"transcript": transcript}
        postprocess_params = {} if return_transcript is None else {"return_transcript": return_transcript}
        return preprocess_params, {}, postprocess_params

    @staticmethod
    def _read(inputs: Any) -> tuple[np.ndarray, str | None]:
        transcript = None
        if isinstance(inputs, (str, os.PathLike)):
            return load_audio(inputs), None
        if isinstance(inputs, dict):
            transcript = inputs.get("transcript", inputs.get("text"))
            array = inputs.get("array", inputs.get("raw"))
            if array is None or "sampling_rate" not in inputs:
                raise AudioError("A dict input needs 'array' (or 'raw') and 'sampling_rate'.")
            return prepare_waveform(np.asarray(array), int(inputs["sampling_rate"])), transcript
        if isinstance(inputs, np.ndarray):
            return prepare_waveform(inputs, SAMPLING_RATE), None
        raise AudioError(
            f"Unsupported input of type {type(inputs).__name__}: give an array, a path or a dict."
        )

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
        values = model_outputs["logits"][0].float().cpu().numpy()
        id2label = self.model.config.id2label
        result: dict[str, Any] = {str(id2label[i]): float(v) for i, v in enumerate(values)}
        if return_transcript:
            result["transcript"] = model_outputs["transcript"]
        return result


def register_pipelines() -> None:
    """Register the `speech-emotion-regression` task with transformers (safe to call repeatedly)."""
    if PIPELINE_REGISTRY.supported_tasks.get(TASK, {}).get("impl") is SpeechEmotionRegressionPipeline:
        return
    PIPELINE_REGISTRY.register_pipeline(
        TASK, pipeline_class=SpeechEmotionRegressionPipeline, pt_model=AutoModel, type="multimodal"
    )


__all__ = ["SpeechEmotionRegressionPipeline", "register_pipelines", "TASK"]
