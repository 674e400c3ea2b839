"""The ConvNet (dlexp.models.convnet): exactly Table 1 of the seed, conv-norm-ReLU blocks."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from dlexp.models.convnet import ConvNet
from dlexp.nn import AutogradBatchNorm, ManualBatchNorm

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
