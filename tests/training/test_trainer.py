"""FocalLossTrainer / CCCLossTrainer on tiny models: learning, gradient accumulation, auxiliary loss, balanced
sampling, model selection, and resuming after a killed run."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

import numpy as np
import pytest
import torch
from datasets import Dataset
from torch import nn
from transformers import EvalPrediction, PreTrainedConfig, Wav2Vec2Config, Wav2Vec2ForSequenceClassification

from hf_ser import (
    CCCLoss,
    FocalLoss,
    WavLMForMASPClassification,
    WavLMMASPConfig,
    inverse_frequency_class_weights,
)
from hf_ser.training.sampler import ClassBalancedUndersampler, RandomEpochSampler
from hf_ser.training.trainer import (
    CCCLossTrainer,
    FocalLossTrainer,
    balanced_attribute_metrics,
)
from tests.tiny import (
    FREQS,
    args,
    collator,
    padded_fraction,
    record_batches,
    tiny_encoder_config,
    tiny_masp_model,
    tone,
    toy_dataset,
)


def test_focal_trainer_learns_and_selects_on_macro_f1(tmp_path):
    torch.manual_seed(0)
    model = tiny_masp_model(num_labels=2, head_dropout=0.0)
    train = toy_dataset((8, 8), seconds=0.1)
    trainer = FocalLossTrainer(
        model=model,
        args=args(
            tmp_path,
            num_train_epochs=6,
            per_device_eval_batch_size=16,
            eval_strategy="epoch",
            save_strategy="epoch",
            load_best_model_at_end=True,
        ),
        train_dataset=train,
        eval_dataset=train,
        data_collator=collator(),
    )
    # Selection on the whole evaluation set's macro-F1, not the loss.
    assert trainer.args.metric_for_best_model == "f1_macro" and trainer.args.greater_is_better
    before = trainer.evaluate()
    trainer.train()
    evals = [log for log in trainer.state.log_history if "eval_f1_macro" in log]  # one per epoch
    assert len(evals) == 6 and {"eval_f1_micro", "eval_uar", "eval_war"} <= set(evals[0])
    assert evals[-1]["eval_loss"] < 0.75 * before["eval_loss"]
    assert evals[-1]["eval_f1_macro"] > 0.9
    best = max(log["eval_f1_macro"] for log in evals)
    assert trainer.state.best_metric == best
    # The best checkpoint is the first epoch that reached the best macro-F1 (not the lowest loss), and is reloaded.
    best_epoch = next(log["epoch"] for log in evals if log["eval_f1_macro"] == best)
    assert trainer.state.best_model_checkpoint.endswith(f"checkpoint-{int(best_epoch) * 4}")
    assert trainer.evaluate()["eval_f1_macro"] == best


def test_ccc_trainer_learns_attributes(tmp_path):
    torch.manual_seed(0)
    model = tiny_masp_model(problem_type="regression", num_labels=3, head_dropout=0.0)
    train = toy_dataset((6, 6), seed=1, seconds=0.1)
    trainer = CCCLossTrainer(
        model=model,
        # One evaluation batch: the eval loss is then the CCC loss of the whole set (CCC is a batch statistic).
        args=args(
            tmp_path,
            num_train_epochs=6,
            per_device_train_batch_size=6,
            per_device_eval_batch_size=16,
            learning_rate=1e-2,
        ),
        train_dataset=train,
        eval_dataset=train,
        data_collator=collator(label_columns=("arousal", "valence", "dominance")),
    )
    assert trainer.args.metric_for_best_model == "ccc_mean"
    before = trainer.evaluate()
    trainer.train()
    after = trainer.evaluate()
    assert {"eval_ccc_arousal", "eval_ccc_valence", "eval_ccc_dominance", "eval_ccc_mean"} <= set(after)
    # eval_loss is 1 - CCC summed over the three attributes on the same set: it must mirror the metric.
    assert after["eval_loss"] == pytest.approx(3 * (1 - after["eval_ccc_mean"]), abs=1e-4)
    assert after["eval_loss"] < 0.7 * before["eval_loss"]
    assert after["eval_ccc_mean"] > before["eval_ccc_mean"] + 0.3


def tiny_wav2vec2_classifier(num_labels: int = 2) -> Wav2Vec2ForSequenceClassification:
    config = Wav2Vec2Config(
        hidden_size=16,
        num_hidden_layers=1,
        num_attention_heads=2,
        intermediate_size=20,
        conv_dim=(8, 8),
        conv_stride=(5, 4),
        conv_kernel=(10, 8),
        num_conv_pos_embeddings=8,
        num_conv_pos_embedding_groups=2,
        classifier_proj_size=8,
        num_labels=num_labels,
        mask_time_prob=0.0,
        hidden_dropout=0.0,
        attention_dropout=0.0,
        activation_dropout=0.0,
        feat_proj_dropout=0.0,
        final_dropout=0.0,
        layerdrop=0.0,
    )
    return Wav2Vec2ForSequenceClassification(config)


def test_plain_transformers_model_gets_the_trainer_loss(tmp_path):
    torch.manual_seed(0)
    model = tiny_wav2vec2_classifier()
    train = toy_dataset((6, 2))
    trainer = FocalLossTrainer(
        model=model,
        args=args(tmp_path, max_steps=3),
        train_dataset=train,
        data_collator=collator(),
        class_weights="inverse_frequency",
        focal_gamma=1.5,
    )
    expected_alpha = inverse_frequency_class_weights(train["label"], num_classes=2)
    torch.testing.assert_close(trainer.loss_fct.alpha, expected_alpha)
    # The model's own config records the loss the trainer computes for it, so its config.json describes it too.
    assert (model.config.loss, model.config.focal_gamma) == ("focal", 1.5)
    assert model.config.class_weights == pytest.approx(expected_alpha.tolist())
    batch = collator()([train[i] for i in range(8)])
    model.eval()
    loss = trainer.compute_loss(model, batch)
    with torch.no_grad():
        logits = model(input_values=batch["input_values"], attention_mask=batch["attention_mask"]).logits
    reference = FocalLoss(gamma=1.5, alpha=expected_alpha)(logits, batch["labels"])
    torch.testing.assert_close(loss.detach(), reference)
    assert "labels" in batch  # the caller's batch is not modified
    result = trainer.train()
    assert result.global_step == 3 and np.isfinite(result.training_loss)


class AuxToyModel(nn.Module):
    """A model that returns `logits` and `aux_logits`, like paper 001's gender head."""

    def __init__(self):
        super().__init__()
        self.config = PreTrainedConfig()
        self.main = nn.Linear(4, 3)
        self.aux = nn.Linear(4, 2)

    def forward(self, features):
        return {"logits": self.main(features), "aux_logits": self.aux(features)}


