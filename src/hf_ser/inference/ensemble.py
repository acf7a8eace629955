"""Ensembles of trained hf_ser models, saved and loaded as one object.

- Attribute regression: the (weighted) mean of the members' arousal/valence/dominance predictions. Paper 001's
  winning Task 2 system averaged two models (MM-WavLM with gender prediction and MM-Whisper): 0.6076 mean CCC on
  test-3, against 0.5675 for its best single submitted model (Table 6).
- Categorical emotions: the (weighted) mean of the members' class probabilities, or plurality voting over the
  members' top classes (ties broken by the mean probability), as the top teams of paper 002 combined systems.

An ensemble folder holds `ensemble.json` (a small manifest) and, by default, a copy of each member's folder under
`members/`. Members are folders that `AutoModel.from_pretrained` loads with hf_ser installed (with their feature
extractor, and the tokenizer for multimodal models).
"""

from __future__ import annotations

import json
import os
import shutil
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from ..errors import HFSERError
from ..models.labels import SAMPLING_RATE

MANIFEST = "ensemble.json"
FORMAT = "hf_ser-ensemble"
METHODS = {"regression": ("mean",), "classification": ("probability", "vote")}


class EnsembleError(HFSERError, ValueError):
    """An ensemble that cannot be built, saved, loaded or run as asked (bad members, weights, manifest)."""


# ---------------------------------------------------------------------------------------------- arithmetic
def _normalised_weights(count: int, weights: Sequence[float] | None) -> np.ndarray:
    if weights is None:
        return np.full(count, 1.0 / count)
    weights = np.asarray(weights, dtype=np.float64)
    if (
        weights.shape != (count,)
        or not np.isfinite(weights).all()
        or (weights < 0).any()
        or weights.sum() <= 0
    ):
        raise EnsembleError(
            f"weights must be {count} non-negative numbers with a positive sum, got {weights.tolist()}."
        )
    return weights / weights.sum()


def _stack(arrays: Sequence[np.ndarray], what: str) -> np.ndarray:
    if len(arrays) == 0:
        raise EnsembleError(f"No {what} to combine.")
    shapes = {np.shape(a) for a in arrays}
    if len(shapes) != 1:
        raise EnsembleError(f"Members' {what} differ in shape: {sorted(shapes)}.")
    return np.stack([np.asarray(a, dtype=np.float64) for a in arrays])


def average_predictions(
    predictions: Sequence[np.ndarray], weights: Sequence[float] | None = None
) -> np.ndarray:
    """(Weighted) mean of the members' predictions, each (clips, attributes): paper 001's 2-system ensemble."""
    stacked = _stack(predictions, "predictions")
    return np.tensordot(_normalised_weights(len(stacked), weights), stacked, axes=1)


def average_probabilities(
    probabilities: Sequence[np.ndarray], weights: Sequence[float] | None = None
) -> np.ndarray:
    """(Weighted) mean of the members' class probabilities, each (clips, classes); rows still sum to one."""
    stacked = _stack(probabilities, "probabilities")
    if (stacked < 0).any() or not np.allclose(stacked.sum(-1), 1.0, atol=1e-4):
        raise EnsembleError(
            "Probabilities must be non-negative and sum to 1 over classes (apply softmax to logits)."
        )
    return np.tensordot(_normalised_weights(len(stacked), weights), stacked, axes=1)


def plurality_vote(probabilities: Sequence[np.ndarray], weights: Sequence[float] | None = None) -> np.ndarray:
    """Plurality voting: each member votes for its most probable class (with its weight); the class with most
    votes wins, ties broken by the highest mean probability, then the lowest class id. Returns (clips,) ids."""
    stacked = _stack(probabilities, "probabilities")
    member_weights = _normalised_weights(len(stacked), weights)
    votes = np.zeros(stacked.shape[1:])
    for member, weight in zip(stacked.argmax(-1), member_weights, strict=True):
        votes[np.arange(len(member)), member] += weight
    mean_probs = np.tensordot(member_weights, stacked, axes=1)
    winners = np.isclose(votes, votes.max(-1, keepdims=True))
    # Among tied classes, the highest mean probability wins (argmax returns the lowest id on exact ties).
    return np.where(winners, mean_probs, -1.0).argmax(-1)


