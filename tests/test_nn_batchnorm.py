"""The custom batch norms against finite differences and nn.BatchNorm1d/2d (seed §3)."""

from __future__ import annotations

import warnings
from types import SimpleNamespace

import pytest
import torch
from torch import nn

from dlexp.nn import (
    AutogradBatchNorm,
    BatchNormFunction,
    CustomBatchNormAutograd,
    CustomBatchNormManualFunction,
    CustomBatchNormManualModule,
    ManualBatchNorm,
)

SHAPES = [(2, 3), (5, 4), (2, 3, 2, 2), (3, 2, 3, 3)]  # N = 2 included, 1-D and 2-D
CUSTOM_NORMS = [AutogradBatchNorm, ManualBatchNorm]
TOL = {"atol": 1e-5, "rtol": 1e-5}  # the float32 tolerance


def _random_params(channels: int, gen: torch.Generator, dtype=torch.float64):
    """Random γ (away from 0) and β that require grad."""
    gamma = (torch.rand(channels, generator=gen, dtype=dtype) + 0.5).requires_grad_()
    beta = torch.randn(channels, generator=gen, dtype=dtype).requires_grad_()
    return gamma, beta


# --- gradcheck on the hand-written backward ------------------------------------------------


@pytest.mark.parametrize("shape", SHAPES, ids=str)
def test_gradcheck_train_mode(shape):
    gen = torch.Generator().manual_seed(0)
    x = torch.randn(shape, generator=gen, dtype=torch.float64, requires_grad=True)
    gamma, beta = _random_params(shape[1], gen)
    assert torch.autograd.gradcheck(lambda x, g, b: BatchNormFunction.apply(x, g, b, 1e-5),
                                    (x, gamma, beta))  # fmt: skip


@pytest.mark.parametrize("shape", SHAPES, ids=str)
def test_gradcheck_train_mode_with_running_buffers(shape):
    """The in-place running-stat update must not disturb the batch-statistics gradient."""
    gen = torch.Generator().manual_seed(1)
    x = torch.randn(shape, generator=gen, dtype=torch.float64, requires_grad=True)
    gamma, beta = _random_params(shape[1], gen)
    mean = torch.zeros(shape[1], dtype=torch.float64)
    var = torch.ones(shape[1], dtype=torch.float64)

    def fn(x, g, b):
        return BatchNormFunction.apply(x, g, b, 1e-5, mean, var, 0.1, True)

    assert torch.autograd.gradcheck(fn, (x, gamma, beta))


@pytest.mark.parametrize("shape", SHAPES, ids=str)
def test_gradcheck_eval_mode(shape):
    gen = torch.Generator().manual_seed(2)
    x = torch.randn(shape, generator=gen, dtype=torch.float64, requires_grad=True)
    gamma, beta = _random_params(shape[1], gen)
    mean = torch.randn(shape[1], generator=gen, dtype=torch.float64)
    var = torch.rand(shape[1], generator=gen, dtype=torch.float64) + 0.5  # positive

    def fn(x, g, b):
        return BatchNormFunction.apply(x, g, b, 1e-5, mean, var, 0.1, False)

    assert torch.autograd.gradcheck(fn, (x, gamma, beta))


# --- ctx.needs_input_grad -----------------------------------------------------------------


class _Ctx(SimpleNamespace):
    """A stand-in for autograd's context: records save_for_backward."""

    def save_for_backward(self, *tensors):
        self.saved_tensors = tensors


def _manual_forward(needs: tuple[bool, bool, bool], training: bool, gen: torch.Generator):
    """Run BatchNormFunction.forward by hand with a chosen needs_input_grad: (ctx, out)."""
    x = torch.randn(4, 3, 2, 2, generator=gen)
    gamma, beta = torch.rand(3, generator=gen) + 0.5, torch.randn(3, generator=gen)
    ctx = _Ctx(needs_input_grad=(*needs, False, False, False, False, False))
    with torch.no_grad():
        out = BatchNormFunction.forward(ctx, x, gamma, beta, 1e-5, torch.zeros(3), torch.ones(3),
                                        0.1, training)  # fmt: skip
    return ctx, out


