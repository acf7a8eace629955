"""Training samplers (class-balanced) and the evaluation order (length-sorted).

- `ClassBalancedUndersampler`: paper 001 (Interspeech 2025 SER challenge, Task 2 winner), Sec. 3 "Undersampling":
  with m = min_i |emotion_i|, every epoch draws m clips of each class (without replacement) and shuffles them.
  The draw is repeated every epoch, so over training the majority classes are still seen in full.
- `ClassBalancedBatchSampler`: class-balanced batches (the "batch balancing" of the UNICAMP system summarised in
  paper 002): consecutive groups of `batch_size` indices hold every class equally often (to within one), minority
  classes being re-cycled; an epoch has as many samples as the dataset (rounded up to whole batches).

Both are plain `torch.utils.data.Sampler`s that yield dataset indices. They are global (not rank-aware): under
`accelerate launch` / `torchrun` every process builds the same sequence from the same seed and accelerate hands
each process its own batches. Each epoch's draw depends only on `(seed, epoch)`; `Trainer` calls `set_epoch`, so a
resumed run sees exactly the draws of an uninterrupted one.

- `RandomEpochSampler`: the plain shuffle, drawn from `(seed, epoch)` like the balanced samplers.

Each of the three training samplers can group its epoch's draw by length (`lengths` and `batch_size`): the same
clips per epoch, rearranged so that consecutive `batch_size` chunks hold clips of similar length, with the batch order
shuffled (see `group_by_length`). MSP-Podcast clips are 2.75-11 s: random batches pad about 30 % of the frames.

- `LengthSortedSampler` with `clip_durations`: evaluation and prediction in batches of clips of similar length
  (issue 9: batched, length-bucketed inference is what the evaluation loop uses by default).
"""

from __future__ import annotations

import math
from collections.abc import Iterator, Sequence

import numpy as np
import torch
from torch.utils.data import Sampler

from ..audio import SAMPLING_RATE, audio_duration


def _class_indices(labels: Sequence[int], ignore_index: int | None) -> list[np.ndarray]:
    labels = np.asarray(list(labels))
    if labels.ndim != 1 or labels.size == 0:
        raise ValueError("labels must be a non-empty 1-D sequence of class ids.")
    if not np.issubdtype(labels.dtype, np.integer):
        raise ValueError(f"labels must be integer class ids, got dtype {labels.dtype}.")
    keep = labels != ignore_index if ignore_index is not None else np.ones(labels.shape, dtype=bool)
    classes = np.unique(labels[keep])
    if classes.size == 0:
        raise ValueError("No labelled samples to balance.")
    return [np.flatnonzero(keep & (labels == c)) for c in classes]


def group_by_length(
    order: Sequence[int],
    lengths: Sequence[float],
    batch_size: int,
    rng: np.random.Generator,
    classes: Sequence[int] | None = None,
    batches_per_group: int = 50,
) -> list[int]:
    """One epoch's draw `order`, rearranged into batches of clips of similar length.

    The draw is cut into groups of `batches_per_group` batches; inside a group, each class's clips are sorted longest
    first and dealt back into that class's slots in batch order, so a batch keeps the class make-up it had in the
    draw (class-balanced batches stay balanced) while its clips are close in length. Whole batches are then shuffled;
    a final partial batch stays last, so every later batch still starts at a multiple of `batch_size` (what each
    process of a multi-process run receives whole).

    Args:
        order: dataset indices of one epoch, in the drawn order.
        lengths: a length per dataset index (any monotone unit).
        batch_size: the per-device batch size.
        rng: the epoch's generator (the result is reproducible from it).
        classes: a class per dataset index, when batches must keep their class make-up; None for one class.
    """
    if batch_size < 1:
        raise ValueError(f"batch_size must be >= 1, got {batch_size}.")
    order = np.asarray(order, dtype=np.int64)
    lengths = np.asarray(lengths, dtype=np.float64)
    full = len(order) // batch_size * batch_size
    batches: list[np.ndarray] = []
    span = batch_size * batches_per_group
    for start in range(0, full, span):
        group = order[start : min(start + span, full)]
        slot_classes = np.zeros(len(group), dtype=np.int64) if classes is None else np.asarray(classes)[group]
        grouped = group.copy()
        for value in np.unique(slot_classes):
            slots = np.flatnonzero(slot_classes == value)  # this class's slots, batch after batch
            members = group[slots]
            grouped[slots] = members[np.argsort(-lengths[members], kind="stable")]
        batches.extend(grouped.reshape(-1, batch_size))
    shuffled = [batches[i] for i in rng.permutation(len(batches))]
    return np.concatenate([*shuffled, order[full:]]).astype(int).tolist()


