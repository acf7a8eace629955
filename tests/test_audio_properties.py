"""Property-based tests (hypothesis): any length, rate, dtype, channel layout and NaN pattern either gives a clear
`AudioError` or a clean 16 kHz mono float32 waveform that the feature extractor and pipeline() handle."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from hf_ser import build_feature_extractor
from hf_ser.audio import MIN_SAMPLES, AudioError, prepare_waveform
from tests.tiny import save_tiny_model

RATES = (8000, 11025, 16000, 22050, 44100, 48000)
DTYPES = (np.int16, np.int32, np.float32, np.float64)


@st.composite
def raw_audio(draw):
    rate = draw(st.sampled_from(RATES))
    samples = draw(st.integers(min_value=0, max_value=int(1.5 * rate)))
    channels = draw(st.sampled_from([1, 2, 4]))
    channels_first = draw(st.booleans())
    dtype = draw(st.sampled_from(DTYPES))
    bad = draw(st.sampled_from(["none", "one_nan", "all_nan", "inf"]))
    seed = draw(st.integers(0, 2**16))
    wave = np.random.default_rng(seed).uniform(-0.9, 0.9, size=(samples, channels))
    if np.issubdtype(dtype, np.integer):
        wave = (wave * np.iinfo(dtype).max).astype(dtype)
    else:
        wave = wave.astype(dtype)
        if samples and bad == "one_nan":
            wave[samples // 2, 0] = np.nan
        elif samples and bad == "all_nan":
            wave[:] = np.nan
        elif samples and bad == "inf":
            wave[0, -1] = np.inf
    if channels == 1 and draw(st.booleans()):
        wave = wave[:, 0]
    elif channels_first:
        wave = wave.T
    return wave, rate, samples, bad if not np.issubdtype(dtype, np.integer) else "none"


@settings(max_examples=60, deadline=None)
@given(raw_audio())
def test_prepare_waveform_is_clean_or_refuses_clearly(case):
    wave, rate, samples, bad = case
    if samples == 0 or bad != "none":
        with pytest.raises(AudioError, match="empty|NaN|infinite"):
            prepare_waveform(wave, rate)
        return
    out = prepare_waveform(wave, rate)
    assert out.dtype == np.float32 and out.ndim == 1 and np.isfinite(out).all()
    expected = max(MIN_SAMPLES, round(samples * 16000 / rate))
    assert abs(out.size - expected) <= 1
    if rate == 16000:  # no resampling: integer PCM is scaled into [-1, 1]
        assert np.abs(out).max() <= 1.0


@pytest.fixture(scope="module")
def classifier(tmp_path_factory):
    from transformers import pipeline

    path = tmp_path_factory.mktemp("prop_model")
    save_tiny_model(path)
    return pipeline("audio-classification", model=str(path))


@settings(max_examples=15, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(raw_audio())
def test_pipeline_and_feature_extractor_on_prepared_audio(classifier, case):
    wave, rate, samples, bad = case
    if samples == 0 or bad != "none":
        return  # refused above, before any model sees it
    prepared = prepare_waveform(wave, rate)
    features = build_feature_extractor()(prepared, sampling_rate=16000, return_tensors="np")
    assert np.isfinite(features["input_values"]).all()
    scores = classifier(prepared, top_k=8)
    assert len(scores) == 8 and abs(sum(s["score"] for s in scores) - 1) < 1e-4
