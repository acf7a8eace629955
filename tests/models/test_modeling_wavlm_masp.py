"""WavLMForMASPClassification: configuration, padding invariance, freezing, LayerDrop, losses, save/load."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from hf_ser import WavLMForMASPClassification, WavLMMASPConfig, build_feature_extractor, predict_logits
from hf_ser.models.modeling_wavlm_masp import SERClassifierOutput
from tests.tiny import tiny_encoder_config, tiny_masp_config, tiny_masp_model, tone


def batch_of(waves):
    fe = build_feature_extractor()
    return fe(waves, sampling_rate=16000, padding=True, return_attention_mask=True, return_tensors="pt")


def test_default_config_is_paper_000():
    config = WavLMMASPConfig()
    assert config.encoder_config.model_type == "wavlm"
    assert config.encoder_config.num_hidden_layers == 24 and config.encoder_config.hidden_size == 1024
    assert config.pooling == "masp" and config.num_trainable_layers == 15
    assert config.loss == "focal" and config.focal_gamma == 2.0 and config.head_dropout == 0.3
    assert [config.id2label[i] for i in range(8)] == [
        "Angry", "Sad", "Happy", "Surprise", "Fear", "Disgust", "Contempt", "Neutral",
    ]  # fmt: skip


def test_challenge_baseline_config():
    config = WavLMMASPConfig.challenge_baseline(class_weights=[1.0] * 8)
    assert config.pooling == "asp" and config.num_trainable_layers is None and config.loss == "ce"
    regression = WavLMMASPConfig.challenge_baseline(problem_type="regression")
    assert regression.loss == "ccc" and regression.num_labels == 3
    # The frame attention is as wide as the encoder (the released baseline code), unlike the 128 default.
    baseline = WavLMForMASPClassification(
        WavLMMASPConfig.challenge_baseline(encoder_config=tiny_encoder_config(), head_hidden_size=16)
    )
    assert baseline.pooling.attention[0].out_features == 32
    assert tiny_masp_model(pooling="asp").pooling.attention[0].out_features == 128


def test_challenge_baseline_head_is_the_released_head():
    """The released baseline's EmotionRegression(2H, 1024, 1, C, dropout=0.5): input dropout 0.5, one block
    Linear(2H -> 1024), LayerNorm, ReLU, Dropout 0.5, output layer; paper 000's head keeps its projection."""
    from hf_ser.models.modeling_wavlm_masp import FeedForwardHead

    config = WavLMMASPConfig.challenge_baseline()
    assert (config.head_projection, config.head_num_layers, config.head_hidden_size) == (False, 1, 1024)
    assert config.head_input_dropout == 0.5 and config.head_dropout == 0.5
    head = FeedForwardHead(
        2048, 1024, config.head_num_layers, config.head_dropout, 8,
        input_dropout=config.head_input_dropout, projection=config.head_projection,
    )  # fmt: skip
    assert sum(p.numel() for p in head.parameters()) == 2048 * 1024 + 1024 + 2 * 1024 + 1024 * 8 + 8  # 2.11M
    block = head.layers[0]
    assert [type(m).__name__ for m in block] == ["Linear", "LayerNorm", "ReLU", "Dropout"]
    assert head.projection is None and head.input_dropout.p == 0.5 and block[3].p == 0.5
    assert (block[0].in_features, block[0].out_features) == (2048, 1024)
    # Paper 000's head is unchanged: projection, then two blocks, no input dropout.
    masp = tiny_masp_model().head
    assert (
        masp.projection is not None
        and len(masp.layers) == 2
        and isinstance(masp.input_dropout, torch.nn.Identity)
    )
    with pytest.raises(ValueError, match="head_num_layers"):
        WavLMMASPConfig(head_projection=False, head_num_layers=0)


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"pooling": "max"}, "pooling"),
        ({"asp_attention_size": 0}, "asp_attention_size"),
        ({"num_trainable_layers": 30}, "num_trainable_layers"),
        ({"loss": "ccc"}, "does not fit"),
        ({"class_weights": [1.0, 2.0]}, "class_weights"),
        ({"encoder_config": {"model_type": "bert"}}, "not supported"),
    ],
)
def test_invalid_config_is_refused_clearly(kwargs, message):
    with pytest.raises(ValueError, match=message):
        WavLMMASPConfig(**kwargs)


