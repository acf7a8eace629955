"""Hostile input against every entry point (issue 16): each case ends in a clear, package-typed error or a correct
answer, never a traceback from the CLI, a NaN score, or a silent drop.

Entry points driven: `prepare_waveform` / `load_input`, `pipeline("audio-classification")`,
`pipeline("speech-emotion-regression")`, `predict_logits`, `predict_files`, the collators, the losses, checkpoint
selection, the corpus loader and the `hf-ser` command line. Memory bounds (long files, the Space) are measured in
subprocesses in `test_memory_bounds.py`.
"""

from __future__ import annotations

import csv
import json
import logging
import os
import shutil
import struct
import sys
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from hf_ser import AudioDataCollator, CCCLoss, FocalLoss, build_feature_extractor
from hf_ser.audio import MIN_SAMPLES, AudioError, load_input, prepare_waveform
from hf_ser.cli import main
from hf_ser.errors import HFSERError, ModelOutputError, redact_secrets
from hf_ser.inference.predict import predict_logits
from hf_ser.processing.data_collator import CollatorError
from tests.tiny import load_space_app, save_tiny_model, tone, write_sparse_wav

# ------------------------------------------------------------------------------------------------- fixtures


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory):
    path = tmp_path_factory.mktemp("adv_model")
    save_tiny_model(path)
    return path


@pytest.fixture(scope="module")
def regression_dir(tmp_path_factory):
    path = tmp_path_factory.mktemp("adv_regression")
    save_tiny_model(path, problem_type="regression")
    return path


@pytest.fixture(scope="module")
def classifier(model_dir):
    from transformers import pipeline

    return pipeline("audio-classification", model=str(model_dir))


@pytest.fixture(scope="module")
def regressor(regression_dir):
    from transformers import pipeline

    return pipeline("speech-emotion-regression", model=str(regression_dir))


@pytest.fixture(scope="module")
def loaded(model_dir):
    from transformers import AutoFeatureExtractor, AutoModelForAudioClassification

    return AutoModelForAudioClassification.from_pretrained(
        model_dir
    ).eval(), AutoFeatureExtractor.from_pretrained(model_dir)


# ------------------------------------------------------------------------------------------------- bad audio

GOOD = tone(0.5)
BAD_ARRAYS = {
    "nan": (np.array([0.1, np.nan] * 400, dtype=np.float32), "NaN"),
    "inf": (np.array([0.1, np.inf] * 400, dtype=np.float32), "infinite"),
    "minus_inf": (np.array([-np.inf] * 800, dtype=np.float64), "infinite"),
    "empty": (np.zeros(0, dtype=np.float32), "empty"),
    "empty_stereo": (np.zeros((0, 2), dtype=np.float32), "empty"),
    "complex": (GOOD.astype(np.complex64), "Complex"),
    "bool": (GOOD > 0, "Boolean"),
    "three_dims": (np.zeros((2, 3, 400), dtype=np.float32), "1-D or 2-D"),
    "strings": (np.array(["a", "b"] * 300), "dtype"),
    "ragged": ([[0.1, 0.2], [0.3]], "ragged"),
    "huge_amplitude": (GOOD * 1e20, "scale it first"),
    "float64_overflow": (np.full(800, 1e300), "infinite"),
}
BAD_RATES = {
    "bool": True,
    "tera": 1e12,
    "inf": float("inf"),
    "nan": float("nan"),
    "string": "16000",
    "zero": 0,
    "negative": -16000,
    "below_1k": 999,
    "above_384k": 384_001,
    "none": None,
}
SHORT = {"one_sample": 1, "399_samples": 399, "400_samples": 400}


def _call(entry, classifier, regressor, loaded, array, rate=16000):
    """One entry point on one (array, rate) input; returns its scores (dict or array)."""
    model, extractor = loaded
    if entry == "prepare_waveform":
        return prepare_waveform(array, rate)
    if entry == "classification_pipeline":
        return classifier({"array": array, "sampling_rate": rate}, top_k=8)
    if entry == "classification_pipeline_raw":
        if rate != 16000:
            return classifier({"raw": array, "sampling_rate": rate}, top_k=8)
        return classifier(array, top_k=8)
    if entry == "regression_pipeline":
        return regressor({"array": array, "sampling_rate": rate})
    if entry == "predict_logits":
        return predict_logits(model, extractor, [prepare_waveform(array, rate) if rate != 16000 else array])
    if entry == "collator":
        return AudioDataCollator(extractor)([{"audio": {"array": array, "sampling_rate": rate}, "label": 1}])
    raise AssertionError(entry)


ENTRIES = (
    "prepare_waveform",
    "classification_pipeline",
    "classification_pipeline_raw",
    "regression_pipeline",
    "predict_logits",
    "collator",
)


def _finite_scores(result) -> bool:
    if isinstance(result, list):
        return (
            all(np.isfinite(r["score"]) for r in result) and abs(sum(r["score"] for r in result) - 1) < 1e-4
        )
    if isinstance(result, dict):
        values = [v for v in result.values() if not isinstance(v, str)]
        return all(np.isfinite(np.asarray(v, dtype=np.float64)).all() for v in values)
    return bool(np.isfinite(np.asarray(result)).all())


@pytest.mark.parametrize("entry", ENTRIES)
@pytest.mark.parametrize("case", sorted(BAD_ARRAYS))
def test_bad_arrays_raise_audio_error_at_every_entry_point(entry, case, classifier, regressor, loaded):
    array, message = BAD_ARRAYS[case]
    if case == "ragged" and entry == "classification_pipeline_raw":
        pytest.skip("a list given to a pipeline is a batch of inputs, not one clip")
    with pytest.raises(AudioError, match=message):
        _call(entry, classifier, regressor, loaded, array)


