"""ONNX export and ONNX Runtime inference (issue 19): parity with PyTorch for every model kind, torch-free
inference, int8 agreement on a trained tiny model, the pipeline and the CLI."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
import torch

from hf_ser import (
    MultimodalSERConfig,
    MultimodalSERForRegression,
    MultiViewSERConfig,
    MultiViewSERForRegression,
    WavLMForMASPClassification,
    WavLMMASPConfig,
    build_feature_extractor,
    export_onnx,
)
from hf_ser.cli import build_parser, main
from hf_ser.inference.predict import predict_logits, predict_windows
from hf_ser.onnx import ONNXExportError, ORTSERModel, is_onnx_folder
from hf_ser.onnx.runtime import NumpyFeatureExtractor
from tests.tiny import tiny_encoder_config, tone

SRC = str(Path(__file__).resolve().parents[2] / "src")
TOL = 1e-4


def small_model(kind="wavlm", group_norm=False, seed=0, **kwargs) -> WavLMForMASPClassification:
    torch.manual_seed(seed)
    encoder = tiny_encoder_config(kind, group_norm, num_hidden_layers=2)
    kwargs.setdefault("num_trainable_layers", 1)
    kwargs.setdefault("head_hidden_size", 16)
    return WavLMForMASPClassification(WavLMMASPConfig(encoder_config=encoder, **kwargs)).eval()


def clips(seconds=(0.5, 1.2, 0.8, 0.3, 1.2)) -> list[np.ndarray]:
    return [tone(s, freq=150.0 + 40 * i, seed=i) for i, s in enumerate(seconds)]


@pytest.fixture(autouse=True, scope="module")
def one_thread():
    # Tiny models on a shared CPU: one thread is faster than contended ones.
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture(scope="module")
def exported(tmp_path_factory):
    """A saved tiny classifier and its fp32 export."""
    root = tmp_path_factory.mktemp("onnx")
    model = small_model(pooling="masp")
    model.save_pretrained(root / "model")
    build_feature_extractor().save_pretrained(root / "model")
    export_onnx(root / "model", root / "onnx")
    return model, root / "model", root / "onnx"


# ------------------------------------------------------------------------------------------ export and parity
@pytest.mark.parametrize(
    "kind, group_norm, pooling, problem_type, attention",
    [
        ("wavlm", False, "masp", None, "sdpa"),
        ("wavlm", True, "asp", "regression", "eager"),
        ("wav2vec2", True, "mean", None, None),
        ("hubert", False, "asp", "regression", None),
        ("data2vec-audio", False, "masp", None, None),
    ],
)
def test_export_matches_pytorch_for_every_encoder_and_pooling(
    tmp_path, kind, group_norm, pooling, problem_type, attention
):
    kwargs = {"pooling": pooling}
    if problem_type:
        kwargs.update(problem_type=problem_type, num_labels=3, loss="ccc")
    if attention:
        kwargs["wavlm_attention"] = attention
    model = small_model(kind, group_norm, **kwargs)
    folder = export_onnx(model, tmp_path / "onnx")
    for name in ("model.onnx", "config.json", "preprocessor_config.json", "onnx_export.json", "README.md"):
        assert (folder / name).is_file(), name
    info = json.loads((folder / "onnx_export.json").read_text())
    check = info["verification"]
    assert info["inputs"] == ["input_values", "attention_mask"]
    assert info["dynamic_axes"]["input_values"] == {"0": "batch", "1": "samples"}
    assert check["max_abs_diff_padded_batch"] <= TOL and check["max_abs_diff_single_clips"] <= TOL
    assert check["encoder_pads_exactly"] == (not group_norm and kind != "data2vec-audio")
    if check["encoder_pads_exactly"]:
        assert check["max_abs_diff_batched_vs_alone"] <= TOL
    assert "## ONNX export" in (folder / "README.md").read_text()
    assert (
        info["front_end"] == "per clip (Scan)" and "one clip at a time" in (folder / "README.md").read_text()
    )
    outer, body = graph_ops(folder)
    assert outer.count("Scan") == 1 and body.count("Conv") == len(model.config.encoder_config.conv_dim)

    # The runtime reproduces hf_ser.inference.predict (same buckets; padded batches of other lengths and sizes).
    ort_model = ORTSERModel.from_pretrained(folder)
    waves = clips()
    expected = predict_logits(model, build_feature_extractor(), waves, batch_size=3)
    np.testing.assert_allclose(ort_model.predict_logits(waves, batch_size=3), expected, atol=TOL, rtol=0)
    assert ort_model.pads_exactly() == check["encoder_pads_exactly"]


def graph_ops(folder) -> tuple[list[str], list[str]]:
    """Op types of an exported graph's top level and of its front-end Scan body (empty without one)."""
    import onnx

    graph = onnx.load(str(folder / "model.onnx")).graph
    body = [
        inner.op_type
        for node in graph.node
        if node.op_type == "Scan"
        for attribute in node.attribute
        if attribute.name == "body"
        for inner in attribute.g.node
    ]
    return [node.op_type for node in graph.node], body


