"""Model cards: YAML metadata the Hub accepts, the card body, the Trainer callback that fills the card, and the card's
life with the model (save_pretrained writes it, from_pretrained reads it back, the trainers add the callback)."""

from __future__ import annotations

import logging

import numpy as np
import pytest
import torch

from hf_ser.publishing.model_card import (
    PAPERS,
    CardData,
    ModelCardCallback,
    card_metadata,
    parse_card_metadata,
    render_model_card,
    write_model_card,
)
from tests.tiny import tiny_masp_model, tone

RESULTS = {"test1": {"f1_macro": 0.3412, "f1_micro": 0.3688, "uar": 0.33}, "test2": {"f1_macro": 0.301}}


def metric_values(metadata: dict, dataset: str) -> dict[str, float]:
    (entry,) = metadata["model-index"]
    (result,) = [r for r in entry["results"] if r["dataset"]["name"] == dataset]
    assert result["task"]["type"] == "audio-classification"
    return {m["name"]: m["value"] for m in result["metrics"]}


def test_categorical_card_yaml_carries_metadata_and_results():
    model = tiny_masp_model()
    card = CardData(model_id="org/ser-masp", eval_results=RESULTS, space_id="org/ser-demo")
    text = render_model_card(card, model)
    metadata = parse_card_metadata(text)

    assert metadata["library_name"] == "transformers"
    assert metadata["pipeline_tag"] == "audio-classification"
    assert {"hf_ser", "speech-emotion-recognition", "audio-classification"} <= set(metadata["tags"])
    assert metadata["license"] == "apache-2.0"
    assert metadata["datasets"] == ["MSP-Podcast"]
    assert metadata["model-index"][0]["name"] == "ser-masp"
    assert metric_values(metadata, "test1") == {
        "Macro F1": 0.3412,
        "Micro F1": 0.3688,
        "Unweighted average recall": 0.33,
    }
    assert metric_values(metadata, "test2") == {"Macro F1": 0.301}
    f1 = [m for m in metadata["model-index"][0]["results"][0]["metrics"] if m["type"] == "f1"]
    assert sorted(m["args"]["average"] for m in f1) == ["macro", "micro"]

    # Label map from the config, every class.
    for i, label in model.config.id2label.items():
        assert f"| {i} | {label} |" in text
    # Paper 000 (MASP pooling) with its reported numbers beside the measured ones.
    assert PAPERS["000"]["title"] in text
    assert "| Macro F1 | 0.3661 | 0.3412 | 0.3010 |" in text
    assert "| Micro F1 | 0.3794 | 0.3688 | n/a |" in text
    # Usage through both load paths, the pipeline and the Space.
    assert 'from_pretrained("org/ser-masp", trust_remote_code=True)' in text
    assert 'pipeline("audio-classification", model="org/ser-masp")' in text
    assert "spaces/org/ser-demo" in text
    # Intended use and legal limits.
    assert "EU AI Act" in text and "workplace" in text and "education" in text
    assert "gender" in text.lower()


def test_attribute_card_uses_ccc_and_the_challenge_baseline():
    model = tiny_masp_model(problem_type="regression", pooling="asp")
    results = {"test": {"ccc_arousal": 0.61, "ccc_valence": 0.52, "ccc_dominance": 0.47, "ccc_mean": 0.533}}
    text = render_model_card(CardData(model_id="org/ser-avd", eval_results=results), model)
    metadata = parse_card_metadata(text)
    assert metadata["metrics"] == ["ccc"]
    assert metric_values(metadata, "test") == {
        "CCC arousal": 0.61,
        "CCC valence": 0.52,
        "CCC dominance": 0.47,
        "CCC mean": 0.533,
    }
    assert metadata["model-index"][0]["results"][0]["task"]["name"] == "Speech emotion attribute prediction"
    assert PAPERS["002"]["title"] in text
    assert "| CCC arousal | 0.6230 | 0.6100 |" in text
    assert "| CCC dominance | 0.4770 | 0.4700 |" in text
    assert "arousal, valence, dominance" in text


def test_card_without_results_has_no_model_index():
    metadata = card_metadata(CardData())
    assert "model-index" not in metadata
    text = render_model_card(CardData())  # no model: still a valid card
    assert parse_card_metadata(text)["pipeline_tag"] == "audio-classification"
    assert "No evaluation results" in text


