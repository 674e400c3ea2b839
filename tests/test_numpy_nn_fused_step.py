"""The preallocated MLP step equals the module-by-module path bit for bit."""

from __future__ import annotations

import numpy as np
import pytest

from dlexp.numpy_nn import MLP, SGD, softmax_cross_entropy
from dlexp.numpy_nn.fused_step import MLPStepBuffers
from tests.reference import assert_param_grads_match

# (n_inputs, n_hidden, n_classes, neg_slope): the seed's shape, deeper, none hidden, a > 1, a = 0.
SHAPES = [
    (3072, [100], 10, 0.02),
    (7, [5, 4], 3, 0.1),
    (6, [], 4, 0.02),
    (5, [6], 3, 1.5),
    (5, [6], 2, 0.0),
]


def twin_models(n_inputs, n_hidden, n_classes, neg_slope, dtype, init_std=0.05):
    """Two MLPs with the same weights."""
    return [
        MLP(n_inputs, n_hidden, n_classes, neg_slope, np.random.default_rng(3), dtype, init_std)
        for _ in range(2)
    ]


def module_step(model: MLP, x: np.ndarray, y: np.ndarray) -> tuple[np.ndarray, float]:
    logits = model.forward_logits(x).copy()
    loss, dlogits = softmax_cross_entropy(logits, y)
    model.backward_logits(dlogits)
    return logits, loss


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("n_inputs, n_hidden, n_classes, neg_slope", SHAPES)
def test_buffers_equal_the_modules_bitwise(n_inputs, n_hidden, n_classes, neg_slope, dtype):
    plain, fused = twin_models(n_inputs, n_hidden, n_classes, neg_slope, dtype)
    buffers = MLPStepBuffers(fused, capacity=16)
    rng = np.random.default_rng(0)
    for n in (16, 9, 16):  # a full batch, a partial one, and full again: no stale rows
        x = rng.standard_normal((n, n_inputs)).astype(dtype)
        x[0, :] = 0.0  # exact zeros: the kink, where f'(0) := neg_slope
        y = rng.integers(0, n_classes, n)
        logits, loss = module_step(plain, x, y)
        fused_logits = buffers.forward_logits(x).copy()
        assert fused_logits.dtype == dtype
        np.testing.assert_array_equal(fused_logits, logits)
        assert buffers.loss_and_backward(y) == loss
        assert buffers.loss(buffers.forward_logits(x), y) == loss
        for (_, want), (_, got) in zip(plain.parameters(), fused.parameters(), strict=True):
            for key in want:
                assert got[key].dtype == dtype
                np.testing.assert_array_equal(got[key], want[key], err_msg=key)


def test_sgd_training_stays_bitwise_equal_over_many_steps():
    plain, fused = twin_models(64, [32], 10, 0.02, np.float32, init_std=1e-2)
    buffers = MLPStepBuffers(fused, capacity=20)
    opt_plain, opt_fused = SGD(plain.parameters(), lr=0.05), SGD(fused.parameters(), lr=0.05)
    rng = np.random.default_rng(1)
    data = rng.standard_normal((200, 64)).astype(np.float32)
    labels = rng.integers(0, 10, 200)
    for _ in range(30):
        rows = rng.choice(200, 20, replace=False)
        module_step(plain, data[rows], labels[rows])
        opt_plain.step()
        buffers.forward_logits(data[rows])
        buffers.loss_and_backward(labels[rows])
        opt_fused.step()
    for key, value in plain.state_dict().items():
        np.testing.assert_array_equal(fused.state_dict()[key], value, err_msg=key)


def test_buffer_gradients_match_central_differences():
    model = MLP(5, [4, 3], 3, 0.1, np.random.default_rng(2), np.float64, init_std=0.7)
    buffers = MLPStepBuffers(model, capacity=6)
    rng = np.random.default_rng(4)
    x, y = rng.standard_normal((6, 5)), rng.integers(0, 3, 6)

    def loss() -> float:
        return buffers.loss(buffers.forward_logits(x), y)

    buffers.forward_logits(x)
    buffers.loss_and_backward(y)
    assert_param_grads_match(model, loss)


def test_buffers_refuse_what_they_cannot_hold():
    model = MLP(4, [3], 2, 0.02, np.random.default_rng(0))
    with pytest.raises(ValueError, match="capacity"):
        MLPStepBuffers(model, capacity=2).forward_logits(np.zeros((3, 4)))
    buffers = MLPStepBuffers(model, capacity=4)
    buffers.forward_logits(np.zeros((3, 4)))
    with pytest.raises(ValueError, match="labels"):
        buffers.loss_and_backward(np.zeros(4, dtype=np.int64))
    with pytest.raises(TypeError):
        MLPStepBuffers(object(), capacity=4)


def _is_transposed_buffer(weight: np.ndarray) -> bool:
    """(out, in) viewed over a C-contiguous (in, out) buffer: the layout fast matmuls need."""
    return weight.T.flags.c_contiguous and weight.base is not None


def test_linear_weights_are_views_of_in_out_buffers_that_updates_keep():
    model = MLP(12, [5], 3, 0.02, np.random.default_rng(8), np.float32, init_std=0.1)
    draws = np.random.default_rng(8).normal(0.0, 0.1, size=(5, 12)).astype(np.float32)
    np.testing.assert_array_equal(model.linears[0].params["weight"], draws)  # same seed numbers
    optimizer, buffers = SGD(model.parameters(), lr=0.1), MLPStepBuffers(model, 4)
    x, y = np.random.default_rng(9).standard_normal((4, 12)).astype(np.float32), np.arange(4) % 3
    arrays = [(lin.params["weight"], lin.grads["weight"]) for lin in model.linears]
    buffers.forward_logits(x)
    buffers.loss_and_backward(y)
    optimizer.step()
    model.load_state_dict({k: v.copy() for k, v in model.state_dict().items()})
    for linear, (weight, grad) in zip(model.linears, arrays, strict=True):
        assert linear.params["weight"] is weight and linear.grads["weight"] is grad
        assert _is_transposed_buffer(weight) and _is_transposed_buffer(grad)
    assert np.any(arrays[0][1])  # the gradient landed in the view


def test_linear_backward_fills_a_c_ordered_gradient_too():
    """A caller may replace params/grads with plain (out, in) arrays; both layouts agree."""
    rng = np.random.default_rng(10)
    plain, viewed = twin_models(6, [4], 3, 0.02, np.float64)
    for linear in plain.linears:
        for arrays in (linear.params, linear.grads):
            arrays["weight"] = np.ascontiguousarray(arrays["weight"])
    x, y = rng.standard_normal((5, 6)), np.arange(5) % 3
    for model in (plain, viewed):
        module_step(model, x, y)
    for a, b in zip(plain.linears, viewed.linears, strict=True):
        np.testing.assert_array_equal(a.grads["weight"], b.grads["weight"])
