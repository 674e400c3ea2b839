"""The UvA Deep Learning 2019 assignment 1 interface (files, classes, flags) over dlexp."""
