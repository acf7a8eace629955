"""What hf_ser's model configurations share: the `auto_map` that lets a saved model load without hf_ser.

This file travels to the Hub with the models (``trust_remote_code``): it imports only transformers.
"""

from __future__ import annotations

from transformers.configuration_utils import PreTrainedConfig

# The Auto classes every hf_ser model answers to; audio classifiers also need AutoModelForAudioClassification.
REQUIRED_AUTO_MAP = ("AutoConfig", "AutoModel")
AUDIO_CLASSIFIER_AUTO_MAP = "AutoModelForAudioClassification"


def fill_auto_map(
    config: PreTrainedConfig, config_class: str, model_class: str, *, audio_classifier: bool = False
) -> None:
    """Complete `config.auto_map`, when it is unset, so that a saved model loads with `trust_remote_code` without
    hf_ser installed: `AutoConfig` names `config_class` and `AutoModel` names `model_class` (as
    `"module.ClassName"`, the module being the flat file saved next to `config.json`); an `audio_classifier` also
    answers to `AutoModelForAudioClassification`. An `auto_map` already set (e.g. read from a saved
    `config.json`) is left as it is."""
    if getattr(config, "auto_map", None) is not None:
        return
    auto_map = {"AutoConfig": config_class, "AutoModel": model_class}
    if audio_classifier:
        auto_map[AUDIO_CLASSIFIER_AUTO_MAP] = model_class
    config.auto_map = auto_map


__all__ = ["AUDIO_CLASSIFIER_AUTO_MAP", "REQUIRED_AUTO_MAP", "fill_auto_map"]
