"""In-place NumPy optimizers with torch.optim's update rules and defaults."""

from __future__ import annotations

import functools
import math
from collections.abc import Iterable

import numpy as np

ParamPairs = Iterable[tuple[dict, dict]]  # (params, grads) dicts sharing keys
SCRATCH_SLOTS = ("scratch", "decayed")  # rewritten before every read: not worth saving
UPDATE_CHUNK = 32768  # elements per pass of subtract_scaled: its scratch stays in L2 (128 KB f32)


def _same_layout(a: np.ndarray, b: np.ndarray) -> bool:
    return a.shape == b.shape and a.dtype == b.dtype


def subtract_scaled(param: np.ndarray, grad: np.ndarray, scale: float, scratch: np.ndarray) -> None:
    """param -= scale * grad, rounded as the two ufuncs round it, in cache-sized chunks."""
    arrays = (param, grad, scratch)
    if all(a.flags.f_contiguous for a in arrays):  # e.g. a Linear's transposed weight views
        arrays = tuple(a.T for a in arrays)  # elementwise: the C-contiguous buffers serve alike
    if param.size <= UPDATE_CHUNK or not all(a.flags.c_contiguous for a in arrays):
        np.multiply(grad, scale, out=scratch)  # small, or strided: one pass of each
        param -= scratch
        return
    param, grad, scratch = (a.reshape(-1) for a in arrays)  # views
    for start in range(0, param.size, UPDATE_CHUNK):  # a few chunks, not a loop over elements
        stop = min(start + UPDATE_CHUNK, param.size)
        product = np.multiply(grad[start:stop], scale, out=scratch[: stop - start])
        np.subtract(param[start:stop], product, out=param[start:stop])


class _Optimizer:
    """Walks (params, grads) pairs; per-parameter scratch arrays avoid MB-sized temporaries."""

    SLOTS: tuple[str, ...] = ()  # the per-parameter arrays each subclass keeps in self.state

    def __init__(self, parameters: ParamPairs, lr: float, weight_decay: float):
        if lr <= 0:
            raise ValueError(f"learning rate must be > 0, got {lr}")
        if weight_decay < 0:
            raise ValueError(f"weight_decay must be >= 0, got {weight_decay}")
        self.pairs = list(parameters)
        self.lr = lr  # read every step, so a schedule may set it between steps
        self.weight_decay = weight_decay
        self.state: dict[tuple[int, str], dict[str, np.ndarray]] = {}

    def _slots(self, index: int, key: str, like: np.ndarray, names: tuple[str, ...]):
        slots = self.state.get((index, key))
        if slots is None:
            slots = self.state[(index, key)] = {n: np.zeros_like(like) for n in names}
        return slots

    def _effective_grad(self, param, grad, scratch) -> np.ndarray:
        """grad + weight_decay * param (L2, as torch), written into `scratch` when needed."""
        if not self.weight_decay:
            return grad
        np.multiply(param, self.weight_decay, out=scratch)
        scratch += grad
        return scratch

    def step(self) -> None:
        for index, (params, grads) in enumerate(self.pairs):
            for key, param in params.items():
                self._update(index, key, param, grads[key])

    def _update(self, index, key, param, grad) -> None:
        raise NotImplementedError

    def state_dict(self) -> dict:
        """lr and each parameter's persistent slots, keyed "<pair index>.<key>" (no copies)."""
        slots = {
            f"{index}.{key}": {n: v for n, v in kept.items() if n not in SCRATCH_SLOTS}
            for (index, key), kept in self.state.items()
        }
        return {"lr": self.lr, "slots": slots}

    def load_state_dict(self, state: dict) -> None:
        """Copy a state_dict() into fresh slots; a slot or shape that does not fit is an error."""
        restored = {}
        for name, saved in state["slots"].items():
            index, _, key = name.partition(".")
            params = self.pairs[int(index)][0] if int(index) < len(self.pairs) else {}
            if key not in params:
                raise ValueError(f"optimizer state has {name!r}, which is no parameter here")
            slots = {n: np.zeros_like(params[key]) for n in self.SLOTS}
            for slot, value in saved.items():
                if not isinstance(value, np.ndarray):  # a flag, e.g. SGD's "started"
                    slots[slot] = value
                elif slot not in slots or not _same_layout(slots[slot], value):
                    raise ValueError(f"optimizer slot {name}.{slot} does not fit this optimizer")
                else:
                    np.copyto(slots[slot], value)
            restored[(int(index), key)] = slots
        self.state = restored
        self.lr = state["lr"]


