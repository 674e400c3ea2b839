"""The seed's NumPy MLP: Linear -> LeakyReLU, repeated, then Linear -> softmax."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from itertools import pairwise

import numpy as np

from dlexp.numpy_nn.modules import LeakyReLUModule, LinearModule, SoftMaxModule


class MLP:
    """A multi-layer perceptron with hand-written backprop.

    Args:
        n_hidden: hidden sizes; an empty list gives a linear classifier.
        input_grad: also compute dL/dx for the input in `backward` (an extra matmul).
    """

    def __init__(
        self,
        n_inputs: int,
        n_hidden: Sequence[int],
        n_classes: int,
        neg_slope: float,
        rng: np.random.Generator | None = None,
        dtype=np.float64,
        init_std: float = 1e-4,
        input_grad: bool = False,
    ):
        if any(int(h) < 1 for h in n_hidden):
            raise ValueError(f"MLP hidden sizes must be positive, got {list(n_hidden)}")
        if neg_slope < 0:  # checked here too: with no hidden layer no LeakyReLU would see it
            raise ValueError(f"MLP expects neg_slope >= 0, got {neg_slope}")
        rng = rng if rng is not None else np.random.default_rng()
        sizes = [n_inputs, *(int(h) for h in n_hidden), n_classes]
        self.linears = [
            LinearModule(a, b, rng=rng, dtype=dtype, init_std=init_std) for a, b in pairwise(sizes)
        ]
        self.linears[0].needs_input_grad = input_grad
        self.activations = [LeakyReLUModule(neg_slope) for _ in n_hidden]
        self.softmax = SoftMaxModule()

    def forward_logits(self, x: np.ndarray) -> np.ndarray:
        """(B, n_inputs) -> pre-softmax scores (B, n_classes)."""
        # strict=False on purpose: the last Linear has no activation and is applied below.
        for linear, activation in zip(self.linears, self.activations, strict=False):
            x = activation.forward(linear.forward(x))
        return self.linears[-1].forward(x)

    def forward(self, x: np.ndarray) -> np.ndarray:
        """(B, n_inputs) -> class probabilities (B, n_classes)."""
        return self.softmax.forward(self.forward_logits(x))

    def backward_logits(self, dlogits: np.ndarray) -> np.ndarray | None:
        """Backprop dL/dlogits through every layer, filling each Linear's grads."""
        dx = self.linears[-1].backward(dlogits)
        hidden = zip(reversed(self.linears[:-1]), reversed(self.activations), strict=True)
        for linear, activation in hidden:
            dx = linear.backward(activation.backward(dx))
        return dx

    def backward(self, dout: np.ndarray) -> np.ndarray | None:
        """Backprop dL/dprobabilities; returns dL/dx when `input_grad` was set, else None."""
        return self.backward_logits(self.softmax.backward(dout))

    def parameters(self) -> Iterator[tuple[dict, dict]]:
        """(params, grads) dict pairs, in layer order, for the optimizers."""
        for linear in self.linears:
            yield linear.params, linear.grads

    def state_dict(self) -> dict[str, np.ndarray]:
        """Every parameter keyed "linears.<i>.<weight|bias>" (no copies); nothing else persists."""
        return {
            f"linears.{i}.{key}": value
            for i, linear in enumerate(self.linears)
            for key, value in linear.params.items()
        }

    def load_state_dict(self, state: dict[str, np.ndarray]) -> None:
        """Copy a state_dict() into the parameters in place (optimizers hold references)."""
        own = self.state_dict()
        unknown, missing = sorted(set(state) - set(own)), [k for k in own if k not in state]
        if unknown or missing:
            raise ValueError(f"MLP state: missing {missing}, unexpected {unknown}")
        for key, target in own.items():
            value = np.asarray(state[key])
            if value.shape != target.shape or value.dtype != target.dtype:
                raise ValueError(
                    f"MLP state {key} is {value.dtype}{list(value.shape)},"
                    f" this model's is {target.dtype}{list(target.shape)}"
                )
            np.copyto(target, value)