def test_card_data_validates_its_input():
    with pytest.raises(ValueError, match="no field 'colour'"):
        CardData().update(colour="blue")
    with pytest.raises(ValueError, match="paper='999'"):
        CardData(paper="999")
    card = CardData()
    card.add_eval_results("test", {"f1_macro": 0.3, "eval_runtime": 1.2, "ccc": float("nan")})
    assert card.eval_results == {"test": {"f1_macro": 0.3}}


def test_writing_a_card_never_raises(tmp_path, caplog):
    broken = CardData(eval_results={"test": {"f1_macro": "not a number"}})  # bypasses add_eval_results
    with caplog.at_level(logging.WARNING, logger="hf_ser.publishing.model_card"):
        assert write_model_card(tmp_path, broken, tiny_masp_model()) is None
        assert write_model_card(tmp_path / "missing" / "folder", CardData()) is None
    assert "Could not write the model card" in caplog.text
    assert write_model_card(tmp_path, CardData()) == tmp_path / "README.md"


def test_callback_fills_the_card_during_training(tmp_path):
    from datasets import ClassLabel, Dataset, Features, Sequence, Value
    from sklearn.metrics import f1_score
    from transformers import Trainer, TrainingArguments

    labels = [0, 7, 7, 1, 7, 0]
    features = Features(
        {
            "input_values": Sequence(Value("float32")),
            "label": ClassLabel(names=list(tiny_masp_model().config.id2label.values())),
            "speaker_id": Value("string"),
            "gender": Value("string"),
        }
    )
    data = Dataset.from_dict(
        {
            "input_values": [tone(0.25, freq=150 + 40 * i, seed=i) for i in range(6)],
            "label": labels,
            "speaker_id": ["s1", "s1", "s2", "s3", "s3", "s3"],
            "gender": ["Female", "Female", "Male", "Female", "Female", "Female"],
        },
        features=features,
    )

    def collate(
        rows,
    ):  # metadata columns stay in the dataset (remove_unused_columns=False), as audio collators need
        return {
            "input_values": torch.tensor(np.stack([r["input_values"] for r in rows]), dtype=torch.float32),
            "labels": torch.tensor([r["label"] for r in rows]),
        }

    def compute_metrics(prediction):
        logits = prediction.predictions[0]  # (logits, embeddings)
        predicted = np.argmax(logits, axis=-1)
        return {
            "f1_macro": f1_score(prediction.label_ids, predicted, average="macro"),
            "f1_micro": f1_score(prediction.label_ids, predicted, average="micro"),
        }

    model = tiny_masp_model()
    callback = ModelCardCallback(CardData(model_id="org/tiny"))
    args = TrainingArguments(
        output_dir=str(tmp_path / "run"),
        learning_rate=3e-4,
        per_device_train_batch_size=3,
        max_steps=2,
        save_steps=2,
        report_to="none",
        use_cpu=True,
        disable_tqdm=True,
        remove_unused_columns=False,
    )
    trainer = Trainer(
        model=model,
        args=args,
        train_dataset=data,
        data_collator=collate,
        compute_metrics=compute_metrics,
        callbacks=[callback],
    )
    assert model.model_card_data is callback.card_data
    trainer.train()
    metrics = trainer.evaluate(data, metric_key_prefix="eval_test")

    card = callback.card_data
    assert card.hyperparameters["learning_rate"] == 3e-4
    assert card.hyperparameters["max_steps"] == 2
    assert "output_dir" not in card.hyperparameters
    assert card.config_changes["num_trainable_layers"] == 2
    assert card.train_stats == {
        "clips": 6,
        "speakers": 3,
        "gender": {"Female": 5, "Male": 1},
        "per_class": {"Neutral": 3, "Angry": 2, "Sad": 1},
    }
    assert card.eval_results["test"]["f1_macro"] == pytest.approx(metrics["eval_test_f1_macro"])
    assert card.versions["transformers"]

    # Written with the checkpoint and at the end of training.
    checkpoint_card = (tmp_path / "run" / "checkpoint-2" / "README.md").read_text()
    assert "learning_rate" in checkpoint_card and "Neutral 3" in checkpoint_card
    assert parse_card_metadata((tmp_path / "run" / "README.md").read_text())["license"] == "apache-2.0"
    # After evaluation the rendered card carries the test results in its model-index.
    metadata = parse_card_metadata(render_model_card(card, model))
    assert metric_values(metadata, "test")["Macro F1"] == pytest.approx(
        metrics["eval_test_f1_macro"], abs=1e-4
    )


