"""The course's mlp_numpy.py: `MLP(n_inputs, n_hidden, n_classes, neg_slope)` of dlexp."""

from dlexp.numpy_nn import MLP

__all__ = ["MLP"]
