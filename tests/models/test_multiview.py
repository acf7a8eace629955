"""IF-MVSE (paper 003): config defaults, Eq. 2-7 against slow references, inputs, loss, load paths, embeddings."""

from __future__ import annotations

import subprocess
import sys
import textwrap

import numpy as np
import pytest
import torch
from transformers import AutoConfig, AutoModel, WhisperFeatureExtractor
from transformers.models.whisper.modeling_whisper import WhisperEncoder

from hf_ser import (
    CCCLoss,
    MultiViewSERConfig,
    MultiViewSERForRegression,
    build_feature_extractor,
    concordance_correlation_coefficient,
    extract_view_embeddings,
)
from hf_ser.models.modeling_multiview import SelfBalancingGate, interactive_attention
from tests.tiny import (
    VIEWS,
    tiny_config,
    tiny_encoder_config,
    tiny_views,
    tiny_whisper_config,
    tone,
)


def test_default_config_is_the_paper():
    config = MultiViewSERConfig()
    assert config.view_names == ["whisper", "wavlm", "hubert"]
    assert config.view_dims == [1280, 1024, 1024]
    assert config.score_sets == [
        ["whisper"],
        ["whisper", "wavlm"],
        ["wavlm"],
        ["hubert", "wavlm"],
        ["hubert"],
    ]
    assert config.score_weights == [0.02, 0.15, 0.01, 0.8, 0.02]
    assert config.dropout == 0.5 and config.loss_target == "branches"
    assert [config.id2label[i] for i in range(3)] == ["arousal", "valence", "dominance"]
    model = MultiViewSERForRegression(config)
    whisper_branch, fused = model.branches[0], model.branches[1]
    assert whisper_branch.projections["whisper"].weight.shape == (1024, 1280)  # Whisper 1280 -> 1024
    # The MLP (1024, 512, 1 per output) with ReLU and dropout 0.5.
    assert whisper_branch.mlp.hidden[0].weight.shape == (512, 1024)
    assert whisper_branch.mlp.hidden[2].p == 0.5
    assert fused.gate is not None and model.branches[2].gate is None


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"score_sets": [["wavlm", "nope"]]}, "unknown views"),
        ({"score_sets": [["wavlm", "wavlm"]]}, "two different views"),
        ({"score_weights": [0.5, 0.5]}, "weights per output"),
        ({"view_dims": [12, 8]}, "view_dims"),
        ({"loss_target": "mean"}, "loss_target"),
    ],
)
def test_config_rejects_bad_values(kwargs, message):
    with pytest.raises(ValueError, match=message):
        tiny_config(**kwargs)


def test_interactive_attention_matches_elementwise_loop():
    f1, f2 = torch.randn(3, 7), torch.randn(3, 7)
    hat1, hat2 = interactive_attention(f1, f2)
    for b in range(3):
        for i in range(7):
            inter = f1[b, i].item() * f2[b, i].item()  # Eq. 2
            alpha = 1.0 / (1.0 + np.exp(-np.tanh(inter)))  # Eq. 3
            assert hat1[b, i].item() == pytest.approx(alpha * f1[b, i].item(), rel=1e-5, abs=1e-6)  # Eq. 4
            assert hat2[b, i].item() == pytest.approx(alpha * f2[b, i].item(), rel=1e-5, abs=1e-6)


def test_gate_matches_slow_reference():
    torch.manual_seed(0)
    gate = SelfBalancingGate(4, 3)
    f1, f2, h1, h2 = (torch.randn(2, 4, dtype=torch.float64) for _ in range(4))
    gate = gate.double()
    fast = gate(f1, f2, h1, h2)

    def matvec(weight, vector):
        return [
            sum(weight[r, c].item() * vector[c].item() for c in range(len(vector)))
            for r in range(weight.shape[0])
        ]

    sigmoid = lambda v: 1.0 / (1.0 + np.exp(-v))  # noqa: E731
    for b in range(2):
        p1 = np.tanh(matvec(gate.primary_1.weight, f1[b]))
        p2 = np.tanh(matvec(gate.primary_2.weight, f2[b]))
        z_p = sigmoid(np.array(matvec(gate.primary_gate.weight, torch.cat([f1[b], f2[b]]))))
        q1 = np.tanh(matvec(gate.interaction_1.weight, h1[b]))
        q2 = np.tanh(matvec(gate.interaction_2.weight, h2[b]))
        z_q = sigmoid(np.array(matvec(gate.interaction_gate.weight, torch.cat([h1[b], h2[b]]))))
        expected = z_p * p1 + (1 - z_p) * p2 + z_q * q1 + (1 - z_q) * q2  # Eq. 6
        np.testing.assert_allclose(fast[b].detach().numpy(), expected, rtol=1e-10)