def _manual_backward(needs: tuple[bool, bool, bool], training: bool = True):
    """BatchNormFunction.backward's return value for a chosen needs_input_grad."""
    gen = torch.Generator().manual_seed(3)
    ctx, out = _manual_forward(needs, training, gen)
    with torch.no_grad():
        return BatchNormFunction.backward(ctx, torch.randn(out.shape, generator=gen))


@pytest.mark.parametrize("training", [True, False], ids=["train", "eval"])
def test_only_x_needs_grad_returns_none_for_gamma_beta(training):
    grads = _manual_backward((True, False, False), training)
    assert grads[0] is not None and grads[0].shape == (4, 3, 2, 2)
    assert grads[1] is None and grads[2] is None
    assert all(g is None for g in grads[3:])  # eps, buffers, momentum, training


@pytest.mark.parametrize("training", [True, False], ids=["train", "eval"])
def test_only_params_need_grad_returns_none_for_x(training):
    dx, dgamma, dbeta, *_ = _manual_backward((False, True, True), training)
    assert dx is None
    assert dgamma.shape == (3,) and dbeta.shape == (3,)


def test_each_gradient_alone_matches_the_full_backward():
    full = _manual_backward((True, True, True))
    for i in range(3):
        needs = tuple(j == i for j in range(3))
        alone = _manual_backward(needs)
        torch.testing.assert_close(alone[i], full[i])
        assert all(alone[j] is None for j in range(3) if j != i)


@pytest.mark.parametrize(("needs", "training", "kept"), [
    ((True, False, False), False, False),  # eval-mode dx = scale * dout: no x - mean
    ((True, False, False), True, True),  # train-mode dx reads x - mean
    ((False, True, False), False, True),  # dgamma reads x - mean
    ((False, False, True), True, False),  # dbeta is a plain sum
])  # fmt: skip
def test_centred_x_is_saved_only_when_backward_reads_it(needs, training, kept):
    ctx, _ = _manual_forward(needs, training, torch.Generator().manual_seed(8))
    centred, gamma, inv_std = ctx.saved_tensors
    assert (centred is not None) == kept
    assert gamma.shape == inv_std.shape == (3,)  # besides x_hat, only per-channel vectors


def test_needs_input_grad_through_autograd():
    """Through apply: x alone leaves γ/β without .grad; γ/β alone leave x without .grad."""
    x = torch.randn(6, 3, requires_grad=True)
    gamma, beta = torch.ones(3), torch.zeros(3)
    BatchNormFunction.apply(x, gamma, beta).pow(2).sum().backward()
    assert x.grad is not None and gamma.grad is None and beta.grad is None

    x = torch.randn(6, 3)
    gamma, beta = torch.ones(3, requires_grad=True), torch.zeros(3, requires_grad=True)
    BatchNormFunction.apply(x, gamma, beta).pow(3).sum().backward()
    assert x.grad is None and gamma.grad is not None and beta.grad is not None


# --- equality with nn.BatchNorm1d/2d ------------------------------------------------------


def _pair(cls, shape, momentum: float, gen: torch.Generator):
    """A custom norm and the nn.BatchNorm reference with identical random γ and β."""
    reference = (nn.BatchNorm1d if len(shape) == 2 else nn.BatchNorm2d)(shape[1], momentum=momentum)
    custom = cls(shape[1], momentum=momentum)
    with torch.no_grad():
        for p_custom, p_ref in ((custom.weight, reference.weight), (custom.bias, reference.bias)):
            p_ref.copy_(torch.rand(shape[1], generator=gen) + 0.5)
            p_custom.copy_(p_ref)
    return custom, reference