def test_auxiliary_loss_is_added_with_its_weight(tmp_path):
    torch.manual_seed(0)
    model = AuxToyModel()
    features = torch.randn(6, 4)
    labels, aux_labels = torch.tensor([0, 1, 2, 0, 1, 2]), torch.tensor([0, 1, 1, 0, -100, 1])
    dummy = Dataset.from_dict({"features": features.tolist(), "label": labels.tolist()})
    trainer = FocalLossTrainer(
        model=model, args=args(tmp_path, aux_loss_weight=0.5), train_dataset=dummy, focal_gamma=2.0
    )
    assert model.config.gender_loss_weight == 0.5  # written where the loss is described
    inputs = {"features": features, "labels": labels, "gender": aux_labels}
    out = model(features)
    focal = FocalLoss(gamma=2.0)(out["logits"], labels)
    aux = nn.functional.cross_entropy(out["aux_logits"], aux_labels, ignore_index=-100)
    torch.testing.assert_close(trainer.compute_loss(model, inputs), focal + 0.5 * aux)
    # The former key `aux_labels` still reaches the same term.
    legacy = {"features": features, "labels": labels, "aux_labels": aux_labels}
    torch.testing.assert_close(trainer.compute_loss(model, legacy), focal + 0.5 * aux)
    # Without gender labels, or with weight 0 in the config, only the task loss remains.
    torch.testing.assert_close(trainer.compute_loss(model, {"features": features, "labels": labels}), focal)
    model.config.gender_loss_weight = 0.0
    torch.testing.assert_close(trainer.compute_loss(model, inputs), focal)
    with pytest.raises(ValueError, match="needs `labels`"):
        trainer.compute_loss(model, {"features": features})


