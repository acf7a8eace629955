"""MultimodalSERForRegression (paper 001): shapes and ranges, padding invariance, freezing, the gender term, the
processor and collator, and both load paths. Tiny random WavLM / Whisper-encoder / RoBERTa configs only."""

from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import pytest
import torch
from transformers import AutoModel

from hf_ser import MultimodalSERConfig, MultimodalSERForRegression
from hf_ser.models.losses import CCCLoss
from hf_ser.processing.processing_multimodal import MultimodalDataCollator, MultimodalSERProcessor
from tests.tiny import (
    LABELS,
    TEXTS,
    save_tiny_multimodal,
    tiny_encoder_config,
    tiny_multimodal_config,
    tiny_multimodal_model,
    tiny_processor,
    tiny_text_config,
    tiny_tokenizer,
    tiny_whisper_config,
    tone,
    waves,
)


def batch_for(processor, waves, texts, labels=None, gender=None):
    batch = dict(processor(audio=waves, text=texts))
    if labels is not None:
        batch["labels"] = torch.as_tensor(labels, dtype=torch.float32)
    if gender is not None:
        batch["gender"] = torch.as_tensor(gender)
    return batch


# ---------------------------------------------------------------------------------------------- tests
@pytest.mark.parametrize("kind", ["wavlm", "whisper"])
def test_outputs_have_three_attributes_inside_the_training_range(kind):
    low, high = [1.5, 2.0, 1.0], [6.0, 6.5, 7.0]
    model = tiny_multimodal_model(kind, attribute_min=low, attribute_max=high).eval()
    batch = batch_for(tiny_processor(kind), waves(), TEXTS)
    with torch.no_grad():
        out = model(**batch)
    assert out.logits.shape == (4, 3)
    assert out.aux_logits.shape == (4, 2)
    assert out.embeddings.shape == (4, 8 + 16)
    assert (out.logits >= torch.tensor(low)).all() and (out.logits <= torch.tensor(high)).all()
    # Eq. 2: saturated heads reach the ends of the range exactly.
    with torch.no_grad():
        for head, sign in zip(model.attribute_heads, (1e4, -1e4, 1e4), strict=True):
            head[-1].bias.fill_(sign)
        saturated = model(**batch).logits
    torch.testing.assert_close(saturated[:, 0], torch.full((4,), high[0]))
    torch.testing.assert_close(saturated[:, 1], torch.full((4,), low[1]))
    torch.testing.assert_close(saturated[:, 2], torch.full((4,), high[2]))


def test_set_attribute_range_and_config_validation():
    config = tiny_multimodal_config()
    config.set_attribute_range(LABELS)
    assert config.attribute_min == [2.0, 2.5, 2.0] and config.attribute_max == [5.5, 6.0, 4.5]
    with pytest.raises(ValueError, match="attribute_max must exceed"):
        tiny_multimodal_config(attribute_min=[1, 1, 1], attribute_max=[7, 1, 7])
    with pytest.raises(ValueError, match="not supported"):
        MultimodalSERConfig(audio_config={"model_type": "bert"}, text_config=tiny_text_config())
    with pytest.raises(ValueError, match="text_pooling"):
        tiny_multimodal_config(text_pooling="max")
    with pytest.raises(ValueError, match="num_genders"):
        tiny_multimodal_config(num_genders=1)
    # Paper 001's freezing by default: Whisper frozen, WavLM fine-tuned; layer-sum encoders get no LayerDrop.
    assert tiny_multimodal_config("whisper").freeze_audio_encoder is True
    wavlm = tiny_multimodal_config("wavlm")
    assert wavlm.freeze_audio_encoder is False and wavlm.audio_config.layerdrop == 0.0


def test_missing_inputs_give_clear_errors():
    model = tiny_multimodal_model().eval()
    batch = batch_for(tiny_processor(), waves(2), TEXTS[:2])
    with pytest.raises(ValueError, match="text_input_ids"):
        model(input_values=batch["input_values"], attention_mask=batch["attention_mask"])
    with pytest.raises(ValueError, match="input_values"):
        model(text_input_ids=batch["text_input_ids"])
    speaker = tiny_multimodal_model(speaker_embedding_size=5).eval()
    with pytest.raises(ValueError, match="speaker_embeddings"):
        speaker(**batch)
    out = speaker(**batch, speaker_embeddings=torch.randn(2, 5))
    assert out.embeddings.shape == (2, 8 + 16 + 5)