class _EpochSeededSampler(Sampler[int]):
    """A sampler whose epoch e is drawn from the stream `(seed, e)`, optionally grouped by length.

    Subclasses implement `_draw(rng)` (one epoch's indices) and may set `_slot_classes` (a class per dataset index)
    when their batches have a class make-up to keep."""

    _slot_classes: np.ndarray | None = None

    def __init__(
        self, seed: int, lengths: Sequence[float | None] | None = None, batch_size: int | None = None
    ):
        self.seed = int(seed)
        self.epoch = 0
        self._epoch_was_set = False
        self.lengths = None
        self.batch_size = batch_size
        if lengths is not None:
            if batch_size is None:
                raise ValueError("Grouping by length needs the per-device batch_size.")
            known = [float(v) for v in lengths if v is not None]
            fill = float(np.median(known)) if known else 0.0  # unknown lengths sit in the middle
            self.lengths = np.array([fill if v is None else float(v) for v in lengths], dtype=np.float64)

    @property
    def groups_by_length(self) -> bool:
        return self.lengths is not None

    def _draw(self, rng: np.random.Generator) -> list[int]:
        raise NotImplementedError

    def __iter__(self) -> Iterator[int]:
        rng = self._generator()
        order = self._draw(rng)
        if self.lengths is not None:
            order = group_by_length(order, self.lengths, self.batch_size, rng, self._slot_classes)
        yield from order

    def set_epoch(self, epoch: int) -> None:
        """Select the epoch whose draw `__iter__` yields (called by `Trainer` and accelerate)."""
        self.epoch = int(epoch)
        self._epoch_was_set = True

    def _generator(self) -> np.random.Generator:
        # Without set_epoch (a plain DataLoader loop), each new iteration is a new epoch, so draws still change.
        epoch = self.epoch
        if not self._epoch_was_set:
            self.epoch += 1
        self._epoch_was_set = False
        return np.random.default_rng([self.seed, epoch])


class ClassBalancedUndersampler(_EpochSeededSampler):
    """Random undersampling to the smallest class, re-drawn every epoch (paper 001, Sec. 3).

    Each epoch yields `num_classes * m` indices in random order, m = the smallest class count (or
    `samples_per_class`), each class's m clips drawn without replacement.

    Args:
        labels (`Sequence[int]`): the class id of every training sample (e.g. `dataset["label"]`).
        samples_per_class (`int`, *optional*): clips per class and epoch; defaults to the smallest class count.
            Must not exceed it.
        seed (`int`, defaults to 0): base seed; epoch e uses the stream `(seed, e)`.
        ignore_index (`int`, *optional*): a label value to leave out (e.g. -1 for clips without a primary emotion).

    Example:
        >>> sampler = ClassBalancedUndersampler([0, 0, 0, 1, 2, 2], seed=0)
        >>> len(sampler)  # 3 classes x 1 clip
        3
    """

    def __init__(
        self,
        labels: Sequence[int],
        samples_per_class: int | None = None,
        seed: int = 0,
        ignore_index: int | None = None,
        lengths: Sequence[float | None] | None = None,
        batch_size: int | None = None,
    ):
        super().__init__(seed, lengths, batch_size)
        self.class_indices = _class_indices(labels, ignore_index)
        smallest = min(len(indices) for indices in self.class_indices)
        if samples_per_class is None:
            samples_per_class = smallest
        if not 1 <= samples_per_class <= smallest:
            raise ValueError(
                f"samples_per_class must be in [1, {smallest}] (the smallest class count), got {samples_per_class}."
            )
        self.samples_per_class = samples_per_class

    def __len__(self) -> int:
        return self.samples_per_class * len(self.class_indices)

    def _draw(self, rng: np.random.Generator) -> list[int]:
        chosen = np.concatenate(
            [
                rng.choice(indices, size=self.samples_per_class, replace=False)
                for indices in self.class_indices
            ]
        )
        return rng.permutation(chosen).tolist()


