"""The feature extractor saved with every hf_ser speech model, so that `pipeline()` feeds it 16 kHz, per-utterance
normalised waveforms with an attention mask."""

from __future__ import annotations

from transformers import AutoFeatureExtractor, Wav2Vec2FeatureExtractor

from ..models.labels import SAMPLING_RATE


def build_feature_extractor(
    encoder_name_or_path: str | None = None, **hub_kwargs
) -> Wav2Vec2FeatureExtractor:
    """A `Wav2Vec2FeatureExtractor` for 16 kHz mono audio that normalises each utterance (zero mean, unit variance,
    over its real samples only) and returns an attention mask.

    With `encoder_name_or_path`, the encoder's own preprocessing config is read from the Hub (or a folder) and the
    attention mask is switched on, since every hf_ser pooling needs it to ignore padding.

    Note: the challenge baseline (paper 002) normalises with the training set's global mean and standard deviation
    instead; per-utterance normalisation is what WavLM-large was pretrained with.
    """
    if encoder_name_or_path is None:
        return Wav2Vec2FeatureExtractor(
            feature_size=1,
            sampling_rate=SAMPLING_RATE,
            padding_value=0.0,
            do_normalize=True,
            return_attention_mask=True,
        )
    extractor = AutoFeatureExtractor.from_pretrained(encoder_name_or_path, **hub_kwargs)
    if not isinstance(extractor, Wav2Vec2FeatureExtractor):
        raise TypeError(
            f"{encoder_name_or_path} has a {type(extractor).__name__}; a raw-waveform encoder is expected."
        )
    extractor.return_attention_mask = True
    return extractor


__all__ = ["build_feature_extractor", "SAMPLING_RATE"]
