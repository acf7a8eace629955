"""A torch-facing face for [`ORTSERModel`], so that transformers pipelines and hf_ser's PyTorch entry points drive
an ONNX export exactly as they drive the PyTorch model (needs torch and transformers; the runtime itself does not).

`import hf_ser` puts [`ORTModelForAudioClassification`] first among the model classes of the
`audio-classification` and `speech-emotion-regression` tasks: `pipeline(task, model=<export folder>)` loads the
folder with ONNX Runtime, and any other model falls through to transformers' Auto classes.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import torch

from .runtime import ONNXExportError, ORTSERModel, is_onnx_folder


class ORTModelForAudioClassification:
    """Wraps an [`ORTSERModel`] with the parts of a `PreTrainedModel` that pipelines use: `config` (the
    transformers config of the exported model), `device`, `dtype`, `to()`, `eval()`, and a forward that takes and
    returns torch tensors (`SERClassifierOutput`). Runs on CPU."""

    is_onnx = True
    main_input_name = "input_values"
    training = False

    def __init__(self, ort_model: ORTSERModel, config):
        self.ort_model = ort_model
        self.config = config
        self.device = torch.device("cpu")
        self.dtype = torch.float32

    @classmethod
    def from_pretrained(
        cls, pretrained_model_name_or_path: str | os.PathLike, **kwargs
    ) -> ORTModelForAudioClassification:
        """Load an export folder (other keyword arguments, passed by `pipeline()`, are ignored). A path that is not
        an hf_ser ONNX export raises `OSError`, so that `pipeline()` tries the next model class."""
        path = Path(pretrained_model_name_or_path)
        if not is_onnx_folder(path):
            raise OSError(f"{pretrained_model_name_or_path} is not an hf_ser ONNX export folder.")
        from transformers import AutoConfig

        config = kwargs.get("config")
        if config is None or isinstance(config, (str, os.PathLike)):
            config = AutoConfig.from_pretrained(path)
        return cls(ORTSERModel.from_pretrained(path), config)

    # -------------------------------------------------------------------------------------- nn.Module-like
    def to(self, device=None, *args, **kwargs) -> ORTModelForAudioClassification:
        if device is not None and not isinstance(device, torch.dtype) and torch.device(device).type != "cpu":
            raise ValueError(f"hf_ser runs ONNX models on the CPU; cannot move one to {device}.")
        return self

    def eval(self) -> ORTModelForAudioClassification:
        return self

    def train(self, mode: bool = True) -> ORTModelForAudioClassification:
        if mode:
            raise ONNXExportError("An ONNX export is for inference only.")
        return self

    def can_generate(self) -> bool:
        return False

    def parameters(self):
        return iter(())

    def __call__(self, input_values=None, attention_mask=None, **kwargs):
        from ..models.modeling_wavlm_masp import SERClassifierOutput

        inputs = {"input_values": input_values}
        if "attention_mask" in self.ort_model.input_names:
            if attention_mask is None:
                attention_mask = torch.ones(input_values.shape, dtype=torch.long)
            inputs["attention_mask"] = attention_mask
        extra = {k: v for k, v in kwargs.items() if k in self.ort_model.input_names}
        missing = sorted(set(self.ort_model.input_names) - set(inputs) - set(extra))
        if missing:
            raise ValueError(f"This ONNX model also needs {missing}; the pipeline does not provide them.")
        outputs = self.ort_model(**{k: _numpy(v) for k, v in {**inputs, **extra}.items()})
        return SERClassifierOutput(
            logits=torch.from_numpy(outputs["logits"]),
            embeddings=torch.from_numpy(outputs["embeddings"]) if "embeddings" in outputs else None,
        )

    forward = __call__

    # -------------------------------------------------------------------------------------- hf_ser.inference.predict
    def predict_logits(self, waveforms, **kwargs) -> np.ndarray:
        return self.ort_model.predict_logits(waveforms, **kwargs)

    def __repr__(self) -> str:
        return f"ORTModelForAudioClassification({self.ort_model!r})"


def _numpy(value) -> np.ndarray:
    return value.detach().cpu().numpy() if isinstance(value, torch.Tensor) else np.asarray(value)


__all__ = ["ORTModelForAudioClassification"]
