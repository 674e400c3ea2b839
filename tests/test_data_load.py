"""load_cifar10 (dlexp.data.load): either root, subsets, and the memory-mapped cache of the
prepared splits: bitwise equal, rebuilt when damaged, safe under concurrent and interrupted
writers."""

from __future__ import annotations

import importlib
import os
import time

import numpy as np
import pytest

from dlexp.data import load_cifar10, load_raw_cifar10
from tests.conftest import write_tiny_cifar10

load_module = importlib.import_module("dlexp.data.load")
BATCHES = "cifar-10-batches-py"


def assert_data_equal(want, got) -> None:
    for name in ("train", "val", "test"):
        np.testing.assert_array_equal(getattr(want, name).images, getattr(got, name).images)
        np.testing.assert_array_equal(getattr(want, name).labels, getattr(got, name).labels)
        assert getattr(got, name).images.dtype == np.float32
    assert want.stats.keys() == got.stats.keys()
    for key in want.stats:
        np.testing.assert_array_equal(want.stats[key], got.stats[key])


@pytest.mark.parametrize("preprocess", ["mean_image", "standardize"])
def test_prepared_splits_are_cached_and_mapped_bitwise_equal(tmp_path, preprocess):
    folder, cache = write_tiny_cifar10(tmp_path / "d"), tmp_path / "cache"
    args = {"download": False, "validation_size": 20, "preprocess": preprocess}
    want = load_cifar10(folder.parent, cache_dir=None, **args)  # no cache: prepared in memory
    first = load_cifar10(folder.parent, cache_dir=cache, **args)  # prepares, writes the folder
    (prepared,) = cache.glob("*-prepared*")
    assert prepared.stat().st_mode & 0o777 == 0o755  # readable by a group sharing the cache
    assert sorted(p.name for p in prepared.iterdir()) == [
        "stats.npz", "test_x.npy", "train_x.npy", "val_x.npy",
    ]  # fmt: skip
    mapped = load_cifar10(folder.parent, cache_dir=cache, **args)
    for data in (first, mapped):
        assert_data_equal(want, data)
    splits = (first.train, first.val, first.test, mapped.train, mapped.val, mapped.test)
    for split in splits:  # read-only maps, BLAS-aligned: the run that writes the folder too
        assert isinstance(split.images, np.memmap)
        assert not split.images.flags.writeable and split.images.flags.aligned
    small = load_cifar10(folder.parent, cache_dir=cache, train_subset=7, eval_subset=5, **args)
    assert_data_equal(
        load_cifar10(folder.parent, cache_dir=None, train_subset=7, eval_subset=5, **args), small
    )


def test_a_subset_run_writes_no_prepared_cache(tmp_path):
    folder, cache = write_tiny_cifar10(tmp_path / "d"), tmp_path / "cache"
    load_cifar10(folder.parent, download=False, validation_size=20, cache_dir=cache, train_subset=5)
    assert not list(cache.glob("*-prepared*"))


@pytest.mark.parametrize(
    "damage", ["truncated", "float64", "missing_stats", "wrong_stats", "pickled_object"]
)
def test_a_damaged_prepared_cache_is_rebuilt(tmp_path, damage):
    folder, cache = write_tiny_cifar10(tmp_path / "d"), tmp_path / "cache"
    args = {"download": False, "validation_size": 20}
    want = load_cifar10(folder.parent, cache_dir=None, **args)
    load_cifar10(folder.parent, cache_dir=cache, **args)
    (prepared,) = cache.glob("*-prepared*")
    train = prepared / "train_x.npy"
    if damage == "truncated":
        train.write_bytes(train.read_bytes()[:-100])
    elif damage == "float64":
        np.save(train, np.load(train).astype(np.float64))
    elif damage == "missing_stats":
        (prepared / "stats.npz").unlink()
    elif damage == "wrong_stats":  # standardize's statistics under a mean_image name
        np.savez(prepared / "stats.npz", channel_mean=np.zeros(3), channel_std=np.ones(3))
    else:  # an object array would unpickle on load: refused, never executed
        np.save(train, np.array([{"a": 1}], dtype=object), allow_pickle=True)
    assert (
        load_module.read_prepared(prepared, load_raw_cifar10(folder, cache), 20, "mean_image")
        is None
    )
    assert_data_equal(want, load_cifar10(folder.parent, cache_dir=cache, **args))
    assert load_module.read_prepared(prepared, load_raw_cifar10(folder, cache), 20, "mean_image")


def write_args(tmp_path):
    folder, cache = write_tiny_cifar10(tmp_path / "d"), tmp_path / "cache"
    return folder, cache, {"download": False, "validation_size": 20}


