"""The seed's PyTorch MLP (§2): Linear, [norm], LeakyReLU, [dropout], repeated; then Linear."""

from __future__ import annotations

from collections.abc import Mapping

import torch
from torch import nn

from dlexp.models.registry import register_model
from dlexp.nn.norm import NormFactory, norm_factory

INITS = ("default", "course")


@register_model("torch_mlp", backend="torch")
class MLP(nn.Module):
    """Outputs logits (B, n_classes) for inputs (B, n_inputs) or (B, C, H, W), which are flattened.

    Registered as `torch_mlp`, with the seed's argument names and defaults (§2).

    Args:
        norm: a norm name ("none", "torch_bn", "autograd_bn", "custom_bn"), the `norm` group's
            config (a mapping with its name), or a (num_features, dim) -> layer factory.
        init: "default" (PyTorch's) or "course" (weights N(0, 1e-4), zero biases).
    """

    def __init__(
        self,
        n_inputs: int = 3072,
        n_hidden: list[int] = (100,),  # a list in configs; any sequence of ints from Python
        n_classes: int = 10,
        neg_slope: float = 0.02,
        norm: str | Mapping | NormFactory | None = None,
        dropout: float = 0.0,
        init: str = "default",
    ):
        super().__init__()
        if any(int(h) < 1 for h in n_hidden):
            raise ValueError(f"MLP hidden sizes must be positive, got {list(n_hidden)}")
        if not 0 <= dropout < 1:
            raise ValueError(f"dropout must be in [0, 1), got {dropout}")
        if neg_slope < 0:
            raise ValueError(f"neg_slope must be >= 0, got {neg_slope}")
        if init not in INITS:
            raise ValueError(f"init must be one of {INITS}, got {init!r}")
        make_norm = norm_factory(norm)
        self.n_inputs = n_inputs
        layers: list[nn.Module] = []
        width = n_inputs
        for hidden in map(int, n_hidden):
            layers += [nn.Linear(width, hidden), make_norm(hidden, 1), nn.LeakyReLU(neg_slope)]
            if dropout:
                layers.append(nn.Dropout(dropout))
            width = hidden
        layers.append(nn.Linear(width, n_classes))
        self.layers = nn.Sequential(*[m for m in layers if not isinstance(m, nn.Identity)])
        if init == "course":
            self._course_init()

    def _course_init(self) -> None:
        for module in self.modules():
            if isinstance(module, nn.Linear):
                nn.init.normal_(module.weight, mean=0.0, std=1e-4)
                nn.init.zeros_(module.bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x.reshape(x.shape[0], -1)  # (B, n_inputs)
        if x.shape[1] != self.n_inputs:
            raise ValueError(f"MLP expects {self.n_inputs} input features, got {x.shape[1]}")
        return self.layers(x)