def test_forward_composes_branches_and_eq7_weights():
    torch.manual_seed(0)
    model = MultiViewSERForRegression(tiny_config()).eval()
    views = tiny_views()
    out = model(view_embeddings=views)
    assert out.logits.shape == (6, 3) and out.score_sets.shape == (6, 5, 3)
    # S2 by hand: project Whisper, Eq. 2-4, the gate, the MLP.
    branch = model.branches[1]
    f1 = branch.projections["whisper"](views["whisper"])
    f2 = views["wavlm"]
    alpha = torch.sigmoid(torch.tanh(f1 * f2))
    s = branch.gate(f1, f2, alpha * f1, alpha * f2)
    expected_s2 = branch.mlp.output(torch.relu(branch.mlp.hidden[0](s)))
    torch.testing.assert_close(out.score_sets[:, 1], expected_s2)
    # Eq. 7.
    weights = [0.02, 0.15, 0.01, 0.8, 0.02]
    torch.testing.assert_close(out.logits, sum(w * out.score_sets[:, k] for k, w in enumerate(weights)))
    # Per-attribute weights (one row per output).
    rows = [[0.2, 0.2, 0.2, 0.2, 0.2], [1.0, 0, 0, 0, 0], [0, 0, 0, 0, 1.0]]
    model.set_fusion_weights(rows)
    fused = model(view_embeddings=views).logits
    torch.testing.assert_close(fused[:, 0], out.score_sets[:, :, 0].mean(1))
    torch.testing.assert_close(fused[:, 1], out.score_sets[:, 0, 1])
    torch.testing.assert_close(fused[:, 2], out.score_sets[:, 4, 2])


def test_input_forms_agree_and_bad_inputs_are_explained():
    torch.manual_seed(0)
    model = MultiViewSERForRegression(tiny_config()).eval()
    views = tiny_views()
    reference = model(view_embeddings=views).logits
    torch.testing.assert_close(model(view_embeddings=[views[n] for n in VIEWS]).logits, reference)
    torch.testing.assert_close(model(**{f"{n}_embedding": v for n, v in views.items()}).logits, reference)
    # One example alone gives what it gives inside the batch.
    single = model(view_embeddings={n: v[2:3] for n, v in views.items()}).logits
    torch.testing.assert_close(single, reference[2:3])
    with pytest.raises(ValueError, match="Missing view embeddings"):
        model(view_embeddings={"wavlm": views["wavlm"]})
    with pytest.raises(ValueError, match="must have shape"):
        model(view_embeddings={**views, "hubert": torch.randn(6, 9)})
    # A stacked tensor works when every view has one size.
    same = MultiViewSERForRegression(
        MultiViewSERConfig(
            view_names=["a", "b"], view_dims=[8, 8], fusion_size=8, gate_size=4, mlp_hidden_size=4
        )
    ).eval()
    stacked = torch.randn(5, 2, 8)
    torch.testing.assert_close(
        same(view_embeddings=stacked).logits, same(view_embeddings=list(stacked.unbind(1))).logits
    )


def test_losses_are_one_minus_ccc():
    torch.manual_seed(0)
    views, labels = tiny_views(), torch.rand(6, 3) * 6 + 1
    model = MultiViewSERForRegression(tiny_config()).eval()
    out = model(view_embeddings=views, labels=labels)
    expected = sum(
        (1 - concordance_correlation_coefficient(out.score_sets[:, k], labels)).sum() for k in range(5)
    )
    torch.testing.assert_close(out.loss, expected)
    fused = MultiViewSERForRegression(tiny_config(loss_target="fused")).eval()
    fused.load_state_dict(model.state_dict())
    out = fused(view_embeddings=views, labels=labels)
    torch.testing.assert_close(out.loss, CCCLoss()(out.logits, labels))