# ------------------------------------------------------------------------------ huggingface_hub card classes
def test_card_data_is_a_hub_model_card_data_and_its_metadata_validates():
    from huggingface_hub import ModelCard, ModelCardData
    from huggingface_hub.repocard_data import eval_results_to_model_index

    model = tiny_masp_model()
    card = CardData(model_id="org/ser-masp", eval_results=RESULTS).bind(model)
    assert isinstance(card, ModelCardData)
    assert card.to_dict()["model-index"] == eval_results_to_model_index("ser-masp", card.to_eval_results())
    parsed = ModelCard(render_model_card(card, model)).data  # the Hub's own parser and validation
    assert parsed.pipeline_tag == "audio-classification" and parsed.library_name == "transformers"
    assert parsed.model_name == "ser-masp"
    assert {(r.dataset_name, r.metric_name, r.metric_value) for r in parsed.eval_results} == {
        ("test1", "Macro F1", 0.3412),
        ("test1", "Micro F1", 0.3688),
        ("test1", "Unweighted average recall", 0.33),
        ("test2", "Macro F1", 0.301),
    }
    assert "model_name" not in CardData(model_id="org/x").to_dict()  # a model-index field only


def test_pipeline_tag_follows_the_model_kind():
    from hf_ser import MultimodalSERConfig, MultiViewSERConfig

    masp = card_metadata(CardData(), tiny_masp_model().config)
    assert masp["pipeline_tag"] == "audio-classification" and "audio-classification" in masp["tags"]
    # A transformers audio classifier trained with hf_ser's trainers is one too.
    from transformers import Wav2Vec2Config

    assert card_metadata(CardData(), Wav2Vec2Config())["pipeline_tag"] == "audio-classification"
    for config in (MultimodalSERConfig(), MultiViewSERConfig()):  # speech + text; cached embeddings
        results = {"test": {"ccc_arousal": 0.5}}
        metadata = card_metadata(CardData(eval_results=results), config)
        assert metadata["pipeline_tag"] == "other", config.model_type
        assert "audio-classification" not in metadata["tags"]
        assert metadata["model-index"][0]["results"][0]["task"]["type"] == "other"
        assert metadata["metrics"] == ["ccc"]


def test_card_round_trips_through_its_readme():
    card = CardData(
        model_id="org/ser-masp",
        model_name="SER --> MASP",  # would close the hidden comment if not escaped
        license="mit",
        tags=["demo"],
        paper="000",
        eval_results={"test1": {"f1_macro": 0.341234567}, "validation": {"f1_macro": 0.5, "uar": 0.25}},
        hyperparameters={"learning_rate": 3e-4, "lr_scheduler_type": "cosine"},
        config_changes={"num_trainable_layers": 2},
        train_stats={"clips": 6, "per_class": {"Neutral": 3, "Sad": 3}},
        space_id="org/demo",
        versions={"python": "3.11"},
    )
    text = render_model_card(card, tiny_masp_model())
    assert CardData.from_model_card(text) == card  # every field, results at full precision
    # The YAML block wins for what it holds: an edit there survives the next update.
    edited = text.replace("license: mit", "license: cc-by-4.0", 1)
    assert CardData.from_model_card(edited).license == "cc-by-4.0"
    # A README that hf_ser did not write has no card data to read back.
    assert CardData.from_model_card("---\nlicense: mit\n---\n# Mine\n") is None
    with pytest.raises(ValueError, match="model-index|model_index"):
        CardData.from_model_card("---\nmodel-index: [{}]\n---\n# Broken\n")


def test_merge_adds_results_and_set_fields():
    card = CardData(eval_results={"validation": {"f1_macro": 0.5}}, hyperparameters={"max_steps": 2})
    card.merge(CardData(eval_results={"test": {"f1_macro": 0.3}, "validation": {"uar": 0.4}}, space_id="o/s"))
    assert card.eval_results == {"validation": {"f1_macro": 0.5, "uar": 0.4}, "test": {"f1_macro": 0.3}}
    assert card.space_id == "o/s" and card.hyperparameters == {"max_steps": 2}  # defaults do not overwrite
    assert card.license == "apache-2.0"


def test_metric_keys_map_to_evaluation_sets():
    from hf_ser.publishing.model_card import _split_metric_key

    assert _split_metric_key("eval_f1_macro") == ("validation", "f1_macro")
    assert _split_metric_key("eval_test1_ccc_mean") == ("test1", "ccc_mean")
    assert _split_metric_key("test_f1_micro") == ("test", "f1_micro")  # Trainer.predict's default prefix
    assert _split_metric_key("eval_loss") is None and _split_metric_key("f1_macro") is None


