"""The image ops (NCHW): 2-d convolution, max pooling and average pooling, forward + backward.

Same style as ``ops.py``: each op's ``forward`` receives backend arrays and returns one, each
``backward`` receives g = dL/d(output). The numbers come from the image kernels of the input's
device (``backend/conv_cpu.py`` on the CPU, ``backend/conv_cuda.py`` on a GPU); ``check_*``
below validate shapes first, so a bad call fails with a message naming the layer and the
shapes, never inside a kernel.

Convolution (cross-correlation, as PyTorch), stride s, zero padding p, kernel k x k:

    y[n, o, a, b] = bias[o] + sum_{c, i, j} w[o, c, i, j] xp[n, c, a s + i, b s + j]
    dL/dw[o, c, i, j] = sum_{n, a, b} g[n, o, a, b] xp[n, c, a s + i, b s + j]
    dL/dxp[n, c, a s + i, b s + j] += sum_o g[n, o, a, b] w[o, c, i, j]
    dL/dbias[o] = sum_{n, a, b} g[n, o, a, b]
"""

from __future__ import annotations

from typing import Any

from tinygrad_edu.autograd import Op
from tinygrad_edu.errors import InputError

Pair = tuple[int, int]


def pair(value: Any, name: str, layer: str) -> Pair:
    """An int or a pair of ints as (h, w), checked to be ints."""
    if isinstance(value, int) and not isinstance(value, bool):
        return (value, value)
    if (
        isinstance(value, (tuple, list))
        and len(value) == 2
        and all(isinstance(v, int) and not isinstance(v, bool) for v in value)
    ):
        return (int(value[0]), int(value[1]))
    raise InputError(f"{layer}: {name} must be an int or a pair of ints, got {value!r}")


def _image_kernels(backend: Any, op: str) -> Any:
    """The image kernels that go with a backend: a module of array kernels, or their recorded
    twin (``conv_differentiable.ImageKernels``) for backward(create_graph=True)."""
    name = getattr(backend, "__name__", "")
    if name.endswith((".cpu", ".reference")):
        from tinygrad_edu.backend import conv_cpu

        return conv_cpu
    if name.endswith(".cuda"):
        from tinygrad_edu.backend import conv_cuda  # imports numba.cuda: only when asked for

        return conv_cuda
    # backward(create_graph=True): the rules run on a DifferentiableBackend, and get the
    # recorded twin of these kernels (gathers and scatters of Tensors, differentiable again)
    from tinygrad_edu.differentiable import DifferentiableBackend

    if isinstance(backend, DifferentiableBackend):
        from tinygrad_edu.conv_differentiable import ImageKernels

        return ImageKernels(backend)
    raise NotImplementedError(f"{op}: no image kernels for the backend {backend!r}")


def _check_image(x_shape: tuple, layer: str, what: str = "input") -> None:
    if len(x_shape) != 4:
        raise InputError(f"{layer}: expected a 4-d {what} (N, C, H, W), got shape {tuple(x_shape)}")


def check_conv2d(
    x_shape: tuple, w_shape: tuple, b_shape: tuple | None, stride: Pair, padding: Pair
) -> tuple[int, int]:
    """Validate a conv2d call; returns the output (OH, OW)."""
    layer = "conv2d"
    _check_image(x_shape, layer)
    if len(w_shape) != 4:
        raise InputError(
            f"{layer}: expected a 4-d weight (out_channels, in_channels, kh, kw), got {w_shape}"
        )
    n, c, h, w = x_shape
    o, wc, kh, kw = w_shape
    if c != wc:
        raise InputError(
            f"{layer}: input has {c} channels (shape {tuple(x_shape)}) but the weight "
            f"{tuple(w_shape)} expects {wc} input channels"
        )
    if b_shape is not None and tuple(b_shape) != (o,):
        raise InputError(f"{layer}: bias must have shape ({o},), got {tuple(b_shape)}")
    return _check_window(layer, x_shape, (kh, kw), stride, padding, half_kernel_rule=False)