def test_training_on_cached_embeddings_learns():
    torch.manual_seed(0)
    views = tiny_views(batch=64, seed=1)
    # A target that depends on two views, so fusion can fit it.
    labels = torch.stack(
        [views["wavlm"][:, 0] + views["whisper"][:, 1], views["hubert"][:, 2], views["wavlm"][:, 3]], 1
    )
    model = MultiViewSERForRegression(tiny_config(dropout=0.0))
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-2)
    first = None
    for _ in range(60):
        loss = model(view_embeddings=views, labels=labels).loss
        first = loss.item() if first is None else first
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    assert loss.item() < 0.5 * first


def test_registered_auto_class_round_trip(tmp_path):
    torch.manual_seed(0)
    model = MultiViewSERForRegression(tiny_config()).eval()
    model.set_fusion_weights([0.1, 0.2, 0.3, 0.2, 0.2])
    model.save_pretrained(tmp_path)
    assert isinstance(AutoConfig.from_pretrained(tmp_path), MultiViewSERConfig)
    loaded = AutoModel.from_pretrained(tmp_path).eval()
    assert isinstance(loaded, MultiViewSERForRegression)
    assert loaded.config.score_weights == [0.1, 0.2, 0.3, 0.2, 0.2]
    views = tiny_views()
    torch.testing.assert_close(loaded(view_embeddings=views).logits, model(view_embeddings=views).logits)


def test_trust_remote_code_without_hf_ser(tmp_path):
    torch.manual_seed(0)
    model = MultiViewSERForRegression(tiny_config()).eval()
    model.save_pretrained(tmp_path)
    views = tiny_views()
    expected = model(view_embeddings=views).logits
    torch.save({"views": views, "expected": expected}, tmp_path / "check.pt")
    script = textwrap.dedent(
        f"""
        import sys
        sys.modules["hf_ser"] = None  # the package is absent: only the shipped code may be used
        import torch
        from transformers import AutoModel
        model = AutoModel.from_pretrained({str(tmp_path)!r}, trust_remote_code=True).eval()
        assert "hf_ser" not in type(model).__module__, type(model).__module__
        check = torch.load({str(tmp_path / "check.pt")!r})
        torch.testing.assert_close(model(view_embeddings=check["views"]).logits, check["expected"])
        print("OK", type(model).__name__)
        """
    )
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr[-3000:]
    assert "OK MultiViewSERForRegression" in result.stdout


def test_extract_view_embeddings_masked_mean_from_frozen_encoders():
    torch.manual_seed(0)
    wavlm = AutoModel.from_config(AutoConfig.for_model(**tiny_encoder_config("wavlm"))).eval()
    whisper = WhisperEncoder(AutoConfig.for_model(**tiny_whisper_config(encoder_layers=1))).eval()
    whisper_fe = WhisperFeatureExtractor(feature_size=80, chunk_length=2)  # 2 s window -> 200 mel frames
    clips = [tone(0.5, seed=0), tone(1.2, freq=300.0, seed=1)]
    encoders = {"wavlm": (wavlm, build_feature_extractor()), "whisper": (whisper, whisper_fe)}
    batched = extract_view_embeddings(clips, encoders, batch_size=2)
    alone = extract_view_embeddings(clips[:1], encoders, batch_size=1)
    assert batched["wavlm"].shape == (2, 32) and batched["whisper"].shape == (2, 16)
    # Padding must not change a clip's embedding (the pooling reads only its valid frames).
    np.testing.assert_allclose(batched["wavlm"][0], alone["wavlm"][0], atol=1e-5)
    np.testing.assert_allclose(batched["whisper"][0], alone["whisper"][0], atol=1e-5)
    # Whisper: the mean over the frames covering the 0.5 s clip (50 mel frames -> 25 encoder frames), not all 100.
    features = whisper_fe(clips[0], sampling_rate=16000, return_tensors="pt").input_features
    with torch.no_grad():
        hidden = whisper(input_features=features).last_hidden_state[0]
    np.testing.assert_allclose(alone["whisper"][0], hidden[:25].mean(0).numpy(), atol=1e-5)
    assert not np.allclose(alone["whisper"][0], hidden.mean(0).numpy(), atol=1e-4)


@pytest.fixture
def saved_encoders(tmp_path):
    """A tiny WavLM and a tiny Whisper saved like Hub checkpoints."""
    torch.manual_seed(0)
    wavlm = AutoModel.from_config(AutoConfig.for_model(**tiny_encoder_config("wavlm")))
    wavlm.save_pretrained(tmp_path / "wavlm")
    whisper = AutoModel.from_config(AutoConfig.for_model(**tiny_whisper_config(encoder_layers=1)))
    whisper.save_pretrained(tmp_path / "whisper")
    return {"whisper": str(tmp_path / "whisper"), "wavlm": str(tmp_path / "wavlm")}