def test_numpy_feature_extractor_equals_transformers():
    waves = clips((0.3, 0.71, 0.05))
    ours = NumpyFeatureExtractor()(waves, sampling_rate=16000)
    theirs = build_feature_extractor()(waves, sampling_rate=16000, padding=True, return_tensors="np")
    np.testing.assert_array_equal(ours["input_values"], theirs["input_values"])
    np.testing.assert_array_equal(ours["attention_mask"], theirs["attention_mask"])


def test_multimodal_export_takes_text_embeddings(tmp_path):
    from tests.tiny import tiny_encoder_config as enc

    torch.manual_seed(0)
    text = {
        "model_type": "roberta", "vocab_size": 20, "hidden_size": 16, "num_hidden_layers": 1,
        "num_attention_heads": 2, "intermediate_size": 32, "max_position_embeddings": 32,
    }  # fmt: skip
    config = MultimodalSERConfig(
        audio_config=enc("wavlm", num_hidden_layers=2),
        text_config=text,
        conv_hidden_size=8,
        head_hidden_size=8,
    )
    model = MultimodalSERForRegression(config).eval()
    folder = export_onnx(model, tmp_path / "mm")
    info = json.loads((folder / "onnx_export.json").read_text())
    assert info["inputs"] == ["input_values", "attention_mask", "text_embeds"]
    assert info["outputs"][0] == "logits"
    assert info["front_end"] == "per clip (Scan)"
    assert info["verification"]["max_abs_diff_padded_batch"] <= TOL
    assert info["verification"]["max_abs_diff_batched_vs_alone"] <= TOL

    ort_model = ORTSERModel.from_pretrained(folder)
    features = build_feature_extractor()(clips()[:3], sampling_rate=16000, padding=True, return_tensors="pt")
    text_embeds = torch.randn(3, 16)
    with torch.no_grad():
        expected = model(**features, text_embeds=text_embeds).logits.numpy()
    got = ort_model(**{k: v.numpy() for k, v in features.items()}, text_embeds=text_embeds.numpy())["logits"]
    np.testing.assert_allclose(got, expected, atol=TOL, rtol=0)


def test_multiview_export_takes_cached_view_embeddings(tmp_path):
    torch.manual_seed(0)
    views = {"whisper": 12, "wavlm": 8, "hubert": 8}
    config = MultiViewSERConfig(
        view_names=list(views), view_dims=list(views.values()),
        score_sets=[["whisper"], ["whisper", "wavlm"], ["hubert", "wavlm"]], score_weights=[0.2, 0.5, 0.3],
        fusion_size=8, gate_size=6, mlp_hidden_size=5,
    )  # fmt: skip
    model = MultiViewSERForRegression(config).eval()
    folder = export_onnx(model, tmp_path / "mv")
    info = json.loads((folder / "onnx_export.json").read_text())
    assert info["inputs"] == ["whisper_embedding", "wavlm_embedding", "hubert_embedding"]
    assert info["outputs"] == ["logits", "score_sets"]
    assert info["front_end"] == "batched"  # no audio, no front end to rewrite
    assert not (folder / "preprocessor_config.json").exists()
    ort_model = ORTSERModel.from_pretrained(folder)
    inputs = {name: torch.randn(5, dim) for name, dim in views.items()}
    with torch.no_grad():
        expected = model(view_embeddings=inputs)
    got = ort_model(**{f"{k}_embedding": v.numpy() for k, v in inputs.items()})
    np.testing.assert_allclose(got["logits"], expected.logits.numpy(), atol=TOL, rtol=0)
    np.testing.assert_allclose(got["score_sets"], expected.score_sets.numpy(), atol=TOL, rtol=0)


