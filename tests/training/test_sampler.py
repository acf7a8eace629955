"""Class-balanced samplers: per-epoch class counts, re-drawing, determinism."""

from __future__ import annotations

from collections import Counter

import numpy as np
import pytest
from torch.utils.data import DataLoader

from hf_ser.training.sampler import (
    ClassBalancedBatchSampler,
    ClassBalancedUndersampler,
    RandomEpochSampler,
    group_by_length,
    labels_from_dataset,
)

# 3 classes: 20, 7 and 4 clips.
LABELS = [0] * 20 + [1] * 7 + [2] * 4


def test_undersampler_draws_min_count_per_class_each_epoch():
    sampler = ClassBalancedUndersampler(LABELS, seed=3)
    assert len(sampler) == 12
    seen_majority: set[int] = set()
    draws = []
    for epoch in range(6):
        sampler.set_epoch(epoch)
        indices = list(sampler)
        assert len(indices) == len(sampler) == len(set(indices))  # no clip twice within an epoch
        assert Counter(LABELS[i] for i in indices) == {0: 4, 1: 4, 2: 4}
        seen_majority |= {i for i in indices if LABELS[i] == 0}
        draws.append(indices)
    # Re-drawn every epoch: epochs differ and, over epochs, more than one epoch's worth of majority clips is seen.
    assert len({tuple(sorted(d)) for d in draws}) > 1
    assert len(seen_majority) > 4


def test_undersampler_is_deterministic_per_epoch():
    a, b = ClassBalancedUndersampler(LABELS, seed=7), ClassBalancedUndersampler(LABELS, seed=7)
    a.set_epoch(3)
    b.set_epoch(3)
    first = list(a)
    assert first == list(b)
    a.set_epoch(3)
    assert list(a) == first  # the same epoch again gives the same draw (what a resumed run relies on)
    a.set_epoch(4)
    assert list(a) != first


def test_undersampler_without_set_epoch_redraws_each_iteration():
    sampler = ClassBalancedUndersampler(LABELS, seed=0)
    assert list(sampler) != list(sampler)


def test_undersampler_options_and_errors():
    sampler = ClassBalancedUndersampler(LABELS + [-1, -1], samples_per_class=2, ignore_index=-1)
    indices = list(sampler)
    assert Counter(LABELS[i] for i in indices) == {0: 2, 1: 2, 2: 2}
    with pytest.raises(ValueError, match="samples_per_class"):
        ClassBalancedUndersampler(LABELS, samples_per_class=5)
    with pytest.raises(ValueError, match="integer"):
        ClassBalancedUndersampler([0.5, 1.5])
    with pytest.raises(ValueError, match="non-empty"):
        ClassBalancedUndersampler([])


