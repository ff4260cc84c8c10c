"""Datasets for the examples: the 8x8 UCI digits (shipped) and MNIST (read from your IDX files)."""

from tinygrad_edu.datasets.digits import load_digits
from tinygrad_edu.datasets.mnist import load_mnist

__all__ = ["load_digits", "load_mnist"]