def test_verification_catches_a_mismatch_and_writes_no_model(tmp_path, monkeypatch):
    from hf_ser.onnx import export as export_module

    real = export_module._Spec.torch_outputs

    def drifted(self, inputs):
        return [o * 1.01 + 1e-2 for o in real(self, inputs)]

    monkeypatch.setattr(export_module._Spec, "torch_outputs", drifted)
    with pytest.raises(ONNXExportError, match="disagrees with PyTorch"):
        export_onnx(small_model(), tmp_path / "bad")
    assert not (tmp_path / "bad" / "model.onnx").exists()
    assert not is_onnx_folder(tmp_path / "bad")


def test_export_rejects_bad_arguments(tmp_path):
    with pytest.raises(ONNXExportError, match="quantize"):
        export_onnx(small_model(), tmp_path / "x", quantize="int4")
    with pytest.raises(ONNXExportError, match="Cannot export a Linear"):
        export_onnx(torch.nn.Linear(2, 2), tmp_path / "x")
    with pytest.raises(ONNXExportError, match="not a folder"):
        export_onnx(tmp_path / "missing", tmp_path / "x")


def test_export_restores_the_training_mode(tmp_path):
    model = small_model().train()
    export_onnx(model, tmp_path / "onnx")
    assert model.training and model.encoder.training


# ------------------------------------------------------------------------------------------ torch-free runtime
def test_runtime_needs_no_torch_and_matches_the_pytorch_path(exported, tmp_path):
    model, _, folder = exported
    waves = {"short": tone(0.7, seed=1), "long": tone(2.6, freq=300.0, seed=2)}
    for name, wave in waves.items():
        np.save(tmp_path / f"{name}.npy", wave)
    script = textwrap.dedent(
        f"""
        import json, sys
        sys.modules["torch"] = None          # import torch raises ImportError
        sys.modules["transformers"] = None
        import numpy as np
        import hf_ser
        from hf_ser.onnx import ORTSERModel
        assert not hf_ser.TORCH_AVAILABLE
        model = ORTSERModel.from_pretrained({str(folder)!r})
        waves = [np.load({str(tmp_path / "short.npy")!r}), np.load({str(tmp_path / "long.npy")!r})]
        results = model.predict(waves, window_s=1.0)
        starts, logits = model.predict_windows(waves[1], window_s=1.0, hop_s=0.5)
        loaded = sorted(m for m in sys.modules if m.split(".")[0] in ("torch", "transformers") and sys.modules[m])
        print(json.dumps({{"results": results, "windows": logits.tolist(), "starts": starts.tolist(),
                           "loaded": loaded}}))
        """
    )
    env = {"PYTHONPATH": SRC, "PATH": "/usr/bin:/bin", "HF_HUB_OFFLINE": "1"}
    done = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, timeout=120, env=env
    )
    assert done.returncode == 0, done.stderr
    out = json.loads(done.stdout.strip().splitlines()[-1])
    assert out["loaded"] == []

    extractor = build_feature_extractor()
    short = torch.softmax(torch.from_numpy(predict_logits(model, extractor, [waves["short"]])[0]), -1).numpy()
    result = out["results"][0]
    assert result["windows"] == []
    np.testing.assert_allclose(
        [result["scores"][model.config.id2label[i]] for i in range(8)], short, atol=TOL
    )
    # Long audio: windows of 1 s averaged, as hf-ser predict does.
    starts, logits = predict_windows(model, extractor, waves["long"], window_s=1.0)
    long = out["results"][1]
    assert [w["start_s"] for w in long["windows"]] == pytest.approx(list(starts))
    probs = torch.softmax(torch.from_numpy(logits), -1).numpy().mean(0)
    np.testing.assert_allclose([long["scores"][model.config.id2label[i]] for i in range(8)], probs, atol=TOL)
    starts, logits = predict_windows(model, extractor, waves["long"], window_s=1.0, hop_s=0.5)
    assert out["starts"] == pytest.approx(list(starts))
    np.testing.assert_allclose(np.array(out["windows"]), logits, atol=TOL)


