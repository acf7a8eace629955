"""Registration of hf_ser's configs and models with transformers' Auto classes (idempotent)."""

from __future__ import annotations

from transformers import AutoConfig, AutoModel, AutoModelForAudioClassification

from .models.configuration_multimodal import MultimodalSERConfig
from .models.configuration_multiview import MultiViewSERConfig
from .models.configuration_wavlm_masp import WavLMMASPConfig
from .models.modeling_multimodal import MultimodalSERForRegression
from .models.modeling_multiview import MultiViewSERForRegression
from .models.modeling_wavlm_masp import WavLMForMASPClassification

# (config class, model class, Auto classes the model answers to)
MODELS = [
    (WavLMMASPConfig, WavLMForMASPClassification, (AutoModel, AutoModelForAudioClassification)),
    # Reads cached per-view embeddings, not audio: AutoModel only (paper 003).
    (MultiViewSERConfig, MultiViewSERForRegression, (AutoModel,)),
    # Needs a transcript besides audio, so not an audio classifier: AutoModel and the speech-emotion-regression
    # pipeline (paper 001).
    (MultimodalSERConfig, MultimodalSERForRegression, (AutoModel,)),
]


def is_audio_classifier(model_type: str | None) -> bool:
    """Whether hf_ser registers this model type with `AutoModelForAudioClassification` (the multimodal and
    multi-view models need more than audio and answer to `AutoModel` only)."""
    for config_class, _model_class, auto_classes in MODELS:
        if config_class.model_type == model_type:
            return AutoModelForAudioClassification in auto_classes
    return False


def register_auto_classes() -> None:
    """Register every hf_ser model with AutoConfig and its Auto model classes; safe to call repeatedly."""
    for config_class, model_class, auto_classes in MODELS:
        AutoConfig.register(config_class.model_type, config_class, exist_ok=True)
        for auto_class in auto_classes:
            auto_class.register(config_class, model_class, exist_ok=True)
        # Saving copies the code files, so the saved model also loads with trust_remote_code and no hf_ser.
        config_class.register_for_auto_class()
        model_class.register_for_auto_class(auto_classes[-1].__name__)
    from .inference.pipelines import register_pipelines  # after the models: the pipeline module imports them

    register_pipelines()