def test_wavlm_large_parameter_count_and_trainable_layers_match_the_paper():
    # WavLM-large is ~315M parameters (paper 002: "approximately 310M"); paper 000 fine-tunes its top 15 of 24 layers.
    with torch.device("meta"):
        model = WavLMForMASPClassification(WavLMMASPConfig())
    encoder_params = sum(p.numel() for p in model.encoder.parameters())
    assert 310e6 < encoder_params < 320e6
    trainable_layers = [
        all(p.requires_grad for p in layer.parameters()) for layer in model.transformer_layers
    ]
    frozen_layers = [
        not any(p.requires_grad for p in layer.parameters()) for layer in model.transformer_layers
    ]
    assert sum(trainable_layers) == 15 and frozen_layers[:9] == [True] * 9
    assert not any(p.requires_grad for p in model.encoder.feature_extractor.parameters())


@pytest.mark.parametrize("kind", ["wavlm", "wav2vec2", "hubert"])
@pytest.mark.parametrize("pooling", ["masp", "asp", "mean"])
def test_padding_invariance_for_layer_norm_encoders(kind, pooling):
    torch.manual_seed(0)
    config = tiny_masp_config(kind=kind, pooling=pooling)
    model = WavLMForMASPClassification(config).eval()
    waves = [tone(0.5, freq=200), tone(1.3, freq=300, seed=1), tone(0.9, freq=150, seed=2)]
    batch = batch_of(waves)
    with torch.no_grad():
        batched = model(**batch).logits
        for i, wave in enumerate(waves):
            alone = model(**batch_of([wave])).logits[0]
            torch.testing.assert_close(batched[i], alone, atol=1e-5, rtol=1e-5)


@pytest.mark.parametrize("kind, group_norm", [("wavlm", True), ("wav2vec2", True), ("data2vec-audio", False)])
def test_padding_sensitive_encoders_stay_exact_in_package_batching(kind, group_norm):
    torch.manual_seed(0)
    model = tiny_masp_model(kind=kind, group_norm=group_norm).eval()
    fe = build_feature_extractor()
    waves = [tone(0.5), tone(1.0, seed=1), tone(0.5, freq=330, seed=2), tone(0.7, seed=3)]
    batched = predict_logits(model, fe, waves, batch_size=4)
    with torch.no_grad():  # the premise: naive padded batching does change these models' outputs
        naive = model(**batch_of(waves)).logits.numpy()
    assert not np.allclose(naive[0], batched[0], atol=1e-5)
    with torch.no_grad():
        for i, wave in enumerate(waves):
            alone = model(**batch_of([wave])).logits[0].numpy()
            np.testing.assert_allclose(batched[i], alone, atol=1e-5, rtol=1e-5)


def test_trainable_parameters_under_freezing_and_frozen_grads_stay_none():
    torch.manual_seed(0)
    model = tiny_masp_model(num_trainable_layers=2)  # 4 layers: lower 2 frozen
    layers = model.transformer_layers
    for layer in layers[:2]:
        assert not any(p.requires_grad for p in layer.parameters())
    for layer in layers[2:]:
        assert all(p.requires_grad for p in layer.parameters())
    trainable = sum(p.numel() for p in model.parameters() if p.requires_grad)
    expected = (
        sum(p.numel() for layer in layers[2:] for p in layer.parameters())
        + sum(p.numel() for p in model.encoder.encoder.layer_norm.parameters())
        + sum(p.numel() for p in model.pooling.parameters())
        + sum(p.numel() for p in model.head.parameters())
    )
    assert trainable == expected

    model.train()
    batch = batch_of([tone(0.6), tone(0.4, seed=1)])
    out = model(**batch, labels=torch.tensor([1, 2]))
    out.loss.backward()
    assert all(p.grad is None for layer in layers[:2] for p in layer.parameters())
    assert all(p.grad is None for p in model.encoder.feature_extractor.parameters())
    assert all(p.grad is None for p in model.encoder.feature_projection.parameters())
    assert all(p.grad is not None for p in layers[-1].parameters())
    assert model.pooling.layer_weights.grad is not None


