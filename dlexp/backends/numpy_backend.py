"""The NumPy backend: drives a dlexp.numpy_nn model with the fused softmax-cross-entropy."""

from __future__ import annotations

import numpy as np

from dlexp.backends import BackendOptions
from dlexp.backends.training_state import load_training_state, training_state
from dlexp.data.augment import BatchAugmenter, draw_augment
from dlexp.data.prepare import CIFAR10Data
from dlexp.data.sampler import BatchIndices
from dlexp.numpy_nn import MLP, OPTIMIZERS, LeakyReLUModule, softmax_cross_entropy
from dlexp.numpy_nn.fused_step import MLPStepBuffers
from dlexp.numpy_nn.schedules import make_numpy_scheduler as make_scheduler

__all__ = ["OPTIMIZERS", "Backend", "make_scheduler", "prepare_device"]

# A diverging run overflows to inf and nan: the loop's check turns the nan loss into one line
# ("training diverged ..."), so NumPy's own RuntimeWarnings would only be noise ahead of it.
DIVERGING = {"over": "ignore", "invalid": "ignore"}


def prepare_device(device: str, precision: str, seed: int, deterministic: bool, ranks=None) -> str:
    """NumPy runs on the CPU (dlexp.config.checks refuses other devices), always deterministic,
    in one process (the checks refuse several ranks)."""
    return "cpu"


def flatten(images: np.ndarray) -> np.ndarray:
    """(N, C, H, W) -> (N, C*H*W); also for an empty split, where -1 cannot be inferred."""
    return images.reshape(len(images), int(np.prod(images.shape[1:])))


def check_labels(splits: dict[str, tuple[np.ndarray, np.ndarray]], n_classes: int) -> None:
    """Every split's labels are class indices of the model's output."""
    for name, (_, labels) in splits.items():
        if len(labels) and (labels.min() < 0 or labels.max() >= n_classes):
            found = f"[{labels.min()}, {labels.max()}]"
            raise ValueError(f"{name} labels must lie in [0, {n_classes}), found {found}")