@pytest.mark.parametrize("entry", [e for e in ENTRIES if e != "predict_logits"])
@pytest.mark.parametrize("case", sorted(BAD_RATES))
def test_bad_sampling_rates_raise_audio_error(entry, case, classifier, regressor, loaded):
    with pytest.raises(AudioError, match="sampling rate"):
        _call(entry, classifier, regressor, loaded, GOOD, BAD_RATES[case])


@pytest.mark.parametrize("entry", ENTRIES)
@pytest.mark.parametrize("case", sorted(SHORT))
def test_short_clips_are_padded_and_scored(entry, case, classifier, regressor, loaded):
    array = tone(0.1)[: SHORT[case]]
    result = _call(entry, classifier, regressor, loaded, array)
    assert _finite_scores(result if entry != "collator" else result["input_values"])
    if entry == "prepare_waveform":
        assert result.size == MIN_SAMPLES
    if entry == "collator":
        assert result["input_values"].shape[-1] == MIN_SAMPLES


def test_padded_short_clip_scores_equal_the_explicitly_padded_clip(classifier, loaded):
    short = tone(0.01)[:100]
    padded = np.pad(short, (0, MIN_SAMPLES - 100))
    got = {r["label"]: r["score"] for r in classifier(short, top_k=8)}
    want = {r["label"]: r["score"] for r in classifier(padded, top_k=8)}
    assert got == pytest.approx(want, abs=1e-6)
    model, extractor = loaded
    np.testing.assert_allclose(
        predict_logits(model, extractor, [short]), predict_logits(model, extractor, [padded]), atol=1e-6
    )


def test_uint8_pcm_spans_minus_one_to_one():
    out = prepare_waveform(np.array([0, 64, 128, 192, 255] * 100, dtype=np.uint8), 16000)
    np.testing.assert_allclose(out[:5], [-1.0, -0.5, 0.0, 0.5, 127 / 128], atol=1e-6)
    int16 = prepare_waveform(np.array([-32768, 0, 32767] * 200, dtype=np.int16), 16000)
    assert int16.min() == -1.0 and int16.max() <= 1.0


def test_resampled_length_is_bounded_before_resampling():
    from hf_ser.audio import MAX_SECONDS

    # 1 kHz is the lowest accepted rate: 16x more samples at most; the length check runs before soxr.
    with pytest.raises(AudioError, match="more than"):
        prepare_waveform(np.zeros(100_000, dtype=np.float32), 1000, max_seconds=60)
    with pytest.raises(AudioError, match="windowed prediction"):
        prepare_waveform(np.broadcast_to(np.float32(0.1), (int(MAX_SECONDS * 1000) + 10,)), 1000)
    assert prepare_waveform(np.zeros(1000, dtype=np.float32), 1000).size == 16000


def test_torch_tensors_lists_and_0d_rates_are_accepted():
    assert prepare_waveform(torch.from_numpy(GOOD).to(torch.bfloat16), 16000).dtype == np.float32
    assert prepare_waveform(GOOD.tolist(), np.array(16000)).size == GOOD.size
    assert prepare_waveform(GOOD, torch.tensor(16000)).size == GOOD.size


def test_any_rate_dict_is_resampled_without_torchaudio(classifier):
    wave = tone(0.5, sr=44100)
    got = {r["label"]: r["score"] for r in classifier({"array": wave, "sampling_rate": 44100}, top_k=8)}
    want = {r["label"]: r["score"] for r in classifier(prepare_waveform(wave, 44100), top_k=8)}
    assert got == pytest.approx(want, abs=1e-6)


@pytest.fixture(scope="module")
def bad_files(tmp_path_factory):
    folder = tmp_path_factory.mktemp("bad_files")
    sf.write(folder / "nan.wav", np.array([0.1, np.nan] * 4000, dtype=np.float32), 16000, subtype="FLOAT")
    (folder / "zero_bytes.wav").write_bytes(b"")
    sf.write(folder / "header_only.wav", np.zeros(0, dtype=np.float32), 16000)
    (folder / "text.wav").write_text("not audio at all " * 40)
    sf.write(folder / "good.wav", tone(0.5), 16000)
    return folder


BAD_FILES = {
    "nan.wav": "NaN",
    "zero_bytes.wav": "empty",
    "header_only.wav": "empty",
    "text.wav": "Cannot decode",
}


@pytest.mark.parametrize("name", sorted(BAD_FILES))
def test_bad_files_raise_audio_error_in_pipelines_and_prediction(
    name, bad_files, classifier, regressor, loaded
):
    from hf_ser.inference.files import predict_files

    path = bad_files / name
    for run in (
        lambda: load_input(str(path)),
        lambda: load_input(path.read_bytes()),
        lambda: classifier(str(path)),
        lambda: classifier(path.read_bytes()),
        lambda: regressor(str(path)),
        lambda: predict_files(*loaded, [path]),
    ):
        with pytest.raises(AudioError, match=BAD_FILES[name]):
            run()
    rows = predict_files(*loaded, [bad_files / "good.wav", path], on_error="skip")
    assert rows[0].error is None and _finite_scores(rows[0].scores)
    assert rows[1].error and BAD_FILES[name] in rows[1].error and rows[1].scores == {}


def test_unsupported_inputs_are_audio_errors(classifier, regressor):
    for value in (None, 3, 2.5, object()):
        with pytest.raises(AudioError):
            classifier(value)
        with pytest.raises(AudioError):
            regressor(value)
    with pytest.raises(AudioError, match="'array'"):
        classifier({"sampling_rate": 16000})


# ------------------------------------------------------------------------- one decoder, every entry point agrees
# The same good and hostile inputs through every entry point that reads audio: each must give the waveform of the
# one decoder (`hf_ser.audio.load_input`) or the same `AudioError`. Feature extractors that do not normalise are
# used where the entry point returns features, so its output is the decoded waveform itself.