def test_full_fine_tuning_and_frozen_feature_encoder():
    model = tiny_masp_model(num_trainable_layers=None)
    assert all(p.requires_grad for layer in model.transformer_layers for p in layer.parameters())
    assert not any(p.requires_grad for p in model.encoder.feature_extractor.parameters())
    assert all(p.requires_grad for p in model.encoder.feature_projection.parameters())


def test_masp_under_layerdrop_weights_only_the_layers_that_ran():
    torch.manual_seed(0)
    model = tiny_masp_model(layerdrop=0.6, num_trainable_layers=None)
    assert model.encoder.config.layerdrop == 0.6
    model.train()
    ran: list[int] = []
    for i, layer in enumerate(model.transformer_layers):
        layer.register_forward_hook(lambda m, a, o, i=i: ran.append(i))
    batch = batch_of([tone(0.6), tone(0.4, seed=1)])
    seen_partial = False
    for seed in range(8):
        ran.clear()
        torch.manual_seed(seed)
        out = model(**batch, labels=torch.tensor([0, 1]), output_hidden_states=True)
        assert torch.isfinite(out.loss)
        # Reference: Eq. 1 over the layers that ran, with their weights renormalised.
        layers_ran = sorted(set(ran))
        seen_partial |= len(layers_ran) < 4
        assert len(out.hidden_states) == len(layers_ran) + 1
        frames = out.hidden_states[1].shape[1]
        mask = model.frame_mask(frames, batch["attention_mask"])
        states = list(out.hidden_states[1:])
        if layers_ran[-1] == 3:
            # MASP reads the last layer after the encoder's final LayerNorm (transformers 4's layout).
            states[-1] = model.encoder.encoder.layer_norm(states[-1])
        want = model.pooling(torch.stack(states), mask, layers_ran)
        torch.testing.assert_close(out.embeddings, want)
    assert seen_partial, "LayerDrop never skipped a layer: the test did not exercise it"


def test_layerdrop_defaults_to_zero():
    assert WavLMMASPConfig().encoder_config.layerdrop == 0.0


def test_classification_loss_and_output_type():
    torch.manual_seed(0)
    model = tiny_masp_model().eval()
    batch = batch_of([tone(0.5), tone(0.5, seed=1)])
    out = model(**batch, labels=torch.tensor([0, 7]))
    assert isinstance(out, SERClassifierOutput) and out.logits.shape == (2, 8)
    assert out.embeddings.shape == (2, 64)
    from hf_ser import FocalLoss

    torch.testing.assert_close(out.loss, FocalLoss(gamma=2.0)(out.logits, torch.tensor([0, 7])))
    # Soft labels (class distributions) are accepted too.
    soft = torch.full((2, 8), 1 / 8)
    assert torch.isfinite(model(**batch, labels=soft).loss)
    # return_dict=False gives a tuple with the loss first.
    as_tuple = model(**batch, labels=torch.tensor([0, 7]), return_dict=False)
    torch.testing.assert_close(as_tuple[0], out.loss)


