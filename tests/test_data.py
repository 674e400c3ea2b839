"""dlexp.data on tiny CIFAR-format folders: reading, locating, splits, preprocessing."""

from __future__ import annotations

import dataclasses
import pickle

import numpy as np
import pytest

from dlexp.data import (
    default_data_root,
    find_batches_dir,
    load_cifar10,
    load_raw_cifar10,
    one_hot,
    prepare,
)
from dlexp.data.prepare import PREPROCESSING
from dlexp.errors import ConfigError, DataError
from tests.conftest import (
    TINY_PER_BATCH,
    TINY_TEST,
    assert_one_clean_line,
    assert_raw_equal,
    write_tiny_cifar10,
)

BATCHES = "cifar-10-batches-py"
N_TRAIN = 5 * TINY_PER_BATCH


# --- reading ---------------------------------------------------------------------------------


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


# --- where the data is -----------------------------------------------------------------------


@pytest.mark.parametrize("sub", ["", BATCHES], ids=["parent", "batches-folder"])
def test_root_may_be_the_parent_or_the_batches_folder(tiny_cifar, sub):
    found = find_batches_dir(tiny_cifar / sub if sub else tiny_cifar)
    assert found.resolve() == (tiny_cifar / BATCHES).resolve()


def test_both_roots_load_the_same_data(tiny_cifar):
    a = load_cifar10(tiny_cifar, validation_size=20, cache_dir=None)
    b = load_cifar10(tiny_cifar / BATCHES, validation_size=20, cache_dir=None)
    np.testing.assert_array_equal(a.train.images, b.train.images)


def test_dlexp_data_is_the_default_root(tiny_cifar, monkeypatch):
    monkeypatch.setenv("DLEXP_DATA", str(tiny_cifar))
    assert default_data_root() == tiny_cifar
    assert len(load_cifar10(validation_size=10, cache_dir=None).train) == N_TRAIN - 10


def test_a_tilde_in_dlexp_data_is_the_home_folder(tmp_path, monkeypatch):
    monkeypatch.setenv("HOME", str(tmp_path))
    monkeypatch.setenv("DLEXP_DATA", "~/cifar")
    assert default_data_root() == tmp_path / "cifar"


@pytest.mark.parametrize("env", [None, ""], ids=["unset", "empty"])
def test_the_user_cache_is_the_fallback_root(tmp_path, monkeypatch, env):
    monkeypatch.setenv("HOME", str(tmp_path))
    if env is None:
        monkeypatch.delenv("DLEXP_DATA", raising=False)
    else:
        monkeypatch.setenv("DLEXP_DATA", env)
    cache = tmp_path / ".cache" / "dlexp" / "data"
    assert default_data_root() == cache
    write_tiny_cifar10(cache)
    assert find_batches_dir() == cache / BATCHES
    assert len(load_cifar10(validation_size=10, cache_dir=None).train) == N_TRAIN - 10


@pytest.mark.parametrize("sub", ["", BATCHES], ids=["parent", "batches-folder"])
def test_missing_data_without_download_says_where_and_how(tmp_path, sub):
    root = tmp_path / "nowhere" / sub if sub else tmp_path / "nowhere"
    with pytest.raises(DataError) as info:
        load_cifar10(root, download=False)
    msg = str(info.value)
    assert msg.startswith("CIFAR-10 not found: looked for data_batch_1 in ")
    assert f"{root} and {root / BATCHES}" in msg
    assert "data.root" in msg and "DLEXP_DATA" in msg and "data.download=true" in msg
    assert "../shared" not in msg and "fetch.sh" not in msg  # a fresh clone lacks these
    assert_one_clean_line(info.value)
    assert not (tmp_path / "nowhere").exists()  # nothing written when told not to download


# --- splits and preprocessing ----------------------------------------------------------------


def test_validation_is_the_first_training_images(raw):
    data = prepare(raw, validation_size=40)
    np.testing.assert_array_equal(data.val.labels, raw.train_y[:40])
    np.testing.assert_array_equal(data.train.labels, raw.train_y[40:])
    np.testing.assert_array_equal(data.test.labels, raw.test_y)
    assert (len(data.train), len(data.val), len(data.test)) == (N_TRAIN - 40, 40, TINY_TEST)


def test_zero_validation_keeps_every_training_image(raw):
    data = prepare(raw, validation_size=0)
    assert len(data.train) == N_TRAIN and data.val.images.shape == (0, 3, 32, 32)


@pytest.mark.parametrize("preprocess", PREPROCESSING)
def test_test_and_validation_pixels_never_reach_the_statistics(raw, preprocess):
    altered = dataclasses.replace(raw, train_x=raw.train_x.copy(), test_x=255 - raw.test_x)
    altered.train_x[:40] = 255 - altered.train_x[:40]
    base, other = prepare(raw, 40, preprocess), prepare(altered, 40, preprocess)
    assert base.stats.keys() == other.stats.keys()
    for key in base.stats:
        np.testing.assert_array_equal(base.stats[key], other.stats[key], err_msg=key)
    np.testing.assert_array_equal(base.train.images, other.train.images)


