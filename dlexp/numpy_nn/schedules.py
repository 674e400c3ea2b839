"""Learning-rate schedules for the NumPy optimizers, step for step equal to torch's schedulers."""

from __future__ import annotations

import inspect
import math
from numbers import Integral, Real


def _integer(key: str, value) -> int:
    if isinstance(value, bool) or not isinstance(value, Integral):
        raise ValueError(f"{key} must be an integer, got {value!r}")
    return int(value)


def _number(key: str, value) -> float:
    if isinstance(value, bool) or not isinstance(value, Real):
        raise ValueError(f"{key} must be a number, got {value!r}")
    return float(value)


def _require(ok: bool, message: str) -> None:
    if not ok:
        raise ValueError(message)


def check_schedule_args(name: str, total_steps: int, **kwargs) -> dict:
    """Check a schedule's keys and ranges for both backends; return the keys with defaults."""
    if name not in SCHEDULES:
        raise ValueError(f"unknown schedule {name!r}; choose one of {', '.join(SCHEDULES)}")
    defaults = schedule_defaults(name)
    unknown = sorted(set(kwargs) - set(defaults))
    expected = ", ".join(defaults) or "none"
    _require(not unknown, f"schedule {name!r} takes no {', '.join(unknown)}; its keys: {expected}")
    args = {**defaults, **kwargs}
    if name == "none":
        return args
    total_steps = _integer("max_steps", total_steps)
    _require(total_steps >= 1, f"max_steps ({total_steps}) must be >= 1")
    if name == "cosine":
        warmup, eta_min = _integer("warmup_steps", args["warmup_steps"]), args["eta_min"]
        _require(warmup >= 0, f"warmup_steps ({warmup}) must be >= 0")
        _require(
            warmup < total_steps,
            f"warmup_steps ({warmup}) must be less than max_steps ({total_steps})",
        )
        _require(_number("eta_min", eta_min) >= 0, f"eta_min ({eta_min}) must be >= 0")
        return {"warmup_steps": warmup, "eta_min": float(eta_min)}
    if name == "onecycle":
        pct, div, final = (_number(k, args[k]) for k in defaults)
        _require(0 < pct < 1, f"pct_start ({pct}) must lie in (0, 1)")
        # torch's warmup phase ends at step pct*total - 1; at 0 it divides by zero
        _require(
            pct * total_steps > 1,
            f"pct_start * max_steps ({pct * total_steps:g}) must exceed 1",
        )
        _require(div > 0, f"div_factor ({div}) must be > 0")
        _require(final > 0, f"final_div_factor ({final}) must be > 0")
        return {"pct_start": pct, "div_factor": div, "final_div_factor": final}
    step_size, gamma = _integer("step_size", args["step_size"]), _number("gamma", args["gamma"])
    _require(step_size >= 1, f"step_size ({step_size}) must be >= 1")
    _require(gamma > 0, f"gamma ({gamma}) must be > 0")
    return {"step_size": step_size, "gamma": gamma}


class _Schedule:
    """Sets optimizer.lr to lr_at(last_step) at construction and after each step, as torch does."""

    def __init__(self, optimizer, total_steps: int, **params):
        vars(self).update(params)  # the schedule's own keys (warmup_steps, gamma, ...)
        self.optimizer = optimizer
        self.base_lr = float(optimizer.lr)  # torch's initial_lr: the lr before the schedule
        self.total_steps = int(total_steps)
        self.last_step = 0  # torch's last_epoch: optimizer steps taken so far
        self._apply()

    def lr_at(self, step: int) -> float:
        raise NotImplementedError

    def step(self) -> None:
        """Advance one optimizer step; call after optimizer.step()."""
        self.last_step += 1
        self._apply()

    def _apply(self) -> None:
        self.optimizer.lr = self.lr_at(self.last_step)

    def state_dict(self) -> dict:
        """Every attribute but the optimizer, all plain numbers."""
        return {key: value for key, value in vars(self).items() if key != "optimizer"}

    def load_state_dict(self, state: dict) -> None:
        """Restore a state_dict() and set the optimizer's lr to match it."""
        missing = sorted(set(self.state_dict()) - set(state))
        _require(not missing, f"schedule state lacks {', '.join(missing)}")
        for key in self.state_dict():
            setattr(self, key, state[key])
        self._apply()


