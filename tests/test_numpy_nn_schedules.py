"""NumPy lr schedules against torch.optim.lr_scheduler step for step, and their range rules."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from dlexp.backends.torch_schedules import make_torch_scheduler
from dlexp.numpy_nn import SCHEDULES, SGD, make_numpy_scheduler

LR = 0.1
# torch's cosine is recursive, ours closed-form: they part at ~1e-13 after 20k steps (measured);
# onecycle and step repeat torch's arithmetic and agree to the bit.
RTOL = 1e-12

CASES = {  # id: (name, total_steps, kwargs)
    "cosine": ("cosine", 50, {}),
    "cosine-odd": ("cosine", 51, {"eta_min": 1e-3}),
    "cosine-warmup": ("cosine", 50, {"warmup_steps": 5}),
    "cosine-warmup-odd": ("cosine", 37, {"warmup_steps": 8, "eta_min": 1e-4}),
    "cosine-warmup-all-but-one": ("cosine", 7, {"warmup_steps": 6}),
    "cosine-long": ("cosine", 3001, {"warmup_steps": 100}),
    "onecycle": ("onecycle", 50, {}),
    "onecycle-odd": ("onecycle", 51, {"pct_start": 0.25, "div_factor": 10.0}),
    "onecycle-short-warmup": ("onecycle", 50, {"pct_start": 0.03, "final_div_factor": 100.0}),
    "onecycle-int-factors": ("onecycle", 33, {"div_factor": 4, "final_div_factor": 10}),
    "step": ("step", 50, {"step_size": 7, "gamma": 0.5}),
    "step-odd": ("step", 51, {"step_size": 1, "gamma": 0.9}),
    "step-defaults": ("step", 2500, {}),
}


def numpy_sgd(rng: np.random.Generator) -> SGD:
    """A dlexp SGD on one (params, grads) pair."""
    return SGD([({"w": rng.standard_normal(3)}, {"w": np.zeros(3)})], lr=LR)


def lrs_both_ways(name: str, total_steps: int, kwargs: dict):
    """The lr before each of total_steps steps, torch's and ours, plus both final parameters."""
    rng = np.random.default_rng(0)
    ours = numpy_sgd(rng)
    (params, grads), = ours.pairs  # fmt: skip
    tensor = torch.tensor(params["w"], requires_grad=True)
    theirs = torch.optim.SGD([tensor], lr=LR)
    torch_sched = make_torch_scheduler(theirs, name, total_steps, **kwargs)
    numpy_sched = make_numpy_scheduler(ours, name, total_steps, **kwargs)
    torch_lrs, numpy_lrs = [], []
    for _ in range(total_steps):
        torch_lrs.append(theirs.param_groups[0]["lr"])
        numpy_lrs.append(ours.lr)
        grads["w"][...] = rng.standard_normal(3)
        tensor.grad = torch.tensor(grads["w"])
        theirs.step()
        ours.step()
        torch_sched.step()
        numpy_sched.step()
    return np.array(torch_lrs), np.array(numpy_lrs), tensor.detach().numpy(), params["w"]


@pytest.mark.filterwarnings("error")  # SequentialLR and friends must stay quiet
@pytest.mark.parametrize("name, total_steps, kwargs", CASES.values(), ids=CASES.keys())
def test_numpy_schedule_matches_torch_step_for_step(name, total_steps, kwargs):
    torch_lrs, numpy_lrs, torch_w, numpy_w = lrs_both_ways(name, total_steps, kwargs)
    np.testing.assert_allclose(numpy_lrs, torch_lrs, rtol=RTOL, atol=0)
    assert len(set(torch_lrs)) > 1  # the lr really moved
    np.testing.assert_allclose(numpy_w, torch_w, rtol=1e-10)  # and each step used it


def test_cosine_warms_up_linearly_then_starts_at_the_full_lr():
    torch_lrs, *_ = lrs_both_ways("cosine", 20, {"warmup_steps": 4})
    np.testing.assert_allclose(torch_lrs[:5], LR * np.arange(1, 6) / 5, rtol=1e-14)
    assert torch_lrs[5] < LR and np.all(np.diff(torch_lrs[4:]) < 0)


def test_none_gives_no_scheduler_on_either_side():
    optimizer = torch.optim.SGD([torch.zeros(1, requires_grad=True)], lr=LR)
    assert make_torch_scheduler(optimizer, "none", 10) is None
    assert make_numpy_scheduler(numpy_sgd(np.random.default_rng(1)), "none", 10) is None
    assert SCHEDULES == ("none", "cosine", "onecycle", "step")


