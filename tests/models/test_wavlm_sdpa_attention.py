"""The SDPA path for WavLM attention equals transformers' eager path (1e-4, fp32), with and without padding."""

from __future__ import annotations

import pytest
import torch

from hf_ser import WavLMForMASPClassification, build_feature_extractor
from hf_ser.models.wavlm_sdpa_attention import WavLMSdpaAttention
from tests.tiny import tiny_masp_config, tone


def pair(**kwargs):
    torch.manual_seed(0)
    eager = WavLMForMASPClassification(tiny_masp_config(wavlm_attention="eager", **kwargs)).eval()
    sdpa = WavLMForMASPClassification(tiny_masp_config(wavlm_attention="sdpa", **kwargs)).eval()
    sdpa.load_state_dict(eager.state_dict())
    return eager, sdpa


def test_sdpa_is_the_default_for_wavlm_and_keeps_parameter_names():
    eager, sdpa = pair()
    assert all(isinstance(layer.attention, WavLMSdpaAttention) for layer in sdpa.transformer_layers)
    assert not any(isinstance(layer.attention, WavLMSdpaAttention) for layer in eager.transformer_layers)
    assert list(eager.state_dict()) == list(sdpa.state_dict())


@pytest.mark.parametrize("padded", [False, True])
@pytest.mark.parametrize("pooling", ["masp", "asp"])
def test_sdpa_matches_eager(padded, pooling):
    eager, sdpa = pair(pooling=pooling)
    waves = [tone(1.2, seed=1), tone(0.5, seed=2)] if padded else [tone(0.8, seed=3), tone(0.8, seed=4)]
    batch = build_feature_extractor()(waves, sampling_rate=16000, padding=True, return_tensors="pt")
    with torch.no_grad():
        out_e = eager(**batch, output_hidden_states=True)
        out_s = sdpa(**batch, output_hidden_states=True)
    torch.testing.assert_close(out_s.logits, out_e.logits, atol=1e-4, rtol=1e-4)
    for h_e, h_s in zip(out_e.hidden_states, out_s.hidden_states, strict=True):
        mask = sdpa.frame_mask(h_e.shape[1], batch["attention_mask"])
        torch.testing.assert_close(h_s[mask], h_e[mask], atol=1e-4, rtol=1e-4)


def test_sdpa_gradients_match_eager():
    eager, sdpa = pair(num_trainable_layers=4, head_dropout=0.0)
    batch = build_feature_extractor()(
        [tone(0.6), tone(0.4, seed=1)], sampling_rate=16000, padding=True, return_tensors="pt"
    )
    labels = torch.tensor([0, 5])
    eager(**batch, labels=labels).loss.backward()
    sdpa(**batch, labels=labels).loss.backward()
    for (name, p_e), p_s in zip(eager.named_parameters(), sdpa.parameters(), strict=True):
        if p_e.grad is not None:
            torch.testing.assert_close(p_s.grad, p_e.grad, atol=1e-4, rtol=1e-3, msg=name)


def test_output_attentions_falls_back_to_eager():
    _, sdpa = pair()
    batch = build_feature_extractor()([tone(0.5)], sampling_rate=16000, return_tensors="pt")
    with torch.no_grad():
        out = sdpa(**batch, output_attentions=True)
    assert out.attentions is not None and all(a is not None for a in out.attentions)
    assert all(layer.attention.use_sdpa for layer in sdpa.transformer_layers)