class ClassBalancedBatchSampler(_EpochSeededSampler):
    """Index order in which every consecutive `batch_size` indices are class-balanced.

    Classes are visited in rounds (a fresh random class order per round); each class walks through its own shuffled
    clips and reshuffles when it runs out, so minority clips repeat more often within an epoch and majority clips
    less. With `batch_size` a multiple of the number of classes every batch holds each class equally often.

    Pass it as the `sampler` of a `DataLoader` whose `batch_size` equals `batch_size` (the per-device batch size:
    under multi-process training each process receives whole batches).

    Args:
        labels (`Sequence[int]`): the class id of every training sample.
        batch_size (`int`): the per-device batch size.
        num_samples (`int`, *optional*): indices per epoch; defaults to the number of labelled samples rounded up to
            a multiple of `batch_size`.
        seed (`int`, defaults to 0): base seed; epoch e uses the stream `(seed, e)`.
        ignore_index (`int`, *optional*): a label value to leave out.
    """

    def __init__(
        self,
        labels: Sequence[int],
        batch_size: int,
        num_samples: int | None = None,
        seed: int = 0,
        ignore_index: int | None = None,
        lengths: Sequence[float | None] | None = None,
    ):
        if batch_size < 1:
            raise ValueError(f"batch_size must be >= 1, got {batch_size}.")
        super().__init__(seed, lengths, batch_size)
        self.class_indices = _class_indices(labels, ignore_index)
        # Grouping keeps each batch's class make-up: every slot keeps the class of the clip drawn for it.
        self._slot_classes = np.full(max(int(i.max()) for i in self.class_indices) + 1, -1, dtype=np.int64)
        for value, indices in enumerate(self.class_indices):
            self._slot_classes[indices] = value
        if num_samples is None:
            # Rounded up to whole batches, so that the last batch is balanced too.
            labelled = sum(len(i) for i in self.class_indices)
            num_samples = -(-labelled // batch_size) * batch_size
        self.num_samples = int(num_samples)
        if self.num_samples < 1:
            raise ValueError(f"num_samples must be >= 1, got {num_samples}.")

    def __len__(self) -> int:
        return self.num_samples

    def _draw(self, rng: np.random.Generator) -> list[int]:
        num_classes = len(self.class_indices)
        queues = [rng.permutation(indices) for indices in self.class_indices]
        positions = [0] * num_classes
        out: list[int] = []
        order = rng.permutation(num_classes)
        slot = 0
        while len(out) < self.num_samples:
            if slot == num_classes:
                order, slot = rng.permutation(num_classes), 0
            c = order[slot]
            slot += 1
            if positions[c] == len(queues[c]):
                queues[c], positions[c] = rng.permutation(self.class_indices[c]), 0
            out.append(int(queues[c][positions[c]]))
            positions[c] += 1
        return out


class RandomEpochSampler(_EpochSeededSampler):
    """Every index once per epoch in a random order drawn from `(seed, epoch)`: the plain shuffle, reproducible and
    resumable like the balanced samplers, and groupable by length.

    Args:
        num_samples (`int`): the dataset size.
        seed (`int`, defaults to 0): base seed; epoch e uses the stream `(seed, e)`.
        lengths (`Sequence[float]`, *optional*): a length per clip, to group batches by length.
        batch_size (`int`, *optional*): the per-device batch size (needed with `lengths`).
    """

    def __init__(
        self,
        num_samples: int,
        seed: int = 0,
        lengths: Sequence[float | None] | None = None,
        batch_size: int | None = None,
    ):
        super().__init__(seed, lengths, batch_size)
        if num_samples < 1:
            raise ValueError(f"num_samples must be >= 1, got {num_samples}.")
        self.num_samples = int(num_samples)

    def __len__(self) -> int:
        return self.num_samples

    def _draw(self, rng: np.random.Generator) -> list[int]:
        return rng.permutation(self.num_samples).tolist()


class LengthSortedSampler(Sampler[int]):
    """Every index once, longest clip first (ties keep dataset order): consecutive batches hold clips of similar
    length, so evaluation spends little compute on padding. `order` is the run order; the hf_ser trainers put
    predictions back in dataset order.

    Args:
        lengths (`Sequence[float]`): one sort key per clip (seconds, samples, any monotone unit); `None` entries
            (unknown) run first.
    """

    def __init__(self, lengths: Sequence[float | None]):
        keys = [math.inf if value is None else float(value) for value in lengths]
        self.order = sorted(range(len(keys)), key=lambda i: -keys[i])

    def __len__(self) -> int:
        return len(self.order)

    def __iter__(self) -> Iterator[int]:
        return iter(self.order)


def clip_durations(
    dataset, audio_column: str = "audio", length_columns: Sequence[str] = ("length", "duration")
) -> list[float | None] | None:
    """A length per clip of `dataset`, found without decoding audio; None when there is no cheap way.

    In order: a column of `length_columns` (transformers' `length_column_name` convention); a `datasets.Audio`
    column, from each file's header (seconds; None for an unreadable file); an Arrow column of sample lists or of
    `{"array", "sampling_rate"}` rows (seconds); a Python list of rows holding arrays (seconds).
    """
    column_names = getattr(dataset, "column_names", None)
    if column_names is not None:
        for name in length_columns:
            if name in column_names:
                return [None if v is None else float(v) for v in dataset[name]]
        if audio_column not in column_names:
            return None
        return _arrow_durations(dataset, audio_column)
    if isinstance(dataset, (list, tuple)):
        durations = []
        for row in dataset:
            audio = row.get(audio_column) if isinstance(row, dict) else None
            if isinstance(audio, dict) and "array" in audio:
                durations.append(len(audio["array"]) / float(audio.get("sampling_rate") or SAMPLING_RATE))
            elif audio is not None and hasattr(audio, "__len__"):
                durations.append(float(len(audio)))
            else:
                return None
        return durations
    return None


def _arrow_durations(dataset, audio_column: str) -> list[float | None] | None:
    import datasets
    import pyarrow as pa
    import pyarrow.compute as pc

    feature = dataset.features.get(audio_column)
    if isinstance(feature, datasets.Audio):
        undecoded = dataset.select_columns([audio_column]).cast_column(
            audio_column, datasets.Audio(decode=False)
        )
        durations: list[float | None] = []
        for batch in undecoded.iter(batch_size=512):
            for value in batch[audio_column]:
                source = (value or {}).get("bytes") or (value or {}).get("path")
                durations.append(audio_duration(source) if source else None)
        return durations
    column = dataset.select_columns([audio_column]).with_format("arrow")[audio_column]
    rate = None
    if pa.types.is_struct(column.type):
        names = [column.type.field(i).name for i in range(column.type.num_fields)]
        if "array" not in names:
            return None
        if "sampling_rate" in names:
            rate = pc.struct_field(column, "sampling_rate").to_pylist()
        column = pc.struct_field(column, "array")
    if not (pa.types.is_list(column.type) or pa.types.is_large_list(column.type)):
        return None
    samples = pc.list_value_length(column).to_pylist()
    if rate is None:
        return [None if n is None else float(n) for n in samples]
    return [None if n is None or r in (None, 0) else n / r for n, r in zip(samples, rate, strict=True)]


def labels_from_dataset(dataset, column: str) -> list[int]:
    """The integer label column `column` of a `datasets.Dataset` (or any sequence of dicts) as a list."""
    column_names = getattr(dataset, "column_names", None)
    if column_names is not None:
        if column not in column_names:
            raise ValueError(
                f"The training dataset has no column {column!r} to balance on (columns: {column_names})."
            )
        values = dataset[column]
    else:
        values = [example[column] for example in dataset]
    values = [int(v.item()) if isinstance(v, torch.Tensor) else v for v in values]
    return list(values)


__all__ = [
    "RandomEpochSampler",
    "group_by_length",
    "ClassBalancedUndersampler",
    "ClassBalancedBatchSampler",
    "LengthSortedSampler",
    "clip_durations",
    "labels_from_dataset",
]
