"""NumPy layers with hand-derived backward passes (seed §1, derivations in docs/backprop.md).

Each `forward` caches what its `backward(dout)` needs; `backward` returns dL/dinput and
overwrites (never accumulates into) the module's `grads`.
"""

from __future__ import annotations

import numpy as np

# Probabilities are clipped to this before a log or a division, so p = 0 gives finite numbers.
PROB_FLOOR = 1e-12


def _check_2d(name: str, arr: np.ndarray, n_cols: int, what: str = "x") -> None:
    if arr.ndim != 2 or arr.shape[1] != n_cols:
        raise ValueError(f"{name} expects {what} of shape (batch, {n_cols}), got {arr.shape}")


def _check_like(name: str, dout: np.ndarray, shape: tuple) -> None:
    if dout.shape != shape:
        raise ValueError(f"{name}.backward expects dout of shape {shape}, got {dout.shape}")


def _output_buffer(grads: dict, key: str, like: np.ndarray) -> np.ndarray:
    """The preallocated gradient array for `key`, replaced only if the parameter changed shape."""
    buf = grads.get(key)
    if buf is None or buf.shape != like.shape or buf.dtype != like.dtype:
        buf = grads[key] = np.empty_like(like)  # keeps like's layout: a transposed view stays one
    return buf


def transposed_zeros(out_features: int, in_features: int, dtype) -> np.ndarray:
    """Zeros of shape (out, in) that are the .T view of a C-contiguous (in, out) buffer.

    Linear weights live this way: x @ W.T and x.T @ dout then run on C-contiguous operands,
    OpenBLAS's fastest layout (up to ~25% faster at 2 threads), while the seed's (out, in)
    shape holds. Updates in place (optimizers, load_state_dict) keep the view valid.
    """
    return np.zeros((in_features, out_features), dtype=dtype).T


def weight_grad(x: np.ndarray, dout: np.ndarray, out: np.ndarray) -> np.ndarray:
    """dL/dW = dout^T x (out, in) into `out`, multiplied in the orientation of out's memory."""
    if out.flags.f_contiguous and not out.flags.c_contiguous:  # a transposed_zeros view
        np.matmul(x.T, dout, out=out.T)  # (in, out), bitwise the same sums as dout.T @ x
    else:
        np.matmul(dout.T, x, out=out)
    return out


class LinearModule:
    """y = x W^T + b with W of shape (out_features, in_features); docs/backprop.md §1.1."""

    def __init__(self, in_features, out_features, rng=None, dtype=np.float64, init_std=1e-4):
        if in_features < 1 or out_features < 1:
            sizes = (in_features, out_features)
            raise ValueError(f"LinearModule needs positive sizes, got {sizes}")
        rng = rng if rng is not None else np.random.default_rng()
        draws = rng.normal(0.0, init_std, size=(out_features, in_features))  # float64
        weight = transposed_zeros(out_features, in_features, dtype)  # (out, in), see there
        weight[...] = draws  # rounded into dtype as astype rounds: the same numbers, same places
        self.params = {"weight": weight, "bias": np.zeros(out_features, dtype=dtype)}
        self.grads = {
            "weight": transposed_zeros(out_features, in_features, dtype),
            "bias": np.zeros(out_features, dtype=dtype),
        }
        self.needs_input_grad = True  # an MLP's first layer skips dL/dx: one matmul saved
        self._x = None

    def forward(self, x: np.ndarray) -> np.ndarray:
        weight = self.params["weight"]
        _check_2d("LinearModule", x, weight.shape[1])
        self._x = x
        out = x @ weight.T  # (B, out)
        out += self.params["bias"]
        return out

    def backward(self, dout: np.ndarray) -> np.ndarray | None:
        weight, x = self.params["weight"], self._x
        _check_like("LinearModule", dout, (x.shape[0], weight.shape[0]))
        weight_grad(x, dout, _output_buffer(self.grads, "weight", weight))  # (out, in)
        np.sum(dout, axis=0, out=_output_buffer(self.grads, "bias", self.params["bias"]))
        return dout @ weight if self.needs_input_grad else None  # (B, in)


