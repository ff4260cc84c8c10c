"""Image kernels on the GPU (NCHW): 2-d convolution, max pooling and average pooling.

The same functions, signatures and numbers as ``conv_cpu.py`` (read it first), on the CUDA
backend's device arrays. Stride s = (sh, sw), zero padding p = (ph, pw), kernel kh x kw, and
xp the padded input, xp[n, c, h + ph, w + pw] = x[n, c, h, w] (0 or -inf outside x).

Convolution is *im2col + matmul*, with the cuda backend's tiled matmul doing the products::

    cols[(c, i, j), (n, a, b)] = xp[n, c, a sh + i, b sw + j]          (im2col: one thread each)
    y^T = cols^T W^T + b       rows (n, a, b), columns o: the bias is added as the matmul writes
    dW = g cols^T,   db = sum of g over (n, a, b),   dcols = W^T g      (g as (O, N OH OW))
    dx[n, c, h, w] = sum of dcols[(c, i, j), (n, a, b)] over a sh + i = h + ph, b sw + j = w + pw

The last line, *col2im*, is a GATHER: one thread per input entry sums the entries of the windows
that cover it. On the CPU col2im scatters (adds each window back in place); on the GPU a scatter
would need atomic adds wherever windows overlap, while a gather has every thread write only its
own entry: race-free and deterministic.

Pooling works plane by plane (a plane is one (n, c) image, planes = N C), one thread per output
for the forward and, again, one thread per input entry for the backward gather::

    max:  y[a, b] = xp[a sh + i*, b sw + j*],  r* = i* kw + j* the FIRST maximum of the window
          (as PyTorch and conv_cpu: ties go to the first; padding is -inf so never wins)
          dx[h, w] = sum of g[a, b] over the windows covering (h, w) whose r* is (h, w)
    avg:  y[a, b] = (sum of the window of xp) / (kh kw)   (zero padding counted:
          PyTorch's count_include_pad=True);   dx[h, w] = sum of g[a, b] / (kh kw) over them

Float32 sums accumulate in float64, as in the rest of the cuda backend.
"""

from __future__ import annotations

import math

import numpy as np
from numba import cuda

from tinygrad_edu.backend import cuda as C
from tinygrad_edu.backend.cuda_kernels import device_function

Pair = tuple[int, int]
# (kh, kw, sh, sw, ph, pw, oh, ow): the window geometry every kernel below takes as one tuple
Window = tuple[int, int, int, int, int, int, int, int]


def out_size(size: int, kernel: int, stride: int, padding: int) -> int:
    """floor((size + 2 padding - kernel) / stride) + 1, PyTorch's output size (dilation 1)."""
    return (size + 2 * padding - kernel) // stride + 1


def _window(x_shape: tuple[int, ...], kernel: Pair, stride: Pair, padding: Pair) -> Window:
    (kh, kw), (sh, sw), (ph, pw) = kernel, stride, padding
    oh, ow = out_size(x_shape[2], kh, sh, ph), out_size(x_shape[3], kw, sw, pw)
    return (kh, kw, sh, sw, ph, pw, oh, ow)


def _launch(kernel, n: int, *args) -> None:
    """Run ``kernel`` over n items with the backend's grid (``cuda._grid``); nothing when n = 0."""
    if n:
        kernel[C._grid(n)](*args)


def _shaped(x, shape: tuple[int, ...]):
    """x seen with another shape (no copy), for an operand that is only read (the weight) or
    an array made here that nothing else holds (the results).

    NOTE: the backend's ``reshape`` marks its result as a view, which makes the engine copy a
    gradient before keeping it; the results here share memory with nothing, so are not marked.
    """
    return x.reshape(tuple(shape))


# ----- kernels -----
# Arrays arrive flat (C-contiguous), sizes as int tuples, grid-stride loops (cuda_kernels.py).


@device_function
def _window_at(p, offset, stride, count):
    """The window index a with a * stride + offset == p (p in padded coordinates), or -1 when
    no window puts its entry ``offset`` on p."""
    d = p - offset
    if d < 0 or d % stride != 0 or d // stride >= count:
        return -1
    return d // stride


@cuda.jit
def im2col_kernel(x, x_shape, win, cols):
    """Thread t writes cols[r, q] for its flat items e = r L + q (L = N OH OW) with
    r = (c, i, j), q = (n, a, b): x[n, c, a sh + i - ph, b sw + j - pw], or 0 in the padding."""
    n_images, channels, height, width = x_shape
    kh, kw, sh, sw, ph, pw, oh, ow = win
    length = n_images * oh * ow
    for e in range(cuda.grid(1), cols.size, cuda.gridsize(1)):
        r, q = e // length, e % length
        c, i, j = r // (kh * kw), (r // kw) % kh, r % kw
        n, a, b = q // (oh * ow), (q // ow) % oh, q % ow
        h, w = a * sh + i - ph, b * sw + j - pw
        if 0 <= h < height and 0 <= w < width:
            cols[e] = x[((n * channels + c) * height + h) * width + w]
        else:
            cols[e] = 0


