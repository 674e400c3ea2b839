"""An MLP's forward, softmax-cross-entropy and backward in preallocated buffers.

`MLPStepBuffers` runs the same arithmetic as `MLP.forward_logits` + `softmax_cross_entropy` +
`MLP.backward_logits`, operation for operation, so its logits, loss and gradients are bitwise
equal to theirs; it only skips the per-step allocations (every array it writes lives as long as
it does) and the module-by-module checks. Gradients land in each Linear's `grads` arrays, so any
optimizer steps on them as usual.
"""

from __future__ import annotations

import numpy as np

from dlexp.numpy_nn.mlp import MLP
from dlexp.numpy_nn.modules import weight_grad


class MLPStepBuffers:
    """Forward, loss and backward of `model` for up to `capacity` rows, allocation-free.

    The buffers hold the last call's activations, so a `loss_and_backward` follows the
    `forward_logits` of the same batch.
    """

    def __init__(self, model: MLP, capacity: int):
        if not isinstance(model, MLP):
            raise TypeError(f"MLPStepBuffers drives a dlexp.numpy_nn.MLP, got {type(model)}")
        if capacity < 1:
            raise ValueError(f"MLPStepBuffers needs a capacity >= 1, got {capacity}")
        self.model = model
        dtype = model.linears[0].params["weight"].dtype
        widths = [linear.params["weight"].shape[0] for linear in model.linears]
        # (capacity, width) per layer: pre-activations (the last are the logits), activations,
        # positive masks and dL/d(activation) for the hidden layers.
        self.pre = [np.empty((capacity, w), dtype=dtype) for w in widths]
        self.act = [np.empty((capacity, w), dtype=dtype) for w in widths[:-1]]
        self.positive = [np.empty((capacity, w), dtype=bool) for w in widths[:-1]]
        self.dact = [np.empty((capacity, w), dtype=dtype) for w in widths[:-1]]
        n_classes = widths[-1]
        self.probs = np.empty((capacity, n_classes), dtype=dtype)  # then dL/dlogits
        self.logits_t = np.empty((n_classes, capacity), dtype=dtype)  # for the row maximum
        self.row_max = np.empty(capacity, dtype=dtype)
        self.norm = np.empty(capacity, dtype=dtype)
        self.rows = np.arange(capacity)
        self._x = None

    @property
    def capacity(self) -> int:
        return len(self.rows)

    def forward_logits(self, x: np.ndarray) -> np.ndarray:
        """(n, n_inputs) -> logits (n, n_classes), a view of a buffer the next call overwrites."""
        n = len(x)
        if n > self.capacity:
            raise ValueError(f"batch of {n} exceeds the buffers' capacity {self.capacity}")
        self._x = x
        model, inputs = self.model, x
        for i, linear in enumerate(model.linears):
            out = self.pre[i][:n]
            np.matmul(inputs, linear.params["weight"].T, out=out)  # (n, width)
            out += linear.params["bias"]
            if i == len(self.act):
                return out
            a = model.activations[i].neg_slope
            np.greater(out, 0, out=self.positive[i][:n])
            inputs = np.multiply(out, a, out=self.act[i][:n])
            # max(x, a x) for a <= 1 (min for a > 1), as LeakyReLUModule.forward
            (np.maximum if a <= 1 else np.minimum)(out, inputs, out=inputs)
        raise AssertionError("unreachable: the last Linear returns")

    def _shifted(self, logits: np.ndarray) -> np.ndarray:
        """logits minus each row's maximum, in self.probs[:n]; exp of it never overflows."""
        n = len(logits)
        # The maximum is exact in any order; reducing a transposed copy over its outer axis is
        # ~6x faster than np.max(axis=1) over rows of 10.
        transposed = self.logits_t[:, :n]
        np.copyto(transposed, logits.T)
        row_max = np.maximum.reduce(transposed, axis=0, out=self.row_max[:n])  # (n,)
        return np.subtract(logits, row_max[:, None], out=self.probs[:n])

    def _softmax_cross_entropy(self, logits: np.ndarray, labels: np.ndarray) -> float:
        """softmax_cross_entropy's arithmetic; leaves dL/dlogits in self.probs[:n]."""
        n = len(logits)
        rows, z = self.rows[:n], self._shifted(logits)
        picked = z[rows, labels]
        np.exp(z, out=z)
        norm = np.sum(z, axis=1, out=self.norm[:n])  # (n,)
        loss = float(np.mean(np.log(norm) - picked))
        z *= (1.0 / (norm * n))[:, None]  # softmax / n
        z[rows, labels] -= 1.0 / n
        return loss

    def loss(self, logits: np.ndarray, labels: np.ndarray) -> float:
        """Batch-mean cross-entropy of `forward_logits`' output against integer labels (n,)."""
        n = len(logits)
        z = self._shifted(logits)
        picked = z[self.rows[:n], labels]
        np.exp(z, out=z)
        return float(np.mean(np.log(np.sum(z, axis=1, out=self.norm[:n])) - picked))

    def loss_and_backward(self, labels: np.ndarray) -> float:
        """The loss of the last forward_logits against labels (n,); fills every Linear's grads."""
        model, x = self.model, self._x
        n = len(x)
        if labels.shape != (n,):
            raise ValueError(f"expected {n} labels for the last forward, got {labels.shape}")
        loss = self._softmax_cross_entropy(self.pre[-1][:n], labels)
        dout = self.probs[:n]
        for i in range(len(model.linears) - 1, -1, -1):
            linear = model.linears[i]
            inputs = self.act[i - 1][:n] if i else x
            grads = linear.grads
            weight_grad(inputs, dout, grads["weight"])  # (out, in)
            np.sum(dout, axis=0, out=grads["bias"])
            if i == 0:
                break
            dact = self.dact[i - 1][:n]
            np.matmul(dout, linear.params["weight"], out=dact)  # (n, in)
            # LeakyReLUModule.backward's f'(x) = a + (1 - a) [x > 0], op for op; a masked
            # ufunc (where=) would be ~30x slower. The spent pre-activation buffer holds it.
            a = model.activations[i - 1].neg_slope
            dout = self.pre[i - 1][:n]
            np.copyto(dout, self.positive[i - 1][:n])
            dout *= 1.0 - a
            dout += a
            dout *= dact
        return loss