# ---------------------------------------------------------------------------------------------- ensemble
class SEREnsemble:
    """Several trained models used as one predictor, saved as one folder.

    Args:
        members (`Sequence[str | os.PathLike]`): folders of trained hf_ser models (all regression, or all
            classification with the same labels).
        method (`str`, *optional*): `"mean"` for attribute regression; `"probability"` (default) or `"vote"` for
            classification.
        weights (`Sequence[float]`, *optional*): per-member weights (equal by default).

    Example:
        >>> ensemble = SEREnsemble(["mm-wavlm-gender", "mm-whisper"])  # doctest: +SKIP
        >>> ensemble.save_pretrained("paper001-ensemble")  # doctest: +SKIP
        >>> SEREnsemble.from_pretrained("paper001-ensemble").predict([waveform], transcripts=["..."])  # doctest: +SKIP
    """

    def __init__(
        self,
        members: Sequence[str | os.PathLike],
        method: str | None = None,
        weights: Sequence[float] | None = None,
    ):
        if len(members) < 1:
            raise EnsembleError("An ensemble needs at least one member folder.")
        self.members = [Path(member) for member in members]
        for member in self.members:
            if not (member / "config.json").is_file():
                raise EnsembleError(f"{member} is not a saved model folder (no config.json).")
        configs = []
        for member in self.members:
            try:
                configs.append(json.loads((member / "config.json").read_text(encoding="utf-8")))
            except (UnicodeDecodeError, json.JSONDecodeError) as error:
                raise EnsembleError(
                    f"{member}/config.json is not valid JSON ({type(error).__name__})."
                ) from None
        tasks = {_task(config) for config in configs}
        if len(tasks) != 1:
            raise EnsembleError(
                "Members mix attribute regression and classification; an ensemble needs one task."
            )
        self.task = tasks.pop()
        labels = {tuple(_labels(config)) for config in configs}
        if len(labels) != 1:
            raise EnsembleError(f"Members predict different labels: {sorted(labels)}.")
        self.labels = list(labels.pop())
        self.method = method or METHODS[self.task][0]
        if self.method not in METHODS[self.task]:
            raise EnsembleError(
                f"method={self.method!r} does not fit {self.task}; use one of {METHODS[self.task]}."
            )
        self.weights = None if weights is None else [float(w) for w in weights]
        _normalised_weights(len(self.members), self.weights)  # validate now
        self._loaded: list | None = None

    # ------------------------------------------------------------------------------------------ persistence
    def save_pretrained(self, path: str | os.PathLike, copy_members: bool = True) -> Path:
        """Write `ensemble.json` and (with `copy_members`) a copy of each member under `members/`; otherwise the
        manifest points at the members' absolute paths."""
        path = Path(path)
        if path.exists() and not path.is_dir():
            raise EnsembleError(f"Cannot write the ensemble to {path}: it is a file.")
        path.mkdir(parents=True, exist_ok=True)
        entries = []
        for index, member in enumerate(self.members):
            if copy_members:
                target = Path("members") / f"{index}-{member.name}"
                if (path / target).resolve() != member.resolve():
                    shutil.copytree(member, path / target, dirs_exist_ok=True)
                entries.append(target.as_posix())
            else:
                entries.append(str(member.resolve()))
        manifest = {
            "format": FORMAT,
            "version": 1,
            "task": self.task,
            "method": self.method,
            "labels": self.labels,
            "weights": self.weights,
            "members": entries,
        }
        (path / MANIFEST).write_text(json.dumps(manifest, indent=2) + "\n")
        return path

    @classmethod
    def from_pretrained(cls, path: str | os.PathLike) -> SEREnsemble:
        """Load an ensemble folder written by `save_pretrained`."""
        path = Path(path)
        manifest_file = path / MANIFEST
        if not manifest_file.is_file():
            raise EnsembleError(f"{path} has no {MANIFEST}: not an hf_ser ensemble folder.")
        try:
            manifest = json.loads(manifest_file.read_text(encoding="utf-8"))
        except (UnicodeDecodeError, json.JSONDecodeError) as error:
            raise EnsembleError(f"{manifest_file} is not valid JSON ({type(error).__name__}).") from None
        if not isinstance(manifest, dict) or manifest.get("format") != FORMAT:
            raise EnsembleError(f"{manifest_file} is not an hf_ser ensemble manifest.")
        try:
            members = [
                member if Path(member).is_absolute() else path / member for member in manifest["members"]
            ]
            ensemble = cls(members, method=manifest["method"], weights=manifest.get("weights"))
        except (KeyError, TypeError) as error:
            raise EnsembleError(
                f"{manifest_file} is incomplete or malformed ({type(error).__name__}: {error})."
            ) from None
        if ensemble.task != manifest["task"]:
            raise EnsembleError(
                f"{manifest_file} says task={manifest['task']!r} but its members do {ensemble.task}."
            )
        return ensemble

    # ------------------------------------------------------------------------------------------ prediction
    def _load(self) -> list:
        if self._loaded is None:
            from transformers import AutoFeatureExtractor, AutoModel, pipeline

            from .. import registration

            registration.register_auto_classes()
            loaded = []
            for member in self.members:
                try:
                    if self.task == "regression":
                        # The pipeline handles transcripts (and ASR when none is given) for multimodal members.
                        loaded.append(("pipeline", pipeline("speech-emotion-regression", model=str(member))))
                    else:
                        model = AutoModel.from_pretrained(member, trust_remote_code=False).eval()
                        extractor = AutoFeatureExtractor.from_pretrained(member, trust_remote_code=False)
                        loaded.append(("model", (model, extractor)))
                except (OSError, ValueError, RuntimeError, KeyError, TypeError) as error:
                    if isinstance(error, HFSERError):
                        raise
                    first = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
                    raise EnsembleError(f"Cannot load the member {member}: {first}") from None
            self._loaded = loaded
        return self._loaded

    def member_predictions(
        self,
        waveforms: Sequence[np.ndarray],
        transcripts: Sequence[str | None] | None = None,
        batch_size: int = 8,
    ) -> list[np.ndarray]:
        """Each member's output for 16 kHz waveforms: (clips, 3) attributes, or (clips, classes) probabilities."""
        if transcripts is not None and len(transcripts) != len(waveforms):
            raise EnsembleError(f"{len(transcripts)} transcripts for {len(waveforms)} clips.")
        from .predict import predict_logits

        outputs = []
        for kind, member in self._load():
            if kind == "pipeline":
                inputs = [
                    {
                        "array": w,
                        "sampling_rate": SAMPLING_RATE,
                        **({"transcript": t} if t is not None else {}),
                    }
                    for w, t in zip(waveforms, transcripts or [None] * len(waveforms), strict=True)
                ]
                results = member(inputs)
                outputs.append(np.array([[r[label] for label in self.labels] for r in results]))
            else:
                model, extractor = member
                logits = predict_logits(model, extractor, list(waveforms), batch_size=batch_size)
                shifted = np.exp(logits - logits.max(-1, keepdims=True))
                outputs.append(shifted / shifted.sum(-1, keepdims=True))
        return outputs

    def predict(
        self,
        waveforms: Sequence[np.ndarray],
        transcripts: Sequence[str | None] | None = None,
        batch_size: int = 8,
    ) -> np.ndarray:
        """The ensemble's output: (clips, 3) attributes (`"mean"`), (clips, classes) probabilities
        (`"probability"`), or (clips,) class ids (`"vote"`)."""
        outputs = self.member_predictions(waveforms, transcripts, batch_size)
        if self.method == "mean":
            return average_predictions(outputs, self.weights)
        if self.method == "probability":
            return average_probabilities(outputs, self.weights)
        return plurality_vote(outputs, self.weights)

    def __call__(self, waveforms, transcripts=None, batch_size: int = 8) -> list[dict]:
        """Readable results: `{label: value}` per clip (attributes or probabilities), or `{"label": name}` when
        voting."""
        result = self.predict(waveforms, transcripts, batch_size)
        if self.method == "vote":
            return [{"label": self.labels[int(i)]} for i in result]
        return [dict(zip(self.labels, map(float, row), strict=True)) for row in result]


def _task(config: dict) -> str:
    return "regression" if config.get("problem_type") == "regression" else "classification"


def _labels(config: dict) -> list[str]:
    id2label = config.get("id2label") or {}
    return [id2label[key] for key in sorted(id2label, key=int)]


__all__ = [
    "EnsembleError",
    "SEREnsemble",
    "average_predictions",
    "average_probabilities",
    "plurality_vote",
]
