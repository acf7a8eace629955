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
sys.path.insert(0, {tests!r})
from test_trainer import toy_dataset, collator
from tiny import tiny_masp_model
from hf_ser.trainer import FocalLossTrainer, SERTrainingArguments

out = Path(sys.argv[1])
seen = []

class Recording(FocalLossTrainer):
    def compute_loss(self, model, inputs, return_outputs=False, num_items_in_batch=None):
        if model.training:
            seen.append(round(float(inputs["input_values"].abs().sum()), 3))
        return super().compute_loss(model, inputs, return_outputs, num_items_in_batch)

torch.manual_seed(0)
model = tiny_masp_model(num_labels=2, head_dropout=0.1)
train = toy_dataset((8, 4), seed=4, seconds=0.1)
args = SERTrainingArguments(
    output_dir=str(out / "run"), per_device_train_batch_size=2, max_steps=3, learning_rate=3e-3, report_to="none",
    use_cpu=True, save_strategy="no", logging_steps=1, seed=0, disable_tqdm=True, sampling="balanced_batches",
    ddp_backend="gloo",
)
trainer = Recording(model=model, args=args, train_dataset=train, data_collator=collator())
result = trainer.train()
rank = dist.get_rank()
weights = {{n: p.detach() for n, p in trainer.model.named_parameters()}}
torch.save(weights, out / f"rank{{rank}}.pt")
(out / f"rank{{rank}}.json").write_text(json.dumps({{
    "world_size": dist.get_world_size(), "backend": dist.get_backend(), "global_step": result.global_step,
    "seen": seen, "parallel_mode": str(trainer.args.parallel_mode),
}}))
"""


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.mark.slow
def test_two_process_ddp_ranks_agree(tmp_path):
    tests = str(Path(__file__).parent)
    script = tmp_path / "ddp_train.py"
    script.write_text(SCRIPT.format(tests=tests))
    env = {
        **os.environ,
        "HF_HUB_OFFLINE": "1",
        "OMP_NUM_THREADS": "1",
        "PYTHONPATH": tests + os.pathsep + os.environ.get("PYTHONPATH", ""),
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
    ]
    done = subprocess.run(command, env=env, capture_output=True, text=True, timeout=400)
    assert done.returncode == 0, done.stderr[-4000:]

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
    from tiny import tiny_masp_model

    initial = dict(tiny_masp_model(num_labels=2, head_dropout=0.1).named_parameters())
    assert not torch.equal(weights[0]["head.output.weight"], initial["head.output.weight"].detach())
