"""Random flip and pad-and-crop for NCHW batches: parameter drawing and the NumPy apply.

The parameters are drawn once per batch from an explicit generator (so a checkpoint of the
generator resumes bit-exactly) and applied by either backend; `dlexp.nn.augment` applies the
same `AugmentParams` to a torch batch on its device, with identical results.

The crop pads with zeros in the *normalised* space, as torchvision's RandomCrop(padding=4)
does on normalised tensors; in pixel space that border is the per-channel mean, not black.
Each output is crop-then-flip: out[n, c, i, j] = padded[n, c, dy + i, dx + j'], where
j' = W - 1 - j for a flipped image and j otherwise.
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view

from dlexp.errors import ConfigError

AUGMENT_MODES = ("none", "flip", "flip_crop")
FLIP_PROBABILITY = 0.5


class AugmentParams(NamedTuple):
    """One batch's draws: flip (n,) bool, dy and dx (n,) int offsets in [0, 2 * pad]."""

    flip: np.ndarray
    dy: np.ndarray
    dx: np.ndarray
    pad: int  # pixels of zero padding on each side; 0 means no crop

    @property
    def is_identity(self) -> bool:
        """True when applying these parameters returns the input unchanged."""
        return self.pad == 0 and not self.flip.any()


def check_augment_mode(mode: str, pad: int = 4) -> None:
    """Raise ConfigError for an unknown mode or a negative pad."""
    if mode not in AUGMENT_MODES:
        raise ConfigError(f"augment mode must be one of {list(AUGMENT_MODES)}, got {mode!r}")
    if pad < 0:
        raise ConfigError(f"augment pad must be >= 0, got {pad}")


def draw_augment(rng: np.random.Generator, n: int, mode: str, pad: int = 4) -> AugmentParams:
    """Draw the parameters for a batch of n images, all at once.

    `none` draws nothing, so switching augmentation off leaves the generator's stream alone;
    `flip` draws only the flip mask, so its params carry pad 0 (no crop).
    """
    check_augment_mode(mode, pad)
    zeros = np.zeros(n, dtype=np.int64)
    if mode == "none":
        return AugmentParams(np.zeros(n, dtype=bool), zeros, zeros, 0)
    flip = rng.random(n) < FLIP_PROBABILITY
    if mode == "flip" or pad == 0:
        return AugmentParams(flip, zeros, zeros, 0)
    dy, dx = rng.integers(0, 2 * pad + 1, size=(2, n))
    return AugmentParams(flip, dy, dx, pad)


def check_batch(x_shape: tuple[int, ...], params: AugmentParams) -> None:
    """Raise ValueError unless the batch is (N, C, H, W) with N matching the params."""
    if len(x_shape) != 4:
        raise ValueError(f"augment expects an (N, C, H, W) batch, got shape {x_shape}")
    if not len(params.flip) == len(params.dy) == len(params.dx) == x_shape[0]:
        raise ValueError(
            f"augment params are for {len(params.flip)} images, the batch has {x_shape[0]}"
        )


class BatchAugmenter:
    """Applies AugmentParams to NumPy batches, reusing one zero-bordered buffer across calls.

    Only the buffer's centre is rewritten per call, so its border stays zero without a memset.
    """

    def __init__(self) -> None:
        self._padded: np.ndarray | None = None

    def _pad(self, x: np.ndarray, pad: int) -> np.ndarray:
        """x copied into the centre of the reused (N, C, H + 2 pad, W + 2 pad) buffer."""
        n, c, h, w = x.shape
        shape = (n, c, h + 2 * pad, w + 2 * pad)
        if self._padded is None or self._padded.shape != shape or self._padded.dtype != x.dtype:
            self._padded = np.zeros(shape, dtype=x.dtype)
        np.copyto(self._padded[:, :, pad : pad + h, pad : pad + w], x)
        return self._padded

    def __call__(
        self, x: np.ndarray, params: AugmentParams, out: np.ndarray | None = None
    ) -> np.ndarray:
        """Augment an (N, C, H, W) batch into `out` (or a new array) and return it.

        Returns x itself, uncopied and with `out` untouched, when the params change nothing.
        """
        check_batch(x.shape, params)
        if params.is_identity:
            return x
        if out is None:
            out = np.empty_like(x)
        elif out.shape != x.shape or out.dtype != x.dtype:
            raise ValueError(f"out must be {x.shape} {x.dtype}, got {out.shape} {out.dtype}")
        h, w = x.shape[2:]
        source = self._pad(x, params.pad) if params.pad else x  # flip alone needs no buffer
        # Every (dy, dx) crop of every image as a view: (N, C, 2 pad + 1, 2 pad + 1, H, W).
        windows = sliding_window_view(source, (h, w), axis=(2, 3))
        # A flipped crop is a crop of the mirrored source at the mirrored column offset.
        mirrored = sliding_window_view(source[..., ::-1], (h, w), axis=(2, 3))
        flipped = np.flatnonzero(params.flip)
        kept = np.flatnonzero(~params.flip)
        # Two gathers of whole (C, H, W) crops: the temporaries add up to one batch.
        out[kept] = windows[kept, :, params.dy[kept], params.dx[kept]]
        out[flipped] = mirrored[flipped, :, params.dy[flipped], 2 * params.pad - params.dx[flipped]]
        return out


def augment_batch(
    x: np.ndarray, params: AugmentParams, out: np.ndarray | None = None
) -> np.ndarray:
    """One-off augment of an (N, C, H, W) batch; keep a BatchAugmenter to reuse its buffer."""
    return BatchAugmenter()(x, params, out)
