"""Publishing against a local stand-in of the Hub HTTP API (`tests/hub_server.py`): the pushed files reload in fresh
processes through both load paths and the pipeline, the card carries the results, no token leaks, and the Space is
published with its model variable."""

from __future__ import annotations

import json
import logging
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
import torch

from hf_ser import build_feature_extractor
from hf_ser.cli import main as cli_main
from hf_ser.publishing.hub import PublishError, prepare_model_folder, push_space, push_to_hub
from hf_ser.publishing.model_card import CardData, parse_card_metadata
from tests.hub_server import HubServer
from tests.tiny import save_tiny_model, tiny_masp_model, tone

TOKEN = "hf_TestToken0123456789abcdefSECRET"

# Run in a fresh interpreter: download org/name from the stand-in Hub, load it, and report logits and pipeline
# scores for a wav file. argv: repo_id, wav path, "package" or "no-package".
LOAD_SCRIPT = r"""
import json, sys
repo_id, wav, mode = sys.argv[1:4]
if mode == "no-package":
    sys.modules["hf_ser"] = None  # any `import hf_ser` now fails: only the repo's code files can be used
else:
    import hf_ser  # registers the Auto classes
import soundfile as sf
import torch
from transformers import AutoFeatureExtractor, AutoModelForAudioClassification, pipeline

kwargs = {"trust_remote_code": True} if mode == "no-package" else {}
model = AutoModelForAudioClassification.from_pretrained(repo_id, **kwargs).eval()
extractor = AutoFeatureExtractor.from_pretrained(repo_id)
audio, rate = sf.read(wav, dtype="float32")
inputs = extractor(audio, sampling_rate=rate, return_tensors="pt")
with torch.no_grad():
    logits = model(**inputs).logits[0].tolist()
classifier = pipeline("audio-classification", model=repo_id, **kwargs)
scores = {r["label"]: r["score"] for r in classifier(wav, top_k=None)}
print(json.dumps({"class": type(model).__module__, "logits": logits, "scores": scores}))
"""


@pytest.fixture(scope="module")
def hub():
    """The stand-in Hub; while it runs, huggingface_hub is online and pointed at it (and only at it)."""
    with HubServer() as server, pytest.MonkeyPatch.context() as patch:
        patch.setattr("huggingface_hub.constants.HF_HUB_OFFLINE", False)
        patch.setattr("huggingface_hub.constants.ENDPOINT", server.endpoint)
        template = server.endpoint + "/{repo_id}/resolve/{revision}/{filename}"
        patch.setattr("huggingface_hub.constants.HUGGINGFACE_CO_URL_TEMPLATE", template)
        patch.setenv("HF_ENDPOINT", server.endpoint)
        yield server


def fresh_process_env(hub: HubServer, home: Path) -> dict[str, str]:
    env = dict(os.environ)
    env.update(HF_ENDPOINT=hub.endpoint, HF_HUB_OFFLINE="0", HF_HOME=str(home), HF_HUB_DISABLE_TELEMETRY="1")
    env.pop("HF_TOKEN", None)
    return env