# ------------------------------------------------------------------------------------ the card's life
def test_save_pretrained_writes_the_card_and_from_pretrained_reads_it(tmp_path):
    from huggingface_hub import ModelCard

    from hf_ser import WavLMForMASPClassification

    model = tiny_masp_model()
    model.model_card_data = CardData(eval_results={"test": {"f1_macro": 0.3456789}}, space_id="org/demo")
    model.save_pretrained(tmp_path)
    text = (tmp_path / "README.md").read_text()
    metadata = ModelCard(text).data
    assert metadata.pipeline_tag == "audio-classification"
    assert [(r.dataset_name, r.metric_value) for r in metadata.eval_results] == [("test", 0.3457)]
    assert "| 0 | Angry |" in text and "spaces/org/demo" in text
    config = (tmp_path / "config.json").read_text()
    assert "eval_results" not in config and "space_id" not in config  # card data is not config

    reloaded = WavLMForMASPClassification.from_pretrained(tmp_path)
    assert reloaded.model_card_data.eval_results == {"test": {"f1_macro": 0.3456789}}
    assert reloaded.model_card_data.space_id == "org/demo"
    fresh = tiny_masp_model()
    assert fresh.model_card_data is None  # nothing until trained, saved or loaded


def test_save_pretrained_keeps_the_body_of_an_authors_readme(tmp_path):
    from huggingface_hub import ModelCard

    (tmp_path / "README.md").write_text(
        "---\nlicense: mit\nwidget: []\n---\n# My model\n\nWritten by hand.\n"
    )
    model = tiny_masp_model()
    model.model_card_data = CardData(eval_results={"test": {"f1_macro": 0.3}})
    model.save_pretrained(tmp_path)
    card = ModelCard((tmp_path / "README.md").read_text())
    assert card.text.strip() == "# My model\n\nWritten by hand."
    assert card.data.license == "mit" and card.data.widget == []  # the author's metadata stays
    assert card.data.pipeline_tag == "audio-classification" and "hf_ser" in card.data.tags
    assert [(r.dataset_name, r.metric_value) for r in card.data.eval_results] == [("test", 0.3)]


def _tiny_classification_data(model):
    from datasets import ClassLabel, Dataset, Features, Sequence, Value

    features = Features(
        {
            "input_values": Sequence(Value("float32")),
            "label": ClassLabel(names=list(model.config.id2label.values())),
        }
    )
    rows = {"input_values": [tone(0.25, freq=150 + 40 * i, seed=i) for i in range(4)], "label": [0, 1, 0, 1]}
    return Dataset.from_dict(rows, features=features)


def _collate(rows):
    return {
        "input_values": torch.tensor(np.stack([r["input_values"] for r in rows]), dtype=torch.float32),
        "labels": torch.tensor([r["label"] for r in rows]),
    }


def test_trainers_add_the_card_callback_once(tmp_path):
    from hf_ser import CCCLossTrainer, FocalLossTrainer, SERTrainingArguments

    args = SERTrainingArguments(str(tmp_path), report_to="none", use_cpu=True, disable_tqdm=True)

    def card_callbacks(trainer):
        return [c for c in trainer.callback_handler.callbacks if isinstance(c, ModelCardCallback)]

    model = tiny_masp_model()
    (callback,) = card_callbacks(FocalLossTrainer(model=model, args=args))
    assert model.model_card_data is callback.card_data

    given = ModelCardCallback(CardData(model_id="org/mine"))
    model = tiny_masp_model(problem_type="regression", num_labels=3)
    assert card_callbacks(CCCLossTrainer(model=model, args=args, callbacks=[given])) == [given]
    assert model.model_card_data.model_id == "org/mine"

    # A plain Trainer with the callback and no card: the model's own card data (e.g. read from its README) is used.
    from transformers import Trainer

    model = tiny_masp_model()
    model.model_card_data = CardData(space_id="org/demo")
    callback = ModelCardCallback()
    Trainer(model=model, args=args, callbacks=[callback])
    assert callback.card_data is model.model_card_data and callback.card_data.space_id == "org/demo"