def _check_window(
    layer: str, x_shape: tuple, kernel: Pair, stride: Pair, padding: Pair, half_kernel_rule: bool
) -> Pair:
    h, w = x_shape[2], x_shape[3]
    if min(kernel) <= 0:
        raise InputError(f"{layer}: kernel_size must be positive, got {kernel}")
    if min(stride) <= 0:
        raise InputError(f"{layer}: stride must be positive, got {stride}")
    if min(padding) < 0:
        raise InputError(f"{layer}: padding must be non-negative, got {padding}")
    if half_kernel_rule and (2 * padding[0] > kernel[0] or 2 * padding[1] > kernel[1]):
        raise InputError(
            f"{layer}: padding {padding} must be at most half the kernel size {kernel} "
            "(a window of padding alone has no input)"
        )
    hp, wp = h + 2 * padding[0], w + 2 * padding[1]
    if kernel[0] > hp or kernel[1] > wp:
        raise InputError(
            f"{layer}: kernel size {kernel} is larger than the input's spatial size ({h}, {w}) "
            f"with padding {padding}, i.e. ({hp}, {wp}); the output would be empty"
        )
    return (hp - kernel[0]) // stride[0] + 1, (wp - kernel[1]) // stride[1] + 1


def check_pool2d(layer: str, x_shape: tuple, kernel: Pair, stride: Pair, padding: Pair) -> Pair:
    """Validate a pooling call (PyTorch's rules); returns the output (OH, OW)."""
    _check_image(x_shape, layer)
    return _check_window(layer, x_shape, kernel, stride, padding, half_kernel_rule=True)


# ----- convolution -----


class Conv2d(Op):
    """y = conv2d(x, w) + b (NCHW, stride s, zero padding p); see the module docstring."""

    def forward(ctx, x, w, b=None, stride=(1, 1), padding=(0, 0)):
        ctx.kernels = _image_kernels(ctx.backend, "conv2d")
        y, ctx.cols = ctx.kernels.conv2d_forward(x, w, b, stride, padding)
        ctx.x_shape, ctx.w, ctx.stride, ctx.padding = x.shape, w, stride, padding
        return y

    def backward(ctx, g):
        k = _image_kernels(ctx.backend, "conv2d")
        need = ctx.needs_input_grad
        dx, dw, db = k.conv2d_backward(
            g, ctx.cols, ctx.x_shape, ctx.w, ctx.stride, ctx.padding,
            need[0], need[1], len(need) > 2 and need[2],
        )  # fmt: skip
        return dx, dw, db, None, None


# ----- pooling -----


class MaxPool2d(Op):
    """y[n, c, a, b] = max of x over the window at (a s, b s) (padding is -inf);
    dx = g at the window's (first) maximum, 0 elsewhere (windows that overlap add)."""

    def forward(ctx, x, kernel, stride, padding):
        k = _image_kernels(ctx.backend, "max_pool2d")
        y, ctx.arg = k.max_pool2d_forward(x, kernel, stride, padding)
        ctx.x_shape, ctx.kernel, ctx.stride, ctx.padding = x.shape, kernel, stride, padding
        return y

    def backward(ctx, g):
        k = _image_kernels(ctx.backend, "max_pool2d")
        dx = k.max_pool2d_backward(g, ctx.arg, ctx.x_shape, ctx.kernel, ctx.stride, ctx.padding)
        return dx, None, None, None


class AvgPool2d(Op):
    """y = mean of x over each kh x kw window (zero padding counted);   dx = g / (kh kw) spread
    over the window."""

    def forward(ctx, x, kernel, stride, padding):
        k = _image_kernels(ctx.backend, "avg_pool2d")
        ctx.x_shape, ctx.kernel, ctx.stride, ctx.padding = x.shape, kernel, stride, padding
        return k.avg_pool2d_forward(x, kernel, stride, padding)

    def backward(ctx, g):
        k = _image_kernels(ctx.backend, "avg_pool2d")
        dx = k.avg_pool2d_backward(g, ctx.x_shape, ctx.kernel, ctx.stride, ctx.padding)
        return dx, None, None, None
