"""Audio checks and conversions used by every entry point."""

from __future__ import annotations

import ast
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from hf_ser.audio import MIN_SAMPLES, AudioError, load_audio, prepare_waveform
from tests.tiny import tone


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


# ------------------------------------------------------------------------------------------- one home per constant
ROOT = Path(__file__).resolve().parents[1]
SHARED_NAMES = {"SAMPLING_RATE", "EMOTION_LABELS", "ATTRIBUTE_LABELS", "AUDIO_SUFFIXES"}
HOMES = {"src/hf_ser/models/labels.py", "src/hf_ser/audio.py"}
# The evaluate metric script is loaded by `evaluate` on its own, outside the package: it keeps a copy (checked below).
COPIES = {"src/hf_ser/evaluation/metrics/ccc/ccc.py"}


def _sources():
    for path in sorted([*(ROOT / "src").rglob("*.py"), *(ROOT / "space_app").rglob("*.py")]):
        yield path.relative_to(ROOT).as_posix(), ast.parse(path.read_text(encoding="utf-8"))


def test_each_shared_constant_has_one_home():
    """No module redefines the sampling rate, the class or attribute names or the audio suffixes, or writes 16000 or
    the attribute names as a literal: they are imported from `hf_ser.models.labels` (or `hf_ser.audio` for the suffixes)."""
    attributes = {"arousal", "valence", "dominance"}
    problems = []
    for name, tree in _sources():
        if name in HOMES | COPIES:
            continue
        for node in ast.walk(tree):
            targets = node.targets if isinstance(node, ast.Assign) else [getattr(node, "target", None)]
            if isinstance(node, (ast.Assign, ast.AnnAssign)):
                problems += [
                    f"{name}:{node.lineno} defines {t.id}"
                    for t in targets
                    if getattr(t, "id", None) in SHARED_NAMES
                ]
            if isinstance(node, ast.Constant) and type(node.value) is int and node.value == 16000:
                problems.append(f"{name}:{node.lineno} writes 16000")
            if isinstance(node, (ast.Tuple, ast.List, ast.Set)):
                values = [e.value for e in node.elts if isinstance(e, ast.Constant)]
                # Another order is another fact (convert.py's BASELINE_ATTRIBUTE_ORDER, the released model's outputs).
                same = (
                    set(values) == attributes
                    if isinstance(node, ast.Set)
                    else values == ["arousal", "valence", "dominance"]
                )
                if same and len(node.elts) == 3:
                    problems.append(f"{name}:{node.lineno} spells the attribute names")
    assert not problems, problems


def test_the_constants_are_the_same_objects_everywhere():
    from hf_ser import labels, prediction
    from hf_ser.audio import AUDIO_SUFFIXES, SAMPLING_RATE
    from hf_ser.data import msp_podcast, synthetic
    from hf_ser.evaluation.metrics.ccc import ccc
    from hf_ser.models.configuration_multimodal import MULTIMODAL_ATTRIBUTES
    from hf_ser.models.configuration_multiview import ATTRIBUTE_LABELS as MULTIVIEW_ATTRIBUTES
    from hf_ser.models.configuration_wavlm_masp import ATTRIBUTE_LABELS, EMOTION_LABELS
    from hf_ser.processing.feature_extraction import SAMPLING_RATE as EXTRACTOR_RATE

    assert (
        SAMPLING_RATE
        is EXTRACTOR_RATE
        is msp_podcast.SAMPLING_RATE
        is synthetic.SAMPLING_RATE
        is labels.SAMPLING_RATE
    )
    assert ATTRIBUTE_LABELS is MULTIMODAL_ATTRIBUTES is MULTIVIEW_ATTRIBUTES is labels.ATTRIBUTE_LABELS
    assert tuple(ccc.ATTRIBUTES) == labels.ATTRIBUTE_LABELS  # the metric script's own copy
    assert EMOTION_LABELS is labels.EMOTION_LABELS and prediction.AUDIO_SUFFIXES is AUDIO_SUFFIXES
    assert len(AUDIO_SUFFIXES) == len(set(AUDIO_SUFFIXES)) == 10


def test_analysis_and_predict_find_the_same_audio_files(tmp_path):
    """`hf-ser analyze` and `hf-ser predict` expand folders and globs the same way (one suffix list)."""
    from hf_ser.evaluation.analysis import AnalysisError, audio_files
    from hf_ser.inference.files import collect_audio_files

    for name in ("a.wav", "b.webm", "c.aac", "notes.txt", "sub/d.FLAC"):
        (tmp_path / name).parent.mkdir(exist_ok=True)
        (tmp_path / name).write_bytes(b"x")
    found = audio_files([tmp_path])
    assert found == collect_audio_files([str(tmp_path)])
    assert sorted(p.name for p in found) == ["a.wav", "b.webm", "c.aac", "d.FLAC"]
    assert audio_files([str(tmp_path / "*.w*")]) == [tmp_path / "a.wav", tmp_path / "b.webm"]  # globs too
    with pytest.raises(AnalysisError, match="No audio files"):
        audio_files([str(tmp_path / "*.mp3")])