def test_weighted_cross_entropy_configuration():
    torch.manual_seed(0)
    weights = [1.0, 2.0, 1.0, 1.0, 3.0, 1.0, 1.0, 0.5]
    model = tiny_masp_model(loss="ce", class_weights=weights)
    batch = batch_of([tone(0.5), tone(0.5, seed=1), tone(0.5, seed=2)])
    labels = torch.tensor([1, 4, 7])
    out = model(**batch, labels=labels)
    want = torch.nn.functional.cross_entropy(out.logits, labels, weight=torch.tensor(weights))
    torch.testing.assert_close(out.loss, want)


def test_loss_is_read_from_the_config_at_every_call(tmp_path):
    """The config is the one owner of the loss: changing it after construction changes the loss (what the trainers
    rely on), and a checkpoint from before, which stored the class weights as a `loss_fct.alpha` buffer, loads with
    no unexpected key."""
    from safetensors.torch import load_file, save_file

    from hf_ser import FocalLoss

    torch.manual_seed(0)
    model = tiny_masp_model().eval()
    batch = batch_of([tone(0.5), tone(0.5, seed=1), tone(0.5, seed=2)])
    labels = torch.tensor([1, 4, 7])
    weights = [1.0, 2.0, 1.0, 1.0, 3.0, 1.0, 1.0, 0.5]
    with torch.no_grad():
        logits = model(**batch).logits
        model.config.focal_gamma, model.config.class_weights = 0.5, weights
        torch.testing.assert_close(
            model(**batch, labels=labels).loss, FocalLoss(0.5, weights)(logits, labels)
        )
        model.config.loss = "ce"
        want = torch.nn.functional.cross_entropy(logits, labels, weight=torch.tensor(weights))
        torch.testing.assert_close(model(**batch, labels=labels).loss, want)
    assert not any(key.startswith("loss_fct") for key in model.state_dict())
    model.save_pretrained(tmp_path)
    state = load_file(tmp_path / "model.safetensors")
    save_file(
        {**state, "loss_fct.alpha": torch.tensor(weights)}, tmp_path / "model.safetensors", {"format": "pt"}
    )
    reloaded, info = WavLMForMASPClassification.from_pretrained(tmp_path, output_loading_info=True)
    assert not info["unexpected_keys"] and not info["missing_keys"]
    assert (reloaded.config.loss, reloaded.config.focal_gamma, reloaded.config.class_weights) == (
        "ce",
        0.5,
        weights,
    )


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"focal_gamma": -0.5}, "focal_gamma"),
        ({"problem_type": "regression", "ccc_reduction": "none"}, "ccc_reduction"),
        ({"problem_type": "regression", "ccc_weights": [1.0, 2.0]}, "ccc_weights has 2"),
    ],
)
def test_loss_fields_are_validated(kwargs, match):
    with pytest.raises(ValueError, match=match):
        tiny_masp_config(**kwargs)


def test_regression_problem_type():
    torch.manual_seed(0)
    model = tiny_masp_model(problem_type="regression")
    assert model.config.num_labels == 3 and model.config.id2label[0] == "arousal"
    batch = batch_of([tone(0.5), tone(0.5, seed=1), tone(0.5, seed=2)])
    labels = torch.tensor([[4.0, 3.0, 5.0], [2.0, 6.0, 3.5], [5.5, 1.5, 4.0]])
    out = model(**batch, labels=labels)
    assert out.logits.shape == (3, 3)
    from hf_ser import CCCLoss

    torch.testing.assert_close(out.loss, CCCLoss(reduction="sum")(out.logits, labels))


def test_training_reduces_loss_on_a_learnable_toy_task():
    torch.manual_seed(0)
    model = tiny_masp_model(
        num_trainable_layers=4, head_dropout=0.0, num_labels=2, id2label={0: "low", 1: "high"}
    )
    waves = [tone(0.4, freq=f, seed=i) for i, f in enumerate([120, 130, 125, 400, 410, 390])]
    labels = torch.tensor([0, 0, 0, 1, 1, 1])
    batch = batch_of(waves)
    optimizer = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=3e-3)
    model.train()
    losses = []
    for _ in range(30):
        optimizer.zero_grad()
        loss = model(**batch, labels=labels).loss
        loss.backward()
        optimizer.step()
        losses.append(loss.item())
    assert losses[-1] < 0.3 * losses[0]


