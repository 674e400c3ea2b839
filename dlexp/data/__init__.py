"""CIFAR-10: locate or download, read, split, preprocess and batch."""

from dlexp.data.cifar10 import CLASSES, RawCIFAR10, load_raw_cifar10
from dlexp.data.load import load_cifar10
from dlexp.data.locate import default_data_root, find_batches_dir
from dlexp.data.prepare import CIFAR10Data, Split, one_hot, prepare, preprocess_images
from dlexp.data.sampler import BatchIndices, BatchSampler

__all__ = [
    "CLASSES",
    "BatchIndices",
    "BatchSampler",
    "CIFAR10Data",
    "RawCIFAR10",
    "Split",
    "default_data_root",
    "find_batches_dir",
    "load_cifar10",
    "load_raw_cifar10",
    "one_hot",
    "prepare",
    "preprocess_images",
]
