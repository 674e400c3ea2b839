"""Reading the CIFAR-10 batch files (dlexp.data.cifar10): both pickle flavours, damaged files in
one line, and the memory-mapped array cache: rebuilds, no lost data."""

from __future__ import annotations

import gzip
import pickle
from pathlib import Path

import numpy as np
import pytest

import dlexp.data.cifar10 as cifar10_module
from dlexp.data import load_cifar10, load_raw_cifar10
from dlexp.data.cifar10 import default_cache_dir
from dlexp.errors import DataError
from tests.conftest import (
    TINY_PER_BATCH,
    TINY_TEST,
    assert_one_clean_line,
    assert_raw_equal,
    write_batch,
    write_tiny_cifar10,
)

BATCHES = "cifar-10-batches-py"
N_TRAIN = 5 * TINY_PER_BATCH
LABELS = np.arange(TINY_PER_BATCH) % 10


# --- bad files -------------------------------------------------------------------------------


def _dump(obj):
    """A writer of any pickled object."""
    return lambda path: path.write_bytes(pickle.dumps(obj, protocol=2))


def _batch(data=None, labels=LABELS):
    """A writer of a real-format batch holding `data` (default: zeros) and `labels`."""
    data = np.zeros((TINY_PER_BATCH, 3072), np.uint8) if data is None else data
    return lambda path: write_batch(path, data, labels)


def _cut(path: Path) -> None:
    path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])


UNREADABLE = "not a readable"
BAD_FILES = {  # name: (damage, what the message says)
    "missing": (lambda p: p.unlink(), "missing"),
    "a folder": (lambda p: (p.unlink(), p.mkdir()), "missing"),
    "empty": (lambda p: p.write_bytes(b""), UNREADABLE),
    "truncated": (_cut, "truncated"),
    "text": (lambda p: p.write_text("CIFAR-10 readme, not a pickle\n"), UNREADABLE),
    "random bytes": (lambda p: p.write_bytes(np.random.default_rng(0).bytes(4096)), UNREADABLE),
    "gzipped": (lambda p: p.write_bytes(gzip.compress(p.read_bytes())), UNREADABLE),
    "not a dict": (_dump([1, 2, 3]), "holds a list"),
    "no data": (_dump({b"labels": list(LABELS)}), "'data'"),
    "wrong shape": (_batch(np.zeros((60, 3000), np.uint8)), "shape"),
    "HWC images": (_batch(np.zeros((60, 32, 32, 3), np.uint8)), "shape"),
    "float data": (_batch(np.zeros((60, 3072))), "uint8.*float64"),
    "list data": (_batch([[0] * 3072] * 60), "uint8"),
    "label 10": (_batch(labels=[10, *LABELS[1:]]), "0..9"),
    "label -1": (_batch(labels=[-1, *LABELS[1:]]), "0..9"),
    "59 labels": (_batch(labels=LABELS[:59]), "60 integers"),
    "float labels": (_dump({b"data": np.zeros((60, 3072), np.uint8), b"labels": [0.5] * 60}), "60"),
}


@pytest.mark.parametrize("case", BAD_FILES, ids=list(BAD_FILES))
@pytest.mark.parametrize("name", ["data_batch_3", "test_batch"])
def test_every_bad_file_is_a_data_error_naming_it(tmp_path, case, name):
    folder = write_tiny_cifar10(tmp_path)
    damage, match = BAD_FILES[case]
    damage(folder / name)
    with pytest.raises(DataError, match=match) as info:
        load_cifar10(tmp_path, cache_dir=tmp_path / "cache")
    assert str(folder / name) in str(info.value)
    assert_one_clean_line(info.value)


# --- the array cache -------------------------------------------------------------------------


def _forbid_pickles(monkeypatch) -> None:
    def fail(_):
        raise AssertionError("the pickles were read although a valid cache exists")

    monkeypatch.setattr(cifar10_module, "_read_all", fail)


