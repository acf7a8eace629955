"""hf_ser.publishing.convert: released checkpoints (random weights in the released key layouts) become hf_ser folders whose
outputs equal a re-implementation of the released forward (tests/released_reference.py) to 1e-5."""

from __future__ import annotations

import json
import pickle

import numpy as np
import pytest
import torch
from safetensors.torch import save_file
from transformers import AutoFeatureExtractor, AutoModel, WhisperFeatureExtractor

from hf_ser.publishing.convert import (
    ConversionError,
    convert,
    convert_challenge_baseline,
    convert_vox_profile,
)
from tests.released_reference import ReleasedBaseline, ReleasedVoxProfileDim, add_lora
from tests.tiny import tiny_encoder_config, tiny_whisper_config

MEAN, STD = 0.003, 0.07  # a training set's waveform statistics, as train_norm_stat.pkl holds them


def wavlm_config(**overrides) -> dict:
    # WavLM-large's front end, only narrower: 7 layer-normed convolutions without bias (the fold adds one) and a 20 ms
    # hop, which the baseline's frame count floor((samples - 1) / 320) + 1 assumes.
    front_end = {
        "conv_dim": (16,) * 7, "conv_stride": (5, 2, 2, 2, 2, 2, 2), "conv_kernel": (10, 3, 3, 3, 3, 2, 2),
        "conv_bias": False,
    }  # fmt: skip
    config = tiny_encoder_config(**{"num_hidden_layers": 2, **front_end, **overrides})
    config.pop("model_type")
    return config


def clip(seconds: float, seed: int) -> np.ndarray:
    return (np.random.default_rng(seed).standard_normal(int(16000 * seconds)) * 0.05 + MEAN).astype(
        np.float32
    )


def released_baseline(outputs: int, seed: int = 0) -> ReleasedBaseline:
    torch.manual_seed(seed)
    return ReleasedBaseline(wavlm_config(), head_hidden=24, outputs=outputs).eval()


def save_training_output(reference: ReleasedBaseline, folder) -> None:
    folder.mkdir()
    torch.save(reference.ssl_model.state_dict(), folder / "final_ssl.pt")
    torch.save(reference.pool_model.state_dict(), folder / "final_pool.pt")
    torch.save(reference.ser_model.state_dict(), folder / "final_ser.pt")
    with open(folder / "train_norm_stat.pkl", "wb") as handle:
        pickle.dump((np.float64(MEAN), np.float64(STD)), handle)


def converted_logits(folder, waves: list[np.ndarray]) -> torch.Tensor:
    import hf_ser  # noqa: F401  (registers the Auto classes)

    model = AutoModel.from_pretrained(folder).eval()
    extractor = AutoFeatureExtractor.from_pretrained(folder)
    batch = extractor(
        waves, sampling_rate=16000, padding=True, return_attention_mask=True, return_tensors="pt"
    )
    with torch.no_grad():
        return model(**batch).logits


def test_baseline_training_output_attributes_equal_the_released_forward(tmp_path):
    reference = released_baseline(outputs=3)
    save_training_output(reference, tmp_path / "dim_ser")
    convert(tmp_path / "dim_ser", tmp_path / "out", encoder_config=wavlm_config())
    waves = [clip(1.3, 1), clip(0.7, 2)]
    with torch.no_grad():
        released = torch.cat(
            [reference(w, MEAN, STD) for w in waves]
        )  # arousal, dominance, valence on (y-1)/6
    want = 6.0 * released[:, [0, 2, 1]] + 1.0  # hf_ser: arousal, valence, dominance on 1-7
    for wave, row in zip(waves, want, strict=True):
        torch.testing.assert_close(converted_logits(tmp_path / "out", [wave])[0], row, rtol=1e-5, atol=1e-5)
    # A padded batch gives every clip its own output: the folded normalisation does not leak into valid frames.
    torch.testing.assert_close(converted_logits(tmp_path / "out", waves), want, rtol=1e-5, atol=1e-5)
    config = json.loads((tmp_path / "out" / "config.json").read_text())
    assert [config["id2label"][str(i)] for i in range(3)] == ["arousal", "valence", "dominance"]
    assert (tmp_path / "out" / "model.safetensors").is_file()
    # The released scale is available too.
    model = convert_challenge_baseline(
        tmp_path / "dim_ser", encoder_config=wavlm_config(), output_scale="released"
    )
    extractor = AutoFeatureExtractor.from_pretrained(tmp_path / "out")
    with torch.no_grad():
        got = model(**extractor(waves[:1], sampling_rate=16000, return_tensors="pt")).logits
    torch.testing.assert_close(got[0], released[0, [0, 2, 1]], rtol=1e-5, atol=1e-5)


