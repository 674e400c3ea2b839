"""The course's convnet_pytorch.py: the Table 1 `ConvNet(n_channels, n_classes)` of dlexp."""

from dlexp.models.convnet import ConvNet

__all__ = ["ConvNet"]
