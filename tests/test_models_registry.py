"""The model registry (dlexp.models.registry), and every registered torch model on CIFAR shapes."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from dlexp.errors import ConfigError
from dlexp.models import create_model, get_model_entry, list_models, register_model
from dlexp.models import registry as registry_module
from dlexp.models.convnet import ConvNet
from dlexp.models.torch_mlp import MLP
from dlexp.nn import NORMS

TORCH_MODELS = [name for name in list_models() if get_model_entry(name).backend == "torch"]


# --- every registered torch model ---------------------------------------------------------


def test_the_torch_models_are_registered():
    assert {"torch_mlp", "convnet"} <= set(TORCH_MODELS)
    assert get_model_entry("numpy_mlp").backend == "numpy"


@pytest.mark.parametrize("norm", NORMS)
@pytest.mark.parametrize("name", TORCH_MODELS)
def test_forward_backward_on_cifar_shape(name, norm):
    torch.manual_seed(0)
    model = create_model(name, norm=norm)
    x = torch.randn(3, 3, 32, 32)  # (N, 3, 32, 32): CIFAR-10 images
    logits = model(x)
    assert logits.shape == (3, 10)
    assert torch.isfinite(logits).all()
    nn.functional.cross_entropy(logits, torch.tensor([0, 1, 2])).backward()
    for param_name, param in model.named_parameters():
        assert param.grad is not None, f"{param_name} got no gradient"
        assert torch.isfinite(param.grad).all(), f"{param_name} has a non-finite gradient"
    assert sum(p.grad.abs().sum() for p in model.parameters()) > 0


# --- ConvNet ------------------------------------------------------------------------------


# --- torch MLP ----------------------------------------------------------------------------


# --- registry -----------------------------------------------------------------------------


def test_register_model_refuses_duplicates(monkeypatch):
    monkeypatch.setattr(registry_module, "_REGISTRY", dict(registry_module._REGISTRY))
    register_model("tiny_test_model", backend="torch")(lambda: nn.Identity())
    assert "tiny_test_model" in list_models()
    with pytest.raises(ValueError, match="'tiny_test_model' is already registered"):
        register_model("tiny_test_model", backend="torch")(lambda: nn.Identity())
    with pytest.raises(ValueError, match="already registered"):
        register_model("convnet", backend="torch")(lambda: nn.Identity())


def test_register_model_refuses_unknown_backend():
    with pytest.raises(ValueError, match="backend must be one of"):
        register_model("jax_model", backend="jax")


def test_create_model_unknown_name_lists_the_known_names():
    with pytest.raises(ConfigError, match="unknown model 'resnet'") as err:
        create_model("resnet")
    for name in list_models():
        assert name in str(err.value)


def test_create_model_passes_keyword_arguments():
    model = create_model("torch_mlp", n_inputs=12, n_hidden=[5, 4], n_classes=3, neg_slope=0.1)
    assert isinstance(model, MLP) and model(torch.randn(2, 12)).shape == (2, 3)
    assert isinstance(create_model("convnet", norm="none"), ConvNet)