def _long_array():
    from hf_ser.audio import MAX_SECONDS

    # Past the 6-hour bound at 1 kHz without allocating it (a broadcast view): refused before resampling.
    return {"array": np.broadcast_to(np.float32(0.1), (int(MAX_SECONDS * 1000) + 10,)), "sampling_rate": 1000}


AGREEMENT_CASES = {
    # name: (input factory taking the fixture folder, expected AudioError phrase or None)
    "mono_16k": (lambda d: {"array": tone(0.5), "sampling_rate": 16000}, None),
    "stereo_44k": (
        lambda d: {"array": np.stack([tone(0.5, sr=44100)] * 2, axis=1), "sampling_rate": 44100},
        None,
    ),
    "rate_8k": (lambda d: {"array": tone(0.5, sr=8000), "sampling_rate": 8000}, None),
    "int16_pcm": (lambda d: {"array": (tone(0.5) * 32767).astype(np.int16), "sampling_rate": 16000}, None),
    "too_short": (lambda d: {"array": tone(0.5)[:100], "sampling_rate": 16000}, None),
    "wav_path_stereo_48k": (lambda d: str(d / "stereo48k.wav"), None),
    "wav_bytes": (lambda d: (d / "stereo48k.wav").read_bytes(), None),
    "empty": (lambda d: {"array": np.zeros(0, np.float32), "sampling_rate": 16000}, "empty"),
    "nan": (lambda d: {"array": np.array([0.1, np.nan] * 400, np.float32), "sampling_rate": 16000}, "NaN"),
    "very_long": (lambda d: _long_array(), "more than"),
    "corrupt_bytes": (lambda d: b"RIFF not really a wave file " * 40, "Cannot decode"),
    "corrupt_file": (lambda d: str(d / "corrupt.wav"), "Cannot decode"),
    "empty_file": (lambda d: str(d / "empty.wav"), "empty"),
    "nan_file": (lambda d: str(d / "nan.wav"), "NaN"),
}


@pytest.fixture(scope="module")
def agreement_dir(tmp_path_factory):
    folder = tmp_path_factory.mktemp("agreement")
    sf.write(folder / "stereo48k.wav", np.stack([tone(0.5, sr=48000), -tone(0.5, sr=48000)], axis=1), 48000)
    (folder / "corrupt.wav").write_bytes(b"RIFF not really a wave file " * 40)
    (folder / "empty.wav").write_bytes(b"")
    sf.write(folder / "nan.wav", np.array([0.1, np.nan] * 4000, dtype=np.float32), 16000, subtype="FLOAT")
    return folder


@pytest.fixture(scope="module")
def decoders(classifier, regressor, loaded):
    """Entry point name -> (decode(input) -> waveform or scores, reference(waveform) -> the same quantity)."""
    from transformers import Wav2Vec2FeatureExtractor

    from hf_ser import MultimodalDataCollator, MultimodalSERProcessor, evaluation
    from hf_ser.inference.files import predict_files
    from hf_ser.processing.embedding_cache import _as_waveform
    from tests.tiny import tiny_tokenizer

    raw = Wav2Vec2FeatureExtractor(do_normalize=False, return_attention_mask=True)
    processor = MultimodalSERProcessor(raw, tiny_tokenizer())
    model, extractor = loaded
    same = lambda wave: wave  # noqa: E731

    def pipeline_features(wave):
        return classifier.feature_extractor(wave, sampling_rate=16000, return_tensors="pt")["input_values"][0]

    def scores(wave):
        probabilities = torch.softmax(torch.as_tensor(predict_logits(model, extractor, [wave])[0]), -1)
        return {model.config.id2label[i]: float(p) for i, p in enumerate(probabilities)}

    return {
        "load_input": (load_input, same),
        "collator": (
            lambda x: AudioDataCollator(raw, max_duration_s=None)([{"audio": x, "label": 1}])["input_values"][
                0
            ],
            same,
        ),
        "multimodal_collator": (
            lambda x: MultimodalDataCollator(processor, max_duration_s=1e5)._waveform(x),
            same,
        ),
        "multimodal_processor": (lambda x: processor(audio=x)["input_values"][0], same),
        "embedding_cache": (_as_waveform, same),
        "evaluation": (lambda x: evaluation.dataset_waveforms([{"audio": x}])[0], same),
        "classification_pipeline": (lambda x: classifier.preprocess(x)["input_values"][0], pipeline_features),
        "regression_pipeline": (lambda x: regressor._read(x)[0], same),
        # predict_logits takes 16 kHz arrays; predict_files takes files.
        "predict_logits": (
            lambda x: predict_logits(model, extractor, [x])[0],
            lambda w: predict_logits(model, extractor, [w])[0],
        ),
        "predict_files": (lambda x: predict_files(model, extractor, [x])[0].scores, scores),
    }


def _accepts(entry: str, value) -> bool:
    if entry == "predict_logits":  # 16 kHz arrays only (its contract)
        return isinstance(value, dict) and value["sampling_rate"] == 16000 and value["array"].ndim == 1
    if entry == "predict_files":  # files only
        return isinstance(value, str)
    return True


@pytest.mark.parametrize("case", sorted(AGREEMENT_CASES))
def test_every_entry_point_decodes_like_the_one_decoder(case, agreement_dir, decoders):
    make, phrase = AGREEMENT_CASES[case]
    value = make(agreement_dir)
    if phrase is not None:
        with pytest.raises(AudioError, match=phrase) as reference:
            load_input(value)
    else:
        wave = load_input(value)
        assert (
            wave.dtype == np.float32
            and wave.ndim == 1
            and wave.size >= MIN_SAMPLES
            and np.isfinite(wave).all()
        )
    checked = []
    for entry, (decode, expected) in decoders.items():
        if not _accepts(entry, value):
            continue
        argument = value["array"] if entry == "predict_logits" else value
        if phrase is not None:
            with pytest.raises(AudioError) as raised:
                decode(argument)
            if (
                entry == "predict_files"
            ):  # files of unknown duration are decoded block by block: same rule, own words
                assert phrase in str(raised.value), (entry, str(raised.value))
            else:
                assert str(raised.value) == str(reference.value), entry
        else:
            got, want = decode(argument), expected(wave)
            if isinstance(want, dict):
                assert got == pytest.approx(want, abs=1e-5), entry
            else:
                np.testing.assert_allclose(np.asarray(got), np.asarray(want), atol=1e-6, err_msg=entry)
        checked.append(entry)
    assert len(checked) >= 8  # every entry point that takes this kind of input was driven