def test_the_cache_is_written_once_then_reused(tmp_path, monkeypatch):
    folder, cache = write_tiny_cifar10(tmp_path / "d"), tmp_path / "cache"
    first = load_raw_cifar10(folder, cache)
    assert [p.suffix for p in cache.iterdir()] == [".npz"]
    _forbid_pickles(monkeypatch)
    assert_raw_equal(first, load_raw_cifar10(folder, cache))


def test_changed_source_files_invalidate_the_cache(tmp_path):
    folder, cache = write_tiny_cifar10(tmp_path / "d"), tmp_path / "cache"
    load_raw_cifar10(folder, cache)
    write_batch(folder / "data_batch_2", np.full((TINY_PER_BATCH, 3072), 7, np.uint8), LABELS)
    raw = load_raw_cifar10(folder, cache)
    assert (raw.train_x[TINY_PER_BATCH : 2 * TINY_PER_BATCH] == 7).all()


def _savez_junk(path: Path) -> None:
    np.savez(path, train_x=np.zeros(3))


DAMAGE = {
    "garbage": lambda p: p.write_bytes(b"not an npz file"),
    "truncated": lambda p: p.write_bytes(p.read_bytes()[: p.stat().st_size // 2]),
    "empty": lambda p: p.write_bytes(b""),
    "wrong arrays": _savez_junk,
}


@pytest.mark.parametrize("damage", DAMAGE, ids=list(DAMAGE))
def test_a_damaged_cache_is_rebuilt(tmp_path, monkeypatch, damage):
    folder, cache = write_tiny_cifar10(tmp_path / "d"), tmp_path / "cache"
    first = load_raw_cifar10(folder, cache)
    (cache_file,) = cache.glob("*.npz")
    DAMAGE[damage](cache_file)
    assert_raw_equal(first, load_raw_cifar10(folder, cache))
    assert list(cache.glob("*.npz")) == [cache_file]  # rewritten in place, no temp files left
    _forbid_pickles(monkeypatch)
    assert_raw_equal(first, load_raw_cifar10(folder, cache))


def test_an_unwritable_cache_only_costs_speed(tiny_cifar, tmp_path):
    blocker = tmp_path / "a-file"
    blocker.write_text("not a folder")
    raw = load_raw_cifar10(tiny_cifar / BATCHES, blocker / "cache")
    assert_raw_equal(raw, load_raw_cifar10(tiny_cifar / BATCHES))


def test_cache_location_follows_the_environment(tiny_cifar, tmp_path, monkeypatch):
    monkeypatch.setenv("DLEXP_CACHE", str(tmp_path / "env"))
    load_cifar10(tiny_cifar, validation_size=10)
    assert len(list((tmp_path / "env").glob("*.npz"))) == 1
    load_cifar10(tiny_cifar, validation_size=10, cache_dir=None)  # None writes nothing
    assert len(list((tmp_path / "env").glob("*.npz"))) == 1
    monkeypatch.delenv("DLEXP_CACHE")
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    assert default_cache_dir() == tmp_path / "xdg" / "dlexp"


# --- reading and the memory map --------------------------------------------------------------


def test_reads_the_batches_in_order(tiny_cifar, raw):
    assert raw.train_x.shape == (N_TRAIN, 3072) and raw.train_x.dtype == np.uint8
    assert raw.test_x.shape == (TINY_TEST, 3072) and raw.test_y.dtype == np.int64
    with (tiny_cifar / BATCHES / "data_batch_2").open("rb") as f:
        batch = pickle.load(f, encoding="bytes")
    second = slice(TINY_PER_BATCH, 2 * TINY_PER_BATCH)
    np.testing.assert_array_equal(raw.train_x[second], batch[b"data"])
    np.testing.assert_array_equal(raw.train_y[second], batch[b"labels"])


def test_both_pickle_flavours_load_identically(tmp_path):
    bytes_keys = write_tiny_cifar10(tmp_path / "bytes", seed=3)
    str_keys = write_tiny_cifar10(tmp_path / "str", seed=3, str_keys=True)
    with (str_keys / "data_batch_1").open("rb") as f:
        assert "data" in pickle.load(f)  # really the other flavour
    assert_raw_equal(load_raw_cifar10(bytes_keys), load_raw_cifar10(str_keys))


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