def test_missing_onnxruntime_names_the_extra(exported, monkeypatch):
    monkeypatch.setitem(sys.modules, "onnxruntime", None)
    with pytest.raises(ImportError, match=r"hf_ser\[onnx\]"):
        ORTSERModel.from_pretrained(exported[2])


def test_runtime_rejects_wrong_inputs(exported, tmp_path):
    ort_model = ORTSERModel.from_pretrained(exported[2])
    with pytest.raises(ValueError, match="missing"):
        ort_model(input_values=np.zeros((1, 800), np.float32))
    with pytest.raises(ONNXExportError, match="not an hf_ser ONNX export"):
        ORTSERModel.from_pretrained(exported[1])  # the PyTorch folder


# ------------------------------------------------------------------------------------------ pipeline and CLI
def test_pipeline_runs_an_onnx_folder_with_the_same_results(exported):
    from transformers import pipeline

    _, model_dir, folder = exported
    waves = clips()
    reference = pipeline("audio-classification", model=str(model_dir))
    onnx = pipeline("audio-classification", model=str(folder))
    assert getattr(onnx.model, "is_onnx", False)
    for ours, theirs in zip(onnx(waves, batch_size=2), reference(waves, batch_size=2), strict=True):
        assert [r["label"] for r in ours] == [r["label"] for r in theirs]
        np.testing.assert_allclose([r["score"] for r in ours], [r["score"] for r in theirs], atol=TOL)
    single = onnx(waves[0])
    assert single[0]["label"] == reference(waves[0])[0]["label"]


def test_cli_export_then_predict(exported, tmp_path, capsys):
    _, model_dir, _ = exported
    out = tmp_path / "cli_onnx"
    assert main(["export", "--model", str(model_dir), "--output-dir", str(out)]) == 0
    assert "max |ONNX - PyTorch|" in capsys.readouterr().out
    wav_dir = tmp_path / "wavs"
    wav_dir.mkdir()
    for i, seconds in enumerate((0.6, 1.1, 2.5)):
        sf.write(wav_dir / f"c{i}.wav", tone(seconds, freq=200.0 + 50 * i, seed=i), 16000)
    rows = {}
    for name, model in (("torch", model_dir), ("onnx", out)):
        table = tmp_path / f"{name}.json"
        argv = ["predict", str(wav_dir), "--model", str(model), "--output", str(table), "--window", "1.0"]
        assert main(argv) == 0
        rows[name] = json.loads(table.read_text())
    for a, b in zip(rows["torch"], rows["onnx"], strict=True):
        assert a["label"] == b["label"] and len(a["windows"]) == len(b["windows"])
        assert max(abs(a["scores"][k] - b["scores"][k]) for k in a["scores"]) <= TOL


@pytest.mark.parametrize(
    "argv, message",
    [
        (["export", "--model", "{tmp}/missing", "--output-dir", "{tmp}/o"], "no such folder"),
        (["export", "--model", "{tmp}", "--output-dir", "{tmp}/o"], "has no config.json"),
        (["export", "--model", "{model}", "--output-dir", "{model}"], "must differ"),
        (["export", "--model", "{model}", "--output-dir", "/proc/forbidden/o"], "cannot write"),
        (["export", "--model", "{onnx}", "--output-dir", "{tmp}/o"], "cannot load a model"),
    ],
)
def test_cli_export_errors_are_one_line(exported, tmp_path, capsys, argv, message):
    _, model_dir, folder = exported
    argv = [a.format(tmp=tmp_path, model=model_dir, onnx=folder) for a in argv]
    assert main(argv) == 2
    err = capsys.readouterr().err.strip()
    assert message in err and len(err.splitlines()) == 1 and err.startswith("hf-ser export: error:")