class CosineSchedule(_Schedule):
    """Linear warmup then cosine annealing: SequentialLR([LinearLR, CosineAnnealingLR])."""

    def __init__(self, optimizer, total_steps: int, warmup_steps: int = 0, eta_min: float = 0.0):
        super().__init__(optimizer, total_steps, warmup_steps=warmup_steps, eta_min=eta_min)

    def lr_at(self, step: int) -> float:
        warmup = self.warmup_steps
        if step < warmup:  # LinearLR(start_factor=1/(w+1), total_iters=w) in closed form
            return self.base_lr * (step + 1) / (warmup + 1)
        t, t_max = step - warmup, self.total_steps - warmup  # CosineAnnealingLR restarts at w
        return (
            self.eta_min + (self.base_lr - self.eta_min) * (1 + math.cos(math.pi * t / t_max)) / 2
        )


class OneCycleSchedule(_Schedule):
    """OneCycleLR with cos annealing, two phases and no momentum cycling; max_lr is the lr."""

    def __init__(
        self,
        optimizer,
        total_steps: int,
        pct_start: float = 0.3,
        div_factor: float = 25.0,
        final_div_factor: float = 1e4,
    ):
        factors = {"div_factor": div_factor, "final_div_factor": final_div_factor}
        super().__init__(optimizer, total_steps, pct_start=pct_start, **factors)

    def lr_at(self, step: int) -> float:
        if step > self.total_steps:  # torch refuses too
            raise ValueError(f"stepped {step} times, past max_steps ({self.total_steps})")
        # torch's arithmetic, operation for operation, so the two agree to the last bit
        initial = self.base_lr / self.div_factor
        floor = initial / self.final_div_factor
        warm_end = float(self.pct_start * self.total_steps) - 1  # a float step index
        if step <= warm_end:
            start, end, pct = initial, self.base_lr, step / warm_end
        else:
            start, end = self.base_lr, floor
            pct = (step - warm_end) / (self.total_steps - 1 - warm_end)
        return end + (start - end) / 2.0 * (math.cos(math.pi * pct) + 1)


class StepSchedule(_Schedule):
    """StepLR: multiply the lr by gamma every step_size optimizer steps."""

    def __init__(self, optimizer, total_steps: int, step_size: int = 1000, gamma: float = 0.1):
        super().__init__(optimizer, total_steps, step_size=step_size, gamma=gamma)

    def lr_at(self, step: int) -> float:
        return self.base_lr * self.gamma ** (step // self.step_size)


# Each `sched` option's class; its constructor's keyword arguments (after optimizer and
# total_steps) are the option's keys and defaults, for both backends and for the config schema.
SCHEDULE_CLASSES = {"cosine": CosineSchedule, "onecycle": OneCycleSchedule, "step": StepSchedule}
SCHEDULES = ("none", *SCHEDULE_CLASSES)
RUNTIME_ARGUMENTS = ("self", "optimizer", "total_steps")  # given by the run, never configured


def schedule_defaults(name: str) -> dict:
    """{key: default} of the option's constructor ({} for none); steps count optimizer steps."""
    if name == "none":
        return {}
    parameters = inspect.signature(SCHEDULE_CLASSES[name]).parameters.values()
    return {p.name: p.default for p in parameters if p.name not in RUNTIME_ARGUMENTS}


def make_numpy_scheduler(optimizer, name: str, total_steps: int, **kwargs) -> _Schedule | None:
    """The schedule `name` on a NumPy optimizer, or None for "none"; step() after each step."""
    args = check_schedule_args(name, total_steps, **kwargs)
    if name == "none":
        return None
    return SCHEDULE_CLASSES[name](optimizer, total_steps, **args)
