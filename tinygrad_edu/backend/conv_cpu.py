"""Image kernels on the CPU (NCHW): 2-d convolution, max pooling and average pooling.

Convolution is *im2col + matmul*: every k x k window of the (padded) input is copied into a
column, so the convolution becomes one matrix product that numpy hands to BLAS::

    cols[(c, i, j), (n, oh, ow)] = xp[n, c, oh * s + i, ow * s + j]
    y = W.reshape(O, C k k) @ cols                       (+ b), then (O, N, OH, OW) -> NCHW

Backward is the same product transposed: dW = g @ cols^T, dcols = W^T @ g, and
*col2im* adds each column back onto the window it came from (windows overlap, so it adds).

Pooling reads the same windows (a strided view, no copy) and reduces over the k x k axes.
These functions take and return numpy arrays; ``tinygrad_edu/ops_conv.py`` checks the shapes.
"""

from __future__ import annotations

import numpy as np
from numpy.lib.stride_tricks import as_strided

Pair = tuple[int, int]


def out_size(size: int, kernel: int, stride: int, padding: int) -> int:
    """floor((size + 2 padding - kernel) / stride) + 1, PyTorch's output size (dilation 1)."""
    return (size + 2 * padding - kernel) // stride + 1


def _pad(x: np.ndarray, padding: Pair, value: float = 0.0) -> np.ndarray:
    ph, pw = padding
    if ph == 0 and pw == 0:
        return x
    return np.pad(x, ((0, 0), (0, 0), (ph, ph), (pw, pw)), constant_values=value)


def _windows(xp: np.ndarray, kernel: Pair, stride: Pair) -> np.ndarray:
    """A strided view (N, C, OH, OW, kh, kw) of every window of the padded input (no copy)."""
    n, c, h, w = xp.shape
    (kh, kw), (sh, sw) = kernel, stride
    oh, ow = (h - kh) // sh + 1, (w - kw) // sw + 1
    s0, s1, s2, s3 = xp.strides
    return as_strided(
        xp, (n, c, oh, ow, kh, kw), (s0, s1, s2 * sh, s3 * sw, s2, s3), writeable=False
    )


def _col2im(
    dwin: np.ndarray, padded_shape: tuple[int, ...], stride: Pair, padding: Pair
) -> np.ndarray:
    """The adjoint of ``_windows``: add dwin[n, c, oh, ow, i, j] onto xp[n, c, oh s + i, ow s + j],
    then drop the padding. One strided add per kernel offset (k*k numpy passes)."""
    n, c, oh, ow, kh, kw = dwin.shape
    (sh, sw), (ph, pw) = stride, padding
    dxp = np.zeros(padded_shape, dtype=dwin.dtype)
    for i in range(kh):
        for j in range(kw):
            dxp[:, :, i : i + sh * oh : sh, j : j + sw * ow : sw] += dwin[:, :, :, :, i, j]
    hp, wp = padded_shape[2], padded_shape[3]
    return dxp[:, :, ph : hp - ph, pw : wp - pw]


# ----- convolution -----


def conv2d_forward(
    x: np.ndarray, w: np.ndarray, b: np.ndarray | None, stride: Pair, padding: Pair
) -> tuple[np.ndarray, np.ndarray]:
    """y = conv2d(x, w) + b; returns (y, cols), cols (C kh kw, N OH OW) kept for backward."""
    n, c = x.shape[:2]
    o, _, kh, kw = w.shape
    win = _windows(_pad(x, padding), (kh, kw), stride)  # (N, C, OH, OW, kh, kw)
    oh, ow = win.shape[2], win.shape[3]
    # The one copy of im2col, rows (c, i, j) and columns (n, oh, ow): the whole batch is then
    # ONE matrix product. (A batched np.matmul of one GEMM per image measured several times
    # slower on these small images: many tiny BLAS calls.)
    cols = np.ascontiguousarray(win.transpose(1, 4, 5, 0, 2, 3)).reshape(c * kh * kw, -1)
    y = w.reshape(o, -1) @ cols  # (O, N OH OW)
    if b is not None:
        y += b.reshape(o, 1)
    return np.ascontiguousarray(y.reshape(o, n, oh, ow).transpose(1, 0, 2, 3)), cols


