"""The fast data path: the integer mean image and the memory-mapped array cache."""

from __future__ import annotations

import importlib

import numpy as np

from dlexp.data import load_raw_cifar10
from tests.conftest import assert_raw_equal, write_tiny_cifar10

prepare_module = importlib.import_module("dlexp.data.prepare")
cifar10_module = importlib.import_module("dlexp.data.cifar10")


def test_integer_mean_image_equals_the_float64_mean_bitwise():
    rng = np.random.default_rng(0)
    for n in (1, 7, 4999):
        u8 = rng.integers(0, 256, size=(n, 3072), dtype=np.uint8)
        u8[0] = 255  # the largest sums
        want = u8.mean(axis=0, dtype=np.float64).astype(np.float32)
        np.testing.assert_array_equal(prepare_module._mean_image(u8), want)


def test_the_cache_is_read_memory_mapped(tmp_path, monkeypatch):
    folder, cache = write_tiny_cifar10(tmp_path / "d"), tmp_path / "cache"
    first = load_raw_cifar10(folder, cache)
    monkeypatch.setattr(
        np, "load", lambda *a, **k: (_ for _ in ()).throw(AssertionError("np.load"))
    )
    mapped = load_raw_cifar10(folder, cache)
    assert_raw_equal(first, mapped)
    for images in (mapped.train_x, mapped.test_x):
        assert not images.flags.writeable and not images.flags.owndata  # a view of the mapping
    assert mapped.train_y.flags.owndata  # labels are copied: they outlive the mapping cheaply


def test_a_compressed_cache_is_rebuilt_stored(tmp_path):
    folder, cache = write_tiny_cifar10(tmp_path / "d"), tmp_path / "cache"
    first = load_raw_cifar10(folder, cache)
    (cache_file,) = cache.glob("*.npz")
    np.savez_compressed(cache_file.with_suffix(""), **vars(first))  # savez adds .npz back
    assert cifar10_module._read_cache(cache_file) is None
    assert_raw_equal(first, load_raw_cifar10(folder, cache))
    assert cifar10_module._read_cache(cache_file) is not None
