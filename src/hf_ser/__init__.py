"""hf_ser: Hugging Face-native speech emotion recognition (Interspeech 2025 MSP-Podcast challenge systems).

`import hf_ser` registers the models with transformers' Auto classes, so published models load with
`AutoModelForAudioClassification.from_pretrained(...)` and `pipeline("audio-classification", ...)` without
`trust_remote_code`.
"""

from __future__ import annotations

__version__ = "0.1.0"

from ._moved import install as _install_moved_modules

_install_moved_modules()


def _torch_importable() -> bool:
    try:
        import torch  # noqa: F401
    except ImportError:
        return False
    return True


# Without torch (an ONNX Runtime-only deployment) only the torch-free parts load: `hf_ser.onnx.ORTSERModel` and the
# audio helpers. Everything else needs torch and transformers.
TORCH_AVAILABLE = _torch_importable()

if TORCH_AVAILABLE:
    from .audio import AudioError, load_audio, prepare_waveform
    from .data import MSPPodcast, load_msp_podcast
    from .evaluation.metrics import load_metric
    from .inference.ensemble import SEREnsemble, average_predictions, average_probabilities, plurality_vote
    from .inference.pipelines import SERAudioClassificationPipeline, SpeechEmotionRegressionPipeline
    from .inference.predict import classify, predict_logits
    from .models.configuration_multimodal import MULTIMODAL_ATTRIBUTES, MultimodalSERConfig
    from .models.configuration_multiview import MultiViewSERConfig
    from .models.configuration_wavlm_masp import ATTRIBUTE_LABELS, EMOTION_LABELS, WavLMMASPConfig
    from .models.losses import (
        CCCLoss,
        FocalLoss,
        concordance_correlation_coefficient,
        inverse_frequency_class_weights,
        loss_from_config,
        set_inverse_frequency_class_weights,
    )
    from .models.modeling_multimodal import MultimodalSERForRegression, MultimodalSEROutput
    from .models.modeling_multiview import (
        MultiViewSERForRegression,
        MultiViewSEROutput,
        extract_view_embeddings,
    )
    from .models.modeling_wavlm_masp import SERClassifierOutput, WavLMForMASPClassification
    from .processing.data_collator import AudioDataCollator
    from .processing.embedding_cache import SpeechFrameEmbedder, TextEmbedder, cache_embeddings
    from .processing.feature_extraction import build_feature_extractor
    from .processing.processing_multimodal import MultimodalDataCollator, MultimodalSERProcessor
    from .publishing.hub import push_space, push_to_hub
    from .publishing.model_card import CardData, ModelCardCallback, install_model_card_hooks
    from .registration import register_auto_classes
    from .training.sampler import ClassBalancedBatchSampler, ClassBalancedUndersampler, LengthSortedSampler
    from .training.trainer import CCCLossTrainer, FocalLossTrainer, SERTrainingArguments

    register_auto_classes()
    install_model_card_hooks()  # save_pretrained writes README.md (the model card) beside the weights
    from .onnx.export import export_onnx
else:
    from .audio import AudioError, load_audio, prepare_waveform

__all__ = [
    "export_onnx",
    "ORTSERModel",
    "MULTIMODAL_ATTRIBUTES",
    "MultimodalSERConfig",
    "MultimodalSEROutput",
    "MultimodalSERForRegression",
    "MultimodalSERProcessor",
    "MultimodalDataCollator",
    "SEREnsemble",
    "SpeechFrameEmbedder",
    "TextEmbedder",
    "average_predictions",
    "average_probabilities",
    "cache_embeddings",
    "plurality_vote",
    "SERAudioClassificationPipeline",
    "SpeechEmotionRegressionPipeline",
    "ATTRIBUTE_LABELS",
    "EMOTION_LABELS",
    "AudioError",
    "CardData",
    "CCCLoss",
    "FocalLoss",
    "MSPPodcast",
    "ModelCardCallback",
    "MultiViewSERConfig",
    "MultiViewSERForRegression",
    "MultiViewSEROutput",
    "SERClassifierOutput",
    "WavLMForMASPClassification",
    "WavLMMASPConfig",
    "build_feature_extractor",
    "classify",
    "concordance_correlation_coefficient",
    "extract_view_embeddings",
    "inverse_frequency_class_weights",
    "loss_from_config",
    "set_inverse_frequency_class_weights",
    "load_audio",
    "load_metric",
    "load_msp_podcast",
    "predict_logits",
    "prepare_waveform",
    "push_space",
    "push_to_hub",
    "register_auto_classes",
    "AudioDataCollator",
    "CCCLossTrainer",
    "ClassBalancedBatchSampler",
    "ClassBalancedUndersampler",
    "LengthSortedSampler",
    "FocalLossTrainer",
    "SERTrainingArguments",
]
from .onnx import ORTSERModel  # noqa: E402  (torch-free)

if not TORCH_AVAILABLE:
    __all__ = [name for name in __all__ if name in globals()]