def test_baseline_hub_model_categorical_equals_the_released_forward(tmp_path):
    reference = released_baseline(outputs=8, seed=1)
    folder = tmp_path / "hub"
    folder.mkdir()
    save_file({k: v.contiguous() for k, v in reference.state_dict().items()}, folder / "model.safetensors")
    labels = ["Angry", "Sad", "Happy", "Surprise", "Fear", "Disgust", "Contempt", "Neutral"]
    hub_config = {
        "model_type": "ser", "num_classes": 8, "hidden_size": 32, "classifier_hidden_layers": 1,
        "classifier_dropout_prob": 0.5, "ssl_type": "tiny/wavlm", "sampling_rate": 16000, "mean": MEAN,
        "std": STD, "maxlen": 192000, "id2label": {str(i): name for i, name in enumerate(labels)},
    }  # fmt: skip
    (folder / "config.json").write_text(json.dumps(hub_config))
    with pytest.raises(ConversionError, match="encoder_config"):
        convert(folder, tmp_path / "refused")  # not WavLM-large: the encoder's architecture must be given
    convert(folder, tmp_path / "out", encoder_config=wavlm_config())
    wave = clip(1.1, 3)
    with torch.no_grad():
        want = reference(wave, MEAN, STD)[0]
    torch.testing.assert_close(converted_logits(tmp_path / "out", [wave])[0], want, rtol=1e-5, atol=1e-5)

    from transformers import pipeline

    classifier = pipeline("audio-classification", model=str(tmp_path / "out"), top_k=8)
    scores = {row["label"]: row["score"] for row in classifier(wave)}
    probabilities = torch.softmax(want, -1)
    assert scores == pytest.approx(
        {name: float(p) for name, p in zip(labels, probabilities, strict=True)}, abs=1e-5
    )


def test_unknown_folders_and_unsafe_pickles_are_refused(tmp_path):
    with pytest.raises(ConversionError, match="not a released checkpoint"):
        convert(tmp_path, tmp_path / "out")
    folder = tmp_path / "bad"
    save_training_output(released_baseline(outputs=3), folder)

    class Evil:
        def __reduce__(self):
            return (print, ("pwned",))

    with open(folder / "train_norm_stat.pkl", "wb") as handle:
        pickle.dump(Evil(), handle)
    with pytest.raises(ConversionError, match="only numbers"):
        convert(folder, tmp_path / "out", encoder_config=wavlm_config())


def save_vox_profile(reference: ReleasedVoxProfileDim, folder, init: dict, extra: dict | None = None) -> None:
    folder.mkdir()
    state = {k: v.contiguous() for k, v in reference.state_dict().items()}
    save_file({**state, **(extra or {})}, folder / "model.safetensors")
    (folder / "config.json").write_text(json.dumps(init))


@pytest.mark.parametrize("gender", [False, True])
def test_vox_profile_wavlm_with_lora_equals_the_released_forward(tmp_path, gender):
    torch.manual_seed(2)
    encoder = wavlm_config(num_hidden_layers=4, conv_bias=True)
    reference = ReleasedVoxProfileDim(encoder, hidden_dim=16, gender=gender).eval()
    probe = torch.randn(1, 16000)
    with torch.no_grad():
        before = reference.speech_frames(probe)
    lora = add_lora(reference)
    with torch.no_grad():
        assert (reference.speech_frames(probe) - before).abs().max() > 1e-3  # the LoRA factors matter
    init = {"pretrain_model": "wavlm_large", "hidden_dim": 16, "finetune_method": "lora", "lora_rank": 4}
    save_vox_profile(reference, tmp_path / "release", init, lora)
    model = convert_vox_profile(
        tmp_path / "release", tmp_path / "out", audio_config=encoder, output_scale="released"
    )
    wave = clip(1.2, 4)
    extractor = AutoFeatureExtractor.from_pretrained(tmp_path / "out")
    inputs = extractor(wave, sampling_rate=16000, return_attention_mask=True, return_tensors="pt")
    with torch.no_grad():
        released = reference(inputs["input_values"])
        got = model(**inputs)
    torch.testing.assert_close(got.logits[0], torch.cat(released[:3], -1)[0], rtol=1e-5, atol=1e-5)
    with torch.no_grad():  # the frame features too (the tiny random heads are insensitive to them)
        frames, _ = model.speech_frames(inputs["input_values"], inputs["attention_mask"])
        torch.testing.assert_close(
            frames, reference.speech_frames(inputs["input_values"]), rtol=1e-5, atol=1e-5
        )
    if gender:
        torch.testing.assert_close(got.aux_logits[0], released[3][0], rtol=1e-5, atol=1e-5)
    saved = AutoModel.from_pretrained(tmp_path / "out")  # converted with output_scale="released": [0, 1]
    assert saved.config.attribute_max == [1.0, 1.0, 1.0] and not saved.config.use_text


