"""Half-written or corrupt checkpoints are detected and reported; resuming falls back to the newest complete one."""

from __future__ import annotations

import logging

import pytest
import torch
from transformers import TrainerCallback

from hf_ser import FocalLossTrainer
from hf_ser.training.checkpoints import (
    CheckpointError,
    checkpoint_problems,
    list_checkpoints,
    resolve_resume_checkpoint,
)
from tests.tiny import args, collator, tiny_masp_model, toy_dataset


def checkpointing_trainer(tmp_path) -> FocalLossTrainer:
    """4 steps, a checkpoint every 2, into `tmp_path / "out"`; the same seed and data each time."""
    torch.manual_seed(0)
    return FocalLossTrainer(
        model=tiny_masp_model(num_labels=2, id2label={0: "a", 1: "b"}),
        args=args(tmp_path, max_steps=4, save_strategy="steps", save_steps=2, save_total_limit=None),
        train_dataset=toy_dataset((4, 4)),
        data_collator=collator(),
    )


@pytest.fixture
def trained(tmp_path):
    checkpointing_trainer(tmp_path).train()
    return tmp_path / "out"


def test_complete_checkpoints_pass(trained):
    assert [p.name for p in list_checkpoints(trained)] == ["checkpoint-4", "checkpoint-2"]
    assert checkpoint_problems(trained / "checkpoint-4") == []
    assert resolve_resume_checkpoint(trained, True) == str(trained / "checkpoint-4")


@pytest.mark.parametrize(
    "damage, message",
    [
        (
            lambda c: (c / "model.safetensors").write_bytes((c / "model.safetensors").read_bytes()[:-100]),
            "truncated",
        ),
        (lambda c: (c / "trainer_state.json").unlink(), "trainer_state.json is missing"),
        (lambda c: (c / "trainer_state.json").write_text("{not json"), "not valid JSON"),
        (lambda c: (c / "optimizer.pt").write_bytes(b""), "optimizer.pt"),
        (lambda c: (c / "model.safetensors").write_bytes(b"\x00" * 4), "unreadable"),
    ],
)
def test_damage_is_detected_and_resume_falls_back(trained, damage, message, caplog):
    newest = trained / "checkpoint-4"
    damage(newest)
    assert any(message in problem for problem in checkpoint_problems(newest))
    with pytest.raises(CheckpointError, match=message):
        resolve_resume_checkpoint(trained, str(newest))
    with caplog.at_level(logging.WARNING, logger="hf_ser.training.checkpoints"):
        assert resolve_resume_checkpoint(trained, True) == str(trained / "checkpoint-2")
    assert "Skipping broken checkpoint" in caplog.text and "checkpoint-4" in caplog.text


def test_trainer_resumes_from_the_last_complete_checkpoint(trained, tmp_path):
    newest = trained / "checkpoint-4"
    (newest / "model.safetensors").write_bytes((newest / "model.safetensors").read_bytes()[:1000])
    trainer = checkpointing_trainer(tmp_path)
    steps_run = []

    class CountSteps(TrainerCallback):
        def on_step_end(self, args, state, control, **kwargs):
            steps_run.append(state.global_step)

    trainer.add_callback(CountSteps())
    trainer.train(resume_from_checkpoint=True)
    assert steps_run == [3, 4]  # resumed at step 2 (the complete checkpoint), not from scratch, not from 4
    assert checkpoint_problems(trained / "checkpoint-4") == []  # rewritten complete


def test_no_checkpoint_at_all_is_reported(tmp_path):
    with pytest.raises(CheckpointError, match="holds no checkpoint"):
        resolve_resume_checkpoint(tmp_path, True)
    assert resolve_resume_checkpoint(tmp_path, None) is None