def conv2d_backward(
    g: np.ndarray,
    cols: np.ndarray,
    x_shape: tuple[int, ...],
    w: np.ndarray,
    stride: Pair,
    padding: Pair,
    need_x: bool,
    need_w: bool,
    need_b: bool,
) -> tuple[np.ndarray | None, np.ndarray | None, np.ndarray | None]:
    """dW = g cols^T, dx = col2im(W^T g), db = sum of g over N, OH, OW; with g arranged as
    (O, N OH OW), the columns' order, each is one matrix product."""
    n, c, h, wd = x_shape
    o, _, kh, kw = w.shape
    oh, ow = g.shape[2], g.shape[3]
    gt = np.ascontiguousarray(g.transpose(1, 0, 2, 3)).reshape(o, n * oh * ow)
    dw = (gt @ cols.T).reshape(w.shape) if need_w else None
    db = gt.sum(axis=1) if need_b else None
    dx = None
    if need_x:
        dcols = w.reshape(o, -1).T @ gt  # (C k k, N OH OW)
        dwin = dcols.reshape(c, kh, kw, n, oh, ow).transpose(3, 0, 4, 5, 1, 2)
        ph, pw = padding
        dx = _col2im(dwin, (n, c, h + 2 * ph, wd + 2 * pw), stride, padding)
        dx = np.ascontiguousarray(dx)
    return dx, dw, db


# ----- pooling -----


def max_pool2d_forward(
    x: np.ndarray, kernel: Pair, stride: Pair, padding: Pair
) -> tuple[np.ndarray, np.ndarray]:
    """y = max over each window (padding counts as -inf); returns (y, argmax in the window)."""
    win = _windows(_pad(x, padding, -np.inf), kernel, stride)
    flat = win.reshape(*win.shape[:4], -1)  # copies: windows overlap or are strided
    arg = flat.argmax(axis=-1)  # the first maximum, as PyTorch
    y = np.take_along_axis(flat, arg[..., None], axis=-1)[..., 0]
    return np.ascontiguousarray(y), arg


def max_pool2d_backward(
    g: np.ndarray,
    arg: np.ndarray,
    x_shape: tuple[int, ...],
    kernel: Pair,
    stride: Pair,
    padding: Pair,
) -> np.ndarray:
    """dx: each window's gradient goes to the input entry that was its maximum."""
    kh, kw = kernel
    n, c, oh, ow = g.shape
    dwin = np.zeros((n, c, oh, ow, kh * kw), dtype=g.dtype)
    np.put_along_axis(dwin, arg[..., None], g[..., None], axis=-1)
    ph, pw = padding
    padded = (x_shape[0], x_shape[1], x_shape[2] + 2 * ph, x_shape[3] + 2 * pw)
    dx = _col2im(dwin.reshape(n, c, oh, ow, kh, kw), padded, stride, padding)
    return np.ascontiguousarray(dx)


def avg_pool2d_forward(x: np.ndarray, kernel: Pair, stride: Pair, padding: Pair) -> np.ndarray:
    """y = mean over each window; the zero padding counts (PyTorch's count_include_pad=True)."""
    win = _windows(_pad(x, padding), kernel, stride)
    return np.ascontiguousarray(win.mean(axis=(4, 5), dtype=x.dtype))


def avg_pool2d_backward(
    g: np.ndarray, x_shape: tuple[int, ...], kernel: Pair, stride: Pair, padding: Pair
) -> np.ndarray:
    """dx: each window spreads g / (kh kw) evenly over its entries."""
    kh, kw = kernel
    n, c, oh, ow = g.shape
    share = (g / (kh * kw)).astype(g.dtype, copy=False)
    dwin = np.broadcast_to(share[..., None, None], (n, c, oh, ow, kh, kw))
    ph, pw = padding
    padded = (x_shape[0], x_shape[1], x_shape[2] + 2 * ph, x_shape[3] + 2 * pw)
    return np.ascontiguousarray(_col2im(dwin, padded, stride, padding))
