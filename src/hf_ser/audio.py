"""The package's one audio decoder: every entry point (collators, multimodal processor, embedding cache, evaluation,
pipelines, `predict_logits`, prediction over files, ensembles, analysis, the ONNX runtime, the Space) turns its input
into a waveform here.

`load_input` is the entry point: a path, URL, encoded bytes, array/tensor/list, `datasets.Audio` dict or decoder goes
in; a mono float32 waveform at 16 kHz (`SAMPLING_RATE`) comes out, or `AudioError` (a `HFSERError` and a
`ValueError`) with a message that says what is wrong, never an index error deep inside the model. The rules are
those of `prepare_waveform` (every path ends there) and are the same at every entry point: integer PCM scaled,
channels averaged, other rates resampled with soxr (no torchaudio), NaN/infinite/empty/absurd audio refused, clips
under 400 samples zero-padded, audio beyond `max_seconds` (at most 6 hours) refused. What differs between entry
points is explicit: `target_sr`, `max_seconds`, and cropping, which the collators do after decoding.

`load_audio` (files and bytes, bounded by `max_seconds` before decoding) and `prepare_waveform` (arrays) are
`load_input`'s two halves; `stream_audio` decodes long files block by block under the same rules.
"""

from __future__ import annotations

import io
import math
import numbers
import os
import sys
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import numpy as np

from .errors import HFSERError
from .models.labels import SAMPLING_RATE

# WavLM/wav2vec2's convolutional front end needs 400 samples (25 ms at 16 kHz) to emit one frame.
MIN_SAMPLES = 400
# What `hf-ser predict`, `hf-ser analyze` and the other folder readers take as audio when they walk a folder: the
# formats `read_audio` decodes (libsndfile, else FFmpeg).
AUDIO_SUFFIXES = (".wav", ".flac", ".mp3", ".ogg", ".opus", ".m4a", ".aac", ".webm", ".aiff", ".aif")
MAX_CHANNELS = 16
# Plausible sampling rates: below 1 kHz nothing is speech; 384 kHz is the highest rate audio interfaces record at.
MIN_SAMPLING_RATE = 1_000
MAX_SAMPLING_RATE = 384_000
# The longest audio prepared in one piece (6 hours): beyond, the resampled copy alone would take gigabytes. Longer
# recordings go through windowed prediction (`hf-ser predict`, `stream_audio`), which never holds them whole.
MAX_SECONDS = 6 * 3600.0
# Largest sample magnitude accepted (far above any PCM range): squares of larger values overflow float32.
MAX_AMPLITUDE = 1e10


class AudioError(HFSERError, ValueError):
    """Audio that cannot be used: empty, corrupt, NaN, unreadable, or of an unsupported layout or rate."""


def check_sampling_rate(sampling_rate: Any) -> int | float:
    """A sampling rate as a number between 1 kHz and 384 kHz (an `int` when it is whole), else `AudioError`.

    Booleans, strings, NaN and infinities are refused: `True` would otherwise read as 1 Hz and turn one second of
    audio into hundreds of millions of samples."""
    if isinstance(sampling_rate, np.ndarray) and sampling_rate.ndim == 0:
        sampling_rate = sampling_rate.item()  # datasets with a numpy format give 0-d arrays
    elif type(sampling_rate).__module__ == "torch" and getattr(sampling_rate, "ndim", None) == 0:
        sampling_rate = sampling_rate.item()
    if isinstance(sampling_rate, (bool, np.bool_)) or not isinstance(sampling_rate, numbers.Real):
        raise AudioError(
            f"The sampling rate must be a number of Hz, got {sampling_rate!r} ({type(sampling_rate).__name__})."
        )
    rate = float(sampling_rate)
    if not math.isfinite(rate) or not MIN_SAMPLING_RATE <= rate <= MAX_SAMPLING_RATE:
        raise AudioError(
            f"The sampling rate must be between {MIN_SAMPLING_RATE} and {MAX_SAMPLING_RATE} Hz, "
            f"got {sampling_rate!r}."
        )
    return int(rate) if rate.is_integer() else rate


