"""Write a tiny CIFAR-10 folder in the real pickle format, for `python -m benchmarks --quick`.

The same format as the official `cifar-10-batches-py` (and tests/conftest.py): five
`data_batch_i` pickles and a `test_batch`, uint8 rows of 3072 values, bytes keys.
"""

from __future__ import annotations

import pickle
from pathlib import Path

import numpy as np

PER_BATCH = 60  # images per data_batch_i (5 of them) -> 300 training images
N_TEST = 50


def _write_batch(path: Path, data: np.ndarray, labels: np.ndarray) -> None:
    batch = {
        b"batch_label": "tiny",
        b"labels": [int(label) for label in labels],
        b"data": data,  # (N, 3072) uint8, channel-major rows as the official files
        b"filenames": [f"img_{i}.png" for i in range(len(labels))],
    }
    with path.open("wb") as f:
        pickle.dump(batch, f, protocol=2)


def write_tiny_cifar10(root: Path, seed: int = 0) -> Path:
    """`root/cifar-10-batches-py` with class-dependent (learnable) images; returns that folder."""
    rng = np.random.default_rng(seed)
    folder = Path(root) / "cifar-10-batches-py"
    folder.mkdir(parents=True, exist_ok=True)
    prototypes = rng.integers(0, 256, size=(10, 3072))

    def images(labels: np.ndarray) -> np.ndarray:
        noise = rng.integers(-40, 41, size=(len(labels), 3072))
        return np.clip(prototypes[labels] + noise, 0, 255).astype(np.uint8)

    for i in range(1, 6):
        labels = rng.permutation(np.arange(PER_BATCH) % 10)
        _write_batch(folder / f"data_batch_{i}", images(labels), labels)
    labels = np.arange(N_TEST) % 10
    _write_batch(folder / "test_batch", images(labels), labels)
    with (folder / "batches.meta").open("wb") as f:
        pickle.dump({b"label_names": [b"airplane"] * 10}, f)
    return folder


if __name__ == "__main__":  # python -m benchmarks.tiny_cifar DIR: the suite's parent stays light
    import sys

    print(write_tiny_cifar10(Path(sys.argv[1])))