@cuda.jit
def col2im_kernel(dcols, x_shape, win, dx):
    """Thread t writes dx[n, c, h, w] for its items: the sum of dcols[(c, i, j), (n, a, b)] over
    the windows (a, b) that cover (h, w) at offset (i, j). A gather: no two threads write the
    same entry, so overlapping windows need no atomics."""
    n_images, channels, height, width = x_shape
    kh, kw, sh, sw, ph, pw, oh, ow = win
    length = n_images * oh * ow
    for e in range(cuda.grid(1), dx.size, cuda.gridsize(1)):
        w, h = e % width, (e // width) % height
        c, n = (e // (width * height)) % channels, e // (width * height * channels)
        acc = 0.0
        for i in range(kh):
            a = _window_at(h + ph, i, sh, oh)
            if a < 0:
                continue
            for j in range(kw):
                b = _window_at(w + pw, j, sw, ow)
                if b >= 0:
                    acc += dcols[((c * kh + i) * kw + j) * length + (n * oh + a) * ow + b]
        dx[e] = acc


@cuda.jit
def max_pool_kernel(x, height, width, win, y, arg):
    """Thread t writes y[plane, a, b] and arg[plane, a, b] for its outputs: the first maximum of
    the window and its position r = i kw + j in it. Padding reads as -inf; a NaN wins (as
    numpy's argmax) and, once found, stays."""
    kh, kw, sh, sw, ph, pw, oh, ow = win
    for e in range(cuda.grid(1), y.size, cuda.gridsize(1)):
        b, a, plane = e % ow, (e // ow) % oh, e // (ow * oh)
        best = -math.inf
        where = 0
        for r in range(kh * kw):
            h, w = a * sh + r // kw - ph, b * sw + r % kw - pw
            v = -math.inf
            if 0 <= h < height and 0 <= w < width:
                v = x[(plane * height + h) * width + w]
            if r == 0 or (best == best and (v > best or v != v)):  # strictly greater: ties stay
                best = v
                where = r
        y[e] = best
        arg[e] = where


@cuda.jit
def pool_backward_kernel(g, arg, height, width, win, scale, dx):
    """Thread t writes dx[plane, h, w]: the sum of g[plane, a, b] * scale over the windows that
    cover (h, w) at offset (i, j). Max pooling passes the windows' argmax (arg = i kw + j) and
    scale 1: only the windows that chose (h, w) count. Average pooling passes an empty arg and
    scale 1 / (kh kw): every window counts. A gather: race-free where windows overlap."""
    kh, kw, sh, sw, ph, pw, oh, ow = win
    every_window = arg.size == 0
    for e in range(cuda.grid(1), dx.size, cuda.gridsize(1)):
        w, h, plane = e % width, (e // width) % height, e // (width * height)
        acc = 0.0
        for i in range(kh):
            a = _window_at(h + ph, i, sh, oh)
            if a < 0:
                continue
            for j in range(kw):
                b = _window_at(w + pw, j, sw, ow)
                k = (plane * oh + a) * ow + b
                if b >= 0 and (every_window or arg[k] == i * kw + j):
                    acc += g[k]
        dx[e] = acc * scale


@cuda.jit
def avg_pool_kernel(x, height, width, win, y):
    """Thread t writes y[plane, a, b] = the window's sum / (kh kw), padding counted as 0."""
    kh, kw, sh, sw, ph, pw, oh, ow = win
    for e in range(cuda.grid(1), y.size, cuda.gridsize(1)):
        b, a, plane = e % ow, (e // ow) % oh, e // (ow * oh)
        acc = 0.0
        for i in range(kh):
            for j in range(kw):
                h, w = a * sh + i - ph, b * sw + j - pw
                if 0 <= h < height and 0 <= w < width:
                    acc += x[(plane * height + h) * width + w]
        y[e] = acc / (kh * kw)


# ----- convolution -----


def conv2d_forward(x, w, b, stride: Pair, padding: Pair):
    """y = conv2d(x, w) + b; returns (y, cols), cols (C kh kw, N OH OW) kept for backward."""
    n, c = x.shape[0], x.shape[1]
    o, _, kh, kw = w.shape
    win = _window(tuple(x.shape), (kh, kw), stride, padding)
    oh, ow = win[6], win[7]
    cols = C._empty((c * kh * kw, n * oh * ow), x.dtype)
    _launch(im2col_kernel, cols.size, C._flat(x), tuple(x.shape), win, C._flat(cols))
    # y^T = cols^T W^T, both read through swapped strides (no copies): its columns are the
    # output channels, so the matmul adds b[o] as it writes (its bias is per column).
    yt = C._matmul_into(cols, _shaped(w, (o, c * kh * kw)), True, True, bias=b)
    # (N OH OW, O) -> NCHW: y[n, o, a, b] = yt[(n OH + a) OW + b, o], one strided copy
    p = oh * ow
    return C._gather_strided(yt, 0, (p * o, 1, ow * o, o), (n, o, oh, ow)), cols


def conv2d_backward(g, cols, x_shape, w, stride, padding, need_x, need_w, need_b):
    """dW = g cols^T, dx = col2im(W^T g) (a gather), db = sum of g over N, OH, OW; with g
    arranged as (O, N OH OW), the columns' order, each is one matrix product or reduction."""
    n, o = g.shape[0], g.shape[1]
    kh, kw = w.shape[2], w.shape[3]
    p = g.shape[2] * g.shape[3]
    # gt[o, (n, a, b)] = g[n, o, a, b]: one strided copy
    gt = _shaped(C._gather_strided(g, 0, (p, o * p, 1), (o, n, p)), (o, n * p))
    dw = _shaped(C.matmul(gt, cols, transpose_b=True), w.shape) if need_w else None
    db = C.sum(gt, (1,), False) if need_b else None
    dx = None
    if need_x:
        dcols = C.matmul(_shaped(w, (o, w.size // o)), gt, transpose_a=True)  # (C kh kw, N OH OW)
        dx = C._empty(tuple(x_shape), gt.dtype)
        win = _window(tuple(x_shape), (kh, kw), stride, padding)
        _launch(col2im_kernel, dx.size, C._flat(dcols), tuple(x_shape), win, C._flat(dx))
    return dx, dw, db


# ----- pooling -----
# An (N, C, H, W) image is N C planes of H x W: the kernels index (plane, h, w).


def _pool_geometry(x_shape, kernel: Pair, stride: Pair, padding: Pair):
    """(window, output shape) of a pooling call."""
    win = _window(tuple(x_shape), kernel, stride, padding)
    return win, (x_shape[0], x_shape[1], win[6], win[7])


def max_pool2d_forward(x, kernel: Pair, stride: Pair, padding: Pair):
    """y = max over each window (padding counts as -inf); returns (y, argmax in the window)."""
    win, shape = _pool_geometry(x.shape, kernel, stride, padding)
    y, arg = C._empty(shape, x.dtype), C._empty(shape, np.int64)
    h, w = x.shape[2], x.shape[3]
    _launch(max_pool_kernel, y.size, C._flat(x), h, w, win, C._flat(y), C._flat(arg))
    return y, arg


def max_pool2d_backward(g, arg, x_shape, kernel: Pair, stride: Pair, padding: Pair):
    """dx: each window's gradient goes to the input entry that was its maximum (a gather)."""
    win, _ = _pool_geometry(x_shape, kernel, stride, padding)
    dx = C._empty(tuple(x_shape), g.dtype)
    h, w = x_shape[2], x_shape[3]
    _launch(pool_backward_kernel, dx.size, C._flat(g), C._flat(arg), h, w, win, 1.0, C._flat(dx))
    return dx


def avg_pool2d_forward(x, kernel: Pair, stride: Pair, padding: Pair):
    """y = mean over each window; the zero padding counts (PyTorch's count_include_pad=True)."""
    win, shape = _pool_geometry(x.shape, kernel, stride, padding)
    y = C._empty(shape, x.dtype)
    _launch(avg_pool_kernel, y.size, C._flat(x), x.shape[2], x.shape[3], win, C._flat(y))
    return y


def avg_pool2d_backward(g, x_shape, kernel: Pair, stride: Pair, padding: Pair):
    """dx: each window spreads g / (kh kw) evenly over its entries (a gather)."""
    win, _ = _pool_geometry(x_shape, kernel, stride, padding)
    dx = C._empty(tuple(x_shape), g.dtype)
    h, w = x_shape[2], x_shape[3]
    every = C._empty((0,), np.int64)  # no argmax: every window counts
    scale = 1.0 / (kernel[0] * kernel[1])
    _launch(pool_backward_kernel, dx.size, C._flat(g), every, h, w, win, scale, C._flat(dx))
    return dx
