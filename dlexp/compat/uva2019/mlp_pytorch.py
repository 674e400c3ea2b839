"""The course's mlp_pytorch.py: `MLP(n_inputs, n_hidden, n_classes, neg_slope)`, an nn.Module.

Its default `init="default"` is PyTorch's own initialisation, as in the course's template.
"""

from dlexp.models.torch_mlp import MLP

__all__ = ["MLP"]
