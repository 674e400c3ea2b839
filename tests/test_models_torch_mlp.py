"""The torch MLP (dlexp.models.torch_mlp): the NumPy MLP's numbers, inits, norm and dropout."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torch import nn

from dlexp.errors import ConfigError
from dlexp.models.torch_mlp import MLP
from dlexp.nn import AutogradBatchNorm, ManualBatchNorm
from dlexp.numpy_nn import MLP as NumpyMLP  # noqa: N811


def test_mlp_logits_equal_the_numpy_mlp_in_float64():
    rng = np.random.default_rng(0)
    reference = NumpyMLP(20, [7, 5], 4, neg_slope=0.02, rng=rng, dtype=np.float64, init_std=0.5)
    model = MLP(20, [7, 5], 4, neg_slope=0.02).double().eval()
    linears = [m for m in model.modules() if isinstance(m, nn.Linear)]
    with torch.no_grad():
        for layer, numpy_layer in zip(linears, reference.linears, strict=True):
            layer.weight.copy_(torch.from_numpy(numpy_layer.params["weight"]))  # (out, in) both
            layer.bias.copy_(torch.from_numpy(numpy_layer.params["bias"]))
    x = rng.normal(size=(6, 20))
    logits = model(torch.from_numpy(x)).detach().numpy()
    np.testing.assert_allclose(logits, reference.forward_logits(x), rtol=0, atol=1e-6)


def test_mlp_course_init():
    torch.manual_seed(0)
    model = MLP(3072, [100], 10, neg_slope=0.02, init="course")
    for layer in (m for m in model.modules() if isinstance(m, nn.Linear)):
        assert abs(layer.weight.std().item() - 1e-4) < 1e-5  # σ = 1e-4
        assert abs(layer.weight.mean().item()) < 1e-5
        assert torch.equal(layer.bias, torch.zeros_like(layer.bias))


def test_mlp_default_init_is_pytorch():
    torch.manual_seed(0)
    weight = MLP(3072, [100], 10, neg_slope=0.02).layers[0].weight
    assert weight.std().item() > 1e-3  # kaiming-uniform, bound 1/sqrt(3072): std ≈ 0.01


def _layer_types(model: MLP) -> list[type]:
    return [type(m) for m in model.layers]


def test_mlp_plain_layers():
    model = MLP(10, [8, 6], 3, neg_slope=0.1)
    assert _layer_types(model) == [nn.Linear, nn.LeakyReLU, nn.Linear, nn.LeakyReLU, nn.Linear]
    assert all(m.negative_slope == 0.1 for m in model.layers if isinstance(m, nn.LeakyReLU))


@pytest.mark.parametrize(("norm", "layer"), [("torch_bn", nn.BatchNorm1d),
                                             ("autograd_bn", AutogradBatchNorm),
                                             ("custom_bn", ManualBatchNorm)])  # fmt: skip
def test_mlp_norm_and_dropout_placement(norm, layer):
    model = MLP(10, [8, 6], 3, neg_slope=0.1, norm=norm, dropout=0.25)
    block = [nn.Linear, layer, nn.LeakyReLU, nn.Dropout]
    assert _layer_types(model) == [*block, *block, nn.Linear]
    assert [m.num_features for m in model.layers if isinstance(m, layer)] == [8, 6]
    assert all(m.p == 0.25 for m in model.layers if isinstance(m, nn.Dropout))


def test_mlp_accepts_flat_input_and_rejects_wrong_width():
    model = MLP(12, [5], 3, neg_slope=0.02)
    assert model(torch.randn(4, 12)).shape == (4, 3)
    with pytest.raises(ValueError, match="expects 12 input features, got 10"):
        model(torch.randn(4, 10))


@pytest.mark.parametrize(("kwargs", "match"), [({"dropout": 1.0}, "dropout"),
                                               ({"init": "xavier"}, "init must be"),
                                               ({"neg_slope": -0.1}, "neg_slope")])  # fmt: skip
def test_mlp_bad_arguments(kwargs, match):
    args = {"n_inputs": 4, "n_hidden": [3], "n_classes": 2, "neg_slope": 0.02, **kwargs}
    with pytest.raises(ValueError, match=match):
        MLP(**args)


def test_unknown_norm_lists_the_known_ones():
    with pytest.raises(ConfigError, match="known norms: none, torch_bn, autograd_bn, custom_bn"):
        MLP(4, [3], 2, neg_slope=0.02, norm="layer_norm")