def _step(module: nn.Module, x: torch.Tensor, dout: torch.Tensor):
    """One forward/backward: (output, dx, dγ, dβ)."""
    module.zero_grad(set_to_none=True)
    x = x.clone().requires_grad_()
    out = module(x)
    out.backward(dout)
    return out.detach(), x.grad, module.weight.grad, module.bias.grad


def _assert_same(custom: nn.Module, reference: nn.Module, x: torch.Tensor, gen: torch.Generator):
    dout = torch.randn(x.shape, generator=gen)
    for got, want in zip(_step(custom, x, dout), _step(reference, x, dout), strict=True):
        torch.testing.assert_close(got, want, **TOL)
    torch.testing.assert_close(custom.running_mean, reference.running_mean, **TOL)
    torch.testing.assert_close(custom.running_var, reference.running_var, **TOL)  # unbiased


@pytest.mark.parametrize("cls", CUSTOM_NORMS, ids=lambda c: c.__name__)
@pytest.mark.parametrize("shape", [(8, 5), (4, 3, 5, 5)], ids=str)
@pytest.mark.parametrize("momentum", [0.1, 0.3])
def test_matches_torch_batchnorm_over_steps(cls, shape, momentum):
    gen = torch.Generator().manual_seed(4)
    custom, reference = _pair(cls, shape, momentum, gen)
    for _ in range(4):  # train: batch statistics, running stats move
        x = 2 * torch.randn(shape, generator=gen) + 3
        _assert_same(custom, reference, x, gen)
    custom.eval(), reference.eval()
    running = custom.running_mean.clone(), custom.running_var.clone()
    for _ in range(2):  # eval: running statistics normalise and stay put
        _assert_same(custom, reference, 2 * torch.randn(shape, generator=gen) + 3, gen)
    torch.testing.assert_close((custom.running_mean, custom.running_var), running)


@pytest.mark.parametrize("cls", CUSTOM_NORMS, ids=lambda c: c.__name__)
def test_channels_last_input_matches_torch_batchnorm(cls):
    """channels_last=true hands the norms NHWC-strided inputs and gradients."""
    gen = torch.Generator().manual_seed(9)
    custom, reference = _pair(cls, (4, 3, 5, 5), 0.1, gen)
    for _ in range(2):
        x = 2 * torch.randn(4, 3, 5, 5, generator=gen) + 3
        _assert_same(custom, reference, x.contiguous(memory_format=torch.channels_last), gen)


def test_backward_leaves_the_incoming_gradient_alone():
    """dx reuses its own buffer for the products; dout must stay as autograd handed it."""
    gen = torch.Generator().manual_seed(10)
    x = torch.randn(4, 3, 2, 2, generator=gen, requires_grad=True)
    gamma, beta = _random_params(3, gen, dtype=torch.float32)
    dout = torch.randn(4, 3, 2, 2, generator=gen)
    kept = dout.clone()
    BatchNormFunction.apply(x, gamma, beta).backward(dout)
    assert torch.equal(dout, kept)


@pytest.mark.parametrize("cls", CUSTOM_NORMS, ids=lambda c: c.__name__)
def test_init_and_eps(cls):
    norm = cls(4, eps=1e-3, momentum=0.2)
    assert torch.equal(norm.weight, torch.ones(4)) and torch.equal(norm.bias, torch.zeros(4))
    assert torch.equal(norm.running_mean, torch.zeros(4))
    assert torch.equal(norm.running_var, torch.ones(4))
    norm.eval()
    x = torch.randn(3, 4)
    torch.testing.assert_close(norm(x), x / (1 + 1e-3) ** 0.5)  # running stats 0/1, eps 1e-3


# --- shape errors -------------------------------------------------------------------------


@pytest.mark.parametrize("cls", CUSTOM_NORMS, ids=lambda c: c.__name__)
@pytest.mark.parametrize("shape", [(4,), (4, 3, 5), (4, 3, 2, 2, 2)], ids=str)
def test_wrong_rank_is_a_clear_error(cls, shape):
    with pytest.raises(ValueError, match=r"expects input \(N, 3\) or \(N, 3, H, W\), got"):
        cls(3)(torch.randn(shape))