def test_cli_export_options_have_help():
    parser = build_parser()
    export = next(a for a in parser._actions if a.dest == "command").choices["export"]
    assert all(action.help for action in export._actions)
    with pytest.raises(SystemExit) as exit_info:
        parser.parse_args(["export", "--model", "m", "--output-dir", "o", "--quantize", "int4"])
    assert exit_info.value.code == 2


# ------------------------------------------------------------------------------------------ int8
def _separable_corpus(n: int, seed: int) -> tuple[list[np.ndarray], np.ndarray]:
    """Four classes of tones an octave apart, random lengths and phases, with noise."""
    rng = np.random.default_rng(seed)
    labels = rng.integers(0, 4, n)
    waves = [
        tone(float(rng.uniform(0.25, 0.5)), freq=500.0 * 2**label, seed=int(rng.integers(1 << 30)))
        for label in labels
    ]
    return waves, labels


def test_int8_export_agrees_with_fp32_on_a_trained_model(tmp_path):
    torch.manual_seed(0)
    # A frozen random encoder and a trained ASP head separate these tones well within seconds.
    model = small_model(pooling="asp", num_labels=4, num_trainable_layers=0, loss="ce", head_dropout=0.0)
    extractor = build_feature_extractor()
    waves, labels = _separable_corpus(48, seed=0)
    optimizer = torch.optim.Adam([p for p in model.parameters() if p.requires_grad], lr=1e-2)
    model.train()
    for step in range(30):
        batch = [(step * 8 + i) % len(waves) for i in range(8)]
        inputs = extractor([waves[i] for i in batch], sampling_rate=16000, padding=True, return_tensors="pt")
        loss = model(**inputs, labels=torch.from_numpy(labels[batch])).loss
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    model.eval()
    test_waves, test_labels = _separable_corpus(24, seed=1)
    fp32 = predict_logits(model, extractor, test_waves).argmax(-1)
    assert (fp32 == test_labels).mean() >= 0.9  # the model learned the task

    folder = export_onnx(model, tmp_path / "int8", quantize="int8")
    info = json.loads((folder / "onnx_export.json").read_text())
    assert info["quantize"] == "int8" and info["quantized_nodes"] > 0
    assert info["verification"]["fp32"]["max_abs_diff_padded_batch"] <= TOL
    int8 = ORTSERModel.from_pretrained(folder)
    agreement = (int8.predict_logits(test_waves).argmax(-1) == fp32).mean()
    assert agreement >= 0.9


def test_int8_keeps_convolutions_and_position_bias_in_float(tmp_path):
    import onnx

    folder = export_onnx(small_model(), tmp_path / "int8", quantize="int8")
    graph = onnx.load(str(folder / "model.onnx")).graph
    ops = {node.op_type for node in graph.node}
    assert "MatMulInteger" in ops or "DynamicQuantizeMatMul" in ops
    assert "ConvInteger" not in ops and "Conv" in ops  # the positional convolution
    _, body = graph_ops(folder)  # the front end, run per clip, stays float
    assert "Conv" in body and not {"ConvInteger", "MatMulInteger", "DynamicQuantizeMatMul"} & set(body)
    quantized = [n.name for n in graph.node if n.op_type in ("MatMulInteger", "DynamicQuantizeMatMul")]
    assert not any("gru_rel_pos" in name or "pos_conv" in name or "/head/" in name for name in quantized)