def test_prediction_does_not_depend_on_batch_padding():
    model = tiny_multimodal_model().eval()
    processor = tiny_processor()
    short, long = tone(0.4, seed=1), tone(1.1, freq=300, seed=2)
    with torch.no_grad():
        alone = model(**batch_for(processor, [short], ["great"])).logits[0]
        batched = model(
            **batch_for(processor, [short, long], ["great", "i am so happy today you say"])
        ).logits[0]
    # Audio and transcript are both padded in the batch; the speech weighted sum, the convolutions and both masked
    # means read only real frames and tokens.
    torch.testing.assert_close(alone, batched, atol=2e-5, rtol=1e-5)
    _, mask_alone = model.speech_frames(**{k: v for k, v in processor(audio=[short]).items()})
    assert mask_alone is not None and mask_alone.all()


def test_gradients_reach_only_unfrozen_parts():
    model = tiny_multimodal_model().train()
    batch = batch_for(tiny_processor(), waves(), TEXTS, labels=LABELS, gender=[0, 1, 1, 0])
    model(**batch).loss.backward()
    assert all(p.grad is None and not p.requires_grad for p in model.text_encoder.parameters())
    assert all(p.grad is None for p in model.audio_encoder.feature_extractor.parameters())
    # WavLM's transformer is fine-tuned (paper 001), as are the layer weights, convolutions and heads.
    for module in (
        model.audio_encoder.encoder.layers[-1],
        model.conv,
        model.attribute_heads,
        model.gender_head,
    ):
        grads = [p.grad for p in module.parameters()]
        assert all(g is not None for g in grads) and any(g.abs().sum() > 0 for g in grads)
    assert model.layer_weights.grad is not None and model.layer_weights.grad.abs().sum() > 0

    whisper = tiny_multimodal_model("whisper").train()
    batch = batch_for(tiny_processor("whisper"), waves(), TEXTS, labels=LABELS)
    whisper(**batch).loss.backward()
    assert all(p.grad is None for p in whisper.audio_encoder.parameters())
    assert all(p.grad is not None for p in whisper.conv.parameters())


def test_frozen_encoders_stay_in_eval_mode_so_their_features_are_deterministic():
    model = tiny_multimodal_model().train()
    assert model.training and model.conv.training
    assert not model.text_encoder.training  # dropout 0.1 in the tiny text config would otherwise apply
    assert model.audio_encoder.training  # WavLM is fine-tuned
    ids = tiny_processor()(text=["i am so happy"])
    first = model.embed_text(ids["text_input_ids"], ids["text_attention_mask"])
    second = model.embed_text(ids["text_input_ids"], ids["text_attention_mask"])
    torch.testing.assert_close(first, second, atol=0, rtol=0)


def test_gender_term_changes_the_loss_only_when_gender_labels_are_given():
    model = tiny_multimodal_model().eval()
    batch = batch_for(tiny_processor(), waves(), TEXTS, labels=LABELS)
    with torch.no_grad():
        out = model(**batch)
        ccc_only = CCCLoss(reduction="sum")(out.logits, torch.tensor(LABELS))
        torch.testing.assert_close(out.loss, ccc_only)
        gender = torch.tensor([0, 1, 1, 0])
        with_gender = model(**batch, gender=gender)
        expected = ccc_only + 1.0 * torch.nn.functional.cross_entropy(out.aux_logits, gender)
        torch.testing.assert_close(with_gender.loss, expected)
        assert with_gender.loss > out.loss
        unknown = model(**batch, gender=torch.full((4,), -100)).loss
        torch.testing.assert_close(unknown, out.loss)
    no_head = tiny_multimodal_model(num_genders=0).eval()
    with torch.no_grad():
        result = no_head(**batch, gender=gender)
    assert result.aux_logits is None
    torch.testing.assert_close(result.loss, CCCLoss()(result.logits, torch.tensor(LABELS)))