def test_masp_layer_norm_option_is_padding_exact_and_survives_save_and_load(tmp_path):
    torch.manual_seed(0)
    model = tiny_masp_model(masp_layer_norm=True).eval()
    assert model.pooling.layer_norm and not tiny_masp_model().pooling.layer_norm
    waves = [tone(0.5, freq=200), tone(1.3, freq=300, seed=1)]
    batch = batch_of(waves)
    with torch.no_grad():
        batched = model(**batch).logits
        for i, wave in enumerate(waves):
            torch.testing.assert_close(batched[i], model(**batch_of([wave])).logits[0], atol=1e-5, rtol=1e-5)
    model.save_pretrained(tmp_path)
    reloaded = WavLMForMASPClassification.from_pretrained(tmp_path).eval()
    assert reloaded.config.masp_layer_norm and reloaded.pooling.layer_norm
    with torch.no_grad():
        torch.testing.assert_close(reloaded(**batch).logits, batched)


def test_save_and_load_round_trip(tmp_path):
    torch.manual_seed(0)
    model = tiny_masp_model(pooling="asp").eval()
    model.save_pretrained(tmp_path)
    assert (tmp_path / "model.safetensors").exists()
    assert not list(tmp_path.glob("*.bin"))
    reloaded = WavLMForMASPClassification.from_pretrained(tmp_path).eval()
    assert reloaded.config.pooling == "asp" and reloaded.config.num_trainable_layers == 2
    # Freezing is part of the config, so it survives the round trip.
    assert not any(p.requires_grad for p in reloaded.transformer_layers[0].parameters())
    batch = batch_of([tone(0.7)])
    with torch.no_grad():
        torch.testing.assert_close(model(**batch).logits, reloaded(**batch).logits)


@pytest.mark.parametrize("num_labels", [2, 3])
def test_a_label_count_without_names_survives_the_round_trip(num_labels, tmp_path):
    # transformers leaves a two-label map with its default names out of config.json; the config must not then
    # fill in the 8 emotions on reload.
    torch.manual_seed(0)
    model = tiny_masp_model(num_labels=num_labels).eval()
    model.save_pretrained(tmp_path)
    reloaded = WavLMForMASPClassification.from_pretrained(tmp_path).eval()
    assert reloaded.config.num_labels == num_labels
    assert reloaded.config.id2label == {i: f"LABEL_{i}" for i in range(num_labels)}
    batch = batch_of([tone(0.7)])
    with torch.no_grad():
        torch.testing.assert_close(model(**batch).logits, reloaded(**batch).logits)


def test_a_label_map_without_its_inverse_saves_and_reloads(tmp_path):
    # transformers 5 leaves label2id None when only id2label is given (as a trainer's model_init may do).
    config = tiny_masp_config(id2label={0: "low", 1: "mid", 2: "high"})
    config.label2id = None
    config.save_pretrained(tmp_path)
    assert WavLMMASPConfig.from_pretrained(tmp_path).id2label == {0: "low", 1: "mid", 2: "high"}


def test_from_encoder_pretrained_loads_encoder_weights(tmp_path):
    from transformers import AutoConfig, AutoModel

    torch.manual_seed(0)
    encoder = AutoModel.from_config(AutoConfig.for_model(**tiny_encoder_config()))
    encoder.save_pretrained(tmp_path / "encoder")
    build_feature_extractor().save_pretrained(tmp_path / "encoder")
    model = WavLMForMASPClassification.from_encoder_pretrained(
        str(tmp_path / "encoder"), num_trainable_layers=1
    )
    for name, value in encoder.state_dict().items():
        torch.testing.assert_close(model.encoder.state_dict()[name], value)
    assert sum(all(p.requires_grad for p in layer.parameters()) for layer in model.transformer_layers) == 1
    fe = build_feature_extractor(str(tmp_path / "encoder"))
    assert fe.return_attention_mask and fe.sampling_rate == 16000


