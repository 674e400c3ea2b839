"""Random flip and pad-and-crop on a torch batch, on its own device.

The parameters come from `dlexp.data.augment.draw_augment` (NumPy, an explicit generator), so
both backends augment identically for the same generator state; the semantics (zero padding in
the normalised space, crop then flip) are documented there.
"""

from __future__ import annotations

import numpy as np
import torch
from torch.nn import functional

from dlexp.data.augment import AugmentParams, check_batch


def crop_indices(params: AugmentParams, h: int, w: int) -> np.ndarray:
    """Source rows and columns in the padded batch, packed (N, H + W): rows first, then columns."""
    rows = params.dy[:, None] + np.arange(h)  # (N, H)
    cols = np.where(params.flip[:, None], np.arange(w - 1, -1, -1), np.arange(w))
    return np.concatenate([rows, params.dx[:, None] + cols], axis=1)  # (N, H + W)


def augment_batch(x: torch.Tensor, params: AugmentParams) -> torch.Tensor:
    """Augment an (N, C, H, W) batch on x's device; returns x itself when params change nothing."""
    check_batch(tuple(x.shape), params)
    if params.is_identity:
        return x
    n, c, h, w = x.shape
    # The index math is tiny (N, H + W) and done on the host, so the device gets one small copy.
    # non_blocking avoids a per-step stream sync; CUDA stages pageable memory before returning.
    index = torch.from_numpy(crop_indices(params, h, w)).to(x.device, non_blocking=True)
    rows, cols = index[:, :h], index[:, h:]
    p = params.pad
    padded = functional.pad(x, (p, p, p, p)) if p else x  # zeros in the normalised space
    hp, wp = h + 2 * p, w + 2 * p
    # One gather along the flattened plane; the index is shared by all channels (expand is a
    # view). On CPU this is ~30x faster than advanced indexing with four broadcast index tensors.
    flat = (rows[:, :, None] * wp + cols[:, None, :]).view(n, 1, h * w)  # (N, 1, H * W)
    out = torch.gather(padded.reshape(n, c, hp * wp), 2, flat.expand(n, c, h * w))
    return out.view(n, c, h, w)