def load_in_fresh_processes(hub: HubServer, repo_id: str, wav: Path, home: Path) -> dict[str, dict]:
    """Both load paths side by side (two cores): {"package": ..., "no-package": ...}."""
    processes = {
        mode: subprocess.Popen(
            [sys.executable, "-c", LOAD_SCRIPT, repo_id, str(wav), mode],
            env=fresh_process_env(hub, home / mode),
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for mode in ("package", "no-package")
    }
    results = {}
    for mode, process in processes.items():
        out, err = process.communicate(timeout=300)
        assert process.returncode == 0, err[-3000:]
        results[mode] = json.loads(out.strip().splitlines()[-1])
    return results


@pytest.mark.slow
def test_pushed_model_reloads_with_and_without_hf_ser(hub, tmp_path):
    torch.manual_seed(0)
    model = tiny_masp_model().eval()
    card = CardData(eval_results={"test1": {"f1_macro": 0.3412, "f1_micro": 0.3688}})
    commit = push_to_hub(model, "org/ser-tiny", card_data=card, token=TOKEN, endpoint=hub.endpoint)
    assert commit.oid == hub.repo("org/ser-tiny").sha

    files = hub.repo("org/ser-tiny").files
    expected = {
        "README.md",
        "config.json",
        "model.safetensors",
        "preprocessor_config.json",
        "configuration_wavlm_masp.py",
        "modeling_wavlm_masp.py",
        "pooling.py",
        "losses.py",
    }
    assert expected <= set(files)
    assert not [name for name in files if name.endswith((".bin", ".pt", ".pth", ".pkl"))]
    config = json.loads(files["config.json"])
    assert config["auto_map"] == {
        "AutoConfig": "configuration_wavlm_masp.WavLMMASPConfig",
        "AutoModel": "modeling_wavlm_masp.WavLMForMASPClassification",
        "AutoModelForAudioClassification": "modeling_wavlm_masp.WavLMForMASPClassification",
    }
    metadata = parse_card_metadata(files["README.md"].decode())
    assert metadata["pipeline_tag"] == "audio-classification"
    values = {m["name"]: m["value"] for m in metadata["model-index"][0]["results"][0]["metrics"]}
    assert values == {"Macro F1": 0.3412, "Micro F1": 0.3688}
    assert "org/ser-tiny" in files["README.md"].decode()

    wav = tmp_path / "clip.wav"
    audio = tone(1.0, freq=210.0)
    sf.write(wav, audio, 16000)
    inputs = build_feature_extractor()(audio, sampling_rate=16000, return_tensors="pt")
    with torch.no_grad():
        expected_logits = model(**inputs).logits[0].numpy()
    expected_scores = torch.softmax(torch.from_numpy(expected_logits), -1).numpy()

    results = load_in_fresh_processes(hub, "org/ser-tiny", wav, tmp_path)
    with_package, without_package = results["package"], results["no-package"]
    assert with_package["class"] == "hf_ser.models.modeling_wavlm_masp"
    assert without_package["class"].startswith("transformers_modules.")  # the repo's own code files
    for result in (with_package, without_package):
        np.testing.assert_allclose(result["logits"], expected_logits, atol=1e-5)
        labels = [model.config.id2label[i] for i in range(8)]
        np.testing.assert_allclose([result["scores"][label] for label in labels], expected_scores, atol=1e-4)


def test_token_is_used_but_never_printed_or_written(hub, tmp_path, monkeypatch, caplog, capfd):
    from huggingface_hub import HfApi

    # Scan the staging folder at upload time (it is deleted afterwards): every file push_to_hub wrote.
    scanned: list[str] = []
    original_upload = HfApi.upload_folder

    def scanning_upload(self, *args, folder_path, **kwargs):
        for path in Path(folder_path).rglob("*"):
            if path.is_file():
                scanned.append(path.name)
                assert TOKEN.encode() not in path.read_bytes(), path
        return original_upload(self, *args, folder_path=folder_path, **kwargs)

    monkeypatch.setattr(HfApi, "upload_folder", scanning_upload)
    caplog.set_level(logging.DEBUG)
    push_to_hub(tiny_masp_model(), "org/secret-test", token=TOKEN, card_data=CardData(space_id="org/x"))

    assert {"model.safetensors", "config.json", "README.md", "preprocessor_config.json"} <= set(scanned)
    assert f"Bearer {TOKEN}" in hub.authorizations  # the token did authenticate the upload
    captured = capfd.readouterr()
    assert TOKEN not in captured.out + captured.err
    assert TOKEN not in caplog.text
    for content in hub.repo("org/secret-test").files.values():
        assert TOKEN.encode() not in content


def test_push_from_a_folder_with_the_cli(hub, tmp_path, monkeypatch, capsys):
    folder = tmp_path / "saved"
    model = tiny_masp_model()
    # What training left on the card: the development-set results and the set-up, saved as README.md.
    model.model_card_data = CardData(
        eval_results={"validation": {"f1_macro": 0.42}}, hyperparameters={"learning_rate": 3e-4}
    )
    model.save_pretrained(folder)
    build_feature_extractor().save_pretrained(folder)
    results = tmp_path / "results.json"
    results.write_text(json.dumps({"test": {"f1_macro": 0.31, "f1_micro": 0.35, "eval_runtime": 2.0}}))
    monkeypatch.setenv("HF_TOKEN", TOKEN)

    assert (
        cli_main(
            ["push", str(folder), "org/from-cli", "--eval-results", str(results), "--space-id", "org/demo"]
        )
        == 0
    )
    assert TOKEN not in capsys.readouterr().out
    assert hub.authorizations[-1] == f"Bearer {TOKEN}"  # read from HF_TOKEN
    files = hub.repo("org/from-cli").files
    assert {"model.safetensors", "preprocessor_config.json", "pooling.py", "losses.py"} <= set(files)
    card = files["README.md"].decode()
    metadata = parse_card_metadata(card)
    by_set = {
        r["dataset"]["name"]: {m["name"]: m["value"] for m in r["metrics"]}
        for r in metadata["model-index"][0]["results"]
    }
    # The saved card is kept and updated: its results and set-up stay, the pushed results are added.
    assert by_set == {"validation": {"Macro F1": 0.42}, "test": {"Macro F1": 0.31, "Micro F1": 0.35}}
    assert metadata["model-index"][0]["name"] == "from-cli"
    assert "spaces/org/demo" in card and "`learning_rate`: `0.0003`" in card
    assert 'from_pretrained("org/from-cli"' in card


def test_push_keeps_an_authors_readme_and_updates_its_metadata(hub, tmp_path):
    from huggingface_hub import ModelCard

    folder = tmp_path / "saved"
    save_tiny_model(folder)
    body = "# My SER model\n\nWritten by hand; hf_ser must not replace this.\n"
    (folder / "README.md").write_text("---\nlicense: mit\n---\n" + body)
    card = CardData(eval_results={"test": {"f1_macro": 0.31}})
    push_to_hub(folder, "org/authored", card_data=card, token=TOKEN)
    push_to_hub(
        folder, "org/authored", card_data=CardData(eval_results={"test": {"f1_micro": 0.35}}), token=TOKEN
    )

    pushed = ModelCard(hub.repo("org/authored").files["README.md"].decode())
    assert pushed.text.strip() == body.strip()
    assert pushed.data.license == "mit"  # the author's
    assert pushed.data.pipeline_tag == "audio-classification" and pushed.data.library_name == "transformers"
    # The folder's README is only read: the second push starts from it again, so it has the second result only.
    assert [(r.metric_name, r.metric_value) for r in pushed.data.eval_results] == [("Micro F1", 0.35)]
    assert (folder / "README.md").read_text() == "---\nlicense: mit\n---\n" + body


def test_cli_reports_a_bad_folder_in_one_line(tmp_path, capsys):
    folder = tmp_path / "saved"
    save_tiny_model(folder)
    torch.save({"w": torch.zeros(1)}, folder / "pytorch_model.bin")
    (folder / "model.safetensors").unlink()
    capsys.readouterr()  # drop the progress bars of saving
    assert cli_main(["push", str(folder), "org/never"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("hf-ser push: error:") and "pickle" in err and "Traceback" not in err


def test_pickles_are_never_published(hub, tmp_path):
    folder = tmp_path / "saved"
    save_tiny_model(folder)
    torch.save({"w": torch.zeros(1)}, folder / "pytorch_model.bin")
    torch.save(
        {"lr": 1e-4}, folder / "training_args.bin"
    )  # what Trainer.save_model leaves next to the weights
    push_to_hub(folder, "org/no-pickles", token=TOKEN)
    files = set(hub.repo("org/no-pickles").files)
    assert "model.safetensors" in files
    assert not {"pytorch_model.bin", "training_args.bin"} & files

    (folder / "model.safetensors").unlink()  # pickle weights only
    with pytest.raises(PublishError, match="No safetensors weights .*pytorch_model.bin"):
        prepare_model_folder(folder, tmp_path / "out1")


def test_refuses_bad_ids_and_folders(tmp_path):
    with pytest.raises(PublishError, match="no config.json"):
        prepare_model_folder(tmp_path, tmp_path / "out")
    with pytest.raises(PublishError, match="org/name"):
        push_to_hub(tiny_masp_model(), "not a repo id", endpoint="http://127.0.0.1:9")


def test_missing_code_files_are_restored(tmp_path):
    folder = tmp_path / "saved"
    save_tiny_model(folder)
    (folder / "pooling.py").unlink()  # imported by modeling_wavlm_masp.py
    config = json.loads((folder / "config.json").read_text())
    del config["auto_map"]["AutoModel"]
    (folder / "config.json").write_text(json.dumps(config))
    out = prepare_model_folder(folder, tmp_path / "out")
    assert (out / "pooling.py").read_text() == (
        Path(__file__).resolve().parents[2] / "src/hf_ser/models/pooling.py"
    ).read_text()
    assert json.loads((out / "config.json").read_text())["auto_map"]["AutoModel"].endswith(
        "WavLMForMASPClassification"
    )


def test_push_space_uploads_app_package_and_model_variable(hub, monkeypatch, capsys):
    monkeypatch.setenv("HF_TOKEN", TOKEN)
    assert cli_main(["push-space", "org/ser-demo", "--model", "org/ser-tiny"]) == 0
    assert "org/ser-demo" in capsys.readouterr().out

    space = hub.repo("org/ser-demo", repo_type="space")
    assert space.sdk == "gradio"
    assert space.variables == {"HF_SER_MODEL": "org/ser-tiny"}
    assert {"app.py", "requirements.txt", "README.md", "hf_ser/__init__.py", "hf_ser/audio.py"} <= set(
        space.files
    )
    assert not [name for name in space.files if "__pycache__" in name]
    metadata = parse_card_metadata(space.files["README.md"].decode())
    assert metadata["sdk"] == "gradio" and metadata["app_file"] == "app.py"
    assert metadata["models"] == ["org/ser-tiny"]
    requirements = space.files["requirements.txt"].decode()
    assert "transformers" in requirements and "soxr" in requirements

    with pytest.raises(PublishError, match="org/name"):
        push_space("org/ser-demo", model_id="no slash", endpoint=hub.endpoint)


def test_multimodal_model_is_pushed_with_its_processor(hub, tmp_path):
    from transformers import AutoModel

    from tests.tiny import tiny_multimodal_model, tiny_processor

    model = tiny_multimodal_model().eval()
    processor = tiny_processor()
    push_to_hub(model, "org/ser-multimodal", processor=processor, token=TOKEN)

    files = hub.repo("org/ser-multimodal").files
    assert {
        "tokenizer.json",
        "processor_config.json",
        "preprocessor_config.json",
        "modeling_multimodal.py",
    } <= set(files)
    auto_map = json.loads(files["config.json"])["auto_map"]
    # Speech + text: an AutoModel, deliberately not registered as an audio classifier.
    assert auto_map["AutoModel"] == "modeling_multimodal.MultimodalSERForRegression"
    assert "AutoModelForAudioClassification" not in auto_map
    card = files["README.md"].decode()
    assert 'pipeline("speech-emotion-regression"' in card and "AutoModelForAudioClassification" not in card

    reloaded = AutoModel.from_pretrained("org/ser-multimodal", cache_dir=tmp_path / "cache").eval()
    assert (tmp_path / "cache").is_dir()  # downloaded from the stand-in, not read from a local folder
    batch = dict(processor(audio=[tone(0.6, freq=190.0)], text=["what a lovely day"]))
    with torch.no_grad():
        torch.testing.assert_close(reloaded(**batch).logits, model(**batch).logits)