def test_data_collator_builds_model_batches_from_rows():
    processor = tiny_processor()
    rows = [
        {
            "audio": {"array": w, "sampling_rate": 16000},
            "transcript": t,
            "arousal": a,
            "valence": v,
            "dominance": d,
            "gender": g,
        }
        for w, t, (a, v, d), g in zip(
            waves(), TEXTS, LABELS, ["Female", "Male", "Unknown", None], strict=True
        )
    ]
    collator = MultimodalDataCollator(processor, max_duration_s=0.5, random_crop=True)
    batch = collator(rows)
    assert batch["input_values"].shape == (4, 8000)  # cropped to 0.5 s
    assert batch["labels"].tolist() == LABELS
    assert batch["gender"].tolist() == [0, 1, -100, -100]
    assert batch["text_input_ids"].shape[0] == 4
    out = tiny_multimodal_model()(**batch)
    assert torch.isfinite(out.loss)


@pytest.mark.slow  # a fresh interpreter
def test_saved_model_loads_with_auto_model_and_with_remote_code(tmp_path):
    model = save_tiny_multimodal(
        tmp_path, attribute_min=[1.2, 1.4, 1.6], attribute_max=[6.1, 6.2, 6.3]
    ).eval()
    names = {p.name for p in tmp_path.iterdir()}
    assert {"configuration_multimodal.py", "modeling_multimodal.py", "pooling.py", "losses.py"} <= names
    assert {"model.safetensors", "processor_config.json", "tokenizer.json"} <= names
    auto_map = json.loads((tmp_path / "config.json").read_text())["auto_map"]
    assert auto_map == {
        "AutoConfig": "configuration_multimodal.MultimodalSERConfig",
        "AutoModel": "modeling_multimodal.MultimodalSERForRegression",
    }
    processor = MultimodalSERProcessor.from_pretrained(tmp_path)
    batch = batch_for(processor, waves(2), TEXTS[:2])
    with torch.no_grad():
        expected = model(**batch).logits
        reloaded = AutoModel.from_pretrained(tmp_path).eval()
        assert type(reloaded) is MultimodalSERForRegression
        torch.testing.assert_close(reloaded(**batch).logits, expected)
    torch.save({k: v for k, v in batch.items()}, tmp_path / "batch.pt")
    script = (
        "import sys, json, torch\n"
        "sys.modules['hf_ser'] = None\n"
        "from transformers import AutoModel\n"
        "m = AutoModel.from_pretrained(sys.argv[1], trust_remote_code=True).eval()\n"
        "b = torch.load(sys.argv[1] + '/batch.pt')\n"
        "print(json.dumps({'module': type(m).__module__, 'logits': m(**b).logits.tolist()}))\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", script, str(tmp_path)], capture_output=True, text=True, timeout=300
    )
    assert result.returncode == 0, result.stderr[-3000:]
    remote = json.loads(result.stdout.strip().splitlines()[-1])
    assert remote["module"].startswith("transformers_modules.")
    np.testing.assert_allclose(remote["logits"], expected.numpy(), atol=1e-5)


