"""Checking Trainer checkpoints before resuming: a half-written or corrupt checkpoint (a run killed while saving,
a truncated copy) is detected and reported instead of crashing deep inside `torch.load` or silently restarting.

`resolve_resume_checkpoint(output_dir, True)` picks the newest *complete* checkpoint and says which newer ones it
skipped and why, so an interrupted run resumes from the last good state and loses nothing that was saved intact.
"""

from __future__ import annotations

import json
import logging
import os
import re
import struct
import zipfile
from pathlib import Path

from ..errors import HFSERError

logger = logging.getLogger(__name__)

CHECKPOINT_PATTERN = re.compile(r"^checkpoint-(\d+)$")


class CheckpointError(HFSERError, ValueError):
    """A checkpoint that cannot be resumed from."""


def safetensors_problems(path: Path) -> list[str]:
    """Problems with a safetensors file: unreadable header, or fewer bytes than the header declares (truncated)."""
    try:
        size = path.stat().st_size
        with path.open("rb") as handle:
            (header_size,) = struct.unpack("<Q", handle.read(8))
            if header_size <= 0 or 8 + header_size > size:
                return [f"{path.name}: header of {header_size} bytes does not fit in a {size}-byte file"]
            header = json.loads(handle.read(header_size))
    except (OSError, struct.error, ValueError, UnicodeDecodeError) as error:
        return [f"{path.name}: unreadable ({type(error).__name__})"]
    ends = [entry["data_offsets"][1] for key, entry in header.items() if key != "__metadata__"]
    expected = 8 + header_size + max(ends, default=0)
    if size < expected:
        return [f"{path.name}: truncated ({size} of {expected} bytes)"]
    return []


def checkpoint_problems(checkpoint: str | os.PathLike) -> list[str]:
    """Everything wrong with a Trainer checkpoint folder (empty list: it can be resumed from)."""
    folder = Path(checkpoint)
    if not folder.is_dir():
        return [f"{folder} is not a folder"]
    problems = []
    state = folder / "trainer_state.json"
    if not state.is_file():
        problems.append("trainer_state.json is missing (the save did not finish)")
    else:
        try:
            if "global_step" not in json.loads(state.read_text()):
                problems.append("trainer_state.json has no global_step")
        except (OSError, ValueError):
            problems.append("trainer_state.json is not valid JSON")
    index = folder / "model.safetensors.index.json"
    if index.is_file():
        try:
            shards = sorted(set(json.loads(index.read_text())["weight_map"].values()))
        except (OSError, ValueError, KeyError):
            shards = []
            problems.append("model.safetensors.index.json is not valid")
        for shard in shards:
            if not (folder / shard).is_file():
                problems.append(f"{shard} is missing")
            else:
                problems += safetensors_problems(folder / shard)
    elif (folder / "model.safetensors").is_file():
        problems += safetensors_problems(folder / "model.safetensors")
    else:
        problems.append("no model.safetensors (safetensors weights are required)")
    for name in ("optimizer.pt", "scheduler.pt"):
        path = folder / name
        if not path.is_file() or path.stat().st_size == 0:
            problems.append(f"{name} is missing or empty")
        else:
            problems += torch_file_problems(path)
    for path in sorted(folder.glob("rng_state*.pth")):
        problems += torch_file_problems(path)
    return problems


def torch_file_problems(path: Path) -> list[str]:
    """Problems with a file written by `torch.save` (optimizer, scheduler, RNG state), found without unpickling
    it: torch's zip container must open and every member's CRC must match (a truncated or garbage file fails)."""
    try:
        if not zipfile.is_zipfile(path):
            return [f"{path.name}: not a torch.save file (truncated or corrupt)"]
        with zipfile.ZipFile(path) as archive:
            names = archive.namelist()
            if not any(name.endswith("data.pkl") for name in names):
                return [f"{path.name}: no data.pkl record (not a torch.save file)"]
            broken = archive.testzip()
            if broken is not None:
                return [f"{path.name}: corrupt record {broken}"]
    except (OSError, zipfile.BadZipFile, EOFError, ValueError) as error:
        return [f"{path.name}: unreadable ({type(error).__name__})"]
    return []


def checkpoint_warnings(checkpoint: str | os.PathLike) -> list[str]:
    """What a resume from `checkpoint` will not restore exactly, although it can resume: a missing RNG state
    (`rng_state.pth`) means dropout, crops and data order differ from an uninterrupted run."""
    folder = Path(checkpoint)
    if not any(folder.glob("rng_state*.pth")):
        return [
            f"{folder.name} has no rng_state.pth: training resumes, but dropout, random crops and data order will "
            "differ from an uninterrupted run"
        ]
    return []


def list_checkpoints(output_dir: str | os.PathLike) -> list[Path]:
    """`checkpoint-N` folders of a Trainer output folder, newest (highest step) first."""
    folder = Path(output_dir)
    if not folder.is_dir():
        return []
    found = [
        (int(m.group(1)), p)
        for p in folder.iterdir()
        if (m := CHECKPOINT_PATTERN.match(p.name)) and p.is_dir()
    ]
    return [path for _, path in sorted(found, reverse=True)]


def resolve_resume_checkpoint(output_dir: str | os.PathLike, resume_from_checkpoint) -> str | None:
    """What `Trainer.train(resume_from_checkpoint=...)` should get.

    - `True`: the newest complete checkpoint in `output_dir`; newer broken ones are reported (warning) and skipped.
      `CheckpointError` if there are checkpoints but none is usable, or none at all.
    - a path: that checkpoint, or `CheckpointError` listing what is wrong with it.
    - `None`/`False`: no resuming.
    """
    if resume_from_checkpoint in (None, False):
        return None
    if resume_from_checkpoint is True:
        candidates = list_checkpoints(output_dir)
        if not candidates:
            raise CheckpointError(
                f"resume_from_checkpoint=True but {output_dir} holds no checkpoint-* folder."
            )
        skipped = []
        for candidate in candidates:
            problems = checkpoint_problems(candidate)
            if not problems:
                for path, why in skipped:
                    logger.warning("Skipping broken checkpoint %s: %s", path, "; ".join(why))
                if skipped:
                    logger.warning("Resuming from %s, the newest complete checkpoint.", candidate)
                for warning in checkpoint_warnings(candidate):
                    logger.warning(warning)
                return str(candidate)
            skipped.append((candidate, problems))
        details = "; ".join(f"{p.name}: {', '.join(why)}" for p, why in skipped)
        raise CheckpointError(f"No usable checkpoint in {output_dir}: {details}")
    problems = checkpoint_problems(resume_from_checkpoint)
    if problems:
        raise CheckpointError(f"Cannot resume from {resume_from_checkpoint}: {'; '.join(problems)}")
    for warning in checkpoint_warnings(resume_from_checkpoint):
        logger.warning(warning)
    return str(resume_from_checkpoint)


__all__ = [
    "CheckpointError",
    "checkpoint_warnings",
    "torch_file_problems",
    "checkpoint_problems",
    "list_checkpoints",
    "resolve_resume_checkpoint",
]