def as_array(audio: Any) -> np.ndarray:
    """Any array-like (numpy array, torch tensor, list) as a numpy array, else `AudioError`."""
    if isinstance(audio, np.ndarray):
        return audio
    torch = sys.modules.get("torch")
    if torch is not None and isinstance(audio, torch.Tensor):
        tensor = audio.detach().cpu()
        if tensor.is_complex():
            raise AudioError("Complex arrays are not audio: take the real part or the magnitude first.")
        if tensor.dtype in (torch.bfloat16, torch.float16):  # numpy has no bfloat16
            tensor = tensor.float()
        return tensor.numpy()
    if isinstance(audio, (str, bytes, dict)) or audio is None:
        raise AudioError(f"Expected an array of samples, got a {type(audio).__name__}.")
    try:
        return np.asarray(audio)
    except (ValueError, TypeError) as error:  # ragged lists, objects numpy cannot convert
        raise AudioError(
            f"Cannot read a {type(audio).__name__} as an array of samples (ragged or non-numeric: {type(error).__name__})."
        ) from None


def to_float32(array: np.ndarray) -> np.ndarray:
    """Integer PCM to [-1, 1] floats (signed: divided by 2**(bits-1); unsigned: centred on 2**(bits-1) first, so
    uint8 spans [-1, 1) as 8-bit WAV does); floats to float32."""
    array = as_array(array)
    if array.dtype.kind == "b":
        raise AudioError("Boolean arrays are not audio.")
    if array.dtype.kind in "iu":
        info = np.iinfo(array.dtype)
        half = (int(info.max) + 1) // 2 if array.dtype.kind == "u" else -int(info.min)
        offset = half if array.dtype.kind == "u" else 0
        return ((array.astype(np.float64) - offset) / half).astype(np.float32)
    if array.dtype.kind == "f":
        with np.errstate(over="ignore"):  # float64 beyond float32's range becomes inf, refused below
            return array.astype(np.float32, copy=False)
    if array.dtype.kind == "c":
        raise AudioError("Complex arrays are not audio: take the real part or the magnitude first.")
    raise AudioError(f"Unsupported audio dtype {array.dtype}: give integer PCM or float samples.")


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
    return array.mean(axis=channel_axis, dtype=np.float32)


def resample(array: np.ndarray, orig_sr: float, target_sr: int = SAMPLING_RATE) -> np.ndarray:
    """High-quality resampling with soxr."""
    orig_sr = check_sampling_rate(orig_sr)
    if orig_sr == target_sr:
        return array
    import soxr

    return soxr.resample(array, orig_sr, target_sr).astype(np.float32, copy=False)


def check_finite(array: np.ndarray) -> None:
    """`AudioError` if any sample is NaN or infinite (checked block by block: no full-size temporary)."""
    block = 1 << 20
    for start in range(0, array.size, block):
        part = array[start : start + block]
        if not np.isfinite(part).all():
            bad = sum(int((~np.isfinite(array[s : s + block])).sum()) for s in range(0, array.size, block))
            raise AudioError(f"The audio has {bad} NaN or infinite samples out of {array.size}.")