class Backend:
    """Flattened float arrays on the host; batches gathered into one preallocated buffer."""

    kind = "numpy"  # names the checkpoint format (dlexp.run.checkpoint_file)

    def __init__(self, model, optimizer, scheduler, data: CIFAR10Data, options: BackendOptions):
        batch_size, eval_batch_size = options.batch_size, options.eval_batch_size
        dtype = model.linears[0].params["weight"].dtype
        self.model, self.optimizer, self.scheduler = model, optimizer, scheduler
        self.eval_batch_size = eval_batch_size
        self.splits = {
            name: (flatten(split.images).astype(dtype, copy=False), split.labels)
            for name, split in (("train", data.train), ("val", data.val), ("test", data.test))
        }
        self.eval_splits = tuple(s for s in ("val", "test") if len(self.splits[s][1]))
        n_features = self.splits["train"][0].shape[1]
        self._batch = np.empty((batch_size, n_features), dtype=dtype)  # reused: no page faults
        self.augment, self.augment_rng = options.augment, options.augment_rng
        self._image_shape = data.train.images.shape[1:]  # (C, H, W)
        self._augmenter = BatchAugmenter()
        self._augmented = np.empty((batch_size, *self._image_shape), dtype=dtype)
        self._loss_sum, self._correct, self._seen = 0.0, 0, 0
        self.last_predictions: dict[str, np.ndarray] = {}  # split -> labels its last eval chose
        # The seed's MLP runs in preallocated buffers (bitwise the module-by-module arithmetic);
        # any other NumPy model goes through its own forward_logits/backward_logits.
        fusable = isinstance(model, MLP) and all(
            type(a) is LeakyReLUModule for a in model.activations
        )
        self._train_buffers = MLPStepBuffers(model, batch_size) if fusable else None
        self._eval_buffers = MLPStepBuffers(model, eval_batch_size) if fusable else None
        if fusable:  # labels index rows unchecked in the fused loss: check them once here
            check_labels(self.splits, model.linears[-1].params["bias"].shape[0])

    @np.errstate(**DIVERGING)
    def train_step(self, batch: BatchIndices) -> None:
        images, labels = self.splits["train"]
        indices = batch.indices
        # mode="clip": with out= and the default mode="raise", np.take gathers into a fresh
        # temporary and copies it over (2.4 MB a step, ~0.4 ms of page faults). The sampler's
        # indices are a permutation of range(len(images)), so clipping never changes one.
        x = np.take(images, indices, axis=0, out=self._batch[: len(indices)], mode="clip")
        y = labels[indices]
        if self.augment != "none":  # training batches only; val and test are never augmented
            n = len(indices)
            params = draw_augment(self.augment_rng, n, self.augment)
            images_nchw = x.reshape(n, *self._image_shape)
            x = self._augmenter(images_nchw, params, out=self._augmented[:n]).reshape(n, -1)
        if self._train_buffers is not None:
            logits = self._train_buffers.forward_logits(x)
            correct = int(np.count_nonzero(logits.argmax(axis=1) == y))
            loss = self._train_buffers.loss_and_backward(y)
        else:
            logits = self.model.forward_logits(x)
            correct = int(np.count_nonzero(logits.argmax(axis=1) == y))
            loss, dlogits = softmax_cross_entropy(logits, y)
            self.model.backward_logits(dlogits)
        self.optimizer.step()
        if self.scheduler is not None:
            self.scheduler.step()
        self._loss_sum += loss * len(y)
        self._correct += correct
        self._seen += len(y)

    def pop_train_stats(self) -> tuple[float, float]:
        stats = (self._loss_sum / self._seen, self._correct / self._seen)
        self._loss_sum, self._correct, self._seen = 0.0, 0, 0
        return stats

    @np.errstate(**DIVERGING)
    def evaluate(self, split: str) -> dict[str, float]:
        images, labels = self.splits[split]
        loss_sum = 0.0
        predicted = np.empty(len(labels), dtype=np.int64)
        for start in range(0, len(labels), self.eval_batch_size):
            x = images[start : start + self.eval_batch_size]
            y = labels[start : start + self.eval_batch_size]
            if self._eval_buffers is not None:
                logits = self._eval_buffers.forward_logits(x)
                predicted[start : start + len(y)] = logits.argmax(axis=1)
                loss_sum += self._eval_buffers.loss(logits, y) * len(y)
            else:
                logits = self.model.forward_logits(x)
                predicted[start : start + len(y)] = logits.argmax(axis=1)
                loss_sum += softmax_cross_entropy(logits, y)[0] * len(y)
        self.last_predictions[split] = predicted
        correct = int(np.count_nonzero(predicted == labels))
        return {"loss": loss_sum / len(labels), "accuracy": correct / len(labels)}

    def learning_rate(self) -> float:
        return self.optimizer.lr

    def parameter_arrays(self) -> dict[str, tuple[np.ndarray, np.ndarray | None]]:
        """name -> (values, gradient of the last step or None), for weight histograms."""
        return {
            f"linear{i}.{name}": (value, layer.grads.get(name))
            for i, layer in enumerate(self.model.linears)
            for name, value in layer.params.items()
        }

    def state_dict(self) -> dict:
        """Model, optimizer, schedule and the train stats not yet popped (arrays not copied)."""
        return training_state(
            self.model, self.optimizer, self.scheduler, self._loss_sum, self._correct, self._seen
        )

    def load_state_dict(self, state: dict) -> None:
        """Restore a state_dict(); the schedule last, as it sets the optimizer's lr."""
        load_training_state(state, self.model, self.optimizer, self.scheduler)
        stats = state["train_stats"]
        self._loss_sum, self._correct, self._seen = (
            stats["loss_sum"],
            stats["correct"],
            stats["seen"],
        )
