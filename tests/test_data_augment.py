"""Flip and pad-and-crop augmentation: NumPy and torch against a per-image reference loop."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from dlexp.data.augment import (
    AUGMENT_MODES,
    AugmentParams,
    BatchAugmenter,
    augment_batch,
    draw_augment,
)
from dlexp.errors import ConfigError
from dlexp.nn.augment import augment_batch as torch_augment_batch


def reference(x: np.ndarray, params: AugmentParams) -> np.ndarray:
    """Slow but obviously right: pad, crop and maybe mirror each image on its own."""
    p, (h, w) = params.pad, x.shape[2:]
    out = np.empty_like(x)
    for n in range(len(x)):
        padded = np.pad(x[n], ((0, 0), (p, p), (p, p)))  # zeros, in the normalised space
        crop = padded[:, params.dy[n] : params.dy[n] + h, params.dx[n] : params.dx[n] + w]
        out[n] = crop[:, :, ::-1] if params.flip[n] else crop
    return out


def batch(shape=(17, 3, 32, 32), dtype=np.float32, seed=0) -> np.ndarray:
    return np.random.default_rng(seed).standard_normal(shape).astype(dtype)


def via_torch(x: np.ndarray, params: AugmentParams, device: str = "cpu") -> np.ndarray:
    return torch_augment_batch(torch.from_numpy(x).to(device), params).cpu().numpy()


@pytest.mark.parametrize("mode", AUGMENT_MODES)
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("shape", [(17, 3, 32, 32), (5, 1, 7, 11), (1, 2, 6, 6)])
def test_numpy_and_torch_match_the_reference_loop(mode, dtype, shape):
    for seed in range(3):
        x = batch(shape, dtype, seed)
        params = draw_augment(np.random.default_rng(seed), len(x), mode, pad=3)
        expected = reference(x, params)
        np.testing.assert_array_equal(augment_batch(x, params), expected)
        np.testing.assert_array_equal(via_torch(x, params), expected)


def test_numpy_and_torch_agree_on_drawn_params_and_keep_dtype():
    x = batch((200, 3, 32, 32))
    params = draw_augment(np.random.default_rng(1), 200, "flip_crop")
    got = torch_augment_batch(torch.from_numpy(x), params)
    assert got.dtype == torch.float32 and got.shape == x.shape
    np.testing.assert_array_equal(got.numpy(), augment_batch(x, params))


def test_none_returns_the_input_itself_and_draws_nothing():
    x, rng = batch(), np.random.default_rng(0)
    params = draw_augment(rng, len(x), "none")
    assert augment_batch(x, params) is x
    xt = torch.from_numpy(x)
    assert torch_augment_batch(xt, params) is xt
    assert rng.random() == np.random.default_rng(0).random()  # the stream is untouched


def test_centred_crop_without_flip_is_the_identity():
    x = batch()
    n = len(x)
    params = AugmentParams(np.zeros(n, bool), np.full(n, 4), np.full(n, 4), 4)
    assert not params.is_identity  # the full pad-and-gather path runs
    np.testing.assert_array_equal(augment_batch(x, params), x)
    np.testing.assert_array_equal(via_torch(x, params), x)


def test_flip_only_mirrors():
    x = batch((64, 3, 8, 8))
    params = draw_augment(np.random.default_rng(3), len(x), "flip")
    assert params.pad == 0 and 0 < params.flip.sum() < len(x)
    out = augment_batch(x, params)
    for image, result, flipped in zip(x, out, params.flip, strict=True):
        np.testing.assert_array_equal(result, image[..., ::-1] if flipped else image)


def test_a_shift_moves_the_image_and_fills_zeros():
    x = batch((1, 2, 6, 6)) + 10.0  # no zeros in the image itself
    params = AugmentParams(np.zeros(1, bool), np.array([0]), np.array([6]), 3)
    out = augment_batch(x, params)  # 3 rows down, 3 columns left
    np.testing.assert_array_equal(out[0, :, 3:, :3], x[0, :, :3, 3:])
    assert (out[0, :, :3] == 0).all() and (out[0, :, :, 3:] == 0).all()


def test_same_seed_same_output_other_seed_other_output():
    x = batch()

    def run(seed: int) -> np.ndarray:
        rng = np.random.default_rng(seed)
        return np.stack([augment_batch(x, draw_augment(rng, len(x), "flip_crop"))
                         for _ in range(3)])  # fmt: skip

    np.testing.assert_array_equal(run(7), run(7))
    assert not np.array_equal(run(7), run(8))


def test_draws_cover_the_ranges():
    params = draw_augment(np.random.default_rng(0), 5000, "flip_crop", pad=4)
    assert params.dy.shape == params.dx.shape == params.flip.shape == (5000,)
    np.testing.assert_array_equal(np.unique(params.dy), np.arange(9))
    np.testing.assert_array_equal(np.unique(params.dx), np.arange(9))
    assert 0.45 < params.flip.mean() < 0.55


def test_the_reused_buffer_and_out_give_fresh_results_each_call():
    augmenter = BatchAugmenter()
    rng = np.random.default_rng(0)
    out = np.empty((17, 3, 32, 32), np.float32)
    for seed, shape in enumerate([(17, 3, 32, 32), (17, 3, 32, 32), (4, 3, 8, 8)]):
        x = batch(shape, seed=seed) + 5.0  # nonzero: a stale border would show
        params = draw_augment(rng, len(x), "flip_crop")
        target = out if shape == out.shape else None
        got = augmenter(x, params, target)
        assert target is None or got is target
        np.testing.assert_array_equal(got, reference(x, params))


def test_bad_mode_pad_shape_and_out_are_errors():
    x = batch()
    with pytest.raises(ConfigError, match="flip_crop"):
        draw_augment(np.random.default_rng(0), 3, "crop")
    with pytest.raises(ConfigError, match="pad"):
        draw_augment(np.random.default_rng(0), 3, "flip_crop", pad=-1)
    params = draw_augment(np.random.default_rng(0), len(x), "flip_crop")
    with pytest.raises(ValueError, match="N, C, H, W"):
        augment_batch(x.reshape(len(x), -1), params)
    with pytest.raises(ValueError, match="17"):
        augment_batch(x[:5], params)
    with pytest.raises(ValueError, match="out must be"):
        augment_batch(x, params, out=np.empty_like(x, dtype=np.float64))


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_cuda_matches_numpy():
    x = batch((200, 3, 32, 32))
    for mode in AUGMENT_MODES:
        params = draw_augment(np.random.default_rng(2), len(x), mode)
        xt = torch.from_numpy(x).cuda()
        got = torch_augment_batch(xt, params)
        assert got.device == xt.device
        np.testing.assert_array_equal(got.cpu().numpy(), augment_batch(x, params))