@pytest.mark.parametrize("task", ["categorical", "attributes"])
def test_saved_config_describes_the_loss_the_trainer_was_given(tmp_path, task, caplog):
    """Loss arguments given to the trainer end up in config.json: after a training step, a model reloaded from the
    saved folder computes the same loss on a batch as the trained one (issue 17: trainer-given class weights used to
    leave `config.class_weights=None`, and the trainer's gamma was not the config's)."""
    torch.manual_seed(0)
    data = toy_dataset((6, 2), seed=6, seconds=0.1)
    if task == "categorical":
        # The baseline config says unweighted CE; the trainer asks for focal loss with inverse-frequency weights.
        config = WavLMMASPConfig.challenge_baseline(
            encoder_config=tiny_encoder_config(),
            head_hidden_size=16,
            head_input_dropout=0.0,
            id2label={0: "low", 1: "high"},  # named: v5 drops default LABEL_i names from config.json
        )
        model, trainer_cls, labels = WavLMForMASPClassification(config), FocalLossTrainer, ("label",)
        given = {"focal_gamma": 1.5, "class_weights": "inverse_frequency"}
        weights = [8 / (2 * 6), 8 / (2 * 2)]  # N / (C * n_c)
        want = {"loss": "focal", "focal_gamma": 1.5, "class_weights": pytest.approx(weights)}
        reference = FocalLoss(gamma=1.5, alpha=weights)
    else:
        model, trainer_cls = tiny_masp_model(problem_type="regression", head_dropout=0.0), CCCLossTrainer
        labels = ("arousal", "valence", "dominance")
        given = {"ccc_reduction": "mean", "attribute_weights": [1.0, 2.0, 0.5]}
        want = {"loss": "ccc", "ccc_reduction": "mean", "ccc_weights": [1.0, 2.0, 0.5]}
        reference = CCCLoss(reduction="mean", weights=[1.0, 2.0, 0.5])
    with caplog.at_level("WARNING", logger="hf_ser.training.trainer"):
        trainer = trainer_cls(
            model=model,
            args=args(tmp_path, max_steps=1),
            train_dataset=data,
            data_collator=collator(label_columns=labels),
            **given,
        )
    if task == "categorical":  # the given value replaced a different one: said so
        assert "config.loss='focal' (the config had 'ce')" in caplog.text
    assert trainer.train().global_step == 1
    trainer.save_model(str(tmp_path / "saved"))
    saved = json.loads((tmp_path / "saved" / "config.json").read_text())
    assert {key: saved[key] for key in want} == want
    reloaded = WavLMForMASPClassification.from_pretrained(tmp_path / "saved").eval()
    batch = collator(label_columns=labels)([data[i] for i in (0, 1, 6, 7)])
    model.eval()
    with torch.no_grad():
        trained = model(**batch)
        torch.testing.assert_close(reloaded(**batch).loss, trained.loss)
        # ... and it is the loss that was asked for.
        targets = batch["labels"] if task == "categorical" else batch["labels"].float()
        torch.testing.assert_close(trained.loss, reference(trained.logits.float(), targets))


def test_trainer_arguments_left_out_keep_the_config_and_given_ones_replace_it(tmp_path, caplog):
    data = toy_dataset((4, 4), seconds=0.05)
    model = tiny_masp_model(num_labels=2, focal_gamma=0.5, class_weights=[1.0, 3.0])
    trainer = FocalLossTrainer(model=model, args=args(tmp_path), train_dataset=data, data_collator=collator())
    # Nothing given: the config's loss is trained (the trainer used to train its own gamma 2, unweighted).
    assert (model.config.focal_gamma, model.config.class_weights) == (0.5, [1.0, 3.0])
    batch = collator()([data[i] for i in (0, 1, 4, 5)])
    model.eval()
    with torch.no_grad():
        logits = model(input_values=batch["input_values"], attention_mask=batch["attention_mask"]).logits
        want = FocalLoss(gamma=0.5, alpha=[1.0, 3.0])(logits, batch["labels"])
        torch.testing.assert_close(trainer.compute_loss(model, batch), want)
    # A given value takes precedence: written into the config, with a warning naming the replaced value.
    with caplog.at_level("WARNING", logger="hf_ser.training.trainer"):
        FocalLossTrainer(model=model, args=args(tmp_path), train_dataset=data, focal_gamma=2.0)
    assert model.config.focal_gamma == 2.0 and "config.focal_gamma=2.0 (the config had 0.5)" in caplog.text
    # gamma 0 on a weighted-CE config is that config already: nothing changes.
    baseline = tiny_masp_model(num_labels=2, loss="ce", focal_gamma=2.0)
    FocalLossTrainer(model=baseline, args=args(tmp_path), focal_gamma=0.0)
    assert (baseline.config.loss, baseline.config.focal_gamma) == ("ce", 2.0)
    # CCCLossTrainer trains 1 - CCC: an MSE config is set to it.
    mse = tiny_masp_model(problem_type="regression", loss="mse")
    CCCLossTrainer(model=mse, args=args(tmp_path))
    assert mse.config.loss == "ccc"


def test_trainer_loss_arguments_are_checked_before_training(tmp_path):
    data = toy_dataset((4, 4), seconds=0.05)
    classifier, regressor = tiny_masp_model(num_labels=2), tiny_masp_model(problem_type="regression")
    with pytest.raises(ValueError, match="use CCCLossTrainer"):
        FocalLossTrainer(model=regressor, args=args(tmp_path))
    with pytest.raises(ValueError, match="use FocalLossTrainer"):
        CCCLossTrainer(model=classifier, args=args(tmp_path))
    with pytest.raises(ValueError, match="class_weights has 3 entries for 2"):
        FocalLossTrainer(model=classifier, args=args(tmp_path), class_weights=[1.0, 2.0, 3.0])
    with pytest.raises(ValueError, match="'inverse_frequency'"):
        FocalLossTrainer(model=classifier, args=args(tmp_path), class_weights="balanced")
    with pytest.raises(ValueError, match="needs a train_dataset"):
        FocalLossTrainer(model=classifier, args=args(tmp_path), class_weights="inverse_frequency")
    with pytest.raises(ValueError, match="focal_gamma"):
        FocalLossTrainer(model=classifier, args=args(tmp_path), train_dataset=data, focal_gamma=-1.0)
    with pytest.raises(ValueError, match="ccc_reduction"):
        CCCLossTrainer(model=regressor, args=args(tmp_path), ccc_reduction="none")
    with pytest.raises(ValueError, match="ccc_weights has 2 entries for 3"):
        CCCLossTrainer(model=regressor, args=args(tmp_path), attribute_weights=[1.0, 2.0])