def prepare_waveform(
    array: Any,
    sampling_rate: int | float,
    *,
    target_sr: int = SAMPLING_RATE,
    min_samples: int = MIN_SAMPLES,
    max_seconds: float | None = None,
) -> np.ndarray:
    """Check and convert any waveform to mono float32 at `target_sr`: the one audio check of every entry point
    (pipelines, `predict_logits`, prediction over files, the collators, the Space).

    - `sampling_rate` must be a number between 1 kHz and 384 kHz (not a bool, string, NaN or infinity);
    - integer PCM is scaled to [-1, 1] (uint8 is centred on 128); stereo/multichannel audio is averaged to mono;
      torch tensors and lists are accepted;
    - other rates are resampled (soxr);
    - empty audio, NaN or infinite samples, samples beyond 1e10 in magnitude (their variance overflows float32 and
      the clip would read as silence), complex, boolean and non-numeric arrays raise `AudioError`;
    - clips shorter than the encoder's receptive field (400 samples) are zero-padded to it;
    - longer than `max_seconds` (and in any case longer than `MAX_SECONDS`, 6 hours) raises `AudioError` before
      resampling, so the resampled copy is bounded (windowed inference handles long audio instead).
    """
    if sampling_rate is None:
        raise AudioError("A sampling rate is required.")
    rate = check_sampling_rate(sampling_rate)
    target_sr = check_sampling_rate(target_sr)
    array = to_float32(array)
    if array.size == 0:
        raise AudioError("The audio is empty (0 samples).")
    if array.ndim == 0:
        raise AudioError("The audio is a single number, not an array of samples.")
    array = to_mono(array)
    check_finite(array)
    peak = max(float(array.max()), -float(array.min()))
    if peak > MAX_AMPLITUDE:
        # Per-utterance normalisation squares the samples: beyond this its float32 variance overflows and the clip
        # would silently read as silence.
        raise AudioError(
            f"The samples reach {peak:.3g}; float audio lies in [-1, 1] (integer PCM in its integer range): "
            "scale it first."
        )
    seconds = array.size / rate
    limit = MAX_SECONDS if max_seconds is None else min(float(max_seconds), MAX_SECONDS)
    if seconds > limit:
        hint = (
            "" if max_seconds is not None else " Use windowed prediction (hf-ser predict) for longer audio."
        )
        raise AudioError(f"The audio lasts {seconds:.1f} s, more than the {limit:g} s allowed.{hint}")
    array = resample(array, rate, target_sr)
    if array.size < min_samples:
        array = np.pad(array, (0, min_samples - array.size))
    return np.ascontiguousarray(array, dtype=np.float32)


def read_audio(source: str | os.PathLike | bytes) -> tuple[np.ndarray, int]:
    """Read an audio file (a path, or its encoded bytes) as (float32 samples [x channels], sampling rate).

    soundfile reads WAV/FLAC/OGG; anything else (MP3, M4A, ...) goes through torchcodec/FFmpeg. Missing, empty and
    undecodable files raise `AudioError`."""
    if isinstance(source, (bytes, bytearray)):
        if not source:
            raise AudioError("The audio bytes are empty.")
        name, target = "the audio bytes", bytes(source)
    else:
        path = Path(source)
        if not path.is_file():
            raise AudioError(f"No such audio file: {path}")
        if path.stat().st_size == 0:
            raise AudioError(f"The file {path} is empty.")
        name, target = str(path), str(path)
    import soundfile as sf

    try:
        data, rate = sf.read(io.BytesIO(target) if isinstance(target, bytes) else target, dtype="float32")
        return (data[:, 0] if data.ndim == 2 and data.shape[1] == 1 else data), int(rate)
    except Exception:  # not a format libsndfile knows: try FFmpeg
        pass
    try:
        from torchcodec.decoders import AudioDecoder

        samples = AudioDecoder(target).get_all_samples()
        return samples.data.numpy().T, int(samples.sample_rate)
    except Exception as error:
        raise AudioError(f"Cannot decode {name} as audio ({type(error).__name__}).") from None


def audio_duration(source: str | os.PathLike | bytes) -> float | None:
    """Duration in seconds of an audio file (path or encoded bytes) from its header or container metadata, without
    decoding the samples (libsndfile's header for WAV/FLAC/OGG, FFmpeg's container metadata for every other format);
    None when neither can tell."""
    import soundfile as sf

    try:
        info = sf.info(io.BytesIO(source) if isinstance(source, bytes) else str(source))
        if info.samplerate > 0 and info.frames >= 0:
            return info.frames / info.samplerate
    except Exception:  # not a format libsndfile knows: ask FFmpeg
        pass
    try:
        from torchcodec.decoders import AudioDecoder

        metadata = AudioDecoder(source if isinstance(source, bytes) else str(source)).metadata
        duration = metadata.duration_seconds_from_header or metadata.duration_seconds
        return float(duration) if duration is not None and math.isfinite(duration) else None
    except Exception:
        return None