def test_vox_profile_whisper_equals_the_released_forward_on_a_full_window(tmp_path):
    torch.manual_seed(3)
    encoder = tiny_whisper_config()
    encoder.pop("model_type")
    reference = ReleasedVoxProfileDim(encoder, hidden_dim=16, whisper=True).eval()
    init = {"pretrain_model": "whisper_large", "hidden_dim": 16, "finetune_method": "finetune"}
    save_vox_profile(reference, tmp_path / "release", init)
    convert_vox_profile(
        tmp_path / "release", tmp_path / "out", audio_config={"model_type": "whisper", **encoder}
    )
    model = AutoModel.from_pretrained(tmp_path / "out").eval()
    extractor = AutoFeatureExtractor.from_pretrained(tmp_path / "out")
    assert (
        isinstance(extractor, WhisperFeatureExtractor) and extractor.chunk_length == 2
    )  # 100 positions here
    full = clip(2.0, 5)  # fills the window: the released mean over all positions is the clip's mean
    inputs = extractor(
        full, sampling_rate=16000, padding="max_length", return_attention_mask=True, return_tensors="pt"
    )
    with torch.no_grad():
        want = 6.0 * torch.cat(reference(inputs["input_features"]), -1)[0] + 1.0  # default scale: 1-7
        got = model(input_features=inputs["input_features"], attention_mask=inputs["attention_mask"]).logits[
            0
        ]
    torch.testing.assert_close(got, want, rtol=1e-5, atol=1e-5)
    with torch.no_grad():  # the frame features too, with the released 750-position (here 100) embeddings
        frames, _ = model.speech_frames(input_features=inputs["input_features"])
        torch.testing.assert_close(
            frames, reference.speech_frames(inputs["input_features"]), rtol=1e-5, atol=1e-5
        )
    # A shorter clip: the release averages the padded window too; without a mask hf_ser does the same.
    short = extractor(clip(0.8, 6), sampling_rate=16000, padding="max_length", return_tensors="pt")
    with torch.no_grad():
        want = 6.0 * torch.cat(reference(short["input_features"]), -1)[0] + 1.0
        got = model(input_features=short["input_features"]).logits[0]
    torch.testing.assert_close(got, want, rtol=1e-5, atol=1e-5)


def test_cli_convert(tmp_path):
    import subprocess
    import sys

    reference = released_baseline(outputs=3)
    save_training_output(reference, tmp_path / "dim_ser")
    (tmp_path / "encoder.json").write_text(json.dumps({"model_type": "wavlm", **wavlm_config()}))
    command = [
        sys.executable,
        "-m",
        "hf_ser.cli",
        "convert",
        str(tmp_path / "dim_ser"),
        str(tmp_path / "out"),
    ]
    done = subprocess.run(
        [*command, "--encoder-config", str(tmp_path / "encoder.json")], capture_output=True, text=True
    )
    assert done.returncode == 0, done.stderr
    assert "WavLMForMASPClassification" in done.stdout and (tmp_path / "out" / "model.safetensors").is_file()
    wave = clip(0.9, 7)
    with torch.no_grad():
        want = 6.0 * reference(wave, MEAN, STD)[0, [0, 2, 1]] + 1.0
    torch.testing.assert_close(converted_logits(tmp_path / "out", [wave])[0], want, rtol=1e-5, atol=1e-5)
    refused = subprocess.run(
        [*command[:-2], str(tmp_path), str(tmp_path / "x")], capture_output=True, text=True
    )
    assert refused.returncode == 2 and "not a released checkpoint" in refused.stderr
