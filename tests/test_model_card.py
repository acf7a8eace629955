"""Model cards: YAML metadata the Hub accepts, the card body, and the Trainer callback that fills the card."""

from __future__ import annotations

import logging

import numpy as np
import pytest
import torch

from hf_ser.model_card import (
    PAPERS,
    CardData,
    ModelCardCallback,
    card_metadata,
    parse_card_metadata,
    render_model_card,
    write_model_card,
)
from tiny import tiny_masp_model, tone

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
    with caplog.at_level(logging.WARNING, logger="hf_ser.model_card"):
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