def test_nan_weights_raise_instead_of_returning_nan_scores(tmp_path, loaded):
    from transformers import pipeline

    model = save_tiny_model(tmp_path / "nan", problem_type="regression")
    with torch.no_grad():
        for parameter in model.parameters():
            parameter.fill_(float("nan"))
    model.save_pretrained(tmp_path / "nan")
    regressor = pipeline("speech-emotion-regression", model=str(tmp_path / "nan"))
    with pytest.raises(ModelOutputError, match="NaN"):
        regressor(GOOD)
    with pytest.raises(ModelOutputError):
        predict_logits(model, loaded[1], [GOOD])


@st.composite
def hostile_audio(draw):
    kind = draw(st.sampled_from(["float32", "float64", "int16", "uint8", "int32", "bool", "complex64"]))
    length = draw(st.integers(0, 3000))
    channels = draw(st.sampled_from([1, 2]))
    rate = draw(st.sampled_from([8000, 16000, 22050, 48000, 999, 0, True, float("nan"), 1e12]))
    amplitude = draw(st.sampled_from([0.0, 1e-30, 0.5, 1.0, 3.0, 1e9, 1e20]))
    poison = draw(st.sampled_from(["none", "nan", "inf"]))
    seed = draw(st.integers(0, 1000))
    wave = np.random.default_rng(seed).uniform(-1, 1, size=(length, channels)) * amplitude
    if poison != "none" and length and kind.startswith("float"):
        wave[length // 2, 0] = np.nan if poison == "nan" else np.inf
    if kind in ("int16", "uint8", "int32"):
        info = np.iinfo(kind)
        wave = np.clip(np.nan_to_num(wave) * info.max, info.min, info.max).astype(kind)
    else:
        wave = wave.astype(kind)
    return wave[:, 0] if channels == 1 else wave, rate


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(hostile_audio())
def test_pipeline_on_hostile_audio_gives_audio_error_or_finite_scores(classifier, case):
    wave, rate = case
    try:
        result = classifier({"array": wave, "sampling_rate": rate}, top_k=8)
    except AudioError:
        return
    assert _finite_scores(result)


# ------------------------------------------------------------------------------------------------- labels


def _rows(labels, column="label"):
    return [
        {"audio": {"array": tone(0.2, seed=i), "sampling_rate": 16000}, column: value, "file": f"clip{i}.wav"}
        for i, value in enumerate(labels)
    ]


@pytest.mark.parametrize(
    "labels, columns, class_labels, message",
    [
        ([1.0, float("nan"), 2.0], ("label",), False, r"NaN or infinite labels .* rows 1 \(clip1.wav\)"),
        ([1.0, float("nan"), 2.0], ("label",), True, "rows 1 "),
        ([1.0, 2.7, 2.0], ("label",), True, r"whole numbers; batch rows 1 \(clip1.wav\) have 2.7"),
        ([4.0, float("inf")], ("arousal",), False, r"rows 1 \(clip1.wav\)"),
    ],
)
def test_collator_refuses_bad_labels_naming_the_rows(labels, columns, class_labels, message):
    collator = AudioDataCollator(build_feature_extractor(), label_columns=columns, class_labels=class_labels)
    with pytest.raises(CollatorError, match=message):
        collator(_rows(labels, columns[0]))


def test_collator_refuses_nan_attribute_rows():
    rows = [
        {"audio": GOOD, "arousal": a, "valence": 3.0, "dominance": 4.0, "id": f"c{i}"}
        for i, a in enumerate([3.0, 5.0, float("nan")])
    ]
    collator = AudioDataCollator(build_feature_extractor(), label_columns=("arousal", "valence", "dominance"))
    with pytest.raises(CollatorError, match=r"rows 2 \(c2\)"):
        collator(rows)


def test_collator_keeps_whole_float_class_ids_as_long():
    collator = AudioDataCollator(build_feature_extractor(), class_labels=True)
    batch = collator(_rows([1.0, 3.0]))
    assert batch["labels"].dtype == torch.long and batch["labels"].tolist() == [1, 3]


def test_multimodal_collator_checks_audio_and_refuses_nan_attributes():
    from hf_ser import MultimodalDataCollator

    # The processor is not what is tested here: a stand-in that returns nothing.
    collator = MultimodalDataCollator(
        lambda audio=None, text=None: {}, text_column="missing", gender_column=None
    )
    rows = [{"audio": GOOD, "arousal": v, "valence": 4.0, "dominance": 4.0} for v in (3.0, float("nan"))]
    with pytest.raises(CollatorError, match="rows 1"):
        collator(rows)
    with pytest.raises(AudioError, match="NaN"):
        collator([{"audio": BAD_ARRAYS["nan"][0], "arousal": 3.0, "valence": 4.0, "dominance": 4.0}])


def test_losses_refuse_nan_and_fractional_targets():
    logits = torch.randn(3, 8)
    with pytest.raises(ValueError, match="whole numbers"):
        FocalLoss()(logits, torch.tensor([1.0, 2.7, 0.0]))
    with pytest.raises(ValueError, match="whole numbers"):
        FocalLoss()(logits, torch.tensor([1.0, float("nan"), 0.0]))
    assert torch.isfinite(FocalLoss()(logits, torch.tensor([1.0, 2.0, 0.0])))
    with pytest.raises(ValueError, match="rows \\[1\\]"):
        CCCLoss()(torch.randn(3, 3), torch.tensor([[1.0, 2, 3], [float("nan"), 2, 3], [4.0, 5, 6]]))


# ------------------------------------------------------------------------------------------------- checkpoints


def _fake_checkpoint(folder: Path, step: int, rng: bool = True) -> Path:
    from safetensors.torch import save_file

    path = folder / f"checkpoint-{step}"
    path.mkdir(parents=True)
    save_file({"w": torch.zeros(4)}, str(path / "model.safetensors"))
    (path / "trainer_state.json").write_text(json.dumps({"global_step": step}))
    torch.save({"state": {0: {"exp_avg": torch.randn(64)}}, "param_groups": []}, path / "optimizer.pt")
    torch.save({"last_epoch": step}, path / "scheduler.pt")
    if rng:
        torch.save({"cpu": torch.get_rng_state(), "python": (3, (1, 2), None)}, path / "rng_state.pth")
    return path


def _truncate(path: Path):
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])