def test_ccc_trainer_trains_the_multiview_models_configured_loss(tmp_path):
    """`MultiViewSERForRegression` computes its loss itself (every score set, `loss_target="branches"`); the trainer
    only sets the reduction in its config."""
    from hf_ser import MultiViewSERConfig, MultiViewSERForRegression

    torch.manual_seed(0)
    config = MultiViewSERConfig(
        view_names=["a", "b"], view_dims=[8, 8], fusion_size=8, gate_size=8, mlp_hidden_size=8, dropout=0.0
    )
    model = MultiViewSERForRegression(config).eval()
    trainer = CCCLossTrainer(model=model, args=args(tmp_path), ccc_reduction="mean")
    assert config.ccc_reduction == "mean" and config.loss_target == "branches"
    batch = {"view_embeddings": torch.randn(6, 2, 8), "labels": torch.randn(6, 3)}
    with torch.no_grad():
        score_sets = model(view_embeddings=batch["view_embeddings"]).score_sets
        want = sum(
            CCCLoss(reduction="mean")(score_sets[:, k], batch["labels"]) for k in range(score_sets.shape[1])
        )
        torch.testing.assert_close(trainer.compute_loss(model, batch), want)


def final_weights(trainer) -> dict[str, torch.Tensor]:
    return {name: p.detach().clone() for name, p in trainer.model.named_parameters() if p.requires_grad}


@pytest.mark.parametrize("trainer_cls", [FocalLossTrainer, CCCLossTrainer])
def test_gradient_accumulation_2x2_equals_batch_4(tmp_path, trainer_cls):
    """One SGD step on 4 equal-length clips: micro-batches 2 x accumulation 2 must equal one batch of 4 for the focal
    loss (a mean over samples). For CCC, a batch statistic, accumulation averages the two micro-batch losses; the test
    checks exactly that contract against a hand-computed step."""
    regression = trainer_cls is CCCLossTrainer
    data = toy_dataset((2, 2), seed=3)
    labels = ("arousal", "valence", "dominance") if regression else ("label",)

    def run(batch_size, accumulation):
        torch.manual_seed(0)
        kwargs = {"problem_type": "regression", "num_labels": 3} if regression else {"num_labels": 2}
        model = tiny_masp_model(head_dropout=0.0, **kwargs)
        initial = {n: p.detach().clone() for n, p in model.named_parameters() if p.requires_grad}
        trainer = trainer_cls(
            model=model,
            args=args(
                tmp_path,
                max_steps=1,
                per_device_train_batch_size=batch_size,
                gradient_accumulation_steps=accumulation,
                optim="sgd",
                learning_rate=0.5,
                lr_scheduler_type="constant",
                weight_decay=0.0,
                max_grad_norm=0.0,
            ),
            train_dataset=data,
            data_collator=collator(label_columns=labels),
        )
        trainer.train()
        return initial, final_weights(trainer), trainer

    initial, big, _ = run(4, 1)
    _, accumulated, trainer = run(2, 2)
    changed = [n for n in big if not torch.equal(big[n], initial[n])]
    assert changed, "the step changed nothing: the test would be vacuous"
    if not regression:
        for name in big:
            torch.testing.assert_close(accumulated[name], big[name], rtol=1e-4, atol=1e-6)
        return
    # CCC: the accumulated step is -lr * mean of the two micro-batch gradients, in the trainer's own batch order.
    torch.manual_seed(0)
    model = tiny_masp_model(head_dropout=0.0, problem_type="regression", num_labels=3)
    model.train()
    # Capture the micro-batches in the order the trainer used them, then redo the step by hand.
    captured = []
    original = trainer_cls.compute_loss

    def spy(self, model, inputs, return_outputs=False, num_items_in_batch=None):
        captured.append({k: v.clone() for k, v in inputs.items()})
        return original(self, model, inputs, return_outputs, num_items_in_batch)

    trainer_cls.compute_loss = spy
    try:
        run(2, 2)
    finally:
        trainer_cls.compute_loss = original
    loss_fct = trainer.loss_fct
    params = [p for p in model.parameters() if p.requires_grad]
    names = [n for n, p in model.named_parameters() if p.requires_grad]
    grads = [torch.zeros_like(p) for p in params]
    for inputs in captured:
        out = model(input_values=inputs["input_values"], attention_mask=inputs["attention_mask"])
        loss = loss_fct(out.logits.float(), inputs["labels"].float()) / 2
        for g, new in zip(grads, torch.autograd.grad(loss, params, allow_unused=True), strict=True):
            if new is not None:  # e.g. the masked-time embedding, unused without masking
                g += new
    for name, p, g in zip(names, params, grads, strict=True):
        torch.testing.assert_close(accumulated[name], p.detach() - 0.5 * g, rtol=1e-4, atol=1e-6)


