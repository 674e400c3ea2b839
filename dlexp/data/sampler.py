"""Mini-batch indices from an explicit generator, reshuffled every epoch."""

from __future__ import annotations

from typing import NamedTuple

import numpy as np

from dlexp.errors import ConfigError


class BatchIndices(NamedTuple):
    """A batch as a slice of the current epoch's permutation.

    A device backend can copy `permutation` once per epoch and slice it there.
    """

    permutation: np.ndarray
    start: int
    stop: int

    @property
    def indices(self) -> np.ndarray:
        return self.permutation[self.start : self.stop]


class BatchSampler:
    """Yields full batches of a fresh permutation each epoch; an incomplete tail is dropped."""

    def __init__(self, num_examples: int, batch_size: int, rng: np.random.Generator):
        if not 1 <= batch_size <= num_examples:
            raise ConfigError(f"batch_size must be in [1, {num_examples}], got {batch_size}")
        self.num_examples = num_examples
        self.batch_size = batch_size
        self.rng = rng
        self.epochs_completed = 0
        self._permutation = rng.permutation(num_examples)
        self._position = 0

    def next_batch(self) -> BatchIndices:
        if self._position + self.batch_size > self.num_examples:
            self.epochs_completed += 1
            self._permutation = self.rng.permutation(self.num_examples)
            self._position = 0
        start = self._position
        self._position += self.batch_size
        return BatchIndices(self._permutation, start, self._position)

    def __iter__(self):
        while True:
            yield self.next_batch()

    def state_dict(self) -> dict:
        """The epoch's permutation, the position in it and the generator's state."""
        return {
            "num_examples": self.num_examples,
            "batch_size": self.batch_size,
            "epochs_completed": self.epochs_completed,
            "position": self._position,
            "permutation": self._permutation,
            "rng": self.rng.bit_generator.state,  # PCG64: 128-bit ints
        }

    def load_state_dict(self, state: dict) -> None:
        """Continue exactly where state_dict() was taken; the sizes must be this sampler's."""
        for key in ("num_examples", "batch_size"):
            if state[key] != getattr(self, key):
                raise ValueError(f"sampler {key} was {state[key]}, is {getattr(self, key)} now")
        permutation = np.asarray(state["permutation"])
        if permutation.shape != (self.num_examples,):
            raise ValueError(f"sampler permutation has shape {permutation.shape}")
        self.rng.bit_generator.state = state["rng"]
        self._permutation = permutation.copy()  # a new object: backends re-upload it
        self._position = int(state["position"])
        self.epochs_completed = int(state["epochs_completed"])
