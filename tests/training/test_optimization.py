"""Weight decay on the classifier only (paper 000), through Trainer's own optimizer construction."""

from __future__ import annotations

import importlib.util
from pathlib import Path

from hf_ser.training.optimization import ClassifierWeightDecayMixin, classifier_decay_parameter_names
from hf_ser.training.trainer import FocalLossTrainer, SERTrainingArguments
from tests.tiny import tiny_masp_model


def test_only_classifier_weights_are_decayed(tmp_path):
    class Trainer(ClassifierWeightDecayMixin, FocalLossTrainer):
        pass

    model = tiny_masp_model(num_labels=3)
    args = SERTrainingArguments(output_dir=str(tmp_path), weight_decay=0.05, use_cpu=True, report_to="none")
    optimizer = Trainer(model=model, args=args).create_optimizer()
    names = {id(p): n for n, p in model.named_parameters()}
    decayed = {names[id(p)] for g in optimizer.param_groups if g["weight_decay"] > 0 for p in g["params"]}
    undecayed = {names[id(p)] for g in optimizer.param_groups if g["weight_decay"] == 0 for p in g["params"]}
    head_weights = {n for n, p in model.head.named_parameters() if p.ndim == 2}
    assert decayed == {f"head.{n}" for n in head_weights}  # Linear weights of the head; no biases, no norms
    assert any(n.startswith("encoder.") for n in undecayed) and "pooling.layer_weights" in undecayed
    # Names from wrapped models (DDP) match too; a module merely named like "headless" does not.
    assert classifier_decay_parameter_names(
        ["module.head.output.weight", "headless.w", "encoder.head_x.w"]
    ) == ["module.head.output.weight"]


def test_paper000_recipe_uses_classifier_weight_decay():
    path = Path(__file__).resolve().parents[2] / "examples" / "train_masp_paper000.py"
    spec = importlib.util.spec_from_file_location("paper000", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    assert issubclass(module.Paper000Trainer, ClassifierWeightDecayMixin)
    assert issubclass(module.Paper000Trainer, FocalLossTrainer)