@pytest.mark.parametrize("sampling", ["undersample", "balanced_batches"])
def test_trainer_balanced_sampling(tmp_path, sampling):
    train = toy_dataset((12, 4, 4), seed=2, seconds=0.05)
    trainer = FocalLossTrainer(
        model=tiny_masp_model(num_labels=3),
        args=args(tmp_path, sampling=sampling, per_device_train_batch_size=3),
        train_dataset=train,
        data_collator=collator(),
    )
    loader = trainer.get_train_dataloader()
    epochs = []
    for epoch in range(3):
        loader.set_epoch(epoch)
        batches = [batch["labels"].tolist() for batch in loader]
        counts = Counter(label for batch in batches for label in batch)
        if sampling == "undersample":
            assert counts == {0: 4, 1: 4, 2: 4}  # min-class count per class, every epoch
        else:
            assert all(sorted(batch) == [0, 1, 2] for batch in batches)  # every batch balanced
            assert sum(counts.values()) == 21  # the 20 clips rounded up to whole batches of 3
        epochs.append(batches)
    assert epochs[0] != epochs[1]  # re-drawn every epoch


def test_sampling_argument_is_validated(tmp_path):
    with pytest.raises(ValueError, match="sampling"):
        args(tmp_path, sampling="oversample")
    with pytest.raises(ValueError, match="aux_loss_weight"):
        args(tmp_path, aux_loss_weight=-1.0)


def test_balanced_attribute_metrics():
    rng = np.random.default_rng(0)
    primary = np.array([0] * 40 + [1] * 5 + [2] * 5)
    references = rng.uniform(1, 7, size=(50, 3))
    # Perfect on the majority class, poor on the minorities: the balanced CCC must be lower than the full one.
    predictions = references.copy()
    predictions[40:] = rng.uniform(1, 7, size=(10, 3))
    compute = balanced_attribute_metrics(primary, num_trials=5, seed=0)
    result = compute(EvalPrediction(predictions=predictions, label_ids=references))
    assert result["balanced_ccc_mean"] < result["ccc_mean"] - 0.1
    # On an already balanced set with k = class size, every trial is the whole set.
    balanced = np.array([0] * 5 + [1] * 5)
    compute = balanced_attribute_metrics(balanced, num_trials=3)
    result = compute(EvalPrediction(predictions=predictions[:10], label_ids=references[:10]))
    for key in ("ccc_arousal", "ccc_valence", "ccc_dominance", "ccc_mean"):
        assert result[f"balanced_{key}"] == pytest.approx(result[key])
    with pytest.raises(ValueError, match="primary labels"):
        compute(EvalPrediction(predictions=predictions, label_ids=references))
    with pytest.raises(ValueError, match="samples_per_class"):
        balanced_attribute_metrics(balanced, samples_per_class=6)


# ------------------------------------------------------------------------------------------------ resume
RESUME_SCRIPT = r"""
import json, sys, time
from pathlib import Path
import torch
from tests.tiny import toy_dataset, collator
from tests.tiny import tiny_masp_model
from transformers import TrainerCallback
from hf_ser.training.trainer import FocalLossTrainer, SERTrainingArguments

out, resume, pause = sys.argv[1], sys.argv[2] == "resume", sys.argv[3] == "pause"

class Marker(TrainerCallback):
    def on_save(self, args, state, control, **kwargs):
        Path(out, f"saved-{{state.global_step}}").touch()
        if pause:
            time.sleep(30)  # the test kills the process here, after a complete checkpoint

torch.manual_seed(0)
model = tiny_masp_model(num_labels=2, head_dropout=0.1)
train = toy_dataset((10, 8), seed=5, seconds=0.1)
args = SERTrainingArguments(
    output_dir=out, per_device_train_batch_size=4, num_train_epochs=3, learning_rate=3e-3, save_strategy="steps",
    save_steps=5, report_to="none", use_cpu=True, logging_steps=1, seed=0, disable_tqdm=True, sampling="undersample",
)
trainer = FocalLossTrainer(model=model, args=args, train_dataset=train, data_collator=collator(max_duration_s=None),
                           callbacks=[Marker()])
result = trainer.train(resume_from_checkpoint=True if resume else None)
losses = [log["loss"] for log in trainer.state.log_history if "loss" in log]
torch.save({{n: p.detach() for n, p in trainer.model.named_parameters()}}, Path(out, "final.pt"))
Path(out, "result.json").write_text(json.dumps({{"global_step": result.global_step, "losses": losses}}))
"""