@pytest.mark.parametrize("batch_size", [3, 6])
def test_balanced_batches_hold_every_class_equally(batch_size):
    sampler = ClassBalancedBatchSampler(LABELS, batch_size=batch_size, seed=1)
    sampler.set_epoch(0)
    assert len(sampler) == -(-len(LABELS) // batch_size) * batch_size  # whole batches covering the dataset
    loader = DataLoader(np.arange(len(LABELS)), batch_size=batch_size, sampler=sampler)
    assert len(loader) == len(sampler) // batch_size
    for batch in loader:
        counts = Counter(LABELS[i] for i in batch.tolist())
        assert counts == {c: batch_size // 3 for c in range(3)}


def test_balanced_batches_uneven_batch_size_and_coverage():
    sampler = ClassBalancedBatchSampler(LABELS, batch_size=4, num_samples=60, seed=2)
    indices = list(sampler)
    assert len(indices) == 60
    for start in range(0, 60, 4):
        counts = Counter(LABELS[i] for i in indices[start : start + 4])
        assert max(counts.values()) - min(counts.get(c, 0) for c in range(3)) <= 1
    # Minority clips are all used, and cycling covers each class's clips before repeating any.
    assert {i for i in indices if LABELS[i] == 2} == {27, 28, 29, 30}
    assert Counter(LABELS[i] for i in indices) == {0: 20, 1: 20, 2: 20}
    with pytest.raises(ValueError, match="batch_size"):
        ClassBalancedBatchSampler(LABELS, batch_size=0)


def test_labels_from_dataset():
    from datasets import Dataset

    dataset = Dataset.from_dict({"label": [2, 0, 1], "x": [0.0, 1.0, 2.0]})
    assert labels_from_dataset(dataset, "label") == [2, 0, 1]
    assert labels_from_dataset([{"label": 1}, {"label": 0}], "label") == [1, 0]
    with pytest.raises(ValueError, match="no column 'emotion'"):
        labels_from_dataset(dataset, "emotion")


def test_length_sorted_sampler_runs_longest_first_unknown_first_ties_in_order():
    from hf_ser.training.sampler import LengthSortedSampler

    sampler = LengthSortedSampler([2.0, 5.0, None, 2.0, 7.5])
    assert list(sampler) == [2, 4, 1, 0, 3] and len(sampler) == 5


def test_clip_durations_without_decoding(tmp_path):
    import soundfile as sf
    from datasets import Audio, Dataset

    from hf_ser.training.sampler import clip_durations

    seconds = [0.5, 1.25, 0.75]
    paths = []
    for i, s in enumerate(seconds):
        paths.append(str(tmp_path / f"c{i}.wav"))
        sf.write(paths[-1], np.zeros(int(s * 22050), dtype=np.float32), 22050)
    (tmp_path / "bad.wav").write_bytes(b"RIFF not really audio")
    files = Dataset.from_dict({"audio": paths + [str(tmp_path / "bad.wav")]}).cast_column(
        "audio", Audio(16000)
    )
    assert clip_durations(files) == pytest.approx(seconds + [None], abs=1e-4)
    # Arrow columns of arrays (with or without a sampling rate), a length column, a list of rows.
    rows = [{"array": np.zeros(int(s * 16000), dtype=np.float32), "sampling_rate": 16000} for s in seconds]
    assert clip_durations(Dataset.from_dict({"audio": rows})) == pytest.approx(seconds)
    assert clip_durations(Dataset.from_dict({"audio": [r["array"] for r in rows]})) == [8000, 20000, 12000]
    assert clip_durations(Dataset.from_dict({"audio": rows, "length": [3, 1, 2]})) == [3, 1, 2]
    assert clip_durations([{"audio": r} for r in rows]) == pytest.approx(seconds)
    # No cheap way: None (the trainers then evaluate in dataset order).
    assert clip_durations(Dataset.from_dict({"text": ["a", "b"]})) is None
    assert clip_durations(Dataset.from_dict({"audio": ["x", "y"]})) is None


# ---------------------------------------------------------------------------------------------- length grouping
# 240 clips of MSP-Podcast-like lengths (2.75-11 s), 3 classes.
RNG = np.random.default_rng(0)
LONG_LABELS = RNG.integers(0, 3, 240).tolist()
LONG_LENGTHS = RNG.uniform(2.75, 11.0, 240).tolist()


def _padding(order, lengths, batch_size):
    """Share of padded frames when `order` is cut into batches of `batch_size`."""
    padded = total = 0.0
    for start in range(0, len(order), batch_size):
        batch = [lengths[i] for i in order[start : start + batch_size]]
        padded += max(batch) * len(batch)
        total += sum(batch)
    return 1.0 - total / padded


def _grouped_and_plain(kind: str, batch_size: int = 8):
    def build(lengths):
        if kind == "shuffle":
            return RandomEpochSampler(len(LONG_LABELS), seed=5, lengths=lengths, batch_size=batch_size)
        if kind == "undersample":
            return ClassBalancedUndersampler(LONG_LABELS, seed=5, lengths=lengths, batch_size=batch_size)
        return ClassBalancedBatchSampler(LONG_LABELS, batch_size=batch_size, seed=5, lengths=lengths)

    return build(LONG_LENGTHS), build(None)


@pytest.mark.parametrize("kind", ["shuffle", "undersample", "balanced_batches"])
def test_length_grouping_keeps_each_epochs_draw_and_cuts_padding(kind):
    grouped, plain = _grouped_and_plain(kind)
    for epoch in range(3):
        grouped.set_epoch(epoch)
        plain.set_epoch(epoch)
        g, p = list(grouped), list(plain)
        assert sorted(g) == sorted(p)  # the same clips (with the same repeats) as without grouping
        assert _padding(g, LONG_LENGTHS, 8) < 0.10 < 0.20 < _padding(p, LONG_LENGTHS, 8)
        grouped.set_epoch(epoch)
        assert list(grouped) == g  # reproducible from (seed, epoch): what a resumed run relies on
    grouped.set_epoch(0)
    first = list(grouped)
    grouped.set_epoch(1)
    assert list(grouped) != first


def test_length_grouped_batches_are_shuffled_not_sorted():
    grouped, _ = _grouped_and_plain("shuffle")
    order = list(grouped)
    longest = [max(LONG_LENGTHS[i] for i in order[s : s + 8]) for s in range(0, len(order), 8)]
    assert longest != sorted(longest) and longest != sorted(longest, reverse=True)


def test_length_grouping_keeps_the_class_make_up_of_balanced_batches():
    grouped, plain = _grouped_and_plain("balanced_batches", batch_size=6)
    g, p = list(grouped), list(plain)
    makeups_g = sorted(
        tuple(sorted(Counter(LONG_LABELS[i] for i in g[s : s + 6]).items())) for s in range(0, 240, 6)
    )
    makeups_p = sorted(
        tuple(sorted(Counter(LONG_LABELS[i] for i in p[s : s + 6]).items())) for s in range(0, 240, 6)
    )
    assert makeups_g == makeups_p
    assert all(dict(m) == {0: 2, 1: 2, 2: 2} for m in makeups_g)


def test_partial_last_batch_stays_last():
    sampler = RandomEpochSampler(21, seed=0, lengths=list(range(21)), batch_size=4)
    order = list(sampler)
    assert sorted(order) == list(range(21))
    for start in range(0, 20, 4):  # whole batches are groups of neighbouring lengths
        batch = order[start : start + 4]
        assert max(batch) - min(batch) <= 8


def test_group_by_length_validates():
    with pytest.raises(ValueError, match="batch_size"):
        group_by_length([0, 1], [1.0, 2.0], 0, np.random.default_rng(0))
    with pytest.raises(ValueError, match="batch_size"):
        RandomEpochSampler(4, lengths=[1, 2, 3, 4])
    # Unknown lengths sit in the middle instead of failing.
    sampler = RandomEpochSampler(4, lengths=[1.0, None, 3.0, None], batch_size=2)
    assert sorted(sampler) == [0, 1, 2, 3]


def test_grouped_batches_shard_whole_across_processes():
    """Under several processes accelerate hands process k batches k, k+n, ...: each receives whole grouped
    batches, and the processes together see the epoch's draw."""
    from accelerate.data_loader import BatchSamplerShard
    from torch.utils.data import BatchSampler

    sampler = RandomEpochSampler(240, seed=2, lengths=LONG_LENGTHS, batch_size=8)
    sampler.set_epoch(1)
    batches = list(BatchSampler(sampler, 8, drop_last=False))
    shards = []
    for rank in range(2):
        sampler.set_epoch(1)
        shard = BatchSamplerShard(
            BatchSampler(sampler, 8, drop_last=False), num_processes=2, process_index=rank
        )
        shards.append(list(shard))
    assert shards[0] == batches[0::2] and shards[1] == batches[1::2]
    assert all(max(LONG_LENGTHS[i] for i in b) - min(LONG_LENGTHS[i] for i in b) < 1.5 for b in batches)
