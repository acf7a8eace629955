"""transformers' model contract, checked for every hf_ser model class and configuration.

The conventions that transformers' own model tests check for each of its models, and that Trainer, pipelines,
accelerate, PEFT and torch.export rely on: save/load round trip, output flags read from the config, tuple outputs
equal to `to_tuple()`, every trainable parameter trained (with and without activation checkpointing), frozen parts
cost nothing, torch.export with static and dynamic shapes, `num_labels` changes, encoder-only checkpoints,
safetensors only, determinism, batched outputs equal single ones, and the encoder's own initialisation of missing
weights. Written from the conventions (transformers' docs and tests were read, not copied).
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np
import pytest
import torch
from safetensors.torch import load_file, save_file
from transformers import AutoModel, WavLMModel

from hf_ser import (
    MultimodalSERConfig,
    MultimodalSERForRegression,
    MultiViewSERForRegression,
    WavLMForMASPClassification,
    WavLMMASPConfig,
)
from hf_ser.models.modeling_base import SERPreTrainedModel
from tests.tiny import (
    TINY_VIEWS,
    tiny_encoder_config,
    tiny_masp_config,
    tiny_multiview_config,
    tiny_text_config,
    tiny_tokenizer,
    tiny_views,
    tiny_whisper_config,
    tone,
)

LENGTHS = (12000, 8000)  # samples of the two clips of every batch (0.75 s and 0.5 s)


def _clip(i: int) -> np.ndarray:
    """Clip i of every test batch (its own length, pitch and noise)."""
    return tone(LENGTHS[i] / 16000, freq=180.0 + 40 * i, seed=i)


def _audio_batch(indices=(0, 1)) -> dict[str, torch.Tensor]:
    clips = [_clip(i) for i in indices]
    values = torch.zeros(len(clips), max(len(c) for c in clips))
    mask = torch.zeros(values.shape, dtype=torch.long)
    for row, clip in enumerate(clips):
        values[row, : len(clip)] = torch.from_numpy(clip)
        mask[row, : len(clip)] = 1
    return {"input_values": values, "attention_mask": mask}


def _text_batch(batch: int) -> dict[str, torch.Tensor]:
    texts = ["i am so happy today", "what did you say"][:batch]
    tokens = tiny_tokenizer()(texts, padding=True, return_tensors="pt")
    return {"text_input_ids": tokens["input_ids"], "text_attention_mask": tokens["attention_mask"]}


def _whisper_batch(indices=(0, 1)) -> dict[str, torch.Tensor]:
    from transformers import WhisperFeatureExtractor

    extractor = WhisperFeatureExtractor(feature_size=80, chunk_length=2)  # tiny Whisper: 2 s windows
    features = extractor(
        [_clip(i) for i in indices], sampling_rate=16000, return_tensors="pt", return_attention_mask=True
    )
    return {"input_features": features["input_features"], "attention_mask": features["attention_mask"]}


@dataclass
class Case:
    """One model configuration under test: how to build it, a batch of two clips, and its labels."""

    name: str
    build: Callable[[], SERPreTrainedModel]
    inputs: Callable[[], dict[str, torch.Tensor]]
    labels: Callable[[int], torch.Tensor]
    # Inputs of clip i alone (unpadded), for batched-equals-single; None: clips are batched only when equal length.
    single: Callable[[int], dict[str, torch.Tensor]] | None = None
    audio_encoder: bool = True  # holds a trainable/freezable waveform encoder
    encoder_family: str | None = None  # model_type of a plain encoder checkpoint this class loads
    dynamic_time: bool = True
    extra: dict = field(default_factory=dict)


def _class_labels(batch: int) -> torch.Tensor:
    return torch.arange(batch) % 8


def _attribute_labels(batch: int) -> torch.Tensor:
    return torch.linspace(2.0, 6.0, batch * 3).view(batch, 3)


def _masp_case(
    name: str, kind: str = "wavlm", regression: bool = False, exact_padding: bool = True, **kwargs
):
    def build():
        torch.manual_seed(0)
        if regression:
            kwargs.setdefault("problem_type", "regression")
        return WavLMForMASPClassification(tiny_masp_config(kind, **kwargs))

    def single(i):
        return _audio_batch((i,))

    return Case(
        name,
        build,
        _audio_batch,
        _attribute_labels if regression else _class_labels,
        single=single if exact_padding else None,
        encoder_family=kind,
    )


def _baseline_case():
    def build():
        torch.manual_seed(0)
        config = WavLMMASPConfig.challenge_baseline(encoder_config=tiny_encoder_config(), head_hidden_size=16)
        return WavLMForMASPClassification(config)

    return Case(
        "challenge_baseline",
        build,
        _audio_batch,
        _class_labels,
        single=lambda i: _audio_batch((i,)),
        encoder_family="wavlm",
    )


def _multimodal_case(name: str, whisper: bool = False, use_text: bool = True):
    def build():
        torch.manual_seed(0)
        audio = tiny_whisper_config() if whisper else tiny_encoder_config("wavlm", mask_time_prob=0.3)
        config = MultimodalSERConfig(
            audio_config=audio,
            text_config=tiny_text_config() if use_text else None,
            use_text=use_text,
            conv_hidden_size=8,
            head_hidden_size=8,
        )
        return MultimodalSERForRegression(config)

    def inputs(indices=(0, 1)):
        batch = _whisper_batch(indices) if whisper else _audio_batch(indices)
        if use_text:
            batch.update(_text_batch(2))
        return batch

    def single(i):
        batch = _whisper_batch((i,)) if whisper else _audio_batch((i,))
        if use_text:
            text = _text_batch(2)
            keep = text["text_attention_mask"][i].bool()
            batch["text_input_ids"] = text["text_input_ids"][i : i + 1, keep]
            batch["text_attention_mask"] = text["text_attention_mask"][i : i + 1, keep]
        return batch

    return Case(
        name,
        build,
        inputs,
        _attribute_labels,
        single=single,
        audio_encoder=not whisper,  # the Whisper branch is a frozen feature extractor
        encoder_family="whisper" if whisper else "wavlm",
        dynamic_time=not whisper,  # Whisper reads a fixed window of log-mel frames
    )


def _multiview_case(name: str):
    def build():
        torch.manual_seed(0)
        return MultiViewSERForRegression(tiny_multiview_config())

    def inputs():
        return {"view_embeddings": tiny_views(batch=2)}

    def single(i):
        return {"view_embeddings": {k: v[i : i + 1] for k, v in tiny_views(batch=2).items()}}

    return Case(
        name, build, inputs, _attribute_labels, single=single, audio_encoder=False, dynamic_time=False
    )


CASES = [
    _masp_case("masp_wavlm"),
    _masp_case("masp_wavlm_all_trainable", num_trainable_layers=None, freeze_feature_encoder=False),
    _masp_case("masp_wavlm_regression", regression=True),
    _masp_case("mean_wavlm", pooling="mean"),
    _baseline_case(),
    _masp_case("masp_wav2vec2", kind="wav2vec2"),
    _masp_case("masp_hubert", kind="hubert"),
    # data2vec-audio's stacked positional convolutions see padded frames: not padding-invariant (documented).
    _masp_case("masp_data2vec", kind="data2vec-audio", exact_padding=False),
    _masp_case("masp_wavlm_post_ln", kind="wavlm", exact_padding=False, group_norm=True),
    _multimodal_case("multimodal_wavlm_text"),
    _multimodal_case("multimodal_wavlm_speech_only", use_text=False),
    _multimodal_case("multimodal_whisper_text", whisper=True),
    _multiview_case("multiview_cached"),
]
AUDIO_CASES = [case for case in CASES if case.audio_encoder]


def _ids(cases):
    return [case.name for case in cases]


def _loss_inputs(case: Case) -> dict[str, torch.Tensor]:
    batch = case.inputs()
    batch_size = next(iter(batch.values())).shape[0] if "view_embeddings" not in batch else 2
    return {**batch, "labels": case.labels(batch_size)}


# ------------------------------------------------------------------------------------------------ round trips
@pytest.mark.parametrize("case", CASES, ids=_ids(CASES))
def test_save_load_round_trip_and_eval_determinism(case, tmp_path):
    model = case.build().eval()
    with torch.no_grad():
        first = model(**case.inputs()).logits
        again = model(**case.inputs()).logits
    torch.testing.assert_close(first, again, rtol=0, atol=0)  # eval mode is deterministic
    model.save_pretrained(tmp_path)
    assert (tmp_path / "model.safetensors").is_file()
    reloaded = AutoModel.from_pretrained(tmp_path).eval()
    assert type(reloaded) is type(model)
    with torch.no_grad():
        torch.testing.assert_close(reloaded(**case.inputs()).logits, first, rtol=0, atol=1e-6)
    trainable = {n for n, p in model.named_parameters() if p.requires_grad}
    assert {n for n, p in reloaded.named_parameters() if p.requires_grad} == trainable  # freezing re-applied


@pytest.mark.parametrize("case", CASES, ids=_ids(CASES))
def test_pickle_only_checkpoint_is_refused_unless_opted_in(case, tmp_path):
    model = case.build().eval()
    model.save_pretrained(tmp_path)
    state = load_file(tmp_path / "model.safetensors")
    (tmp_path / "model.safetensors").unlink()
    torch.save(state, tmp_path / "pytorch_model.bin")
    with pytest.raises(OSError, match="safetensors|model.safetensors"):
        type(model).from_pretrained(tmp_path)
    with pytest.raises(OSError, match="safetensors|model.safetensors"):
        AutoModel.from_pretrained(tmp_path)
    opted_in = type(model).from_pretrained(tmp_path, use_safetensors=False).eval()
    with torch.no_grad():
        torch.testing.assert_close(opted_in(**case.inputs()).logits, model(**case.inputs()).logits)


# ------------------------------------------------------------------------------------------------ outputs
@pytest.mark.parametrize(
    "case", [c for c in CASES if c.audio_encoder or "whisper" in c.name], ids=lambda case: case.name
)
def test_config_output_flags_are_honoured(case):
    model = case.build().eval()
    with torch.no_grad():
        plain = model(**case.inputs())
        assert plain.hidden_states is None and plain.attentions is None
        model.config.output_hidden_states = True
        model.config.output_attentions = True
        flagged = model(**case.inputs())
        assert flagged.hidden_states is not None and len(flagged.hidden_states) > 1
        assert flagged.attentions is not None and len(flagged.attentions) >= 1
        # An explicit argument wins over the config.
        off = model(**case.inputs(), output_hidden_states=False, output_attentions=False)
        assert off.hidden_states is None and off.attentions is None
    torch.testing.assert_close(flagged.logits, plain.logits, rtol=0, atol=1e-5)


def test_multiview_refuses_output_flags_clearly():
    model = MultiViewSERForRegression(tiny_multiview_config()).eval()
    with pytest.raises(ValueError, match="no hidden states"):
        model(view_embeddings=tiny_views(2), output_hidden_states=True)
    model.config.output_attentions = True
    with pytest.raises(ValueError, match="no hidden states"):
        model(view_embeddings=tiny_views(2))


def test_unknown_forward_arguments_are_refused():
    with pytest.raises(TypeError, match="unexpected arguments"):
        MultiViewSERForRegression(tiny_multiview_config())(view_embeddings=tiny_views(2), bogus=1)
    model = _multimodal_case("m", use_text=False).build()
    with pytest.raises(TypeError, match="unexpected arguments"):
        model(**_audio_batch(), output_hidden_state=True)  # a typo must not pass silently


@pytest.mark.parametrize("case", CASES, ids=_ids(CASES))
@pytest.mark.parametrize("with_loss", [False, True])
def test_tuple_output_equals_to_tuple(case, with_loss):
    model = case.build().eval()
    inputs = _loss_inputs(case) if with_loss else case.inputs()
    with torch.no_grad():
        as_dict = model(**inputs)
        as_tuple = model(**inputs, return_dict=False)
        model.config.return_dict = False
        from_config = model(**inputs)
    assert isinstance(as_tuple, tuple) and isinstance(from_config, tuple)
    expected = as_dict.to_tuple()
    assert len(as_tuple) == len(expected) == len(from_config)
    for got, want, cfg in zip(as_tuple, expected, from_config, strict=True):
        torch.testing.assert_close(got, want, rtol=0, atol=0)
        torch.testing.assert_close(cfg, want, rtol=0, atol=0)
    if with_loss:
        assert as_tuple[0].dim() == 0  # the loss comes first


@pytest.mark.parametrize("case", [c for c in CASES if c.single is not None], ids=lambda case: case.name)
def test_batched_outputs_equal_single_outputs(case):
    model = case.build().eval()
    with torch.no_grad():
        batched = model(**case.inputs()).logits
        for i in range(2):
            torch.testing.assert_close(batched[i : i + 1], model(**case.single(i)).logits, rtol=0, atol=1e-5)


# ------------------------------------------------------------------------------------------------ training
def _train_step(model, case):
    model.train()
    model.zero_grad()
    out = model(**_loss_inputs(case))
    out.loss.backward()
    return out.loss.detach()


@pytest.mark.parametrize("case", CASES, ids=_ids(CASES))
def test_every_trainable_parameter_gets_a_gradient_with_and_without_checkpointing(case):
    model = case.build()
    torch.manual_seed(1)  # the same dropout draws (torch) and SpecAugment masks (numpy) for both steps
    np.random.seed(1)
    loss = _train_step(model, case)
    grads = {n: p.grad.clone() for n, p in model.named_parameters() if p.requires_grad and p.grad is not None}
    trainable = [n for n, p in model.named_parameters() if p.requires_grad]
    assert sorted(grads) == sorted(trainable), f"trainable but unused: {sorted(set(trainable) - set(grads))}"
    assert all(p.grad is None for p in model.parameters() if not p.requires_grad)
    if not model.supports_gradient_checkpointing:
        with pytest.raises(ValueError, match="checkpointing"):
            model.activation_checkpointing_enable()
        return
    model.activation_checkpointing_enable()
    torch.manual_seed(1)
    np.random.seed(1)
    checkpointed_loss = _train_step(model, case)
    # Same loss and gradients as without checkpointing (dropout draws are replayed by the recompute).
    torch.testing.assert_close(checkpointed_loss, loss, rtol=1e-5, atol=1e-6)
    for name, grad in grads.items():
        torch.testing.assert_close(dict(model.named_parameters())[name].grad, grad, rtol=1e-4, atol=1e-5)


@pytest.mark.parametrize("case", AUDIO_CASES, ids=_ids(AUDIO_CASES))
def test_checkpointing_covers_only_trainable_layers(case):
    model = case.build()
    model.activation_checkpointing_enable(activation_checkpointing_kwargs={"use_reentrant": True})
    layers = dict(model.named_modules())
    checkpointed = model.checkpointed_layers()
    assert checkpointed, "no layer is checkpointed"
    for name in checkpointed:
        assert any(p.requires_grad for p in layers[name].parameters()), f"frozen layer {name} is checkpointed"
    # Layers that train are all checkpointed (every_n_layers=1).
    from transformers.modeling_layers import GradientCheckpointingLayer

    trainable_layers = {
        n
        for n, m in layers.items()
        if isinstance(m, GradientCheckpointingLayer) and any(p.requires_grad for p in m.parameters())
    }
    assert set(checkpointed) == trainable_layers
    # Reentrant checkpointing was asked for: hf_ser switches to non-reentrant, so the first trainable layer, whose
    # input does not require grad, still trains (checked by the gradient test above for the default kwargs).
    _train_step(model, case)
    trainable = [p for p in model.parameters() if p.requires_grad]
    assert all(p.grad is not None for p in trainable)


# ------------------------------------------------------------------------------------------------ frozen is free
def _watch_requires_grad(model) -> dict[str, bool]:
    """Record, on the next forward, whether the waveform (the first convolution's input) and each transformer
    layer's input require grad."""
    seen: dict[str, bool] = {}
    encoder = model.encoder if hasattr(model, "encoder") else model.audio_encoder
    first_conv = encoder.feature_extractor.conv_layers[0]
    first_conv.register_forward_pre_hook(lambda m, args: seen.__setitem__("waveform", args[0].requires_grad))
    for i, layer in enumerate(encoder.encoder.layers):
        layer.register_forward_pre_hook(
            lambda m, args, kwargs, i=i: seen.__setitem__(
                f"layer{i}", (args[0] if args else kwargs["hidden_states"]).requires_grad
            ),
            with_kwargs=True,
        )
    return seen


@pytest.mark.parametrize("kind", ["wavlm", "wav2vec2", "hubert", "data2vec-audio"])
@pytest.mark.parametrize("num_trainable", [0, 2, None])
def test_frozen_parts_are_outside_autograd(kind, num_trainable):
    torch.manual_seed(0)
    model = WavLMForMASPClassification(tiny_masp_config(kind, num_trainable_layers=num_trainable)).train()
    seen = _watch_requires_grad(model)
    out = model(**_audio_batch(), labels=_class_labels(2))
    assert seen["waveform"] is False
    first_trainable = 4 - (4 if num_trainable is None else num_trainable)
    for i in range(4):
        # The first trainable layer's input requires grad only when something below it trains.
        below_trains = num_trainable is None  # feature projection etc. train with every layer
        expected = i > first_trainable or (i == first_trainable and below_trains)
        assert seen[f"layer{i}"] is expected, (i, seen)
    out.loss.backward()
    touched = {n.split(".")[0] for n, p in model.named_parameters() if p.grad is not None}
    if num_trainable == 0:
        assert touched == {"head", "pooling"}  # a backward with everything frozen touches only the head


@pytest.mark.parametrize("route", ["init", "from_pretrained", "apply_freezing", "freeze_feature_encoder"])
def test_freezing_survives_every_route(route, tmp_path):
    model = WavLMForMASPClassification(
        tiny_masp_config(num_trainable_layers=None, freeze_feature_encoder=False)
    )
    if route == "from_pretrained":
        model.config.freeze_feature_encoder = True
        model.save_pretrained(tmp_path)
        model = WavLMForMASPClassification.from_pretrained(tmp_path)
    elif route == "apply_freezing":
        model.config.freeze_feature_encoder = True
        model.apply_freezing()
    elif route == "freeze_feature_encoder":
        model.freeze_feature_encoder()
        model.apply_freezing()  # re-applying keeps it: the choice lives in the config
    model.train()
    seen = _watch_requires_grad(model)
    model(**_audio_batch())
    assert seen["waveform"] is False
    frozen_front = route != "init"
    assert all(p.requires_grad is not frozen_front for p in model.encoder.feature_extractor.parameters())
    assert seen["layer0"] is True  # the feature projection trains


def test_multimodal_waveform_never_requires_grad():
    model = _multimodal_case("m", use_text=False).build().train()
    seen = _watch_requires_grad(model)
    model(**_audio_batch())
    assert seen["waveform"] is False and seen["layer0"] is True


@pytest.mark.parametrize("normalized", [True, False])
def test_masp_final_layer_norm_is_used_or_frozen(normalized):
    model = WavLMForMASPClassification(
        tiny_masp_config(num_trainable_layers=None, masp_normalized_last_layer=normalized)
    )
    final_norm = model.encoder.encoder.layer_norm
    assert all(p.requires_grad is normalized for p in final_norm.parameters())
    model.eval()
    batch = _audio_batch()
    with torch.no_grad():
        out = model(**batch, output_hidden_states=True)
        mask = model.frame_mask(out.hidden_states[-1].shape[1], batch["attention_mask"])
        layers = list(out.hidden_states[1:])  # transformers 5: layer outputs before the final LayerNorm
        if normalized:
            layers[-1] = final_norm(layers[-1])
        torch.testing.assert_close(out.embeddings, model.pooling(layers, mask), rtol=1e-5, atol=1e-6)


# ------------------------------------------------------------------------------------------------ export
# One configuration per model class and speech branch (export takes seconds each; the encoder families share the
# export path, and the MASP configurations differ only after the encoder).
EXPORT_CASES = [
    c
    for c in CASES
    if c.name
    in ("masp_wavlm", "challenge_baseline", "masp_hubert", "multimodal_wavlm_text", "multimodal_whisper_text")
    or c.name.startswith("multiview")
]


@pytest.mark.parametrize("case", EXPORT_CASES, ids=_ids(EXPORT_CASES))
@pytest.mark.parametrize("dynamic", [False, True], ids=["static", "dynamic"])
def test_torch_export_equals_eager(case, dynamic):
    model = case.build().eval()
    inputs = case.inputs()
    shapes = None
    if dynamic:
        batch = torch.export.Dim("batch", min=1, max=16)
        time = torch.export.Dim.AUTO if case.dynamic_time else None

        def dims(value):
            if isinstance(value, dict):
                return {k: dims(v) for k, v in value.items()}
            return {0: batch, 1: time} if value.dim() == 2 and case.dynamic_time else {0: batch}

        shapes = {name: dims(value) for name, value in inputs.items()}
    program = torch.export.export(model, args=(), kwargs=inputs, dynamic_shapes=shapes, strict=False)
    with torch.no_grad():
        want = model(**inputs).logits
    torch.testing.assert_close(program.module()(**inputs).logits, want, rtol=1e-5, atol=1e-5)
    if dynamic:
        # Another batch size (and length) through the same program.
        if "view_embeddings" in inputs:
            other = {"view_embeddings": tiny_views(batch=3, seed=4)}
        elif case.dynamic_time:
            # One more clip, and 10 ms shorter audio.
            other = {k: torch.cat([v, v[:1]]) for k, v in inputs.items()}
            for key in ("input_values", "attention_mask"):
                other[key] = other[key][:, :-160]
        else:
            other = {k: torch.cat([v, v[:1]]) for k, v in inputs.items()}
        with torch.no_grad():
            torch.testing.assert_close(
                program.module()(**other).logits, model(**other).logits, rtol=1e-5, atol=1e-5
            )


# ------------------------------------------------------------------------------------------------ checkpoints
@pytest.mark.parametrize(
    "case", [c for c in CASES if c.name.startswith("masp_wavlm")][:1] + [CASES[-1]], ids=str
)
def test_num_labels_can_change_with_ignore_mismatched_sizes(case, tmp_path):
    model = case.build()
    model.save_pretrained(tmp_path)
    changed = type(model).from_pretrained(tmp_path, num_labels=5, ignore_mismatched_sizes=True).eval()
    assert changed.config.num_labels == 5
    with torch.no_grad():
        assert changed(**case.inputs()).logits.shape == (2, 5)
    # Only the output layers were re-initialised: every other weight is the checkpoint's.
    original, loaded = model.state_dict(), changed.state_dict()
    same_shape = [name for name in original if original[name].shape == loaded[name].shape]
    assert len(same_shape) > len(original) // 2
    for name in same_shape:
        torch.testing.assert_close(original[name], loaded[name], msg=name)


def _save_encoder_checkpoint(path, kind: str, prefix: str | None = None):
    """A plain encoder checkpoint as transformers saves it (optionally under a task model's prefix)."""
    config = AutoModel.from_config(
        __import__("transformers").AutoConfig.for_model(**tiny_encoder_config(kind))
    ).config
    torch.manual_seed(3)
    encoder = AutoModel.from_config(config)
    encoder.save_pretrained(path)
    if prefix:
        state = load_file(path / "model.safetensors")
        save_file(
            {f"{prefix}.{k}": v for k, v in state.items()}, path / "model.safetensors", {"format": "pt"}
        )
    return encoder.eval()


@pytest.mark.parametrize(
    ("kind", "prefix"),
    [
        ("wavlm", None),
        ("wavlm", "wavlm"),
        ("wav2vec2", "wav2vec2"),
        ("hubert", None),
        ("data2vec-audio", None),
    ],
)
def test_masp_from_pretrained_on_an_encoder_checkpoint(kind, prefix, tmp_path, caplog):
    encoder = _save_encoder_checkpoint(tmp_path, kind, prefix)
    with caplog.at_level("WARNING"):
        model, info = WavLMForMASPClassification.from_pretrained(
            tmp_path, num_labels=4, num_trainable_layers=2, head_hidden_size=16, output_loading_info=True
        )
    assert model.config.encoder_config.model_type == kind
    assert model.config.num_labels == 4 and model.config.num_trainable_layers == 2
    assert model.config.encoder_config.hidden_size == 32  # built around the checkpoint, not WavLM-large
    # Every encoder weight was loaded; the new head and pooling are reported as newly initialised.
    assert not [k for k in info["missing_keys"] if k.startswith("encoder.")]
    assert any(k.startswith("head.") for k in info["missing_keys"])
    for name, value in encoder.state_dict().items():
        torch.testing.assert_close(model.encoder.state_dict()[name], value, msg=name)
    # Freezing applied: 2 of 4 layers train.
    trainable = {
        int(n.split(".")[3])
        for n, p in model.named_parameters()
        if n.startswith("encoder.encoder.layers.") and p.requires_grad
    }
    assert trainable == {2, 3}
    # It saves and reloads as an ordinary hf_ser model.
    model.save_pretrained(tmp_path / "saved")
    reloaded = AutoModel.from_pretrained(tmp_path / "saved").eval()
    with torch.no_grad():
        torch.testing.assert_close(reloaded(**_audio_batch()).logits, model.eval()(**_audio_batch()).logits)


def test_auto_class_with_an_hf_ser_config_loads_an_encoder_checkpoint(tmp_path):
    from transformers import AutoModelForAudioClassification

    encoder = _save_encoder_checkpoint(tmp_path, "wavlm")
    config = WavLMMASPConfig(
        encoder_config=encoder.config.to_dict(), num_trainable_layers=2, head_hidden_size=16
    )
    model = AutoModelForAudioClassification.from_pretrained(tmp_path, config=config)
    assert isinstance(model, WavLMForMASPClassification)
    for name, value in encoder.state_dict().items():
        torch.testing.assert_close(model.encoder.state_dict()[name], value, msg=name)


@pytest.mark.parametrize("whisper", [False, True])
def test_multimodal_from_pretrained_on_an_encoder_checkpoint(whisper, tmp_path):
    from transformers import AutoConfig, WhisperModel

    torch.manual_seed(3)
    if whisper:
        source = WhisperModel(AutoConfig.for_model(**tiny_whisper_config()))
        source.save_pretrained(tmp_path)
        expected = source.get_encoder().state_dict()
    else:
        source = AutoModel.from_config(AutoConfig.for_model(**tiny_encoder_config("wavlm")))
        source.save_pretrained(tmp_path)
        expected = source.state_dict()
    model = MultimodalSERForRegression.from_pretrained(tmp_path, conv_hidden_size=8, head_hidden_size=8)
    assert model.config.use_text is False and model.config.is_whisper is whisper
    for name, value in expected.items():
        torch.testing.assert_close(model.audio_encoder.state_dict()[name], value, msg=name)
    assert model.config.freeze_audio_encoder is whisper  # paper 001: Whisper frozen, WavLM fine-tuned


def test_missing_encoder_weights_are_initialised_like_the_encoders_own(tmp_path):
    """WavLM initialises its positional convolution N(0, 2/sqrt(k*C)) and its feature projection U(-1/sqrt(d),
    1/sqrt(d)) from the parent module; those inits must run when such weights are missing from a checkpoint."""
    encoder_config = tiny_encoder_config(hidden_size=64, num_conv_pos_embeddings=32)
    config = WavLMMASPConfig(encoder_config=encoder_config, head_hidden_size=16, num_trainable_layers=None)
    WavLMForMASPClassification(config).save_pretrained(tmp_path)
    state = load_file(tmp_path / "model.safetensors")
    dropped = [k for k in state if "pos_conv_embed" in k or "feature_projection.projection" in k]
    assert len(dropped) >= 4
    kept = {k: v for k, v in state.items() if k not in dropped}
    save_file(kept, tmp_path / "model.safetensors", {"format": "pt"})
    torch.manual_seed(0)
    loaded = WavLMForMASPClassification.from_pretrained(tmp_path).encoder
    torch.manual_seed(0)
    own = WavLMModel(loaded.config)  # the encoder's own class and initialisation
    conv, own_conv = loaded.encoder.pos_conv_embed.conv, own.encoder.pos_conv_embed.conv
    # transformers' own WavLMModel.from_pretrained leaves a missing weight-normed convolution NaN; hf_ser gives it
    # the values a freshly built encoder has: v drawn like PyTorch's conv default, g = |v|.
    assert torch.isfinite(conv.weight).all()
    for ours, reference in (
        (conv.parametrizations.weight.original1, own_conv.parametrizations.weight.original1),
        (conv.parametrizations.weight.original0, own_conv.parametrizations.weight.original0),
        (conv.weight, own_conv.weight),
    ):
        ours, reference = ours.abs().mean().item(), reference.abs().mean().item()
        assert abs(ours - reference) < 0.1 * reference, (ours, reference)
    assert conv.bias.abs().max().item() == 0.0
    projection = loaded.feature_projection.projection
    bound = 1 / np.sqrt(projection.in_features)
    assert projection.weight.abs().max().item() <= bound + 1e-6
    assert projection.bias.abs().max().item() <= bound + 1e-6
    assert projection.weight.std().item() > bound / 3  # a uniform draw over the bound, not a narrow normal


def test_every_case_is_a_ser_model():
    # One base class carries the contract: a new model joins by subclassing it and adding a case above.
    for case in CASES:
        assert isinstance(case.build(), SERPreTrainedModel)
    assert json.dumps(sorted(TINY_VIEWS))


PLAIN_TRAINER_CASES = [
    c for c in CASES if c.name in ("masp_wavlm", "multimodal_wavlm_text", "multiview_cached")
]


@pytest.mark.parametrize("case", PLAIN_TRAINER_CASES, ids=_ids(PLAIN_TRAINER_CASES))
def test_plain_transformers_trainer_trains_a_step(case, tmp_path):
    # transformers' own Trainer (paper 003's recipe uses it) hands `num_items_in_batch` to any forward that takes
    # **kwargs unless the model says it accepts no loss kwargs: a training step must run.
    from transformers import Trainer, TrainingArguments

    batch = _loss_inputs(case)
    views = batch.pop("view_embeddings", {})
    batch.update({f"{view}_embedding": value for view, value in views.items()})  # the recipe's batch keys
    args = TrainingArguments(
        output_dir=str(tmp_path), max_steps=1, per_device_train_batch_size=2, report_to=[], save_strategy="no"
    )
    trainer = Trainer(
        model=case.build(), args=args, train_dataset=[{}, {}], data_collator=lambda rows: dict(batch)
    )
    assert trainer.model_accepts_loss_kwargs is False
    assert math.isfinite(trainer.train().training_loss)
