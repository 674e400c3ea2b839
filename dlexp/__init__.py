"""dlexp: config-driven deep-learning experiments on CIFAR-10."""

__version__ = "0.1.0"
