"""Recipe details that decide whether a run follows its paper (issue 18): paper 003's weight search sees every
development clip; paper 004's cross-validation accepts MSP-IMPROV sessions."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import datasets
import numpy as np
import torch
from transformers import Trainer, TrainingArguments

from hf_ser import MultiViewSERForRegression
from tests.tiny import VIEWS, tiny_config


def load_example(name: str):
    path = Path(__file__).resolve().parents[2] / "examples" / f"{name}.py"
    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_paper003_fusion_search_predictions_keep_the_last_partial_batch(tmp_path):
    module = load_example("train_multiview_paper003")
    rng = np.random.default_rng(0)
    rows = {
        f"{v}_embedding": rng.standard_normal((7, d)).astype(np.float32).tolist() for v, d in VIEWS.items()
    }
    rows["arousal"] = rng.uniform(1, 7, 7).tolist()
    dev = datasets.Dataset.from_dict(rows)
    torch.manual_seed(0)
    model = MultiViewSERForRegression(tiny_config(id2label={0: "arousal"}, label2id={"arousal": 0}))
    args = TrainingArguments(
        output_dir=str(tmp_path), per_device_eval_batch_size=3, dataloader_drop_last=True,
        remove_unused_columns=False, report_to=[], use_cpu=True,
    )  # fmt: skip
    trainer = Trainer(model=model, args=args, data_collator=module.collate(list(VIEWS), ["arousal"]))
    score_sets = module.predict_score_sets(trainer, dev, ["arousal"])
    assert score_sets.shape == (7, 5, 1)  # 3 + 3 + 1: the last, partial batch is predicted too
    assert trainer.args.dataloader_drop_last  # training still drops it (CCC needs two clips)
    with torch.no_grad():
        batch = module.collate(list(VIEWS), ["arousal"])([dev[i] for i in range(7)])
        want = model.eval()(**{k: v for k, v in batch.items() if k != "labels"}).score_sets.numpy()
    np.testing.assert_allclose(score_sets, want, rtol=1e-5, atol=1e-6)
