"""Image layers (NCHW): ``Conv2d``, ``MaxPool2d``, ``AvgPool2d``, as PyTorch's.

The maths and the kernels are in ``tinygrad_edu/ops_conv.py``; these modules hold the parameters
and the settings and call ``nn.functional.conv2d`` / ``max_pool2d`` / ``avg_pool2d``.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from tinygrad_edu import ops_conv
from tinygrad_edu.errors import InputError
from tinygrad_edu.nn import functional as F
from tinygrad_edu.nn import init
from tinygrad_edu.nn.module import Module
from tinygrad_edu.tensor import Tensor


class Conv2d(Module):
    """y = conv2d(x, weight) + bias: each output channel slides a (in_channels, kh, kw) filter
    over the input. (N, in_channels, H, W) -> (N, out_channels, OH, OW),
    OH = floor((H + 2 padding - kh) / stride) + 1.

    Initialisation as PyTorch's: weight ~ kaiming_uniform(a=sqrt(5)), i.e. U(-1/sqrt(fan_in),
    1/sqrt(fan_in)) with fan_in = in_channels kh kw, and bias ~ the same range.
    """

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        kernel_size: int | tuple[int, int],
        stride: int | tuple[int, int] = 1,
        padding: int | tuple[int, int] = 0,
        bias: bool = True,
        dtype: Any = None,
    ) -> None:
        super().__init__()
        for what, n in (("in_channels", in_channels), ("out_channels", out_channels)):
            if not isinstance(n, (int, np.integer)) or isinstance(n, bool):
                raise TypeError(f"Conv2d: {what} must be an int, got {n!r}")
            if n < 1:
                raise InputError(f"Conv2d: {what} must be >= 1, got {n}")
        self.in_channels, self.out_channels = int(in_channels), int(out_channels)
        self.kernel_size = ops_conv.pair(kernel_size, "kernel_size", "Conv2d")
        self.stride = ops_conv.pair(stride, "stride", "Conv2d")
        self.padding = ops_conv.pair(padding, "padding", "Conv2d")
        if min(self.kernel_size) < 1 or min(self.stride) < 1 or min(self.padding) < 0:
            raise InputError(
                f"Conv2d: kernel_size {self.kernel_size} and stride {self.stride} must be "
                f"positive and padding {self.padding} non-negative"
            )
        dtype = "float32" if dtype is None else dtype
        kh, kw = self.kernel_size
        shape = (self.out_channels, self.in_channels, kh, kw)
        self.weight = Tensor(np.zeros(shape), dtype=dtype, requires_grad=True)
        init.kaiming_uniform_(self.weight, a=math.sqrt(5))
        if bias:
            bound = 1.0 / math.sqrt(self.in_channels * kh * kw)
            self.bias = Tensor(np.zeros(self.out_channels), dtype=dtype, requires_grad=True)
            init.uniform_(self.bias, -bound, bound)
        else:
            self.bias = None

    def forward(self, x: Tensor) -> Tensor:
        shape = getattr(x, "shape", None)
        if shape is not None and (len(shape) != 4 or shape[1] != self.in_channels):
            raise InputError(
                f"Conv2d({self.in_channels}, {self.out_channels}): expected an input of shape "
                f"(N, {self.in_channels}, H, W), got {tuple(shape)}"
            )
        return F.conv2d(x, self.weight, self.bias, self.stride, self.padding)

    def extra_repr(self) -> str:
        return (
            f"{self.in_channels}, {self.out_channels}, kernel_size={self.kernel_size}, "
            f"stride={self.stride}, padding={self.padding}, bias={self.bias is not None}"
        )


class _Pool2d(Module):
    _function: Any = None

    def __init__(
        self,
        kernel_size: int | tuple[int, int],
        stride: int | tuple[int, int] | None = None,
        padding: int | tuple[int, int] = 0,
    ) -> None:
        super().__init__()
        name = type(self).__name__
        self.kernel_size = ops_conv.pair(kernel_size, "kernel_size", name)
        self.stride = self.kernel_size if stride is None else ops_conv.pair(stride, "stride", name)
        self.padding = ops_conv.pair(padding, "padding", name)

    def forward(self, x: Tensor) -> Tensor:
        return type(self)._function(x, self.kernel_size, self.stride, self.padding)

    def extra_repr(self) -> str:
        return f"kernel_size={self.kernel_size}, stride={self.stride}, padding={self.padding}"


class MaxPool2d(_Pool2d):
    """The maximum of each kernel_size window (stride defaults to kernel_size), per channel."""

    _function = staticmethod(F.max_pool2d)


class AvgPool2d(_Pool2d):
    """The mean of each kernel_size window (zero padding counted, as PyTorch's default)."""

    _function = staticmethod(F.avg_pool2d)