def test_trained_model_saves_a_card_with_its_results_without_extra_code(tmp_path):
    """What the recipes do: train, evaluate on the development set, save_model. The README carries the results."""
    from huggingface_hub import ModelCard

    from hf_ser import FocalLossTrainer, SERTrainingArguments

    torch.manual_seed(0)
    model = tiny_masp_model()
    data = _tiny_classification_data(model)
    model.model_card_data = CardData(eval_results={"old": {"f1_macro": 0.9}})  # of other weights: dropped
    args = SERTrainingArguments(
        str(tmp_path / "run"), max_steps=2, per_device_train_batch_size=2, report_to="none", use_cpu=True,
        disable_tqdm=True, save_strategy="no", eval_strategy="no",
    )  # fmt: skip
    trainer = FocalLossTrainer(
        model=model, args=args, train_dataset=data, eval_dataset=data, data_collator=_collate
    )
    trainer.train()
    metrics = trainer.evaluate()
    test_metrics = trainer.predict(data).metrics  # Trainer.predict: "test"
    trainer.save_model(str(tmp_path / "best"))

    card = ModelCard((tmp_path / "best" / "README.md").read_text())
    values = {(r.dataset_name, r.metric_name): r.metric_value for r in card.data.eval_results}
    assert values[("validation", "Macro F1")] == round(metrics["eval_f1_macro"], 4)
    assert values[("test", "Macro F1")] == round(test_metrics["test_f1_macro"], 4)
    assert "old" not in {dataset for dataset, _ in values}
    assert "max_steps" in card.text and "learning_rate" not in model.model_card_data.hyperparameters


def test_best_checkpoint_results_replace_the_last_evaluation():
    from types import SimpleNamespace

    card = CardData(eval_results={"validation": {"f1_macro": 0.2}, "test": {"f1_macro": 0.1}})
    callback = ModelCardCallback(card)
    state = SimpleNamespace(
        best_model_checkpoint="out/checkpoint-4",
        log_history=[
            {"eval_f1_macro": 0.5, "eval_uar": 0.4, "step": 4},
            {"loss": 1.0, "step": 4},
            {"eval_f1_macro": 0.2, "step": 6},
        ],
    )
    args = SimpleNamespace(load_best_model_at_end=True, output_dir=None)
    callback.on_train_end(args, state, None)
    assert card.eval_results == {"test": {"f1_macro": 0.1}, "validation": {"f1_macro": 0.5, "uar": 0.4}}


def test_base_model_names_only_the_checkpoints_the_model_was_built_around(tmp_path):
    from huggingface_hub import ModelCard
    from transformers import WavLMConfig, WavLMModel

    from hf_ser import WavLMForMASPClassification
    from hf_ser.publishing.model_card import base_model_of
    from tests.tiny import tiny_encoder_config

    # Trained from scratch: no base model is claimed (the card used to say microsoft/wavlm-large for every model).
    scratch = tiny_masp_model()
    scratch.save_pretrained(tmp_path / "scratch")
    assert ModelCard((tmp_path / "scratch" / "README.md").read_text()).data.base_model is None
    assert "initialised from" not in (tmp_path / "scratch" / "README.md").read_text()

    # Built around an encoder checkpoint: the loader records it; a local path is no Hub id, so the card leaves it out.
    WavLMModel(WavLMConfig(**tiny_encoder_config("wavlm"))).save_pretrained(tmp_path / "encoder")
    built = WavLMForMASPClassification.from_pretrained(
        tmp_path / "encoder", num_labels=4, num_trainable_layers=2
    )
    assert built.pretrained_from == (str(tmp_path / "encoder"),)
    assert base_model_of(built) is None

    # Hub ids are named: one as a string, several (paper 001's speech + text encoders) as a list, in the YAML and
    # the text, and they survive the save and reload.
    built.pretrained_from = ("microsoft/wavlm-large",)
    assert base_model_of(built) == "microsoft/wavlm-large"
    built.save_pretrained(tmp_path / "built")
    card = (tmp_path / "built" / "README.md").read_text()
    assert ModelCard(card).data.base_model == "microsoft/wavlm-large"
    assert "initialised from [`microsoft/wavlm-large`](https://huggingface.co/microsoft/wavlm-large)" in card
    reloaded = WavLMForMASPClassification.from_pretrained(tmp_path / "built")
    assert reloaded.model_card_data.base_model == "microsoft/wavlm-large"
    two = tiny_masp_model()
    two.pretrained_from = ("microsoft/wavlm-large", "FacebookAI/roberta-large")
    two.save_pretrained(tmp_path / "two")
    card = (tmp_path / "two" / "README.md").read_text()
    assert ModelCard(card).data.base_model == ["microsoft/wavlm-large", "FacebookAI/roberta-large"]
    assert "and [`FacebookAI/roberta-large`]" in card
