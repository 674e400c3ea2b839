"""Splits and preprocessing (dlexp.data.prepare) of the tiny CIFAR-format data: validation split,
mean image and standardisation from training pixels only, subsets, one-hot labels."""

from __future__ import annotations

import dataclasses
import importlib

import numpy as np
import pytest

from dlexp.data import (
    one_hot,
    prepare,
)
from dlexp.data.prepare import PREPROCESSING
from dlexp.errors import ConfigError
from tests.conftest import (
    TINY_PER_BATCH,
    TINY_TEST,
    assert_one_clean_line,
)

prepare_module = importlib.import_module("dlexp.data.prepare")  # dlexp.data.prepare: the function
N_TRAIN = 5 * TINY_PER_BATCH


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


@pytest.mark.parametrize("name", ["train_subset", "eval_subset"])
@pytest.mark.parametrize("bad", [0, -5, 2.5, True, "10"])
def test_a_subset_below_one_is_a_config_error(raw, name, bad):
    with pytest.raises(ConfigError, match=rf"^data\.{name} must be an integer >= 1") as info:
        prepare(raw, 10, **{name: bad})
    assert_one_clean_line(info.value)


def test_integer_mean_image_equals_the_float64_mean_bitwise():
    rng = np.random.default_rng(0)
    for n in (1, 7, 4999):
        u8 = rng.integers(0, 256, size=(n, 3072), dtype=np.uint8)
        u8[0] = 255  # the largest sums
        want = u8.mean(axis=0, dtype=np.float64).astype(np.float32)
        np.testing.assert_array_equal(prepare_module._mean_image(u8), want)