class LeakyReLUModule:
    """max(0, x) + a min(0, x), elementwise; docs/backprop.md §1.1."""

    def __init__(self, neg_slope: float):
        if neg_slope < 0:
            raise ValueError(f"LeakyReLUModule expects neg_slope >= 0, got {neg_slope}")
        self.neg_slope = float(neg_slope)  # a NumPy float64 scalar would upcast float32 arrays
        self._positive = None

    def forward(self, x: np.ndarray) -> np.ndarray:
        self._positive = x > 0  # f'(0) := a, a valid subgradient (docs/backprop.md §1.1a)
        out = x * self.neg_slope
        # max(x, a x) for a <= 1 (min for a > 1): one ufunc, ~10x faster than a masked copy.
        (np.maximum if self.neg_slope <= 1 else np.minimum)(x, out, out=out)
        return out

    def backward(self, dout: np.ndarray) -> np.ndarray:
        _check_like("LeakyReLUModule", dout, self._positive.shape)
        a = self.neg_slope
        dx = self._positive.astype(dout.dtype)  # f'(x) = a + (1 - a) [x > 0], built in place
        dx *= 1.0 - a
        dx += a
        dx *= dout
        return dx


def softmax(x: np.ndarray) -> np.ndarray:
    """Row-wise softmax, shifted by the row maximum so exp never overflows."""
    z = x - x.max(axis=1, keepdims=True)
    np.exp(z, out=z)
    z /= z.sum(axis=1, keepdims=True)
    return z


class SoftMaxModule:
    """Row-wise softmax; docs/backprop.md §1.1."""

    def __init__(self):
        self._out = None

    def forward(self, x: np.ndarray) -> np.ndarray:
        if x.ndim != 2:
            raise ValueError(f"SoftMaxModule expects x of shape (batch, classes), got {x.shape}")
        self._out = softmax(x)
        return self._out

    def backward(self, dout: np.ndarray) -> np.ndarray:
        p = self._out
        _check_like("SoftMaxModule", dout, p.shape)
        # J^T dout for J = diag(p) - p p^T, row by row, without forming J.
        return p * (dout - np.sum(dout * p, axis=1, keepdims=True))


def check_one_hot(x: np.ndarray, y: np.ndarray, name: str = "CrossEntropyModule") -> None:
    if x.ndim != 2:
        raise ValueError(f"{name} expects x of shape (batch, classes), got {x.shape}")
    if y.shape != x.shape:
        raise ValueError(f"{name} expects one-hot y of shape {x.shape}, got {y.shape}")
    if not (np.all((y == 0) | (y == 1)) and np.all(y.sum(axis=1) == 1)):
        raise ValueError(f"{name} expects y one-hot of shape {x.shape}: 0/1 rows summing to 1")


class CrossEntropyModule:
    """Batch-mean cross-entropy of probabilities x against one-hot y; docs/backprop.md §1.1a, c."""

    def forward(self, x: np.ndarray, y: np.ndarray) -> float:
        check_one_hot(x, y)
        log_p = np.log(np.maximum(x, PROB_FLOOR))
        return float(-np.sum(y * log_p) / x.shape[0])

    def backward(self, x: np.ndarray, y: np.ndarray) -> np.ndarray:
        check_one_hot(x, y)
        # x's dtype, not y's: float64 one-hot targets must not turn a float32 backward into float64.
        dtype = x.dtype if np.issubdtype(x.dtype, np.floating) else np.float64
        grad = np.divide(y, np.maximum(x, PROB_FLOOR), dtype=dtype)
        grad *= -1.0 / x.shape[0]  # the batch mean's 1/B (docs/backprop.md §1.1c)
        return grad


def softmax_cross_entropy(logits: np.ndarray, labels: np.ndarray) -> tuple[float, np.ndarray]:
    """Fused softmax + batch-mean cross-entropy on logits with integer labels.

    Returns the loss and dL/dlogits = (softmax(logits) - onehot) / B (docs/backprop.md §1.1c).
    """
    if logits.ndim != 2 or labels.shape != (logits.shape[0],):
        raise ValueError(
            f"softmax_cross_entropy expects logits (batch, classes) and labels (batch,), "
            f"got {logits.shape} and {labels.shape}"
        )
    batch, n_classes = logits.shape
    if labels.min() < 0 or labels.max() >= n_classes:  # -1 would silently index the last class
        raise ValueError(f"softmax_cross_entropy expects labels in [0, {n_classes}), got "
                         f"[{labels.min()}, {labels.max()}]")  # fmt: skip
    rows = np.arange(batch)
    z = logits - logits.max(axis=1, keepdims=True)  # (B, C); exp never overflows
    picked = z[rows, labels]
    np.exp(z, out=z)  # z now holds unnormalised probabilities: one exp pass, one buffer
    norm = z.sum(axis=1)  # (B,)
    loss = float(np.mean(np.log(norm) - picked))
    z *= (1.0 / (norm * batch))[:, None]  # softmax / B in a single pass
    z[rows, labels] -= 1.0 / batch
    return loss, z