def test_a_concurrent_writers_folder_is_kept_and_no_temporary_stays(tmp_path):
    """Two cold jobs at once: the second writer's rename fails and it reads the first's folder."""
    folder, cache, args = write_args(tmp_path)
    want = load_cifar10(folder.parent, cache_dir=cache, **args)
    (prepared,) = cache.glob("*-prepared*")
    marker = prepared / "written_by_the_first_job"
    marker.touch()
    load_module.write_prepared(prepared, want)  # the late writer
    assert marker.exists()  # the folder in place was not replaced or deleted
    assert sorted(p.name for p in cache.iterdir() if "prepared" in p.name) == [prepared.name]


def test_an_interrupted_write_leaves_nothing_behind(tmp_path, monkeypatch):
    folder, cache, args = write_args(tmp_path)
    real_save = np.save

    def save_then_ctrl_c(path, array, *a, **k):
        real_save(path, array, *a, **k)
        raise KeyboardInterrupt

    monkeypatch.setattr(np, "save", save_then_ctrl_c)
    with pytest.raises(KeyboardInterrupt):
        load_cifar10(folder.parent, cache_dir=cache, **args)
    assert not [p for p in cache.iterdir() if "prepared" in p.name]


def test_a_dead_writers_temporary_folder_is_cleared_a_fresh_one_kept(tmp_path):
    folder, cache, args = write_args(tmp_path)
    load_cifar10(folder.parent, cache_dir=cache, **args)
    (prepared,) = cache.glob("*-prepared*")
    old, fresh, old_discarded = (
        cache / f"{prepared.name}.{tag}" for tag in ("old.tmp", "fresh.tmp", "1.x.discarded")
    )
    for tmp in (old, fresh, old_discarded):
        tmp.mkdir()
        (tmp / "train_x.npy").write_bytes(b"partial")
    hours_ago = time.time() - 2 * load_module.STALE_TMP_S
    for stale in (old, old_discarded):
        os.utime(stale, (hours_ago, hours_ago))
    load_module.discard(prepared)
    assert not prepared.exists() and list(cache.glob("*.discarded")) == [old_discarded]
    load_cifar10(folder.parent, cache_dir=cache, **args)  # rebuilds, and sweeps up
    assert prepared.is_dir() and fresh.is_dir()
    assert not old.exists() and not old_discarded.exists()


def test_discarding_a_folder_that_is_gone_is_quiet(tmp_path):
    load_module.discard(tmp_path / "never-there")
    assert list(tmp_path.iterdir()) == []


def test_an_unwritable_cache_folder_still_loads_the_data_once(tmp_path, monkeypatch):
    folder, cache, args = write_args(tmp_path)
    want = load_cifar10(folder.parent, cache_dir=None, **args)
    calls = []
    real_prepare = load_module.prepare
    monkeypatch.setattr(load_module, "prepare", lambda *a: calls.append(a) or real_prepare(*a))
    monkeypatch.setattr(load_module.tempfile, "mkdtemp", _refuse)
    assert_data_equal(want, load_cifar10(folder.parent, cache_dir=cache, **args))
    assert len(calls) == 1 and not [p for p in cache.iterdir() if "prepared" in p.name]


def _refuse(*args, **kwargs):
    raise PermissionError("read-only cache folder")


def test_both_roots_load_the_same_data(tiny_cifar):
    a = load_cifar10(tiny_cifar, validation_size=20, cache_dir=None)
    b = load_cifar10(tiny_cifar / BATCHES, validation_size=20, cache_dir=None)
    np.testing.assert_array_equal(a.train.images, b.train.images)


def test_load_cifar10_passes_the_subsets_on(tiny_cifar):
    data = load_cifar10(tiny_cifar, validation_size=20, cache_dir=None, train_subset=np.int64(3),
                        eval_subset=4)  # fmt: skip
    assert (len(data.train), len(data.val), len(data.test)) == (3, 4, 4)


def test_copy_on_write_maps_the_same_file_bytes_privately_without_a_copy(tmp_path):
    import mmap

    folder, cache = write_tiny_cifar10(tmp_path / "d"), tmp_path / "cache"
    args = {"download": False, "validation_size": 20, "cache_dir": cache}
    load_cifar10(folder.parent, **args)  # writes the prepared folder
    mapped = load_cifar10(folder.parent, **args)
    view = mapped.train.images[3:9]  # a subset starts inside the file
    private = load_module.copy_on_write(view)
    np.testing.assert_array_equal(private, view)
    assert private.filename == view.filename and private.mode == "c"
    assert isinstance(private.base, mmap.mmap) and not private.flags.owndata  # a mapping, no copy
    assert private.flags.writeable
    private[0] += 1.0  # stays in this process: neither the shared map nor the file changes
    np.testing.assert_array_equal(view, load_cifar10(folder.parent, **args).train.images[3:9])
    assert not np.array_equal(private[0], view[0])
    assert load_module.copy_on_write(np.zeros((2, 3), np.float32)) is None  # not a mapping
    assert load_module.copy_on_write(mapped.train.images[::2]) is None  # not contiguous