def test_from_encoder_pretrained_refuses_pickle_only_checkpoints(tmp_path):
    from transformers import AutoConfig, AutoModel

    encoder = AutoModel.from_config(AutoConfig.for_model(**tiny_encoder_config()))
    encoder.config.save_pretrained(tmp_path)
    torch.save(encoder.state_dict(), tmp_path / "pytorch_model.bin")  # pickle only, no safetensors
    with pytest.raises(OSError, match="safetensors"):
        WavLMForMASPClassification.from_encoder_pretrained(str(tmp_path), num_trainable_layers=2)


def test_bucketed_and_arrival_order_predictions_are_identical():
    torch.manual_seed(0)
    model = tiny_masp_model().eval()
    fe = build_feature_extractor()
    rng = np.random.default_rng(0)
    waves = [tone(float(s), seed=i) for i, s in enumerate(rng.uniform(0.3, 1.2, size=9))]
    bucketed = predict_logits(model, fe, waves, batch_size=4, bucket=True)
    arrival = predict_logits(model, fe, waves, batch_size=4, bucket=False)
    np.testing.assert_allclose(bucketed, arrival, atol=1e-5)


def test_length_buckets_group_similar_lengths():
    from hf_ser.inference.predict import length_buckets

    lengths = [5, 100, 7, 98, 6, 99]
    assert length_buckets(lengths, 3) == [[1, 5, 3], [2, 4, 0]]
    assert length_buckets([5, 5, 6, 6, 6], 2, equal_length_only=True) == [[2, 3], [4], [0, 1]]


def test_windowed_inference_covers_long_audio():
    from hf_ser.inference.predict import predict_windows, window_starts

    assert window_starts(100, 40, 40) == [0, 40, 60]
    torch.manual_seed(0)
    model = tiny_masp_model().eval()
    fe = build_feature_extractor()
    wave = tone(5.0)
    starts, logits = predict_windows(model, fe, wave, window_s=2.0, batch_size=2)
    np.testing.assert_allclose(starts, [0.0, 2.0, 3.0])
    assert logits.shape == (3, 8)
    # Each window's logits equal that window run alone.
    np.testing.assert_allclose(logits[1], predict_logits(model, fe, [wave[32000:64000]])[0], atol=1e-5)


def test_pickle_only_checkpoint_is_refused_unless_opted_in(tmp_path):
    from transformers import AutoModelForAudioClassification

    torch.manual_seed(0)
    model = tiny_masp_model().eval()
    model.config.save_pretrained(tmp_path)
    torch.save(model.state_dict(), tmp_path / "pytorch_model.bin")
    with pytest.raises(OSError, match="safetensors"):
        WavLMForMASPClassification.from_pretrained(tmp_path)
    with pytest.raises(OSError, match="safetensors"):
        AutoModelForAudioClassification.from_pretrained(tmp_path)
    opted_in = WavLMForMASPClassification.from_pretrained(tmp_path, use_safetensors=False).eval()
    batch = batch_of([tone(0.5)])
    with torch.no_grad():
        torch.testing.assert_close(opted_in(**batch).logits, model(**batch).logits)


def test_deepcopy_records_into_its_own_layers():
    import copy

    torch.manual_seed(0)
    model = tiny_masp_model().eval()
    clone = copy.deepcopy(model)
    with torch.no_grad():
        for layer in clone.transformer_layers:  # perturb the copy only
            layer.feed_forward.output_dense.bias.add_(0.5)
    batch = batch_of([tone(0.5)])
    with torch.no_grad():
        original, copied = model(**batch).logits, clone(**batch).logits
        again = model(**batch).logits
    torch.testing.assert_close(original, again)
    assert not torch.allclose(original, copied)