def load_audio(
    path: str | os.PathLike | bytes, *, target_sr: int = SAMPLING_RATE, max_seconds: float | None = None
) -> np.ndarray:
    """Read, check and convert an audio file to mono float32 at `target_sr` (see `prepare_waveform`).

    With `max_seconds`, memory stays bounded whatever the file claims: the duration is read from the header or the
    container metadata first (any format FFmpeg reads), so a file that is too long is refused before decoding; a
    file whose metadata tells no duration (or lies) is decoded block by block and refused as soon as it passes
    `max_seconds`."""
    name = "the audio bytes" if isinstance(path, (bytes, bytearray)) else str(path)
    if max_seconds is not None:
        duration = audio_duration(path)
        if duration is not None and duration > max_seconds:
            raise AudioError(
                f"{name}: the audio lasts {duration:.1f} s, more than the {max_seconds:g} s allowed."
            )
    if max_seconds is not None and not isinstance(path, (bytes, bytearray)):
        blocks, total, limit = (
            [],
            0,
            int(max_seconds * target_sr) + target_sr,
        )  # one second of resampler slack
        for block in stream_audio(path, target_sr=target_sr):
            total += block.size
            if total > limit:
                raise AudioError(f"{name}: the audio lasts more than the {max_seconds:g} s allowed.")
            blocks.append(block)
        data, rate = np.concatenate(blocks), target_sr
    else:
        data, rate = read_audio(path)
    try:
        return prepare_waveform(data, rate, target_sr=target_sr, max_seconds=max_seconds)
    except AudioError as error:
        raise AudioError(f"{name}: {error}") from None


def load_input(
    inputs: Any,
    *,
    sampling_rate: int | float | None = None,
    target_sr: int = SAMPLING_RATE,
    max_seconds: float | None = None,
) -> np.ndarray:
    """The one audio decoder: any single audio input an entry point accepts, as a mono float32 waveform at
    `target_sr` checked by `prepare_waveform`.

    Args:
        inputs: one of
            - a path (`str`/`PathLike`; `http(s)://` URLs are downloaded) or the encoded bytes of a file (read by
              `load_audio`: libsndfile, else FFmpeg);
            - a numpy array, torch tensor or list of samples at `sampling_rate`, 1-D or (samples x channels);
            - a dict (or any mapping-like row value) `{"array" or "raw": samples, "sampling_rate": rate}`, what
              `datasets.Audio` gives;
            - a torchcodec `AudioDecoder` (or any object with `get_all_samples()`, as `datasets` 4 gives).
        sampling_rate (`int` or `float`, *optional*): the rate of a bare array (default: `target_sr`); ignored for
            files, dicts and decoders, which carry their own rate.
        target_sr (`int`, defaults to 16000): the rate of the returned waveform; other rates are resampled.
        max_seconds (`float`, *optional*): longer audio raises `AudioError` (files: before decoding); at most and
            by default 6 hours.

    Returns:
        `np.ndarray`: 1-D, float32, contiguous, finite, at least 400 samples.

    Raises:
        AudioError: unsupported input types and any bad audio (see `prepare_waveform` for the rules).
    """
    if isinstance(inputs, str) and inputs.startswith(("http://", "https://")):
        import httpx

        try:
            response = httpx.get(inputs, follow_redirects=True, timeout=30)
            response.raise_for_status()
        except httpx.HTTPError as error:
            raise AudioError(f"Cannot download {inputs}: {type(error).__name__}.") from None
        return load_audio(response.content, target_sr=target_sr, max_seconds=max_seconds)
    if isinstance(inputs, (str, os.PathLike, bytes, bytearray)):
        return load_audio(
            bytes(inputs) if isinstance(inputs, bytearray) else inputs,
            target_sr=target_sr,
            max_seconds=max_seconds,
        )
    if callable(getattr(inputs, "get_all_samples", None)):  # torchcodec's AudioDecoder and datasets' subclass
        try:
            samples = inputs.get_all_samples()
        except Exception as error:
            raise AudioError(f"Cannot decode the audio ({type(error).__name__}).") from None
        inputs = {"array": samples.data, "sampling_rate": samples.sample_rate}
    elif not isinstance(inputs, Mapping) and callable(getattr(inputs, "keys", None)):
        # Mapping-like row values that are not `Mapping`s (e.g. a `LazyDict` or a custom row type).
        try:
            inputs = {key: inputs[key] for key in inputs.keys()}  # noqa: SIM118 (not a Mapping: iteration may not give keys)
        except Exception as error:
            raise AudioError(
                f"Cannot read audio from a {type(inputs).__name__} ({type(error).__name__})."
            ) from None
    if isinstance(inputs, Mapping):
        array = inputs.get("array", inputs.get("raw"))
        if array is None or "sampling_rate" not in inputs:
            raise AudioError("A dict input needs 'array' (or 'raw') and 'sampling_rate'.")
        return prepare_waveform(array, inputs["sampling_rate"], target_sr=target_sr, max_seconds=max_seconds)
    if inputs is None or isinstance(inputs, (numbers.Number, str)):
        raise AudioError(
            f"Unsupported input of type {type(inputs).__name__}: give an array, a path, bytes or a dict."
        )
    rate = target_sr if sampling_rate is None else sampling_rate
    return prepare_waveform(inputs, rate, target_sr=target_sr, max_seconds=max_seconds)


