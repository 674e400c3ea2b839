"""The real CIFAR-10, marked `realdata`: skipped until ../shared/data/cifar10/fetch.sh ran."""

from __future__ import annotations

import numpy as np
import pytest

from dlexp.data import find_batches_dir, load_cifar10

pytestmark = pytest.mark.realdata


def test_counts_classes_and_first_labels(real_cifar):
    data = load_cifar10(real_cifar, validation_size=0)
    assert data.train.images.shape == (50000, 3, 32, 32) and data.train.images.dtype == np.float32
    assert data.test.images.shape == (10000, 3, 32, 32) and len(data.val) == 0
    np.testing.assert_array_equal(np.bincount(data.train.labels), [5000] * 10)
    np.testing.assert_array_equal(np.bincount(data.test.labels), [1000] * 10)
    assert data.train.labels[:4].tolist() == [6, 9, 9, 4]
    assert data.test.labels[:4].tolist() == [3, 8, 8, 0]


def test_default_split_and_both_roots(real_cifar):
    data = load_cifar10(find_batches_dir(real_cifar))  # the batches folder itself, as --data_dir
    assert (len(data.train), len(data.val), len(data.test)) == (45000, 5000, 10000)
    assert data.val.labels[:4].tolist() == [6, 9, 9, 4]  # validation = the first 5000 images
    assert np.abs(data.train.images.mean(axis=0, dtype=np.float64)).max() < 1e-3
