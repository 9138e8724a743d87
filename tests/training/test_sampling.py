"""ResumableBatchSampler: deterministic order per (seed, epoch), exact resume position, epochs that
advance by themselves, length grouping, and rank sharding under DDP."""

from __future__ import annotations

import itertools
from unittest import mock

import pytest

from plmstruct.data.paths import data_file
from plmstruct.data.secondary_structure import read_three_line
from plmstruct.training.sampling import ResumableBatchSampler, SeededDataset, item_seed


@pytest.fixture(scope="module")
def lengths() -> list[int]:
    """Lengths of the real CASP12 chains (47)."""
    return [len(r.sequence) for r in read_three_line(data_file("secondary_structure", "CASP12.txt"))]


def _indices(batches) -> list[list[int]]:
    return [[i for _, i in b] for b in batches]


def test_order_is_a_function_of_seed_and_epoch(lengths):
    a = _indices(ResumableBatchSampler(lengths, 4, seed=1))
    assert a == _indices(ResumableBatchSampler(lengths, 4, seed=1))
    assert a != _indices(ResumableBatchSampler(lengths, 4, seed=2))
    assert sorted(itertools.chain(*a)) == list(range(len(lengths)))  # every item exactly once
    other = ResumableBatchSampler(lengths, 4, seed=1)
    other.set_epoch(3)
    assert _indices(other) != a


def test_item_seeds_depend_on_seed_epoch_and_index():
    seeds = {item_seed(s, e, i) for s in range(3) for e in range(3) for i in range(50)}
    assert len(seeds) == 3 * 3 * 50
    sampler = ResumableBatchSampler([10] * 8, 4, seed=5)
    for batch in sampler:
        assert all(seed == item_seed(5, 0, i) for seed, i in batch)


def test_epochs_advance_after_a_full_pass_and_validation_passes_stay_fixed(lengths):
    train = ResumableBatchSampler(lengths, 4, seed=1)
    first, second = _indices(train), _indices(train)
    assert train.epoch == 1 and first != second
    fresh = ResumableBatchSampler(lengths, 4, seed=1)
    fresh.set_epoch(1)
    assert _indices(fresh) == second
    val = ResumableBatchSampler(lengths, 4, seed=1, shuffle=False)
    assert _indices(val) == _indices(val) == [list(range(s, min(s + 4, 47))) for s in range(0, 47, 4)]
    assert val.epoch == 0


def test_resume_at_continues_with_the_next_batch(lengths):
    full = _indices(ResumableBatchSampler(lengths, 4, seed=9))
    resumed = ResumableBatchSampler(lengths, 4, seed=9)
    resumed.resume_at(0, 5)
    assert _indices(resumed) == full[5:]
    # resuming at the very end of an epoch yields nothing, then the next epoch
    ended = ResumableBatchSampler(lengths, 4, seed=9)
    ended.resume_at(0, len(full))
    assert _indices(ended) == []
    nxt = ResumableBatchSampler(lengths, 4, seed=9)
    nxt.set_epoch(1)
    assert _indices(ended) == _indices(nxt)


def test_position_counts_batches_trained_on_not_prefetched(lengths):
    sampler = ResumableBatchSampler(lengths, 4, seed=0)
    it = iter(sampler)
    next(it), next(it), next(it)  # a fetcher ran two batches ahead of training
    assert sampler.mark_consumed() == (0, 1)
    assert sampler.position == (0, 1)
    sampler.mark_consumed()
    assert sampler.position == (0, 2)


def test_length_grouping_limits_padding(lengths):
    def padding(batches):
        return sum(max(lengths[i] for i in b) * len(b) - sum(lengths[i] for i in b) for b in batches)

    grouped = _indices(ResumableBatchSampler(lengths, 4, seed=0, sort_window=50))
    plain = _indices(ResumableBatchSampler(lengths, 4, seed=0, sort_window=1))
    assert padding(grouped) < padding(plain) / 2


@pytest.mark.parametrize("world", [2, 3])
def test_ddp_ranks_get_disjoint_equal_shards(lengths, world):
    shards = []
    for rank in range(world):
        sampler = ResumableBatchSampler(lengths, 4, seed=3)
        with mock.patch.object(ResumableBatchSampler, "_world", return_value=(rank, world)):
            shards.append(_indices(sampler))
            assert len(sampler) == len(shards[-1])
    assert len({len(s) for s in shards}) == 1  # every rank runs the same number of steps
    items = [i for s in shards for b in s for i in b]
    assert len(items) == len(set(items))  # disjoint
    n_batches = -(-len(lengths) // 4)
    assert len(shards[0]) == n_batches // world


def test_seeded_dataset_returns_item_and_seed():
    ds = SeededDataset(["AAA", "CCC"])
    assert len(ds) == 2 and ds[(17, 1)] == ("CCC", 17)