def test_space_app_runs_from_an_onnx_folder(exported, tmp_path):
    import importlib.util

    app_path = Path(__file__).resolve().parents[2] / "space_app" / "app.py"
    spec = importlib.util.spec_from_file_location("hf_ser_space_app_onnx", app_path)
    app = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(app)
    _, model_dir, folder = exported
    wav = tmp_path / "clip.wav"
    sf.write(wav, tone(1.5, freq=260.0), 16000)
    model, _ = app.load_model(str(folder))
    assert isinstance(model, ORTSERModel)
    onnx_probs, _, _, summary = app.analyze(str(wav), str(folder))
    torch_probs, _, _, _ = app.analyze(str(wav), str(model_dir))
    assert onnx_probs == pytest.approx(torch_probs, abs=TOL)
    assert "Most likely" in summary


def test_regression_pipeline_runs_an_onnx_folder(tmp_path):
    from transformers import pipeline

    model = small_model(problem_type="regression", num_labels=3, loss="ccc", pooling="mean")
    model.save_pretrained(tmp_path / "model")
    build_feature_extractor().save_pretrained(tmp_path / "model")
    export_onnx(tmp_path / "model", tmp_path / "onnx")
    wave = tone(0.8, freq=330.0)
    expected = pipeline("speech-emotion-regression", model=str(tmp_path / "model"))(wave)
    got = pipeline("speech-emotion-regression", model=str(tmp_path / "onnx"))(wave)
    assert list(got) == list(expected) and len(got) == 3
    assert got == pytest.approx(expected, abs=TOL)


def test_multimodal_whisper_branch_is_refused_clearly(tmp_path):
    from tests.tiny import tiny_whisper_config

    text = {"model_type": "roberta", "vocab_size": 20, "hidden_size": 16, "num_hidden_layers": 1,
            "num_attention_heads": 2, "intermediate_size": 32, "max_position_embeddings": 32}  # fmt: skip
    config = MultimodalSERConfig(audio_config=tiny_whisper_config(), text_config=text, conv_hidden_size=8)
    with pytest.raises(ONNXExportError, match="Whisper speech branch"):
        export_onnx(MultimodalSERForRegression(config), tmp_path / "w")
    assert not (tmp_path / "w" / "model.onnx").exists()


def test_front_end_rewrite_leaves_other_graphs_alone():
    """The per-clip rewrite applies only to one front-end block read from input_values through an Unsqueeze."""
    from onnx import TensorProto, helper

    from hf_ser.onnx.front_end import run_front_end_per_clip

    def graph(entry_op: str, reads_mask: bool, axes: list[int] | None):
        inputs = ["input_values", "attention_mask"] if reads_mask else ["input_values"]
        nodes = []
        if axes is not None:
            axes_value = helper.make_tensor("axes", TensorProto.INT64, [len(axes)], axes)
            nodes.append(
                helper.make_node(
                    "Constant", [], ["axes"], name="/model/encoder/feature_extractor/Axes", value=axes_value
                )
            )
        nodes += [
            helper.make_node(
                entry_op, inputs + (["axes"] if axes is not None else []), ["x"],
                name="/model/encoder/feature_extractor/In",
            ),
            helper.make_node("Relu", ["x"], ["y"], name="/model/encoder/feature_extractor/Relu"),
            helper.make_node("Relu", ["y"], ["out"], name="/model/head/Relu"),
        ]  # fmt: skip
        values = [helper.make_tensor_value_info(name, TensorProto.FLOAT, None) for name in inputs]
        return helper.make_model(
            helper.make_graph(
                nodes, "g", values, [helper.make_tensor_value_info("out", TensorProto.FLOAT, None)]
            )
        )

    # The channel-axis Unsqueeze of (batch, samples) is the block's entry: rewritten into one Scan.
    model = graph("Unsqueeze", False, [1])
    assert run_front_end_per_clip(model) is True
    assert [node.op_type for node in model.graph.node] == ["Scan", "Relu"]
    # Another entry op, a block that also reads the mask, an Unsqueeze on another axis: left byte-identical.
    for entry_op, reads_mask, axes in (
        ("Identity", False, None),
        ("Unsqueeze", True, [1]),
        ("Unsqueeze", False, [2]),
    ):
        model = graph(entry_op, reads_mask, axes)
        before = model.SerializeToString()
        assert run_front_end_per_clip(model) is False
        assert model.SerializeToString() == before
