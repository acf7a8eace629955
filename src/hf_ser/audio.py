"""Reading and checking audio for the package's entry points (CLI, inference, Space, dataset tools).

Everything ends as a mono float32 waveform at 16 kHz. Resampling uses soxr (torchaudio is not needed). Bad input
raises `AudioError` with a message that says what is wrong, never an index error deep inside the model.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

SAMPLING_RATE = 16_000
# WavLM/wav2vec2's convolutional front end needs 400 samples (25 ms at 16 kHz) to emit one frame.
MIN_SAMPLES = 400
MAX_CHANNELS = 16


class AudioError(ValueError):
    """Audio that cannot be used: empty, corrupt, NaN, unreadable, or of an unsupported layout."""


def to_float32(array: np.ndarray) -> np.ndarray:
    """Integer PCM to [-1, 1] floats; floats to float32."""
    array = np.asarray(array)
    if array.dtype.kind in "iu":
        info = np.iinfo(array.dtype)
        scale = max(abs(info.min), info.max)
        offset = 0 if array.dtype.kind == "i" else (info.max + 1) / 2
        return ((array.astype(np.float64) - offset) / scale).astype(np.float32)
    if array.dtype.kind == "f":
        return array.astype(np.float32, copy=False)
    if array.dtype.kind == "b":
        raise AudioError("Boolean arrays are not audio.")
    raise AudioError(f"Unsupported audio dtype {array.dtype}.")


def to_mono(array: np.ndarray) -> np.ndarray:
    """Average the channels of a (samples, channels) or (channels, samples) array; 1-D arrays pass through.

    The channel axis is the short one (at most 16 channels)."""
    if array.ndim == 1:
        return array
    if array.ndim != 2:
        raise AudioError(f"Audio must be 1-D or 2-D (samples x channels); got shape {array.shape}.")
    channel_axis = 1 if array.shape[1] <= array.shape[0] else 0
    if array.shape[channel_axis] > MAX_CHANNELS:
        raise AudioError(
            f"Audio of shape {array.shape} has no plausible channel axis (at most {MAX_CHANNELS})."
        )
    return array.mean(axis=channel_axis)


def resample(array: np.ndarray, orig_sr: int, target_sr: int = SAMPLING_RATE) -> np.ndarray:
    """High-quality resampling with soxr."""
    if orig_sr == target_sr:
        return array
    if orig_sr <= 0:
        raise AudioError(f"Invalid sampling rate {orig_sr}.")
    import soxr

    return soxr.resample(array, orig_sr, target_sr).astype(np.float32, copy=False)


def prepare_waveform(
    array: np.ndarray,
    sampling_rate: int,
    *,
    target_sr: int = SAMPLING_RATE,
    min_samples: int = MIN_SAMPLES,
    max_seconds: float | None = None,
) -> np.ndarray:
    """Check and convert any waveform to mono float32 at `target_sr`.

    - integer PCM is scaled to [-1, 1]; stereo/multichannel audio is averaged to mono;
    - other rates are resampled (soxr);
    - empty audio, NaN or infinite samples raise `AudioError`;
    - clips shorter than the encoder's receptive field (400 samples) are zero-padded to it;
    - longer than `max_seconds` raises `AudioError` (windowed inference handles long audio instead).
    """
    if sampling_rate is None or int(sampling_rate) <= 0:
        raise AudioError(f"A positive sampling rate is required, got {sampling_rate!r}.")
    array = to_float32(array)
    if array.size == 0:
        raise AudioError("The audio is empty (0 samples).")
    array = to_mono(array)
    finite = np.isfinite(array)
    if not finite.all():
        raise AudioError(f"The audio has {int((~finite).sum())} NaN or infinite samples out of {array.size}.")
    array = resample(array, int(sampling_rate), target_sr)
    if max_seconds is not None and array.size > max_seconds * target_sr:
        raise AudioError(
            f"The audio lasts {array.size / target_sr:.1f} s, more than the {max_seconds:g} s allowed."
        )
    if array.size < min_samples:
        array = np.pad(array, (0, min_samples - array.size))
    return np.ascontiguousarray(array, dtype=np.float32)


def read_audio(path: str | os.PathLike) -> tuple[np.ndarray, int]:
    """Read an audio file as (float32 samples [x channels], sampling rate).

    soundfile reads WAV/FLAC/OGG; anything else (MP3, M4A, ...) goes through torchcodec/FFmpeg."""
    path = Path(path)
    if not path.is_file():
        raise AudioError(f"No such audio file: {path}")
    if path.stat().st_size == 0:
        raise AudioError(f"The file {path} is empty.")
    import soundfile as sf

    try:
        data, rate = sf.read(str(path), dtype="float32", always_2d=False)
        return data, int(rate)
    except Exception:  # not a format libsndfile knows: try FFmpeg
        pass
    try:
        from torchcodec.decoders import AudioDecoder

        samples = AudioDecoder(str(path)).get_all_samples()
        return samples.data.numpy().T, int(samples.sample_rate)
    except Exception as error:
        raise AudioError(f"Cannot decode {path} as audio ({type(error).__name__}).") from None


def audio_duration(source: str | os.PathLike | bytes) -> float | None:
    """Duration in seconds of an audio file (path or encoded bytes) from its header, without decoding the samples;
    None when the header cannot be read."""
    import io

    import soundfile as sf

    try:
        info = sf.info(io.BytesIO(source) if isinstance(source, bytes) else str(source))
        return info.frames / info.samplerate
    except Exception:  # not a format libsndfile knows: ask FFmpeg
        pass
    try:
        from torchcodec.decoders import AudioDecoder

        metadata = AudioDecoder(source if isinstance(source, bytes) else str(source)).metadata
        duration = metadata.duration_seconds_from_header or metadata.duration_seconds
        return float(duration) if duration is not None else None
    except Exception:
        return None


def load_audio(
    path: str | os.PathLike, *, target_sr: int = SAMPLING_RATE, max_seconds: float | None = None
) -> np.ndarray:
    """Read, check and convert an audio file to mono float32 at `target_sr` (see `prepare_waveform`)."""
    data, rate = read_audio(path)
    try:
        return prepare_waveform(data, rate, target_sr=target_sr, max_seconds=max_seconds)
    except AudioError as error:
        raise AudioError(f"{path}: {error}") from None


__all__ = [
    "AudioError",
    "audio_duration",
    "load_audio",
    "read_audio",
    "prepare_waveform",
    "resample",
    "to_mono",
    "to_float32",
]