BAD = [  # (name, total_steps, kwargs, message)
    ("linear", 50, {}, r"unknown schedule 'linear'; choose one of none, cosine, onecycle, step"),
    ("cosine", 500, {"warmup_steps": 600}, r"warmup_steps \(600\) must be less than max_steps"),
    ("cosine", 500, {"warmup_steps": 500}, r"warmup_steps \(500\) must be less than max_steps"),
    ("cosine", 500, {"warmup_steps": -1}, r"warmup_steps \(-1\) must be >= 0"),
    ("cosine", 500, {"warmup_steps": 2.5}, r"warmup_steps must be an integer"),
    ("cosine", 500, {"eta_min": -0.1}, r"eta_min \(-0.1\) must be >= 0"),
    ("cosine", 0, {}, r"max_steps \(0\) must be >= 1"),
    ("cosine", 500, {"gamma": 0.5}, r"schedule 'cosine' takes no gamma; its keys"),
    ("onecycle", 50, {"pct_start": 1.0}, r"pct_start \(1.0\) must lie in \(0, 1\)"),
    ("onecycle", 50, {"pct_start": 0.0}, r"pct_start \(0.0\) must lie in \(0, 1\)"),
    ("onecycle", 50, {"pct_start": 0.02}, r"pct_start \* max_steps \(1\) must exceed 1"),
    ("onecycle", 50, {"div_factor": 0.0}, r"div_factor \(0.0\) must be > 0"),
    ("onecycle", 50, {"final_div_factor": -1.0}, r"final_div_factor \(-1.0\) must be > 0"),
    ("step", 50, {"step_size": 0}, r"step_size \(0\) must be >= 1"),
    ("step", 50, {"gamma": 0.0}, r"gamma \(0.0\) must be > 0"),
    ("step", 50, {"gamma": "0.1"}, r"gamma must be a number"),
    ("none", 50, {"step_size": 10}, r"schedule 'none' takes no step_size; its keys: none"),
]


@pytest.mark.parametrize("name, total_steps, kwargs, message", BAD)
def test_bad_schedule_arguments_raise_the_same_error_on_both_sides(
    name, total_steps, kwargs, message
):
    optimizer = torch.optim.SGD([torch.zeros(1, requires_grad=True)], lr=LR)
    with pytest.raises(ValueError, match=message):
        make_torch_scheduler(optimizer, name, total_steps, **kwargs)
    with pytest.raises(ValueError, match=message):
        make_numpy_scheduler(numpy_sgd(np.random.default_rng(2)), name, total_steps, **kwargs)


@pytest.mark.parametrize("name, total_steps, kwargs", CASES.values(), ids=CASES.keys())
def test_state_dict_round_trip_resumes_the_same_sequence(name, total_steps, kwargs):
    rng = np.random.default_rng(3)
    straight = numpy_sgd(rng)
    schedule = make_numpy_scheduler(straight, name, total_steps, **kwargs)
    expected = []
    for _ in range(total_steps):
        expected.append(straight.lr)
        schedule.step()
    half = total_steps // 2
    first = numpy_sgd(rng)
    schedule = make_numpy_scheduler(first, name, total_steps, **kwargs)
    for _ in range(half):
        schedule.step()
    state = json.loads(json.dumps(schedule.state_dict()))  # plain numbers survive JSON as they are
    assert all(type(value) in (int, float) for value in state.values())
    resumed = numpy_sgd(rng)
    resumed.lr = 123.0  # a fresh run's lr, which the loaded state must overwrite
    schedule = make_numpy_scheduler(resumed, name, total_steps, **kwargs)
    schedule.load_state_dict(state)
    rest = []
    for _ in range(total_steps - half):
        rest.append(resumed.lr)
        schedule.step()
    assert rest == expected[half:]  # the same arithmetic, so bit for bit


def test_onecycle_refuses_to_step_past_its_total_as_torch_does():
    optimizer = torch.optim.SGD([torch.zeros(1, requires_grad=True)], lr=LR)
    torch_sched = make_torch_scheduler(optimizer, "onecycle", 10)
    numpy_sched = make_numpy_scheduler(numpy_sgd(np.random.default_rng(4)), "onecycle", 10)
    for _ in range(10):
        optimizer.step()
        torch_sched.step()
        numpy_sched.step()
    with pytest.raises(ValueError, match="Tried to step 11 times"):
        optimizer.step()
        torch_sched.step()
    with pytest.raises(ValueError, match=r"stepped 11 times, past max_steps \(10\)"):
        numpy_sched.step()
