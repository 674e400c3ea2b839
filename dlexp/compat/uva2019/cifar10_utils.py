"""The course's cifar10_utils.py: `get_cifar10` and `DataSet` over dlexp.data.

Course semantics: float32 images (N, 3, 32, 32) on the 0-255 scale minus the training split's
per-pixel mean image, float64 one-hot labels, and a fresh shuffle at each epoch's end.
With dlexp's cache (the default), a split's `images` is a read-only memory map of the prepared
arrays, shared by every run; `next_batch` returns fresh arrays. Copy `images` to change it.
"""

from __future__ import annotations

import numpy as np

from dlexp.data import CLASSES, BatchSampler, load_cifar10, one_hot

CIFAR10_FOLDER = "cifar10/cifar-10-batches-py"


class DataSet:
    """One split with the course's `next_batch`, drawn by dlexp's BatchSampler."""

    def __init__(self, images: np.ndarray, labels: np.ndarray, rng=None):
        if len(images) != len(labels):
            raise ValueError(f"images.shape: {images.shape}, labels.shape: {labels.shape}")
        self._images, self._labels = images, labels
        self._rng = rng if rng is not None else np.random.default_rng()
        self._sampler: BatchSampler | None = None  # made at the first next_batch (empty splits)

    @property
    def images(self) -> np.ndarray:
        return self._images

    @property
    def labels(self) -> np.ndarray:
        return self._labels

    @property
    def num_examples(self) -> int:
        return len(self._labels)

    @property
    def epochs_completed(self) -> int:
        return 0 if self._sampler is None else self._sampler.epochs_completed

    def next_batch(self, batch_size: int) -> tuple[np.ndarray, np.ndarray]:
        """The next `batch_size` examples; an epoch's incomplete tail is dropped (as the course)."""
        if not 1 <= batch_size <= self.num_examples:
            raise ValueError(f"batch_size must be in [1, {self.num_examples}], got {batch_size}")
        if self._sampler is None:
            self._sampler = BatchSampler(self.num_examples, batch_size, self._rng)
        self._sampler.batch_size = batch_size  # course code may change it between calls
        indices = self._sampler.next_batch().indices
        return self._images[indices], self._labels[indices]


class DataSets(dict):
    """{'train', 'validation', 'test'} that also reads as `.train`, `.validation`, `.test`."""

    def __getattr__(self, name: str) -> DataSet:
        try:
            return self[name]
        except KeyError:
            raise AttributeError(name) from None


def get_cifar10(data_dir=CIFAR10_FOLDER, one_hot=True, validation_size=0, rng=None) -> DataSets:
    """The course's CIFAR-10 splits; `data_dir` is `cifar-10-batches-py` itself (or its parent).

    Args:
        validation_size: images taken from the start of the training set.
        rng: shuffles the batches; by default seeded from NumPy's global state, so the course's
            `np.random.seed(42)` still makes the batches reproducible.
    """
    data = load_cifar10(data_dir, validation_size=validation_size, preprocess="mean_image")
    if rng is None:
        rng = np.random.default_rng(np.random.randint(2**63 - 1, dtype=np.int64))
    splits = {"train": data.train, "validation": data.val, "test": data.test}
    # One generator for all splits, as the course's one global state.
    return DataSets(
        (name, DataSet(split.images, _labels(split.labels, one_hot), rng))
        for name, split in splits.items()
    )


def _labels(labels: np.ndarray, as_one_hot: bool) -> np.ndarray:
    # The course's dense_to_one_hot gave float64 rows.
    return one_hot(labels, len(CLASSES), np.float64) if as_one_hot else labels


__all__ = ["CIFAR10_FOLDER", "DataSet", "DataSets", "get_cifar10"]