@pytest.mark.parametrize("cls", CUSTOM_NORMS, ids=lambda c: c.__name__)
@pytest.mark.parametrize("shape", [(4, 5), (4, 2, 3, 3)], ids=str)
def test_wrong_channel_count_is_a_clear_error(cls, shape):
    with pytest.raises(ValueError, match=rf"expects input .*got \({shape[0]}, {shape[1]}"):
        cls(3)(torch.randn(shape))


@pytest.mark.parametrize("cls", CUSTOM_NORMS, ids=lambda c: c.__name__)
def test_one_value_per_channel_cannot_train(cls):
    with pytest.raises(ValueError, match="more than one value per channel"):
        cls(3)(torch.randn(1, 3))


def test_eval_mode_without_running_stats_is_a_clear_error():
    with pytest.raises(ValueError, match="eval mode needs running_mean and running_var"):
        BatchNormFunction.apply(torch.randn(4, 3), torch.ones(3), torch.zeros(3), 1e-5, None, None,
                                0.1, False)  # fmt: skip


@pytest.mark.parametrize("cls", CUSTOM_NORMS, ids=lambda c: c.__name__)
def test_nonpositive_features_is_a_clear_error(cls):
    with pytest.raises(ValueError, match="num_features >= 1"):
        cls(0)


# --- the seed's names ---------------------------------------------------------------------


@pytest.mark.parametrize("cls", [CustomBatchNormAutograd, CustomBatchNormManualModule])
def test_seed_modules_normalise_each_feature(cls):
    gen = torch.Generator().manual_seed(5)
    x = 2 * torch.randn(128, 6, generator=gen) + 10
    out = cls(6)(x)
    torch.testing.assert_close(out.mean(0), torch.zeros(6), atol=1e-5, rtol=0)
    torch.testing.assert_close(out.var(0, unbiased=False), torch.ones(6), atol=1e-4, rtol=0)
    assert cls(6, eps=1e-3).eps == 1e-3


def _expected(x, gamma, beta, eps):
    mean, var = x.mean(0), x.var(0, unbiased=False)
    return gamma * (x - mean) / torch.sqrt(var + eps) + beta


def test_seed_function_apply_on_the_class():
    gen = torch.Generator().manual_seed(6)
    x = 2 * torch.randn(32, 4, generator=gen) + 10
    gamma, beta = _random_params(4, gen, dtype=torch.float32)
    out = CustomBatchNormManualFunction.apply(x, gamma, beta, 1e-3)
    torch.testing.assert_close(out, _expected(x, gamma, beta, 1e-3))
    out.sum().backward()
    assert gamma.grad is not None and beta.grad is not None


@pytest.mark.parametrize("eps", [1e-5, 0.5])
def test_seed_function_apply_on_an_instance_uses_its_eps(eps):
    """Course code instantiates the Function with eps; torch deprecates that, but it works."""
    gen = torch.Generator().manual_seed(7)
    x = torch.randn(32, 4, generator=gen)  # unit variance: eps=0.5 changes the output a lot
    gamma, beta = _random_params(4, gen, dtype=torch.float32)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        function = CustomBatchNormManualFunction(4, eps=eps)
    reference = nn.BatchNorm1d(4, eps=eps)
    with torch.no_grad():
        reference.weight.copy_(gamma)
        reference.bias.copy_(beta)
    out = function.apply(x, gamma, beta)  # the course's call, without eps
    torch.testing.assert_close(out, reference(x))
    assert torch.allclose(out, _expected(x, gamma, beta, 1e-5)) == (eps == 1e-5)
    explicit = function.apply(x, gamma, beta, 1e-3)  # an eps given to apply still wins
    torch.testing.assert_close(explicit, _expected(x, gamma, beta, 1e-3))