def test_mean_image_is_the_course_preprocessing(raw):
    v = 30
    data = prepare(raw, v, "mean_image")
    mean = raw.train_x[v:].astype(np.float64).sum(axis=0) / (N_TRAIN - v)  # (3072,), 0-255
    by_hand = raw.train_x.astype(np.float32) - mean.astype(np.float32)
    test_by_hand = raw.test_x.astype(np.float32) - mean.astype(np.float32)
    expected = ((data.train, by_hand[v:]), (data.val, by_hand[:v]), (data.test, test_by_hand))
    for split, rows in expected:
        assert split.images.dtype == np.float32 and split.images.shape == (len(rows), 3, 32, 32)
        np.testing.assert_array_equal(split.images.reshape(len(rows), -1), rows)
    # NCHW: the flat rows hold R, G, B planes of 32x32, so (c, h, w) is entry c*1024 + h*32 + w.
    assert data.train.images[7, 2, 5, 11] == by_hand[v + 7, 2 * 1024 + 5 * 32 + 11]
    np.testing.assert_allclose(data.stats["mean_image"].ravel(), mean, rtol=0, atol=1e-4)
    train64 = data.train.images.astype(np.float64)
    assert np.abs(train64.mean(axis=0)).max() < 1e-4
    assert np.abs(train64).max() > 50  # still the 0-255 scale, not 0-1


def test_standardize_gives_unit_channels_on_the_train_part(raw):
    v = 30
    data = prepare(raw, v, "standardize")
    planes = raw.train_x[v:].astype(np.float64).reshape(-1, 3, 1024)
    mean, std = planes.mean(axis=(0, 2)), planes.std(axis=(0, 2))
    np.testing.assert_allclose(data.stats["channel_mean"], mean / 255, rtol=1e-12)
    np.testing.assert_allclose(data.stats["channel_std"], std / 255, rtol=1e-12)
    train64 = data.train.images.astype(np.float64)
    np.testing.assert_allclose(train64.mean(axis=(0, 2, 3)), 0, atol=1e-5)
    np.testing.assert_allclose(train64.std(axis=(0, 2, 3)), 1, atol=1e-5)
    for split, x in ((data.val, raw.train_x[:v]), (data.test, raw.test_x)):
        expected = (x.reshape(-1, 3, 1024) - mean[:, None]) / std[:, None]
        assert split.images.dtype == np.float32
        np.testing.assert_allclose(split.images.reshape(-1, 3, 1024), expected, atol=1e-5)


BAD_ARGS = [
    ({"validation_size": -1}, "validation_size"),
    ({"validation_size": N_TRAIN}, "validation_size"),
    ({"validation_size": 10, "preprocess": "zca"}, "preprocess"),
]


@pytest.mark.parametrize(("kwargs", "match"), BAD_ARGS)
def test_bad_split_or_preprocessing_is_a_config_error(raw, kwargs, match):
    with pytest.raises(ConfigError, match=match):
        prepare(raw, **kwargs)


def test_one_hot():
    labels = np.array([3, 0, 9, 3])
    encoded = one_hot(labels)
    assert encoded.shape == (4, 10) and encoded.dtype == np.float32
    np.testing.assert_array_equal(encoded.argmax(axis=1), labels)
    np.testing.assert_array_equal(encoded.sum(axis=1), 1)
    assert one_hot(labels, 12, np.float64).shape == (4, 12)


def test_split_one_hot_matches_its_labels(raw):
    train = prepare(raw, 10).train
    assert train.one_hot.dtype == np.float32
    np.testing.assert_array_equal(train.one_hot.argmax(axis=1), train.labels)


# --- subsets for quick runs ------------------------------------------------------------------


@pytest.mark.parametrize("preprocess", PREPROCESSING)
def test_train_subset_keeps_the_first_images_and_the_full_statistics(raw, preprocess):
    full, small = prepare(raw, 40, preprocess), prepare(raw, 40, preprocess, train_subset=7)
    np.testing.assert_array_equal(small.train.images, full.train.images[:7])
    np.testing.assert_array_equal(small.train.labels, raw.train_y[40:47])
    for key in full.stats:  # statistics from all N_TRAIN - 40 training images, not from 7
        np.testing.assert_array_equal(small.stats[key], full.stats[key], err_msg=key)
    for name in ("val", "test"):
        np.testing.assert_array_equal(getattr(small, name).images, getattr(full, name).images)


def test_eval_subset_keeps_the_first_validation_and_test_images(raw):
    full, small = prepare(raw, 40), prepare(raw, 40, eval_subset=5)
    assert (len(small.train), len(small.val), len(small.test)) == (N_TRAIN - 40, 5, 5)
    np.testing.assert_array_equal(small.val.images, full.val.images[:5])
    np.testing.assert_array_equal(small.test.labels, raw.test_y[:5])
    assert len(prepare(raw, 0, eval_subset=5).val) == 0  # an empty validation split stays empty


def test_a_subset_larger_than_its_split_keeps_the_whole_split(raw):
    data = prepare(raw, 40, train_subset=10**6, eval_subset=10**6)
    assert (len(data.train), len(data.val), len(data.test)) == (N_TRAIN - 40, 40, TINY_TEST)


def test_load_cifar10_passes_the_subsets_on(tiny_cifar):
    data = load_cifar10(tiny_cifar, validation_size=20, cache_dir=None, train_subset=np.int64(3),
                        eval_subset=4)  # fmt: skip
    assert (len(data.train), len(data.val), len(data.test)) == (3, 4, 4)


@pytest.mark.parametrize("name", ["train_subset", "eval_subset"])
@pytest.mark.parametrize("bad", [0, -5, 2.5, True, "10"])
def test_a_subset_below_one_is_a_config_error(raw, name, bad):
    with pytest.raises(ConfigError, match=rf"^data\.{name} must be an integer >= 1") as info:
        prepare(raw, 10, **{name: bad})
    assert_one_clean_line(info.value)