def _garbage(path: Path):
    path.write_bytes(os.urandom(path.stat().st_size))


def _flip_a_byte(path: Path):
    """Silent corruption inside the largest record (the file still opens as a zip archive)."""
    import zipfile

    with zipfile.ZipFile(path) as archive:
        info = max(archive.infolist(), key=lambda i: i.file_size)
    data = bytearray(path.read_bytes())
    name_length, extra_length = struct.unpack("<HH", data[info.header_offset + 26 : info.header_offset + 30])
    data[info.header_offset + 30 + name_length + extra_length + info.file_size // 2] ^= 0xFF
    path.write_bytes(bytes(data))


@pytest.mark.parametrize("name", ["optimizer.pt", "scheduler.pt", "rng_state.pth"])
@pytest.mark.parametrize("damage", [_truncate, _garbage, _flip_a_byte])
def test_unloadable_checkpoint_files_fall_back_to_the_previous_checkpoint(tmp_path, name, damage, caplog):
    from hf_ser.training.checkpoints import checkpoint_problems, resolve_resume_checkpoint

    _fake_checkpoint(tmp_path, 10)
    newest = _fake_checkpoint(tmp_path, 20)
    assert checkpoint_problems(newest) == []
    damage(newest / name)
    assert any(name in problem for problem in checkpoint_problems(newest))
    with caplog.at_level(logging.WARNING, logger="hf_ser.training.checkpoints"):
        assert resolve_resume_checkpoint(tmp_path, True).endswith("checkpoint-10")
    assert "Skipping broken checkpoint" in caplog.text and name in caplog.text


def test_missing_rng_state_resumes_with_a_warning(tmp_path, caplog):
    from hf_ser.training.checkpoints import resolve_resume_checkpoint

    _fake_checkpoint(tmp_path, 10)
    newest = _fake_checkpoint(tmp_path, 20, rng=False)
    with caplog.at_level(logging.WARNING, logger="hf_ser.training.checkpoints"):
        assert resolve_resume_checkpoint(tmp_path, True) == str(newest)
    assert "no rng_state.pth" in caplog.text


# ------------------------------------------------------------------------------------------------- corpus


@pytest.fixture(scope="module")
def base_corpus(tmp_path_factory):
    from hf_ser.data.synthetic import make_tiny_corpus

    return make_tiny_corpus(
        tmp_path_factory.mktemp("adv_msp") / "MSP-PODCAST", n_speakers=2, clips_per_class=1
    )


@pytest.fixture
def corpus(base_corpus, tmp_path):
    return Path(shutil.copytree(base_corpus, tmp_path / "MSP-PODCAST"))


def test_non_utf8_labels_csv_names_file_and_line(corpus, tmp_path):
    from hf_ser.data import MSPPodcastError, load_msp_podcast

    labels = corpus / "Labels" / "labels_consensus.csv"
    lines = labels.read_bytes().split(b"\n")
    lines[3] = lines[3].replace(b",", b"\xff,", 1)
    labels.write_bytes(b"\n".join(lines))
    with pytest.raises(MSPPodcastError, match=r"labels_consensus.csv is not UTF-8 text: line 4"):
        load_msp_podcast(corpus, cache_dir=tmp_path / "cache")


def test_transcript_edited_in_place_is_not_served_stale(corpus, tmp_path):
    from hf_ser.data import load_msp_podcast

    first = load_msp_podcast(corpus, cache_dir=tmp_path / "cache")["train"][0]
    transcript = corpus / "Transcripts" / (Path(first["file"]).stem + ".txt")
    stat = transcript.stat()
    transcript.write_text("an edited transcript")
    os.utime(transcript, ns=(stat.st_atime_ns, stat.st_mtime_ns + 1_000_000))  # same size or not, a new mtime
    again = load_msp_podcast(corpus, cache_dir=tmp_path / "cache")["train"][0]
    assert again["transcript"] == "an edited transcript"


def test_skipped_rows_are_reported_on_every_load(corpus, tmp_path, caplog):
    from hf_ser.data import load_msp_podcast

    rows = read_csv(corpus / "Labels" / "labels_consensus.csv")
    (corpus / "Audios" / rows[0]["FileName"]).unlink()
    for attempt in range(2):  # the second load is answered from the cache
        caplog.clear()
        with caplog.at_level(logging.WARNING, logger="hf_ser.data.msp_podcast"):
            load_msp_podcast(corpus, on_error="skip", cache_dir=tmp_path / "cache")
        assert "missing audio file" in caplog.text and rows[0]["FileName"] in caplog.text, attempt


def test_zero_byte_audio_and_unlabelled_audio_are_counted(corpus, tmp_path, caplog):
    from hf_ser.data import MSPPodcastError, load_msp_podcast

    rows = read_csv(corpus / "Labels" / "labels_consensus.csv")
    (corpus / "Audios" / rows[0]["FileName"]).write_bytes(b"")
    with pytest.raises(MSPPodcastError, match="empty \\(0-byte\\) audio file"):
        load_msp_podcast(corpus, cache_dir=tmp_path / "cache")
    sf.write(corpus / "Audios" / "MSP-PODCAST_9999_0001.wav", tone(0.3), 16000)
    with caplog.at_level(logging.WARNING, logger="hf_ser.data.msp_podcast"):
        load_msp_podcast(corpus, on_error="skip", cache_dir=tmp_path / "cache")
    assert (
        "without a row in labels_consensus.csv" in caplog.text and "MSP-PODCAST_9999_0001.wav" in caplog.text
    )


def test_header_only_labels_file_is_an_error(corpus, tmp_path):
    from hf_ser.data import MSPPodcastError, load_msp_podcast

    labels = corpus / "Labels" / "labels_consensus.csv"
    labels.write_text(labels.read_text().splitlines()[0] + "\n")
    with pytest.raises(MSPPodcastError, match="header but no rows"):
        load_msp_podcast(corpus, cache_dir=tmp_path / "cache")


# ------------------------------------------------------------------------------------------------- CLI


def read_csv(path: Path) -> list[dict]:
    with open(path, newline="") as handle:
        return list(csv.DictReader(handle))


def _run_cli(argv, capsys, status=2):
    code = main([str(a) for a in argv])
    captured = capsys.readouterr()
    err = captured.err.strip()
    assert code == status, err
    assert "Traceback" not in err
    return err.splitlines()[-1] if err else "", captured


def _one_line(argv, capsys, message):
    last, captured = _run_cli(argv, capsys)
    errors = [line for line in captured.err.splitlines() if "error:" in line]
    assert len(errors) == 1 and message in errors[0], captured.err
    return last


@pytest.fixture
def wav(tmp_path):
    path = tmp_path / "a.wav"
    sf.write(path, tone(0.5), 16000)
    return path


def _mismatched_model(tmp_path, model_dir):
    folder = tmp_path / "mismatch"
    shutil.copytree(model_dir, folder)
    config = json.loads((folder / "config.json").read_text())
    config["id2label"] = {str(i): f"c{i}" for i in range(3)}
    config["label2id"] = {f"c{i}": i for i in range(3)}
    (folder / "config.json").write_text(json.dumps(config))
    return folder


def test_cli_model_problems(tmp_path, wav, model_dir, capsys):
    _one_line(["predict", wav, "--model", wav], capsys, "it is a file")
    _one_line(
        ["predict", wav, "--model", _mismatched_model(tmp_path, model_dir)], capsys, "cannot load model"
    )
    garbage = tmp_path / "garbage"
    shutil.copytree(model_dir, garbage)
    (garbage / "model.safetensors").write_bytes(b"\0" * 100)
    _one_line(["predict", wav, "--model", garbage], capsys, "cannot load model")
    from safetensors.torch import load_file, save_file

    partial = tmp_path / "partial"
    shutil.copytree(model_dir, partial)
    weights = load_file(partial / "model.safetensors")
    save_file({k: v for k, v in weights.items() if not k.startswith("head.")}, partial / "model.safetensors")
    _one_line(["predict", wav, "--model", partial], capsys, "weights are missing")


@pytest.mark.parametrize(
    "option, value",
    [
        ("--batch-size", "0"),
        ("--batch-size", "-3"),
        ("--window", "0"),
        ("--window", "-5"),
        ("--window", "nan"),
    ],
)
def test_cli_bad_numbers_are_usage_errors(option, value, wav, model_dir, capsys):
    with pytest.raises(SystemExit) as exit_info:
        main(["predict", str(wav), "--model", str(model_dir), option, value])
    err = capsys.readouterr().err.strip()
    assert exit_info.value.code == 2 and len(err.splitlines()) == 1 and option in err


def test_cli_threshold_nan_is_refused(capsys, tmp_path):
    with pytest.raises(SystemExit) as exit_info:
        main(["analyze", "mismatch", "--model-a", "a", "--model-b", "b", "--audio", "x", "--output-dir", "o",
              "--threshold", "nan"])  # fmt: skip
    assert exit_info.value.code == 2 and "--threshold" in capsys.readouterr().err


def test_cli_output_paths_are_checked_before_the_work(tmp_path, wav, model_dir, capsys, monkeypatch):
    import hf_ser.inference.files

    def never(*args, **kwargs):
        raise AssertionError("predicted before checking the output path")

    monkeypatch.setattr(hf_ser.inference.files, "predict_files", never)
    folder = tmp_path / "out_dir"
    folder.mkdir()
    a_file = tmp_path / "file"
    a_file.write_text("x")
    _one_line(["predict", wav, "--model", model_dir, "--output", folder], capsys, "it is a folder")
    _one_line(["predict", wav, "--model", model_dir, "--output", a_file / "t.csv"], capsys, "cannot write")
    _one_line(
        ["predict", wav, "--model", model_dir, "--submission", folder, "--output", tmp_path / "t.csv"],
        capsys,
        "it is a folder",
    )
    _one_line(
        ["evaluate", "--model", model_dir, "--data-dir", tmp_path, "--output-dir", a_file], capsys, "Labels"
    )


def test_cli_submission_problems(tmp_path, wav, model_dir, capsys, monkeypatch):
    other = tmp_path / "other_labels"
    save_tiny_model(other, num_labels=3)
    _one_line(
        [
            "predict",
            wav,
            "--model",
            other,
            "--submission",
            tmp_path / "s.csv",
            "--output",
            tmp_path / "t.csv",
        ],
        capsys,
        "challenge's classes",
    )
    bad = tmp_path / "bad.wav"
    bad.write_text("not audio " * 30)
    _one_line(
        ["predict", bad, "--model", model_dir, "--skip-errors", "--output", tmp_path / "t.csv"],
        capsys,
        "none of the 1 files could be read",
    )


def test_cli_nan_predictions_are_an_error(tmp_path, wav, capsys):
    model = save_tiny_model(tmp_path / "nan", problem_type="regression")
    with torch.no_grad():
        for parameter in model.parameters():
            parameter.fill_(float("nan"))
    model.save_pretrained(tmp_path / "nan")
    _one_line(["predict", wav, "--model", tmp_path / "nan", "--output", tmp_path / "t.csv"], capsys, "NaN")
    assert not (tmp_path / "t.csv").exists()


def test_cli_recipe_and_folder_problems(tmp_path, capsys):
    binary = tmp_path / "recipe.yaml"
    binary.write_bytes(bytes(range(256)) * 4)
    _one_line(["train", "--recipe", binary, "--output-dir", tmp_path / "o", "--tiny"], capsys, "not UTF-8")
    folder = tmp_path / "audio"
    (folder / "dir.wav").mkdir(parents=True)
    (folder / "broken.wav").symlink_to(tmp_path / "nowhere.wav")
    (folder / "loop.wav").symlink_to(folder / "loop.wav")
    _one_line(["predict", folder, "--model", tmp_path / "x"], capsys, "holds no audio files")


def test_cli_predict_folder_counts_what_it_skips(tmp_path, model_dir, capsys):
    folder = tmp_path / "audio"
    (folder / "dir.wav").mkdir(parents=True)
    sf.write(folder / "good.wav", tone(0.5), 16000)
    (folder / "broken.wav").symlink_to(tmp_path / "nowhere.wav")
    (folder / "loop.wav").symlink_to(folder / "loop.wav")
    _, captured = _run_cli(
        ["predict", folder, "--model", model_dir, "--output", tmp_path / "t.csv"], capsys, 0
    )
    assert "skipped 3 entries that are not audio files" in captured.err
    rows = read_csv(tmp_path / "t.csv")
    assert [Path(r["file"]).name for r in rows] == ["good.wav"]


def _tiny_corpus_copy(base_corpus, tmp_path):
    return Path(shutil.copytree(base_corpus, tmp_path / "MSP"))


def test_cli_evaluate_corpus_problems(base_corpus, tmp_path, model_dir, capsys, monkeypatch):
    monkeypatch.setenv("HF_DATASETS_CACHE", str(tmp_path / "cache"))
    corpus = _tiny_corpus_copy(base_corpus, tmp_path)
    out = tmp_path / "report"
    _one_line(
        ["evaluate", "--model", model_dir, "--data-dir", corpus, "--output-dir", out, "--split", "test3"],
        capsys,
        "has no labels",
    )
    rows = read_csv(corpus / "Labels" / "labels_consensus.csv")
    (corpus / "Audios" / rows[0]["FileName"]).write_bytes(b"")
    _one_line(
        ["evaluate", "--model", model_dir, "--data-dir", corpus, "--output-dir", out],
        capsys,
        "cannot be used",
    )
    labels = corpus / "Labels" / "labels_consensus.csv"
    labels.write_bytes(labels.read_bytes().replace(b"\n", b"\xe9\n", 2))
    _one_line(
        ["evaluate", "--model", model_dir, "--data-dir", corpus, "--output-dir", out], capsys, "not UTF-8"
    )


def test_cli_push_problems(tmp_path, model_dir, capsys, monkeypatch):
    bad_json = tmp_path / "results.json"
    bad_json.write_text("{not json")
    _one_line(["push", model_dir, "org/x", "--eval-results", bad_json], capsys, "not valid JSON")
    bad_json.write_text(json.dumps({"test": {"f1_macro": "high"}}))
    _one_line(
        ["push", model_dir, "org/x", "--eval-results", bad_json], capsys, "test.f1_macro must be a finite"
    )


def test_cli_unreachable_hub_is_one_line_without_the_token(model_dir, tmp_path):
    import subprocess

    env = {
        **os.environ,
        "HF_HUB_OFFLINE": "0",
        "HF_ENDPOINT": "http://127.0.0.1:9",  # nothing listens on the discard port
        "HF_TOKEN": "hf_" + "a" * 34,
        "PYTHONPATH": os.pathsep.join(p for p in sys.path if p),
    }
    result = subprocess.run(
        [sys.executable, "-m", "hf_ser.cli", "push", str(model_dir), "org/x"],
        capture_output=True,
        text=True,
        env=env,
        timeout=300,
    )
    assert result.returncode == 2, result.stderr
    assert result.stderr.strip().splitlines() == [
        "hf-ser push: error: cannot reach the Hugging Face Hub (ConnectError: [Errno 111] Connection refused)"
    ]
    assert "hf_aaaa" not in result.stderr + result.stdout


def test_cli_analyze_problems(tmp_path, wav, model_dir, capsys):
    a_file = tmp_path / "file"
    a_file.write_text("x")
    _one_line(
        ["analyze", "mismatch", "--model-a", tmp_path / "none", "--model-b", model_dir, "--audio", wav,
         "--output-dir", tmp_path / "o"],
        capsys,
        "does not exist",
    )  # fmt: skip
    _one_line(
        ["analyze", "mismatch", "--model-a", model_dir, "--model-b", model_dir, "--audio", wav,
         "--output-dir", a_file],
        capsys,
        "cannot write",
    )  # fmt: skip


def test_cli_ensemble_mistakes(tmp_path, wav, model_dir, regression_dir, capsys):
    a_file = tmp_path / "file"
    a_file.write_text("x")
    cases = [
        (
            ["ensemble", "create", tmp_path / "e1", "--members", tmp_path / "missing"],
            "not a saved model folder",
        ),
        (["ensemble", "create", tmp_path / "e2", "--members", model_dir, regression_dir], "one task"),
        (["ensemble", "create", tmp_path / "e3", "--members", model_dir, "--weights", "1", "2"], "weights"),
        (["ensemble", "create", tmp_path / "e4", "--members", model_dir, "--weights", "nan"], "weights"),
        (["ensemble", "create", tmp_path / "e5", "--members", model_dir, "--method", "mean"], "does not fit"),
        (["ensemble", "create", a_file, "--members", model_dir], "it is a file"),
        (["ensemble", "predict", tmp_path / "missing", wav], "not an hf_ser ensemble"),
    ]
    for argv, message in cases:
        _one_line(argv, capsys, message)
    bad = tmp_path / "bad_manifest"
    bad.mkdir()
    (bad / "ensemble.json").write_text("{oops")
    _one_line(["ensemble", "predict", bad, wav], capsys, "not valid JSON")
    assert main(["ensemble", "create", str(tmp_path / "ok"), "--members", str(model_dir)]) == 0
    capsys.readouterr()
    _one_line(["ensemble", "predict", tmp_path / "ok", wav, "--transcripts", "a", "b"], capsys, "transcripts")
    _one_line(
        ["ensemble", "predict", tmp_path / "ok", tmp_path / "missing.wav"], capsys, "No such audio file"
    )


def test_unexpected_errors_are_one_line_with_exit_1(monkeypatch, wav, model_dir, tmp_path, capsys):
    import hf_ser.inference.files

    def bug(*args, **kwargs):
        raise ZeroDivisionError("a bug")

    monkeypatch.setattr(hf_ser.inference.files, "predict_files", bug)
    last, _ = _run_cli(["predict", wav, "--model", model_dir, "--output", tmp_path / "t.csv"], capsys, 1)
    assert "internal error ZeroDivisionError" in last and "HF_SER_DEBUG" in last


# Error classes that are HFSERErrors but not ValueErrors, with the reason.
NOT_VALUE_ERRORS = {
    "hf_ser.errors.HFSERError": "the base class: each subclass picks its builtin kind",
    "hf_ser.errors.HubConnectionError": "a ConnectionError: callers catch network failures as such",
    "hf_ser.cli.common.CommandError": "a usage error of the command line, raised and caught inside the CLI only",
}
# Exception classes defined in hf_ser that are not HFSERErrors, with the reason (none today).
NOT_HFSER_ERRORS: dict[str, str] = {}


def _package_exception_classes() -> dict[str, type]:
    """Every Exception subclass defined in any hf_ser module (all modules imported, classes walked)."""
    import importlib
    import inspect
    import pkgutil

    import hf_ser

    found = {}
    for info in pkgutil.walk_packages(hf_ser.__path__, "hf_ser."):
        module = importlib.import_module(info.name)
        for _, cls in inspect.getmembers(module, inspect.isclass):
            if issubclass(cls, BaseException) and cls.__module__ == module.__name__:
                found[f"{cls.__module__}.{cls.__qualname__}"] = cls
    return found


def test_every_package_error_is_an_hfser_error_and_a_value_error():
    classes = _package_exception_classes()
    # The walk reaches every subpackage (a sanity check that it does not silently find nothing).
    for name in (
        "hf_ser.audio.AudioError",
        "hf_ser.data.msp_podcast.MSPPodcastError",
        "hf_ser.onnx.runtime.ONNXExportError",
    ):
        assert name in classes
    assert len(classes) >= 19, sorted(classes)
    for name, cls in classes.items():
        if name not in NOT_HFSER_ERRORS:
            assert issubclass(cls, HFSERError), f"{name} does not derive from HFSERError"
        if name not in NOT_VALUE_ERRORS and name not in NOT_HFSER_ERRORS:
            assert issubclass(cls, ValueError), f"{name} is not a ValueError"
    # Files that travel to the Hub cannot import errors.py: they must define no error class of their own.
    travelling = ("configuration_", "modeling_", "pooling", "losses", "wavlm_sdpa_attention", "labels")
    assert not [n for n in classes if n.split(".")[1].startswith(travelling)]


@pytest.mark.parametrize(
    "text",
    [
        "401 for url https://hub/api?token=abcd1234efgh: denied",
        "Authorization: Bearer hf_ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefgh",
        "invalid token hf_ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefgh given",
        "api_org_ABCDEFGHIJKLMNOPQRSTUVWXYZ rejected",
        '{"password": "hunter2hunter2"}',
    ],
)
def test_secrets_are_redacted(text):
    redacted = redact_secrets(text)
    for secret in ("abcd1234efgh", "ABCDEFGHIJKLMNOP", "hunter2hunter2"):
        assert secret not in redacted
    assert "***" in redacted


def test_cli_redacts_server_messages(monkeypatch, model_dir, capsys):
    import hf_ser.publishing.hub
    from hf_ser.publishing.hub import PublishError

    def refuse(*args, **kwargs):
        raise PublishError("server said: token hf_SECRETSECRETSECRETSECRET is invalid\nsecond line")

    monkeypatch.setattr(hf_ser.publishing.hub, "push_to_hub", refuse)
    last = _one_line(["push", model_dir, "org/x"], capsys, "server said")
    assert "SECRETSECRET" not in last and "second line" not in last


def test_cli_and_space_never_trust_remote_code(model_dir, monkeypatch):
    import transformers

    from hf_ser.cli import load_audio_model

    seen = []
    original = transformers.AutoModelForAudioClassification.from_pretrained.__func__

    def spy(cls, *args, **kwargs):
        seen.append(kwargs.get("trust_remote_code", "absent"))
        return original(cls, *args, **kwargs)

    monkeypatch.setattr(transformers.AutoModelForAudioClassification, "from_pretrained", classmethod(spy))
    load_audio_model(str(model_dir))
    app = load_space_app()
    app.load_model.cache_clear()
    app.load_model(str(model_dir))
    assert seen == [False, False]


def test_sparse_wav_helper_writes_a_valid_header(tmp_path):
    path = write_sparse_wav(tmp_path / "s.wav", 2.0)
    info = sf.info(str(path))
    assert info.samplerate == 48000 and info.channels == 2 and info.frames == 96000
