"""Two-process DistributedDataParallel training on CPU (gloo) with `torchrun`: the trainers run unchanged, the ranks
see different batches, and both end with identical weights."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest
import torch

SCRIPT = r"""
import json, os, sys
from pathlib import Path
import torch
import torch.distributed as dist
from tests.tiny import toy_dataset, collator
from tests.tiny import tiny_masp_model
from hf_ser.training.trainer import FocalLossTrainer, SERTrainingArguments

out = Path(sys.argv[1])
variant = sys.argv[2] if len(sys.argv) > 2 else "default"
seen = []

class Recording(FocalLossTrainer):
    def compute_loss(self, model, inputs, return_outputs=False, num_items_in_batch=None):
        if model.training:
            seen.append(round(float(inputs["input_values"].abs().sum()), 3))
        return super().compute_loss(model, inputs, return_outputs, num_items_in_batch)

torch.manual_seed(0)
checkpointing = variant != "default"
if variant == "baseline":
    from hf_ser import WavLMForMASPClassification, WavLMMASPConfig
    from tests.tiny import tiny_encoder_config
    config = WavLMMASPConfig.challenge_baseline(encoder_config=tiny_encoder_config(), head_hidden_size=16, num_labels=2)
    model = WavLMForMASPClassification(config)
else:
    model = tiny_masp_model(num_labels=2, head_dropout=0.1)
train = toy_dataset((8, 4), seed=4, seconds=0.1)
args = SERTrainingArguments(
    output_dir=str(out / "run"), per_device_train_batch_size=2, max_steps=4 if checkpointing else 3,
    learning_rate=3e-3, report_to="none", use_cpu=True, save_strategy="no", logging_steps=1, seed=0,
    disable_tqdm=True, sampling="balanced_batches", ddp_backend="gloo", gradient_checkpointing=checkpointing,
)
trainer = Recording(model=model, args=args, train_dataset=train, data_collator=collator())
result = trainer.train()
rank = dist.get_rank()
weights = {{n: p.detach() for n, p in trainer.model.named_parameters()}}
torch.save(weights, out / f"rank{{rank}}.pt")
(out / f"rank{{rank}}.json").write_text(json.dumps({{
    "world_size": dist.get_world_size(), "backend": dist.get_backend(), "global_step": result.global_step,
    "seen": seen, "parallel_mode": str(trainer.args.parallel_mode),
    "checkpointed": trainer.model.checkpointed_layers(),
    "find_unused_parameters": getattr(trainer.model_wrapped, "find_unused_parameters", None),
}}))
"""


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def run_ddp(tmp_path, variant: str = "default") -> list[dict]:
    """Train the script's model for a few steps in two gloo processes; return each rank's record."""
    repo = str(Path(__file__).resolve().parents[2])  # on the child's PYTHONPATH: `tests.tiny` imports
    script = tmp_path / "ddp_train.py"
    script.write_text(SCRIPT.format())
    env = {
        **os.environ,
        "HF_HUB_OFFLINE": "1",
        "OMP_NUM_THREADS": "1",
        "PYTHONPATH": repo + os.pathsep + os.environ.get("PYTHONPATH", ""),
    }
    command = [
        sys.executable,
        "-m",
        "torch.distributed.run",
        "--nproc_per_node",
        "2",
        "--master_addr",
        "127.0.0.1",
        "--master_port",
        str(free_port()),
        str(script),
        str(tmp_path),
        variant,
    ]
    done = subprocess.run(command, env=env, capture_output=True, text=True, timeout=400)
    assert done.returncode == 0, done.stderr[-4000:]
    return [json.loads((tmp_path / f"rank{r}.json").read_text()) for r in (0, 1)]


@pytest.mark.slow
@pytest.mark.parametrize("variant", ["masp_checkpointing", "baseline"])
def test_ddp_with_activation_checkpointing_trains_every_parameter(tmp_path, variant):
    """Under DDP with activation checkpointing the Trainer sets find_unused_parameters=False: training fails at the
    second step if any trainable parameter goes unused (MASP's final LayerNorm once did)."""
    infos = run_ddp(tmp_path, variant)
    for info in infos:
        assert info["global_step"] == 4 and len(info["seen"]) == 4
        assert info["find_unused_parameters"] is False
        assert info["checkpointed"]  # the trainable layers, and only those (see test_model_contract)
    weights = [torch.load(tmp_path / f"rank{r}.pt") for r in (0, 1)]
    for name in weights[0]:
        torch.testing.assert_close(weights[0][name], weights[1][name], rtol=0, atol=0)


@pytest.mark.slow
def test_two_process_ddp_ranks_agree(tmp_path):
    infos = run_ddp(tmp_path)
    infos = [json.loads((tmp_path / f"rank{r}.json").read_text()) for r in (0, 1)]
    for info in infos:
        assert info["world_size"] == 2 and info["backend"] == "gloo"
        assert info["global_step"] == 3 and len(info["seen"]) == 3
        assert "DISTRIBUTED" in info["parallel_mode"]
    # Each rank trained on its own shard of every global batch...
    assert infos[0]["seen"] != infos[1]["seen"]
    # ...and gradient averaging kept the replicas identical, and they moved away from the initialisation.
    weights = [torch.load(tmp_path / f"rank{r}.pt") for r in (0, 1)]
    assert weights[0].keys() == weights[1].keys()
    for name in weights[0]:
        torch.testing.assert_close(weights[0][name], weights[1][name], rtol=0, atol=0)
    torch.manual_seed(0)
    from tests.tiny import tiny_masp_model

    initial = dict(tiny_masp_model(num_labels=2, head_dropout=0.1).named_parameters())
    assert not torch.equal(weights[0]["head.output.weight"], initial["head.output.weight"].detach())
