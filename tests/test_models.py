"""The torch models (seed §2, §4) and the model registry."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torch import nn

from dlexp.errors import ConfigError
from dlexp.models import create_model, get_model_entry, list_models, register_model
from dlexp.models import registry as registry_module
from dlexp.models.convnet import ConvNet
from dlexp.models.torch_mlp import MLP
from dlexp.nn import NORMS, AutogradBatchNorm, ManualBatchNorm
from dlexp.numpy_nn import MLP as NumpyMLP  # noqa: N811

TORCH_MODELS = [name for name in list_models() if get_model_entry(name).backend == "torch"]
NORM_LAYERS = {"torch_bn": nn.BatchNorm2d, "autograd_bn": AutogradBatchNorm,
               "custom_bn": ManualBatchNorm}  # fmt: skip

# Table 1 with batch norm. A conv block has k*k*cin*cout weights + cout biases, its BN 2*C (γ, β):
#   conv1   3*3*3*64    + 64  =     1_792   BN 2*64  = 128
#   conv2   3*3*64*128  + 128 =    73_856   BN 2*128 = 256
#   conv3_a 3*3*128*256 + 256 =   295_168   BN 2*256 = 512
#   conv3_b 3*3*256*256 + 256 =   590_080   BN 2*256 = 512
#   conv4_a 3*3*256*512 + 512 = 1_180_160   BN 2*512 = 1_024
#   conv4_b 3*3*512*512 + 512 = 2_359_808   BN 2*512 = 1_024
#   conv5_a 3*3*512*512 + 512 = 2_359_808   BN 2*512 = 1_024
#   conv5_b 3*3*512*512 + 512 = 2_359_808   BN 2*512 = 1_024
#   convs 9_220_480 + BNs 5_504 + linear 512*10 + 10 = 5_130  ->  9_231_114
TABLE1_PARAMS_WITH_BN = 9_231_114
TABLE1_BN_PARAMS = 5_504


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


def _n_params(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


@pytest.mark.parametrize("norm", ["torch_bn", "autograd_bn", "custom_bn"])
def test_convnet_parameter_count_is_table1(norm):
    assert _n_params(ConvNet(norm=norm)) == TABLE1_PARAMS_WITH_BN


def test_convnet_without_norm_drops_only_the_bn_parameters():
    assert _n_params(ConvNet(norm="none")) == TABLE1_PARAMS_WITH_BN - TABLE1_BN_PARAMS


@pytest.mark.parametrize("norm", ["torch_bn", "autograd_bn", "custom_bn"])
def test_convnet_blocks_are_conv_norm_relu(norm):
    layers = list(ConvNet(norm=norm).features)
    convs = [i for i, m in enumerate(layers) if isinstance(m, nn.Conv2d)]
    assert [layers[i].out_channels for i in convs] == [64, 128, 256, 256, 512, 512, 512, 512]
    for i in convs:
        conv = layers[i]
        assert (conv.kernel_size, conv.stride, conv.padding) == ((3, 3), (1, 1), (1, 1))
        assert type(layers[i + 1]) is NORM_LAYERS[norm]
        assert isinstance(layers[i + 2], nn.ReLU)
    pools = [i for i, m in enumerate(layers) if isinstance(m, nn.MaxPool2d)]
    assert [convs.index(i - 3) + 1 for i in pools] == [1, 2, 4, 6, 8]  # after these blocks


def test_convnet_default_norm_is_torch_bn():
    assert any(isinstance(m, nn.BatchNorm2d) for m in ConvNet().modules())


def test_convnet_too_large_input_is_a_clear_error():
    with pytest.raises(ValueError, match=r"64x64 pools to 2x2, not 1x1"):
        ConvNet()(torch.randn(2, 3, 64, 64))


@pytest.mark.parametrize("shape", [(2, 1, 32, 32), (2, 3, 32), (2, 3072)], ids=str)
def test_convnet_wrong_input_shape_is_a_clear_error(shape):
    with pytest.raises(ValueError, match=r"ConvNet expects \(N, 3, H, W\)"):
        ConvNet()(torch.randn(shape))


# --- torch MLP ----------------------------------------------------------------------------


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
