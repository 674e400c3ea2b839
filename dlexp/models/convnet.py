"""The seed's Table 1 VGG-style ConvNet (§4)."""

from __future__ import annotations

from collections.abc import Mapping

import torch
from torch import nn

from dlexp.models.registry import register_model
from dlexp.nn.norm import NormFactory, norm_factory

# Table 1: (out channels, max-pool after this block?)
TABLE1_BLOCKS = (
    (64, True),  # conv1, maxpool1
    (128, True),  # conv2, maxpool2
    (256, False),  # conv3_a
    (256, True),  # conv3_b, maxpool3
    (512, False),  # conv4_a
    (512, True),  # conv4_b, maxpool4
    (512, False),  # conv5_a
    (512, True),  # conv5_b, maxpool5
)
N_POOLS = sum(pool for _, pool in TABLE1_BLOCKS)


def _pooled_size(size: int) -> int:
    """Spatial size after all 3x3/2/1 max-pools (the 3x3/1/1 convs keep the size)."""
    for _ in range(N_POOLS):
        size = (size + 2 * 1 - 3) // 2 + 1
    return size


class ConvNet(nn.Module):
    """conv3x3 -> norm -> ReLU blocks, max-pools, 1x1 avg-pool, linear 512 -> n_classes.

    Args:
        norm: a norm name or a (num_features, dim) -> layer factory; default nn.BatchNorm2d.
    """

    def __init__(
        self, n_channels: int = 3, n_classes: int = 10, norm: str | NormFactory | None = "torch_bn"
    ):
        super().__init__()
        make_norm = norm_factory(norm)
        self.n_channels = n_channels
        layers: list[nn.Module] = []
        width = n_channels
        for out_channels, pool in TABLE1_BLOCKS:
            layers += [
                nn.Conv2d(width, out_channels, kernel_size=3, stride=1, padding=1),
                make_norm(out_channels, 2),
                nn.ReLU(inplace=True),
            ]
            if pool:
                layers.append(nn.MaxPool2d(kernel_size=3, stride=2, padding=1))
            width = out_channels
        layers += [nn.AvgPool2d(kernel_size=1, stride=1, padding=0), nn.Flatten()]
        self.features = nn.Sequential(*[m for m in layers if not isinstance(m, nn.Identity)])
        self.classifier = nn.Linear(width, n_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.dim() != 4 or x.shape[1] != self.n_channels:
            raise ValueError(f"ConvNet expects (N, {self.n_channels}, H, W), got {tuple(x.shape)}")
        h, w = _pooled_size(x.shape[2]), _pooled_size(x.shape[3])
        if (h, w) != (1, 1):
            raise ValueError(
                f"ConvNet input {x.shape[2]}x{x.shape[3]} pools to {h}x{w}, not 1x1, before the "
                f"linear layer; use inputs of at most 32x32"
            )
        return self.classifier(self.features(x))  # (N, 512) -> (N, n_classes)


@register_model("convnet", backend="torch")
def convnet(
    n_channels: int = 3, n_classes: int = 10, norm: str | Mapping | NormFactory | None = "torch_bn"
) -> ConvNet:
    """The Table 1 ConvNet."""
    return ConvNet(n_channels, n_classes, norm=norm)
