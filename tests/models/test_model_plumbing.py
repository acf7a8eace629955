"""The plumbing the three models share (issue 17): per-layer recording, encoder frame masks, encoder weight loading
and `auto_map`, each with one owner (`modeling_base`, `configuration_base`). Tiny random configs only."""

from __future__ import annotations

import copy

import pytest
import torch
from transformers import AutoConfig
from transformers.models.whisper.modeling_whisper import WhisperEncoder

from hf_ser import MultimodalSERConfig, MultimodalSERForRegression
from hf_ser.models.configuration_base import fill_auto_map
from hf_ser.models.modeling_base import LayerRecorder, encoder_frame_mask, load_encoder_weights
from tests.tiny import tiny_encoder_config, tiny_whisper_config


def test_deepcopy_of_the_layer_sum_model_records_into_its_own_layers():
    # The multimodal model's layer hooks used to be closures over the original model: a deep copy recorded into
    # the original's (idle) state and failed. The shared recorder's hooks point at the copy's own recorder.
    torch.manual_seed(0)
    config = MultimodalSERConfig(audio_config=tiny_encoder_config(), use_text=False, conv_hidden_size=8)
    model = MultimodalSERForRegression(config).eval()
    with torch.no_grad():
        model.layer_weights[1] = 3.0  # weight the first layer's output (the second layer's input)
    clone = copy.deepcopy(model)
    with torch.no_grad():
        clone.audio_encoder.encoder.layers[0].feed_forward.output_dense.bias.add_(
            5.0
        )  # perturb the copy only
        wave = torch.randn(1, 8000)
        original, copied = model(input_values=wave).embeddings, clone(input_values=wave).embeddings
        again = model(input_values=wave).embeddings
    torch.testing.assert_close(original, again)
    assert not torch.allclose(original, copied)


def test_layer_recorder_records_inputs_or_outputs_only_while_started():
    layers = torch.nn.ModuleList(torch.nn.Linear(2, 2) for _ in range(2))
    outputs, inputs = LayerRecorder(), LayerRecorder()
    outputs.attach(layers)
    inputs.attach(layers, inputs=True)
    x = torch.randn(3, 2)

    def run():
        hidden = x
        for layer in layers:
            hidden = layer(hidden)
        return hidden

    run()  # not started: nothing kept
    assert outputs.stop() == {} and inputs.stop() == {}
    outputs.start()
    inputs.start()
    last = run()
    seen_out, seen_in = outputs.stop(), inputs.stop()
    torch.testing.assert_close(seen_in[0], x)
    torch.testing.assert_close(seen_in[1], seen_out[0])
    torch.testing.assert_close(seen_out[1], last)


def test_whisper_frame_mask_follows_the_encoder_length_formula():
    encoder = WhisperEncoder(AutoConfig.for_model(**tiny_whisper_config()))
    mel_mask = torch.zeros(2, 200, dtype=torch.long)
    mel_mask[0, :200] = 1
    mel_mask[1, :61] = 1  # 61 mel frames -> (61 - 1) // 2 + 1 = 31 encoder frames
    mask = encoder_frame_mask(encoder, 100, mel_mask)
    assert mask.dtype == torch.bool and mask.shape == (2, 100)
    assert mask.sum(-1).tolist() == [100, 31]
    assert mask[1, :31].all() and not mask[1, 31:].any()
    assert encoder_frame_mask(encoder, 100, None) is None


def test_wav2vec2_family_frame_mask_is_the_encoders_own():
    from transformers import AutoModel

    encoder = AutoModel.from_config(AutoConfig.for_model(**tiny_encoder_config()))
    attention_mask = torch.ones(2, 8000, dtype=torch.long)
    attention_mask[1, 4000:] = 0
    frames = encoder(torch.randn(2, 8000), attention_mask=attention_mask).last_hidden_state.shape[1]
    expected = encoder._get_feature_vector_attention_mask(frames, attention_mask)
    torch.testing.assert_close(encoder_frame_mask(encoder, frames, attention_mask), expected.bool())


def test_load_encoder_weights_names_the_checkpoint_when_weights_are_missing():
    target = torch.nn.Linear(2, 2)
    state = {"weight": torch.ones(2, 2), "bias": torch.zeros(2), "head.weight": torch.zeros(1)}
    load_encoder_weights(target, state, "org/encoder")  # extra keys (a task head) are ignored
    torch.testing.assert_close(target.weight, torch.ones(2, 2))
    with pytest.raises(ValueError, match=r"org/encoder lacks encoder weights: \['bias'\]"):
        load_encoder_weights(target, {"weight": torch.ones(2, 2)}, "org/encoder")


def test_fill_auto_map_fills_only_an_unset_map():
    class Config:
        auto_map = None

    config = Config()
    fill_auto_map(config, "configuration_x.XConfig", "modeling_x.XModel", audio_classifier=True)
    assert config.auto_map == {
        "AutoConfig": "configuration_x.XConfig",
        "AutoModel": "modeling_x.XModel",
        "AutoModelForAudioClassification": "modeling_x.XModel",
    }
    fill_auto_map(config, "configuration_y.YConfig", "modeling_y.YModel")
    assert config.auto_map["AutoConfig"] == "configuration_x.XConfig"  # a saved map is kept
    plain = Config()
    fill_auto_map(plain, "configuration_y.YConfig", "modeling_y.YModel")
    assert set(plain.auto_map) == {"AutoConfig", "AutoModel"}
