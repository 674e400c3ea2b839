"""NumPy SGD, Adam and AdamW against torch.optim on the same gradients, float64; the chunked
SGD update against two plain passes."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from dlexp.numpy_nn import MLP, SGD, Adam, AdamW
from dlexp.numpy_nn.optim import UPDATE_CHUNK, subtract_scaled

STEPS = 20
SHAPES = {"weight": (4, 3), "bias": (4,)}  # a LinearModule's layout

CONFIGS = {
    "sgd": (SGD, torch.optim.SGD, {"lr": 0.1}),
    "sgd-momentum": (SGD, torch.optim.SGD, {"lr": 0.1, "momentum": 0.9}),
    "sgd-decay": (SGD, torch.optim.SGD, {"lr": 0.05, "weight_decay": 0.1}),
    "sgd-momentum-decay": (
        SGD,
        torch.optim.SGD,
        {"lr": 0.05, "momentum": 0.8, "weight_decay": 0.01},
    ),
    "sgd-nesterov": (SGD, torch.optim.SGD, {"lr": 0.1, "momentum": 0.9, "nesterov": True}),
    "sgd-nesterov-decay": (
        SGD,
        torch.optim.SGD,
        {"lr": 0.05, "momentum": 0.8, "weight_decay": 0.01, "nesterov": True},
    ),
    "adam-defaults": (Adam, torch.optim.Adam, {}),  # torch's defaults on both sides
    "adam-decay": (Adam, torch.optim.Adam, {"lr": 0.01, "weight_decay": 0.1}),
    "adam-betas-eps": (Adam, torch.optim.Adam, {"lr": 0.02, "betas": (0.8, 0.99), "eps": 1e-6}),
    "adamw-defaults": (AdamW, torch.optim.AdamW, {}),  # weight_decay 1e-2 on both sides
    "adamw-decay": (AdamW, torch.optim.AdamW, {"lr": 0.05, "weight_decay": 0.5}),
    "adamw-no-decay": (AdamW, torch.optim.AdamW, {"lr": 0.02, "weight_decay": 0.0}),
}
LR_CHANGE_AT = 10  # a schedule's move: both sides get a new lr between steps


def two_layers(rng: np.random.Generator) -> list[tuple[dict, dict]]:
    """Two (params, grads) pairs shaped like LinearModules."""
    return [
        (
            {key: rng.standard_normal(shape) for key, shape in SHAPES.items()},
            {key: np.zeros(shape) for key, shape in SHAPES.items()},
        )
        for _ in range(2)
    ]


def flat(pairs, which: int) -> list[np.ndarray]:
    """Every params (which=0) or grads (which=1) array, in a fixed order."""
    return [pair[which][key] for pair in pairs for key in SHAPES]


@pytest.mark.parametrize("ours, theirs, kwargs", CONFIGS.values(), ids=CONFIGS.keys())
def test_optimizer_matches_torch_over_20_steps(ours, theirs, kwargs):
    rng = np.random.default_rng(0)
    pairs = two_layers(rng)
    tensors = [torch.tensor(p, requires_grad=True) for p in flat(pairs, 0)]
    start = [p.copy() for p in flat(pairs, 0)]
    optimizer, reference = ours(pairs, **kwargs), theirs(tensors, **kwargs)
    for step in range(STEPS):
        if step == LR_CHANGE_AT:
            optimizer.lr *= 0.5
            for group in reference.param_groups:
                group["lr"] *= 0.5
        for grad, tensor in zip(flat(pairs, 1), tensors, strict=True):
            grad[...] = rng.standard_normal(grad.shape)  # in place, as LinearModule.backward
            tensor.grad = torch.tensor(grad)
        optimizer.step()
        reference.step()
        for mine, ref in zip(flat(pairs, 0), tensors, strict=True):
            np.testing.assert_allclose(mine, ref.detach().numpy(), rtol=1e-6, atol=1e-6)
    moved = max(np.abs(p - p0).max() for p, p0 in zip(flat(pairs, 0), start, strict=True))
    assert moved > 1e-3  # the parameters really moved: this compared trajectories, not constants


@pytest.mark.parametrize("ours, theirs, kwargs", CONFIGS.values(), ids=CONFIGS.keys())
def test_optimizer_leaves_grads_alone(ours, theirs, kwargs):
    pairs = two_layers(np.random.default_rng(1))
    for grad in flat(pairs, 1):
        grad[...] = 1.0
    optimizer = ours(pairs, **kwargs)
    optimizer.step()
    optimizer.step()
    assert all(np.all(grad == 1.0) for grad in flat(pairs, 1))


def test_optimizers_drive_an_mlp_in_float32():
    rng = np.random.default_rng(2)
    makers = (
        lambda p: SGD(p, lr=0.1, momentum=0.9),
        lambda p: SGD(p, lr=0.1, momentum=0.9, nesterov=True),
        lambda p: Adam(p, lr=1e-3),
        lambda p: AdamW(p, lr=1e-3),
    )
    for make in makers:
        model = MLP(5, [4], 3, neg_slope=0.02, rng=rng, dtype=np.float32)
        before = [params["weight"].copy() for params, _ in model.parameters()]
        optimizer = make(model.parameters())
        for _, grads in model.parameters():
            grads["weight"][...] = 1.0
        optimizer.step()
        for old, (params, _) in zip(before, model.parameters(), strict=True):
            assert params["weight"].dtype == np.float32
            assert np.all(params["weight"] < old)  # a positive gradient lowers every weight


@pytest.mark.parametrize(
    "make, message",
    [
        (lambda p: SGD(p, lr=0.0), r"learning rate must be > 0"),
        (lambda p: SGD(p, lr=0.1, momentum=-0.5), r"momentum must be >= 0"),
        (lambda p: SGD(p, lr=0.1, weight_decay=-1.0), r"weight_decay must be >= 0"),
        (lambda p: Adam(p, betas=(0.9, 1.0)), r"betas must be two values in \[0, 1\)"),
        (lambda p: Adam(p, eps=-1e-8), r"eps must be >= 0"),
        (lambda p: AdamW(p, lr=-1e-3), r"learning rate must be > 0"),
        (lambda p: AdamW(p, betas=(-0.1, 0.999)), r"betas must be two values in \[0, 1\)"),
        (lambda p: AdamW(p, weight_decay=-0.01), r"weight_decay must be >= 0"),
    ],
)
def test_bad_hyperparameters_get_a_clear_error(make, message):
    with pytest.raises(ValueError, match=message):
        make(two_layers(np.random.default_rng(3)))


def test_nesterov_without_momentum_is_refused_as_torch_refuses_it():
    message = "Nesterov momentum requires a momentum and zero dampening"
    with pytest.raises(ValueError, match=message):
        torch.optim.SGD([torch.zeros(1, requires_grad=True)], lr=0.1, nesterov=True)
    with pytest.raises(ValueError, match=message):
        SGD(two_layers(np.random.default_rng(4)), lr=0.1, nesterov=True)


@pytest.mark.parametrize("shape", [(7,), (100, 3072), (3, UPDATE_CHUNK + 5)])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_chunked_update_equals_the_two_plain_passes(shape, dtype):
    rng = np.random.default_rng(5)
    param, grad = (rng.standard_normal(shape).astype(dtype) for _ in range(2))
    want = param - np.multiply(grad, 2e-3)  # scale rounded to dtype first, as the ufuncs do
    subtract_scaled(param, grad, 2e-3, np.empty_like(param))
    np.testing.assert_array_equal(param, want)


def test_chunked_update_writes_through_a_strided_parameter():
    rng = np.random.default_rng(6)
    base = rng.standard_normal((UPDATE_CHUNK // 10, 40))
    param, grad = base.T, rng.standard_normal((40, UPDATE_CHUNK // 10))  # param is F-ordered
    want = param - grad * 0.5
    subtract_scaled(param, grad, 0.5, np.empty_like(grad))
    np.testing.assert_array_equal(base.T, want)
