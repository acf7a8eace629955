"""Both load paths (hf_ser imported; hf_ser absent with trust_remote_code) in fresh processes, and pipeline()."""

from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import pytest
import soundfile as sf
import torch

from tests.tiny import save_tiny_model, tone

LOAD_AND_PREDICT = r"""
import json, sys
import numpy as np
if sys.argv[2] == "blocked":
    sys.modules["hf_ser"] = None  # `import hf_ser` now fails: only the code shipped with the model can be used
else:
    import hf_ser
import torch
from transformers import AutoConfig, AutoModel, AutoModelForAudioClassification, pipeline
remote = sys.argv[2] == "blocked"
model_dir = sys.argv[1]
wave = np.load(sys.argv[3])
model = AutoModelForAudioClassification.from_pretrained(model_dir, trust_remote_code=remote).eval()
base = AutoModel.from_pretrained(model_dir, trust_remote_code=remote)
config = AutoConfig.from_pretrained(model_dir, trust_remote_code=remote)
fe_inputs = __import__("transformers").AutoFeatureExtractor.from_pretrained(model_dir)(
    wave, sampling_rate=16000, return_tensors="pt")
with torch.no_grad():
    logits = model(**fe_inputs).logits[0].tolist()
classifier = pipeline("audio-classification", model=model_dir, trust_remote_code=remote)
top = classifier(wave, top_k=8)
print(json.dumps({"module": type(model).__module__, "base": type(base).__name__, "config": type(config).__name__,
                  "logits": logits, "pipeline": top}))
"""


def run_fresh(model_dir, mode, wave_path):
    result = subprocess.run(
        [sys.executable, "-c", LOAD_AND_PREDICT, str(model_dir), mode, str(wave_path)],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    return json.loads(result.stdout.strip().splitlines()[-1])


@pytest.fixture(scope="module")
def saved_model(tmp_path_factory):
    path = tmp_path_factory.mktemp("tiny_masp")
    model = save_tiny_model(path)
    return path, model


def test_saved_folder_has_safetensors_code_and_complete_auto_map(saved_model):
    path, _ = saved_model
    names = {p.name for p in path.iterdir()}
    assert {"model.safetensors", "config.json", "preprocessor_config.json"} <= names
    code_files = {
        "configuration_wavlm_masp.py",
        "modeling_wavlm_masp.py",
        "pooling.py",
        "losses.py",
        "wavlm_sdpa_attention.py",
    }
    assert code_files <= names
    assert not any(name.endswith((".bin", ".pt", ".pkl")) for name in names)
    auto_map = json.loads((path / "config.json").read_text())["auto_map"]
    assert set(auto_map) == {"AutoConfig", "AutoModel", "AutoModelForAudioClassification"}


def test_both_load_paths_give_the_same_logits(saved_model, tmp_path):
    path, model = saved_model
    wave = tone(0.8, seed=5)
    np.save(tmp_path / "wave.npy", wave)
    installed = run_fresh(path, "installed", tmp_path / "wave.npy")
    remote = run_fresh(path, "blocked", tmp_path / "wave.npy")
    assert installed["module"] == "hf_ser.models.modeling_wavlm_masp"
    assert remote["module"].startswith("transformers_modules.")
    assert installed["config"] == remote["config"] == "WavLMMASPConfig"
    assert installed["base"] == remote["base"] == "WavLMForMASPClassification"
    np.testing.assert_allclose(installed["logits"], remote["logits"], atol=1e-6)
    from hf_ser import build_feature_extractor

    with torch.no_grad():
        here = model.eval()(
            **build_feature_extractor()(wave, sampling_rate=16000, return_tensors="pt")
        ).logits[0]
    np.testing.assert_allclose(installed["logits"], here.numpy(), atol=1e-5)
    assert [d["label"] for d in installed["pipeline"]] == [d["label"] for d in remote["pipeline"]]
    assert len(installed["pipeline"]) == 8


def test_import_twice_is_safe():
    code = "import importlib, hf_ser; hf_ser.register_auto_classes(); importlib.reload(hf_ser); print('ok')"
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert result.returncode == 0 and result.stdout.strip() == "ok", result.stderr[-2000:]


@pytest.mark.parametrize("rate", [16000, 8000, 22050, 44100, 48000])
def test_pipeline_on_array_dict_and_wav_path(saved_model, tmp_path, rate):
    from transformers import pipeline

    from hf_ser import load_audio

    path, _ = saved_model
    classifier = pipeline("audio-classification", model=str(path))
    wave16 = tone(1.0, seed=2)
    from_array = classifier(wave16, top_k=3)
    from_dict = classifier({"raw": wave16, "sampling_rate": 16000}, top_k=3)
    assert [d["label"] for d in from_array] == [d["label"] for d in from_dict]
    assert from_array[0]["score"] == pytest.approx(from_dict[0]["score"])

    # A wav file at another rate: ffmpeg decodes and resamples it inside the pipeline.
    wave = tone(1.0, sr=rate, seed=2)
    file = tmp_path / f"clip_{rate}.wav"
    sf.write(file, wave, rate)
    from_path = classifier(str(file), top_k=8)
    assert len(from_path) == 8 and abs(sum(d["score"] for d in from_path) - 1) < 1e-4
    # The package's own loader (soxr) resamples to the same signal, so the predictions agree.
    from_loader = classifier(load_audio(file), top_k=8)
    got = {d["label"]: d["score"] for d in from_path}
    want = {d["label"]: d["score"] for d in from_loader}
    for label in got:
        assert got[label] == pytest.approx(want[label], abs=2e-3)


def test_pipeline_top_label_comes_from_config_id2label(saved_model):
    from transformers import pipeline

    path, model = saved_model
    classifier = pipeline("audio-classification", model=str(path))
    labels = {d["label"] for d in classifier(tone(0.5), top_k=8)}
    assert labels == set(model.config.id2label.values())
