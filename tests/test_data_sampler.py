"""dlexp.data's BatchSampler: batch order from a generator, epochs, and bad sizes."""

from __future__ import annotations

import itertools

import numpy as np
import pytest

from dlexp.data import BatchSampler
from dlexp.errors import ConfigError


def draw(sampler: BatchSampler, n: int) -> list[np.ndarray]:
    return [sampler.next_batch().indices.copy() for _ in range(n)]


def test_batch_order_comes_from_the_generator():
    first = np.concatenate(draw(BatchSampler(50, 10, np.random.default_rng(5)), 5))
    np.testing.assert_array_equal(first, np.random.default_rng(5).permutation(50))
    same = draw(BatchSampler(50, 10, np.random.default_rng(5)), 12)
    other = draw(BatchSampler(50, 10, np.random.default_rng(6)), 12)
    np.testing.assert_array_equal(np.concatenate(same[:5]), first)
    assert not np.array_equal(np.concatenate(same), np.concatenate(other))


def test_every_index_once_per_epoch_and_a_new_order_each_epoch():
    sampler = BatchSampler(40, 8, np.random.default_rng(0))
    epochs = [np.concatenate(draw(sampler, 5)) for _ in range(4)]
    for order in epochs:
        np.testing.assert_array_equal(np.sort(order), np.arange(40))
    for a, b in itertools.combinations(epochs, 2):
        assert not np.array_equal(a, b)


def test_an_incomplete_tail_is_dropped():
    sampler = BatchSampler(10, 4, np.random.default_rng(0))
    epoch = np.concatenate(draw(sampler, 2))
    assert len(np.unique(epoch)) == 8 and sampler.epochs_completed == 0
    sampler.next_batch()  # the 2 left over would make a short batch: a new epoch starts instead
    assert sampler.epochs_completed == 1


def test_epochs_completed_counts_once_the_next_epoch_starts():
    sampler = BatchSampler(12, 4, np.random.default_rng(0))
    counts = [(sampler.next_batch(), sampler.epochs_completed)[1] for _ in range(10)]
    assert counts == [0, 0, 0, 1, 1, 1, 2, 2, 2, 3]


def test_batches_are_slices_of_the_epoch_permutation():
    sampler = BatchSampler(30, 7, np.random.default_rng(1))
    batches = list(itertools.islice(sampler, 6))
    assert all(b.stop - b.start == 7 for b in batches)
    assert np.shares_memory(batches[0].indices, batches[0].permutation)
    np.testing.assert_array_equal(batches[1].indices, batches[1].permutation[7:14])


@pytest.mark.parametrize("batch_size", [0, -3, 11])
def test_batch_size_must_fit_the_data(batch_size):
    with pytest.raises(ConfigError, match="batch_size"):
        BatchSampler(10, batch_size, np.random.default_rng(0))


def test_one_batch_may_hold_everything():
    sampler = BatchSampler(10, 10, np.random.default_rng(0))
    np.testing.assert_array_equal(np.sort(sampler.next_batch().indices), np.arange(10))