def stream_audio(
    path: str | os.PathLike, *, block_seconds: float = 10.0, target_sr: int = SAMPLING_RATE
) -> Iterator[np.ndarray]:
    """Decode a file block by block as mono float32 at `target_sr`, never holding it whole.

    WAV/FLAC/OGG are read with libsndfile, other formats with torchcodec/FFmpeg (consecutive time ranges); each
    block is mixed to mono, checked for NaN/infinite samples and resampled by one continuous soxr stream, so the
    concatenated blocks match `load_audio` up to resampler edge effects. Memory is bounded by `block_seconds`."""
    import soundfile as sf
    import soxr

    path = Path(path)
    if not path.is_file():
        raise AudioError(f"No such audio file: {path}")
    if path.stat().st_size == 0:
        raise AudioError(f"The file {path} is empty.")

    def blocks() -> Iterator[tuple[np.ndarray, int]]:
        try:
            handle = sf.SoundFile(str(path))
        except Exception:
            handle = None
        if handle is not None:
            with handle:
                rate = int(handle.samplerate)
                frames = max(1, int(block_seconds * rate))
                while True:
                    data = handle.read(frames, dtype="float32", always_2d=True)
                    if len(data) == 0:
                        return
                    yield data, rate
        from torchcodec.decoders import AudioDecoder

        try:
            decoder = AudioDecoder(str(path))
            rate = int(decoder.metadata.sample_rate)
        except Exception as error:
            raise AudioError(f"Cannot decode {path} as audio ({type(error).__name__}).") from None
        start = 0.0
        while True:
            try:
                samples = decoder.get_samples_played_in_range(start, start + block_seconds)
            except Exception:  # past the end of the stream
                return
            data = samples.data.numpy().T
            if len(data) == 0:
                return
            yield data, rate
            start += block_seconds

    stream = None
    emitted = 0
    try:
        for data, rate in blocks():
            rate = check_sampling_rate(rate)
            mono = to_mono(np.ascontiguousarray(data, dtype=np.float32))
            check_finite(mono)
            if stream is None:
                stream = (
                    soxr.ResampleStream(rate, target_sr, 1, dtype="float32") if rate != target_sr else False
                )
            out = stream.resample_chunk(mono) if stream else mono
            if out.size:
                emitted += out.size
                yield np.asarray(out, dtype=np.float32)
        if stream:
            tail = stream.resample_chunk(np.zeros(0, dtype=np.float32), last=True)
            if tail.size:
                emitted += tail.size
                yield np.asarray(tail, dtype=np.float32)
    except AudioError as error:
        raise AudioError(f"{path}: {error}") from None
    if emitted == 0:
        raise AudioError(f"{path}: the audio is empty (0 samples).")


__all__ = [
    "AUDIO_SUFFIXES",
    "SAMPLING_RATE",
    "AudioError",
    "check_sampling_rate",
    "load_input",
    "stream_audio",
    "audio_duration",
    "load_audio",
    "read_audio",
    "prepare_waveform",
    "resample",
    "to_mono",
    "to_float32",
]
