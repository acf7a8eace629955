"""Audio checks and conversions used by every entry point."""

from __future__ import annotations

import numpy as np
import pytest
import soundfile as sf

from hf_ser.audio import MIN_SAMPLES, AudioError, load_audio, prepare_waveform
from tiny import tone


def test_int16_stereo_48k_becomes_mono_float32_16k():
    wave = tone(1.0, sr=48000)
    stereo = np.stack([wave, wave], axis=1)
    pcm = (stereo * 32767).astype(np.int16)
    out = prepare_waveform(pcm, 48000)
    assert out.dtype == np.float32 and out.ndim == 1 and out.size == 16000
    np.testing.assert_allclose(out[1000:2000], prepare_waveform(wave, 48000)[1000:2000], atol=1e-3)


def test_channels_first_multichannel_is_mixed_down():
    wave = tone(0.5)
    out = prepare_waveform(np.stack([wave, -wave, wave, wave]), 16000)
    np.testing.assert_allclose(out, 0.5 * wave, atol=1e-6)


@pytest.mark.parametrize(
    "array, message",
    [
        (np.zeros(0, dtype=np.float32), "empty"),
        (np.array([0.1, np.nan, 0.2] * 200, dtype=np.float32), "NaN"),
        (np.array([0.1, np.inf] * 300, dtype=np.float32), "infinite"),
        (np.zeros((2, 3, 4), dtype=np.float32), "1-D or 2-D"),
    ],
)
def test_bad_arrays_raise_clear_errors(array, message):
    with pytest.raises(AudioError, match=message):
        prepare_waveform(array, 16000)


def test_too_short_clip_is_padded_to_the_receptive_field():
    assert prepare_waveform(np.ones(10, dtype=np.float32), 16000).size == MIN_SAMPLES


def test_too_long_clip_is_refused_when_limited():
    with pytest.raises(AudioError, match="more than"):
        prepare_waveform(np.zeros(16000 * 3, dtype=np.float32), 16000, max_seconds=2)


def test_load_audio_files(tmp_path):
    sf.write(tmp_path / "a.wav", tone(0.5, sr=22050), 22050)
    assert load_audio(tmp_path / "a.wav").size == 8000
    (tmp_path / "bad.wav").write_bytes(b"this is not audio at all" * 10)
    with pytest.raises(AudioError, match="Cannot decode"):
        load_audio(tmp_path / "bad.wav")
    (tmp_path / "empty.wav").write_bytes(b"")
    with pytest.raises(AudioError, match="empty"):
        load_audio(tmp_path / "empty.wav")
    with pytest.raises(AudioError, match="No such"):
        load_audio(tmp_path / "missing.wav")