def _model_with_encoders(saved_encoders):
    torch.manual_seed(0)
    return MultiViewSERForRegression.from_encoders_pretrained(
        saved_encoders,
        score_sets=[["whisper"], ["whisper", "wavlm"], ["wavlm"]],
        fusion_size=16,
        gate_size=8,
        mlp_hidden_size=6,
    ).eval()


def test_model_with_encoders_reads_raw_audio_like_the_cached_path(saved_encoders):
    model = _model_with_encoders(saved_encoders)
    assert model.config.view_dims == [16, 32]
    clips = [tone(0.5, seed=0), tone(1.1, freq=310.0, seed=1)]
    reference = extract_view_embeddings(
        clips,
        {
            "whisper": (
                AutoModel.from_pretrained(saved_encoders["whisper"]),
                WhisperFeatureExtractor(feature_size=80, chunk_length=2),
            ),
            "wavlm": (AutoModel.from_pretrained(saved_encoders["wavlm"]), build_feature_extractor()),
        },
    )
    padded = model.audio_feature_extractor()(clips, sampling_rate=16000, padding=True, return_tensors="pt")
    views = model.embed_audio(padded["input_values"], padded["attention_mask"])
    for name in ("whisper", "wavlm"):
        np.testing.assert_allclose(views[name].numpy(), reference[name], atol=1e-4)
    from_audio = model(input_values=padded["input_values"], attention_mask=padded["attention_mask"]).logits
    from_cache = model(view_embeddings={k: torch.tensor(v) for k, v in reference.items()}).logits
    torch.testing.assert_close(from_audio, from_cache, atol=1e-4, rtol=1e-4)
    # The encoders stay frozen and in eval mode while the heads train.
    model.train()
    assert not model.view_encoders.training and model.branches.training
    assert not any(p.requires_grad for p in model.view_encoders.parameters())
    with pytest.raises(ValueError, match="holds no encoders"):
        MultiViewSERForRegression(tiny_config()).embed_audio(padded["input_values"])


def test_regression_pipeline_on_raw_audio(saved_encoders, tmp_path):
    from transformers import pipeline

    model = _model_with_encoders(saved_encoders)
    model.save_pretrained(tmp_path / "ifmvse")
    model.audio_feature_extractor().save_pretrained(tmp_path / "ifmvse")
    regressor = pipeline("speech-emotion-regression", model=str(tmp_path / "ifmvse"))
    clip = tone(0.8, freq=200.0)
    result = regressor(clip)
    assert set(result) == {"arousal", "valence", "dominance"}
    padded = model.audio_feature_extractor()([clip], sampling_rate=16000, return_tensors="pt")
    expected = (
        model(input_values=padded["input_values"], attention_mask=padded["attention_mask"]).logits[0].detach()
    )
    np.testing.assert_allclose(
        [result[k] for k in ("arousal", "valence", "dominance")], expected.numpy(), atol=1e-4
    )


def test_model_with_encoders_loads_with_trust_remote_code_without_hf_ser(saved_encoders, tmp_path):
    model = _model_with_encoders(saved_encoders)
    model.save_pretrained(tmp_path / "ifmvse")
    padded = model.audio_feature_extractor()(
        [tone(0.6), tone(0.9, seed=3)], sampling_rate=16000, padding=True, return_tensors="pt"
    )
    expected = model(
        input_values=padded["input_values"], attention_mask=padded["attention_mask"]
    ).logits.detach()
    torch.save({"inputs": dict(padded), "expected": expected}, tmp_path / "check.pt")
    script = textwrap.dedent(
        f"""
        import sys
        sys.modules["hf_ser"] = None
        import torch
        from transformers import AutoModel
        model = AutoModel.from_pretrained({str(tmp_path / "ifmvse")!r}, trust_remote_code=True).eval()
        check = torch.load({str(tmp_path / "check.pt")!r})
        torch.testing.assert_close(model(**check["inputs"]).logits, check["expected"], atol=1e-4, rtol=1e-4)
        print("OK")
        """
    )
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=180)
    assert result.returncode == 0, result.stderr[-3000:]
    assert "OK" in result.stdout