def test_gender_term_reaches_the_loss_through_the_trainer_with_the_collator(tmp_path):
    """One name end to end: `MultimodalDataCollator` writes `gender`, `CCCLossTrainer` passes it to the model, and the
    model adds alpha * CE(gender), alpha being the config's, which the trainer's `aux_loss_weight` set. Checked on the
    loss that the real Trainer logs for its one training step."""
    from datasets import Dataset

    from hf_ser.training.trainer import CCCLossTrainer, SERTrainingArguments

    model = tiny_multimodal_model(dropout=0.0)
    rows = {
        "audio": [{"array": w, "sampling_rate": 16000} for w in waves()],
        "transcript": TEXTS,
        **{name: [row[i] for row in LABELS] for i, name in enumerate(("arousal", "valence", "dominance"))},
        "gender": ["Female", "Male", "Male", None],
    }
    args = SERTrainingArguments(
        output_dir=str(tmp_path),
        use_cpu=True,
        report_to=[],
        per_device_train_batch_size=4,
        max_steps=1,
        logging_steps=1,
        save_strategy="no",
        disable_tqdm=True,
        aux_loss_weight=0.5,
    )
    trainer = CCCLossTrainer(
        model=model,
        args=args,
        train_dataset=Dataset.from_dict(rows),
        data_collator=MultimodalDataCollator(tiny_processor()),
    )
    assert model.config.gender_loss_weight == 0.5  # the trainer's value, in the config the model reads
    batch = next(iter(trainer.get_train_dataloader()))
    assert sorted(batch["gender"].tolist()) == [-100, 0, 1, 1]
    with torch.no_grad():
        out = model.eval()(**{key: value for key, value in batch.items() if key != "gender"})
        ccc_only = CCCLoss()(out.logits, batch["labels"])
        gender_ce = torch.nn.functional.cross_entropy(out.aux_logits, batch["gender"], ignore_index=-100)
        expected = ccc_only + 0.5 * gender_ce
        assert 0.5 * gender_ce > 0.1  # the term is large enough for the comparisons below to see it dropped
        torch.testing.assert_close(trainer.compute_loss(model, batch), expected)
        # The former key still reaches the same term, counted once.
        legacy = {**{k: v for k, v in batch.items() if k != "gender"}, "aux_labels": batch["gender"]}
        torch.testing.assert_close(trainer.compute_loss(model, legacy), expected)
    trainer.train()
    logged = [log["loss"] for log in trainer.state.log_history if "loss" in log]
    assert logged[0] == pytest.approx(expected.item(), abs=2e-4)  # Trainer logs 4 decimals


@pytest.mark.parametrize("kind", ["wavlm", "whisper"])
def test_factory_loads_pretrained_encoder_weights_from_local_folders(tmp_path, kind):
    from transformers import AutoConfig, WhisperModel

    torch.manual_seed(11)
    if kind == "whisper":
        audio = WhisperModel(AutoConfig.for_model(**tiny_whisper_config()))
        tiny_processor("whisper").feature_extractor.save_pretrained(tmp_path / "audio")
    else:
        audio = AutoModel.from_config(AutoConfig.for_model(**tiny_encoder_config("wavlm")))
        tiny_processor().feature_extractor.save_pretrained(tmp_path / "audio")
    audio.save_pretrained(tmp_path / "audio")
    text = AutoModel.from_config(AutoConfig.for_model(**tiny_text_config()), add_pooling_layer=False)
    text.save_pretrained(tmp_path / "text")
    tiny_tokenizer().save_pretrained(tmp_path / "text")

    # Whisper: paper 001 reads the first half of Whisper's window (15 of 30 s); this tiny one has 2 s, so 1 s.
    window = {"whisper_window_s": 1.0} if kind == "whisper" else {}
    model = MultimodalSERForRegression.from_encoders_pretrained(
        str(tmp_path / "audio"), str(tmp_path / "text"), conv_hidden_size=8, head_hidden_size=8, **window
    )
    source = audio.get_encoder() if kind == "whisper" else audio
    for name, tensor in source.state_dict().items():
        if name == "embed_positions.weight":
            tensor = tensor[:50]  # the first 50 positions: 1 s
        torch.testing.assert_close(model.audio_encoder.state_dict()[name], tensor, msg=name)
    for name, tensor in text.state_dict().items():
        torch.testing.assert_close(model.text_encoder.state_dict()[name], tensor, msg=name)
    assert model.config.is_whisper == (kind == "whisper")
    assert model.config.freeze_audio_encoder == (kind == "whisper")
    assert not any(p.requires_grad for p in model.text_encoder.parameters())
    processor = MultimodalSERProcessor.from_encoders_pretrained(
        str(tmp_path / "audio"), str(tmp_path / "text"), **window
    )
    assert processor.is_whisper == (kind == "whisper")
    if kind == "whisper":
        assert (
            model.config.audio_config.max_source_positions == 50
            and processor.feature_extractor.chunk_length == 1
        )
        with pytest.raises(ValueError, match="whisper_window_s"):  # 15 s does not fit a 2 s encoder
            MultimodalSERForRegression.from_encoders_pretrained(str(tmp_path / "audio"), None)
    with torch.no_grad():
        out = model.eval()(**processor(audio=waves(2), text=TEXTS[:2]))
    assert out.logits.shape == (2, 3)