@pytest.mark.slow
def test_resume_after_kill_matches_uninterrupted_run(tmp_path):
    """Kill a training process right after its step-5 checkpoint, resume it, and compare with a run that was never
    interrupted: same number of optimizer steps, same loss trajectory, same final weights. The run uses
    undersampling (re-drawn per epoch) and dropout, so data order and RNG state must both be restored. (Random crops
    are off: `Trainer` restores the RNG only after fetching the first resumed batch, so that batch's crops would
    differ; see `AudioDataCollator`.)"""
    import json

    repo = str(Path(__file__).resolve().parents[2])  # on the child's PYTHONPATH: `tests.tiny` imports
    script = tmp_path / "train.py"
    script.write_text(RESUME_SCRIPT.format())
    env = {
        **os.environ,
        "HF_HUB_OFFLINE": "1",
        "PYTHONPATH": repo + os.pathsep + os.environ.get("PYTHONPATH", ""),
    }

    def run(out, mode, pause):
        return subprocess.run(
            [sys.executable, str(script), str(out), mode, pause],
            env=env,
            capture_output=True,
            text=True,
            timeout=300,
        )

    full = tmp_path / "full"
    done = run(full, "fresh", "no")
    assert done.returncode == 0, done.stderr[-3000:]

    interrupted = tmp_path / "interrupted"
    proc = subprocess.Popen(
        [sys.executable, str(script), str(interrupted), "fresh", "pause"],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    deadline = time.time() + 240
    while not (interrupted / "saved-5").exists():
        assert proc.poll() is None, "training ended before its first checkpoint"
        assert time.time() < deadline, "no checkpoint within 240 s"
        time.sleep(0.2)
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    assert proc.returncode == -signal.SIGKILL
    assert not (interrupted / "final.pt").exists() and not (interrupted / "checkpoint-10").exists()

    resumed = run(interrupted, "resume", "no")
    assert resumed.returncode == 0, resumed.stderr[-3000:]

    full_result = json.loads((full / "result.json").read_text())
    resumed_result = json.loads((interrupted / "result.json").read_text())
    assert (
        resumed_result["global_step"] == full_result["global_step"] == 12
    )  # 3 epochs x 4 undersampled batches
    # The resumed run's history holds the checkpoint's 5 losses, then continues the uninterrupted trajectory.
    assert len(resumed_result["losses"]) == len(full_result["losses"]) == 12
    np.testing.assert_allclose(resumed_result["losses"], full_result["losses"], rtol=1e-4)
    expected, got = torch.load(full / "final.pt"), torch.load(interrupted / "final.pt")
    assert expected.keys() == got.keys()
    for name in expected:
        torch.testing.assert_close(got[name], expected[name], rtol=1e-4, atol=1e-6)


# ------------------------------------------------------------------------------------------------ recipes
def load_example(name: str):
    import importlib.util

    path = Path(__file__).resolve().parents[2] / "examples" / f"{name}.py"
    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_recipe_defaults_are_the_papers():
    paper000 = load_example("train_masp_paper000").build_parser().parse_args(["--output-dir", "x"])
    assert (paper000.learning_rate, paper000.batch_size, paper000.epochs) == (1e-4, 32, 50)
    assert (paper000.dropout, paper000.trainable_layers, paper000.pooling) == (0.3, 15, "masp")
    assert paper000.model == "microsoft/wavlm-large" and paper000.focal_gamma > 0
    paper002 = load_example("train_baseline_paper002").build_parser().parse_args(["--output-dir", "x"])
    assert (paper002.learning_rate, paper002.batch_size, paper002.epochs) == (1e-5, 32, 30)
    assert paper002.max_duration == 12.0 and paper002.model == "microsoft/wavlm-large"


@pytest.mark.slow
@pytest.mark.parametrize(
    ("name", "extra", "metric"),
    [
        ("train_masp_paper000", [], "eval_f1_macro"),
        ("train_baseline_paper002", ["--task", "attributes"], "eval_ccc_mean"),
    ],
)
def test_recipes_run_on_the_tiny_configuration(tmp_path, name, extra, metric):
    from hf_ser.publishing.model_card import METRIC_NAMES

    module = load_example(name)
    metrics = module.main(["--tiny", "--output-dir", str(tmp_path), "--max-steps", "2", *extra])
    assert metric in metrics and np.isfinite(metrics["eval_loss"])
    assert (tmp_path / "best" / "config.json").is_file()
    # The trainer's card callback and save_pretrained give the saved model a card with its dev-set results.
    from huggingface_hub import ModelCard

    card = ModelCard((tmp_path / "best" / "README.md").read_text())
    key = metric[len("eval_") :]
    (result,) = [r for r in card.data.eval_results if r.metric_name == METRIC_NAMES[key]]
    assert result.dataset_name == "validation" and result.metric_value == round(metrics[metric], 4)


def test_sampler_epoch_reaches_through_resume_and_shard_wrappers(tmp_path):
    """On resuming a 2-process run the sampler sits under SkipBatchSampler and BatchSamplerShard, where
    `Trainer`'s own `set_epoch` does not reach; the trainer's callback sets the resumed epoch there."""
    from accelerate.data_loader import prepare_data_loader, skip_first_batches
    from transformers import TrainerControl, TrainerState

    from hf_ser.training.trainer import SamplerEpochCallback

    train = toy_dataset((6, 3), seconds=0.05)
    trainer = FocalLossTrainer(
        model=tiny_masp_model(num_labels=2),
        args=args(tmp_path, sampling="undersample", per_device_train_batch_size=2),
        train_dataset=train,
        data_collator=collator(),
    )
    assert any(isinstance(cb, SamplerEpochCallback) for cb in trainer.callback_handler.callbacks)
    sampler = trainer._get_train_sampler()
    loader = torch.utils.data.DataLoader(train, batch_size=2, sampler=sampler, collate_fn=collator())
    sharded = prepare_data_loader(loader, num_processes=2, process_index=1, put_on_device=False)
    resumed = skip_first_batches(sharded, 1)
    state = TrainerState()
    state.epoch = 2.5  # resumed half-way through the third epoch
    SamplerEpochCallback().on_epoch_begin(trainer.args, state, TrainerControl(), train_dataloader=resumed)
    assert sampler.epoch == 2
    # The draw is then epoch 2's, as in the uninterrupted run.
    reference = ClassBalancedUndersampler(
        train["label"], seed=trainer.args.seed, lengths=sampler.lengths, batch_size=sampler.batch_size
    )  # configured as the trainer's (length-grouped by default)
    reference.set_epoch(2)
    assert list(sampler) == list(reference)


def test_ccc_trainer_skips_a_single_clip_batch(tmp_path):
    """The guard lives in CCCLoss (see test_losses); the model's loss and the trainer's fallback both use it."""
    trainer = CCCLossTrainer(
        model=tiny_masp_model(problem_type="regression", num_labels=3),
        args=args(tmp_path, per_device_train_batch_size=2),
        train_dataset=toy_dataset((2, 1), seconds=0.05),
        data_collator=collator(label_columns=("arousal", "valence", "dominance")),
    )
    logits = torch.randn(1, 3, requires_grad=True)
    loss = trainer.task_loss(logits, torch.ones(1, 3))
    assert loss.item() == 0.0
    (grad,) = torch.autograd.grad(loss, logits)
    assert torch.equal(grad, torch.zeros_like(grad))
    # 3 clips in batches of 2: the last batch has one clip, and training still completes.
    assert trainer.train().global_step == 2


def varied_length_dataset(count: int = 13, seed: int = 3) -> Dataset:
    rng = np.random.default_rng(seed)
    rows = {"audio": [], "label": []}
    for i in range(count):
        seconds = float(rng.uniform(0.1, 0.6))
        rows["audio"].append({"array": tone(seconds, freq=FREQS[i % 2], seed=i), "sampling_rate": 16000})
        rows["label"].append(i % 2)
    return Dataset.from_dict(rows)


def test_evaluation_is_length_bucketed_and_returns_dataset_order(tmp_path):
    data = varied_length_dataset()
    seen = {}

    def run(bucketing: bool):
        torch.manual_seed(0)
        model = tiny_masp_model(num_labels=2)
        masks = record_batches(model)

        def metrics(prediction):
            seen[bucketing] = (prediction.predictions.copy(), prediction.label_ids.copy())
            return {"first_label": float(prediction.label_ids[0])}

        trainer = FocalLossTrainer(
            model=model,
            args=args(tmp_path, per_device_eval_batch_size=4, eval_length_bucketing=bucketing),
            eval_dataset=data,
            data_collator=collator(),
            compute_metrics=metrics,
        )
        return trainer.evaluate(), trainer.predict(data), masks

    metrics_sorted, sorted_out, sorted_masks = run(True)
    metrics_plain, plain_out, plain_masks = run(False)
    # Same predictions, labels and metrics, in dataset order, from batches with less padding.
    np.testing.assert_allclose(sorted_out.predictions, plain_out.predictions, atol=1e-5)
    np.testing.assert_array_equal(sorted_out.label_ids, data["label"])
    np.testing.assert_allclose(seen[True][0], seen[False][0], atol=1e-5)
    np.testing.assert_array_equal(seen[True][1], data["label"])
    assert metrics_sorted["eval_first_label"] == metrics_plain["eval_first_label"] == 0.0
    assert metrics_sorted["eval_loss"] == pytest.approx(metrics_plain["eval_loss"], rel=1e-4)

    assert padded_fraction(sorted_masks) < 0.5 * padded_fraction(plain_masks)
    longest = [int(m.sum(dim=1).max()) for m in sorted_masks[: len(sorted_masks) // 2]]
    assert longest == sorted(longest, reverse=True)  # the evaluate() pass ran longest first


def _grouping_trainer(tmp_path, trainer_cls=FocalLossTrainer, grouping=None, group_norm=False, **overrides):
    """A trainer over clips of varied length, and the attention masks of its model's forward calls."""
    torch.manual_seed(0)
    data = varied_length_dataset(count=24)
    label_columns = ("label",)
    model = tiny_masp_model(num_labels=2, group_norm=group_norm, num_trainable_layers=1)
    if trainer_cls is CCCLossTrainer:
        data = data.map(lambda row: {"arousal": 1.0, "valence": 2.0, "dominance": 3.0})
        label_columns = ("arousal", "valence", "dominance")
        model = tiny_masp_model(problem_type="regression", num_trainable_layers=1)
    masks = record_batches(model)
    trainer = trainer_cls(
        model=model,
        args=args(tmp_path, train_length_grouping=grouping, **overrides),
        train_dataset=data,
        data_collator=collator(label_columns=label_columns),
    )
    return trainer, masks


def test_training_batches_are_length_grouped_by_default(tmp_path):
    trainer, grouped = _grouping_trainer(tmp_path)
    plain_trainer, plain = _grouping_trainer(tmp_path, grouping=False)
    assert trainer._get_train_sampler().groups_by_length
    assert not isinstance(plain_trainer._get_train_sampler(), RandomEpochSampler)
    trainer.train()
    plain_trainer.train()
    assert len(grouped) == len(plain) == 6
    # Every clip once in the epoch either way (the clips' lengths identify them here), with far less padding.
    lengths = sorted(int(n) for m in grouped for n in m.sum(dim=1))
    assert lengths == sorted(int(n) for m in plain for n in m.sum(dim=1))
    assert padded_fraction(grouped) < 0.5 * padded_fraction(plain)


def test_length_grouping_defaults_off_where_it_changes_more_than_speed(tmp_path):
    def sampler(**kwargs):
        return _grouping_trainer(tmp_path, **kwargs)[0]._get_train_sampler()

    # A group-norm encoder's features depend on padding; CCC is a statistic of the batch.
    assert not isinstance(sampler(group_norm=True), RandomEpochSampler)
    assert not isinstance(sampler(trainer_cls=CCCLossTrainer), RandomEpochSampler)
    assert sampler(trainer_cls=CCCLossTrainer, grouping=True).groups_by_length
    assert sampler(group_norm=True, grouping=True).groups_by_length
    # transformers' own samplers are left alone.
    assert not isinstance(sampler(grouping=True, train_sampling_strategy="sequential"), RandomEpochSampler)


def test_paper002_real_runs_build_the_challenge_baseline():
    """Real runs (not only --tiny) get the released baseline: ASP as wide as the encoder, the released head."""
    module = load_example("train_baseline_paper002")
    kwargs = module.baseline_config_kwargs(
        "regression", {"id2label": {0: "valence"}, "label2id": {"valence": 0}}
    )
    assert kwargs["asp_attention_size"] is None and kwargs["pooling"] == "asp"
    assert kwargs["head_projection"] is False and kwargs["head_input_dropout"] == 0.5
    assert kwargs["num_trainable_layers"] is None and kwargs["loss"] == "ccc"


@pytest.mark.parametrize("attributes", [["valence", "dominance"], ["dominance", "arousal", "valence"]])
def test_paper002_attribute_subsets_and_orders_are_named_right(tmp_path, attributes):
    module = load_example("train_baseline_paper002")
    metrics = module.main(
        ["--tiny", "--task", "attributes", "--output-dir", str(tmp_path), "--max-steps", "1",
         "--attributes", *attributes]
    )  # fmt: skip
    assert {key for key in metrics if key.startswith("eval_ccc_")} == {
        *(f"eval_ccc_{name}" for name in attributes),
        "eval_ccc_mean",
    }


def test_attribute_metrics_name_reordered_columns():
    from transformers import EvalPrediction

    from hf_ser.training.trainer import attribute_metrics

    references = np.array([[1.0, 5.0], [2.0, 4.0], [3.0, 2.0], [4.0, 1.0]])
    predictions = references.copy()
    predictions[:, 1] = predictions[::-1, 1]  # second column anti-correlated
    result = attribute_metrics(["valence", "dominance"])(EvalPrediction(predictions, references))
    assert result["ccc_valence"] == pytest.approx(1.0) and result["ccc_dominance"] < 0


def test_paper002_attribute_runs_keep_other_and_no_agreement_rows(tmp_path):
    from hf_ser.data.synthetic import make_tiny_corpus

    module = load_example("train_baseline_paper002")
    corpus_dir = make_tiny_corpus(tmp_path / "corpus", n_speakers=4, clips_per_class=1)
    attributes = module.load_corpus(corpus_dir, "attributes")
    categorical = module.load_corpus(corpus_dir, "categorical")
    # Other (8) and No agreement (9) rows are trained on and evaluated, like labels_consensus.csv as it is.
    labels = set(attributes["train"]["label"]) | set(attributes["validation"]["label"])
    assert {8, 9} <= labels
    assert len(attributes["train"]) > len(categorical["train"])