class SGD(_Optimizer):
    """SGD with optional momentum, torch's convention: buf = m*buf + g, Nesterov g + m*buf."""

    SLOTS = ("scratch", "decayed", "momentum")

    def __init__(
        self,
        parameters: ParamPairs,
        lr: float,
        momentum: float = 0.0,
        weight_decay: float = 0.0,
        nesterov: bool = False,
    ):
        super().__init__(parameters, lr, weight_decay)
        if momentum < 0:
            raise ValueError(f"momentum must be >= 0, got {momentum}")
        if nesterov and momentum <= 0:
            raise ValueError("Nesterov momentum requires a momentum and zero dampening")  # torch's
        self.momentum = momentum
        self.nesterov = nesterov

    def _update(self, index, key, param, grad) -> None:
        slots = self._slots(index, key, param, self.SLOTS)
        grad = self._effective_grad(param, grad, slots["decayed"])
        scratch = slots["scratch"]
        if self.momentum:
            buf = slots["momentum"]
            if "started" not in slots:  # torch starts the buffer at the first gradient
                np.copyto(buf, grad)
                slots["started"] = True
            else:
                buf *= self.momentum
                buf += grad
            if self.nesterov:  # g + m*buf, built in scratch: `grad` may be the caller's array
                np.multiply(buf, self.momentum, out=scratch)
                scratch += grad
                grad = scratch
            else:
                grad = buf
        subtract_scaled(param, grad, self.lr, scratch)


class Adam(_Optimizer):
    """Adam with bias correction, as torch.optim.Adam (L2 weight decay added to the gradient)."""

    SLOTS = ("m", "v", "scratch", "decayed")

    def __init__(
        self,
        parameters: ParamPairs,
        lr: float = 1e-3,
        betas: tuple[float, float] = (0.9, 0.999),
        eps: float = 1e-8,
        weight_decay: float = 0.0,
    ):
        super().__init__(parameters, lr, weight_decay)
        if len(betas) != 2 or not all(0 <= b < 1 for b in betas):
            raise ValueError(f"Adam betas must be two values in [0, 1), got {tuple(betas)}")
        if eps < 0:
            raise ValueError(f"eps must be >= 0, got {eps}")
        self.betas = tuple(betas)
        self.eps = eps
        self.steps = 0

    def step(self) -> None:
        self.steps += 1
        super().step()

    def state_dict(self) -> dict:
        """The base state plus the step count that the bias correction reads."""
        return {**super().state_dict(), "steps": self.steps}

    def load_state_dict(self, state: dict) -> None:
        super().load_state_dict(state)
        self.steps = int(state["steps"])

    def _update(self, index, key, param, grad) -> None:
        slots = self._slots(index, key, param, self.SLOTS)
        self._adam_update(slots, param, self._effective_grad(param, grad, slots["decayed"]))

    def _adam_update(self, slots, param, grad) -> None:
        """The bias-corrected moment update, shared with AdamW."""
        beta1, beta2 = self.betas
        m, v, scratch = slots["m"], slots["v"], slots["scratch"]
        m *= beta1
        np.multiply(grad, 1 - beta1, out=scratch)
        m += scratch
        v *= beta2
        np.multiply(grad, grad, out=scratch)
        scratch *= 1 - beta2
        v += scratch
        bias1 = 1 - beta1**self.steps
        bias2 = 1 - beta2**self.steps
        np.sqrt(v, out=scratch)
        scratch /= math.sqrt(bias2)
        scratch += self.eps
        np.divide(m, scratch, out=scratch)
        scratch *= self.lr / bias1
        param -= scratch


class AdamW(Adam):
    """Adam with decoupled weight decay, as torch.optim.AdamW: param *= 1 - lr*wd, then Adam."""

    SLOTS = ("m", "v", "scratch")
    # Adam's constructor with torch.optim.AdamW's default decay; inspect.signature (the config
    # schema) shows weight_decay: float = 0.01, as a keyword-only argument.
    __init__ = functools.partialmethod(Adam.__init__, weight_decay=1e-2)

    def _update(self, index, key, param, grad) -> None:
        slots = self._slots(index, key, param, self.SLOTS)
        if self.weight_decay:  # shrinks the weights, never enters the moments
            param *= 1 - self.lr * self.weight_decay
        self._adam_update(slots, param, grad)


# The `optim` group: one entry per option. Each constructor's arguments after `parameters` are
# the option's keys, types and defaults (dlexp.config.schema); the torch backend trains with
# the torch.optim class of the same name.
OPTIMIZERS = {"sgd": SGD, "adam": Adam, "adamw": AdamW}
