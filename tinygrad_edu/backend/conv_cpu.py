"""Image kernels on the CPU (NCHW): 2-d convolution, max pooling and average pooling.

Convolution is *im2col + matmul*: every k x k window of the (padded) input is copied into a
column, so the convolution becomes one matrix product that numpy hands to BLAS::

    cols[(c, i, j), (n, oh, ow)] = xp[n, c, oh * s + i, ow * s + j]
    y = W.reshape(O, C k k) @ cols                       (+ b), then (O, N, OH, OW) -> NCHW

Backward is the same product transposed: dW = g @ cols^T, dcols = W^T @ g, and
*col2im* adds each column back onto the window it came from (windows overlap, so it adds).

Pooling reads the same windows and reduces over the k x k axes. The loops that add or reduce
(col2im, pooling) and the layout swaps are small serial Numba kernels: they index x and dx
directly, bounds checks standing in for the padding (no padded buffer), and each one
has a naive numpy twin in ``tests/test_conv_kernels.py``. These functions take and return
numpy arrays; ``tinygrad_edu/ops_conv.py`` checks the shapes.
"""

from __future__ import annotations

import numpy as np
from numpy.lib.stride_tricks import as_strided

from tinygrad_edu import config
from tinygrad_edu.backend.jit import jit

Pair = tuple[int, int]

# NOTE: the kernels are serial. On the CNN step (batch 32 of 8x8 images) each moves at most
# 300K floats, far below config.PARALLEL_MIN; serial loops also make col2im's overlapping
# adds race-free and keep their order fixed.


def out_size(size: int, kernel: int, stride: int, padding: int) -> int:
    """floor((size + 2 padding - kernel) / stride) + 1, PyTorch's output size (dilation 1)."""
    return (size + 2 * padding - kernel) // stride + 1


def _pad(x: np.ndarray, padding: Pair) -> np.ndarray:
    ph, pw = padding
    if ph == 0 and pw == 0:
        return x
    return np.pad(x, ((0, 0), (0, 0), (ph, ph), (pw, pw)))


def _windows(xp: np.ndarray, kernel: Pair, stride: Pair) -> np.ndarray:
    """A strided view (N, C, OH, OW, kh, kw) of every window of the padded input (no copy)."""
    n, c, h, w = xp.shape
    (kh, kw), (sh, sw) = kernel, stride
    oh, ow = (h - kh) // sh + 1, (w - kw) // sw + 1
    s0, s1, s2, s3 = xp.strides
    return as_strided(
        xp, (n, c, oh, ow, kh, kw), (s0, s1, s2 * sh, s3 * sw, s2, s3), writeable=False
    )


# ----- kernels: col2im -----


@jit(inline="always")
def _inside(k, s, p, size, out):
    """The range [lo, hi) of output positions a whose tap a s + k - p lies in [0, size): with
    it the inner loop of col2im runs without a bounds check."""
    lo = max(0, -((k - p) // s))
    hi = min(out, (size - 1 + p - k) // s + 1)
    return lo, max(lo, hi)


@jit()
def _col2im(dcols, dx, kh, kw, sh, sw, ph, pw, oh, ow):
    """The adjoint of im2col: dx[n, c, a sh + i - ph, b sw + j - pw] += dcols[(c, i, j),
    (n, a, b)] where inside x (dx starts at zero; both C-contiguous). Every entry of dx
    receives its terms in the order of (i, j), as the k*k numpy passes this replaces did:
    the same float sums. (CNN step, 16 channels of 8x8: 0.12 ms; the numpy passes took 1.1.)"""
    n, c, h, w = dx.shape
    ncols = dcols.shape[1]
    dx_flat, dcols_flat = dx.reshape(dx.size), dcols.reshape(dcols.size)
    for ci in range(c):
        for i in range(kh):
            a_lo, a_hi = _inside(i, sh, ph, h, oh)
            for j in range(kw):
                b_lo, b_hi = _inside(j, sw, pw, w, ow)
                row = (ci * kh + i) * kw + j
                for ni in range(n):
                    for a in range(a_lo, a_hi):
                        src = row * ncols + (ni * oh + a) * ow
                        dst = ((ni * c + ci) * h + a * sh + i - ph) * w + j - pw
                        # NOTE: unsigned flat offsets (in range by _inside): with signed 4-d
                        # indices Numba's wrap-around test kept the loop from vectorising (3x).
                        if sw == 1:
                            for b in range(b_lo, b_hi):
                                dx_flat[np.uintp(dst + b)] += dcols_flat[np.uintp(src + b)]
                        else:
                            for b in range(b_lo, b_hi):
                                dx_flat[np.uintp(dst + b * sw)] += dcols_flat[np.uintp(src + b)]


@jit()
def _swap01(src, dst, bias):
    """dst[b, a, k] = src[a, b, k] (+ bias[a] when bias has entries): the transposed copy
    between (O, N, OH OW), the matmul's layout, and (N, O, OH OW), NCHW."""
    na, nb, nk = src.shape
    add = bias.size > 0
    for a in range(na):
        for b in range(nb):
            for k in range(nk):
                v = src[a, b, k]
                dst[b, a, k] = v + bias[a] if add else v


# ----- kernels: pooling -----


@jit()
def _max_pool(x, y, arg, kh, kw, sh, sw, ph, pw):
    """y = the max of each window, arg its flat index i kw + j in the window: the FIRST maximum
    in row-major order, padding counting as -inf and a NaN beating everything (the first NaN
    wins), exactly numpy's argmax over the padded window."""
    n, c, h, w = x.shape
    oh, ow = y.shape[2], y.shape[3]
    # NOTE: flat planes indexed with unsigned offsets (no negative-index wraparound to test),
    # and a plain `v > best` in the loop with the NaN rule in a second pass for the rare
    # window holding a NaN: with the NaN test in the loop's branch it ran 3x slower.
    xs, ys, args = x.reshape(n * c, h * w), y.reshape(n * c, oh * ow), arg.reshape(n * c, oh * ow)
    for plane in range(n * c):
        xp = xs[plane]
        for a in range(oh):
            r0 = a * sh - ph
            i_lo, i_hi = max(0, -r0), min(kh, h - r0)  # the window's rows inside x
            for b in range(ow):
                s0 = b * sw - pw
                j_lo, j_hi = max(0, -s0), min(kw, w - s0)
                out = np.uintp(a * ow + b)
                ys[plane, out] = -np.inf
                best, at, nan = ys[plane, out], 0, False  # -inf in x's dtype
                for i in range(i_lo, i_hi):
                    for j in range(j_lo, j_hi):
                        v = xp[np.uintp((r0 + i) * w + s0 + j)]
                        nan |= v != v
                        if v > best:
                            best, at = v, i * kw + j
                if nan:
                    best, at = ys[plane, out], 0
                    for i in range(i_lo, i_hi):
                        for j in range(j_lo, j_hi):
                            v = xp[np.uintp((r0 + i) * w + s0 + j)]
                            if v > best or (v != v and best == best):  # v != v: v is NaN
                                best, at = v, i * kw + j
                ys[plane, out] = best
                args[plane, out] = at


@jit()
def _max_pool_backward(g, arg, dx, kh, kw, sh, sw, ph, pw):
    """dx[window's argmax] += g (dx starts at zero). Walking the windows backwards adds the
    terms of an entry that windows share in the (i, j) order of the numpy col2im this
    replaces: the same float sums. A window that is all padding (check_pool2d rules it out)
    would add nothing. (CNN step: 0.13 ms against 0.55 ms for put_along_axis + col2im; the
    forward kernel 0.38 ms against 0.85 ms for the copy, argmax and take_along_axis.)"""
    n, c, h, w = dx.shape
    oh, ow = g.shape[2], g.shape[3]
    for ni in range(n):
        for ci in range(c):
            for a in range(oh - 1, -1, -1):
                for b in range(ow - 1, -1, -1):
                    k = arg[ni, ci, a, b]
                    r, s = a * sh + k // kw - ph, b * sw + k % kw - pw
                    if 0 <= r < h and 0 <= s < w:
                        dx[ni, ci, r, s] += g[ni, ci, a, b]


@jit()
def _avg_pool(x, y, kh, kw, sh, sw, ph, pw):
    """y = the sum of each window, padding counting as zeros; summed in (i, j) order in y itself,
    so in the input's dtype (the wrapper divides by kh kw, as numpy's mean does)."""
    n, c, h, w = x.shape
    oh, ow = y.shape[2], y.shape[3]
    for ni in range(n):
        for ci in range(c):
            for a in range(oh):
                for b in range(ow):
                    y[ni, ci, a, b] = 0.0
                    for i in range(kh):
                        r = a * sh + i - ph
                        for j in range(kw):
                            s = b * sw + j - pw
                            if 0 <= r < h and 0 <= s < w:
                                y[ni, ci, a, b] += x[ni, ci, r, s]


@jit()
def _avg_pool_backward(share, dx, kh, kw, sh, sw, ph, pw):
    """dx[every entry of a window] += share of the window (dx starts at zero); in (i, j) order,
    as ``_col2im``."""
    n, c, h, w = dx.shape
    oh, ow = share.shape[2], share.shape[3]
    for ni in range(n):
        for ci in range(c):
            for i in range(kh):
                for j in range(kw):
                    for a in range(oh):
                        r = a * sh + i - ph
                        if r < 0 or r >= h:
                            continue
                        for b in range(ow):
                            s = b * sw + j - pw
                            if 0 <= s < w:
                                dx[ni, ci, r, s] += share[ni, ci, a, b]


# ----- convolution -----


def conv2d_forward(
    x: np.ndarray, w: np.ndarray, b: np.ndarray | None, stride: Pair, padding: Pair
) -> tuple[np.ndarray, np.ndarray]:
    """y = conv2d(x, w) + b; returns (y, cols), cols (C kh kw, N OH OW) kept for backward."""
    n, c = x.shape[:2]
    o, _, kh, kw = w.shape
    # The one copy of im2col, rows (c, i, j) and columns (n, oh, ow): the whole batch is then
    # ONE matrix product. (A batched np.matmul of one GEMM per image measured several times
    # slower on these small images: many tiny BLAS calls.) NOTE: numpy's strided copy stays: a
    # Numba im2col with bounds checks for the padding measured 35 us against 83 us for the
    # CNN step's 1-channel input, but 555 us against 440 us for its 16-channel one.
    win = _windows(_pad(x, padding), (kh, kw), stride)  # (N, C, OH, OW, kh, kw)
    cols = np.ascontiguousarray(win.transpose(1, 4, 5, 0, 2, 3)).reshape(c * kh * kw, -1)
    oh, ow = win.shape[2], win.shape[3]
    dtype = np.result_type(w, cols)
    out = np.empty((n, o, oh, ow), dtype=dtype)
    bias = np.zeros(0, dtype) if b is None else b.astype(dtype, copy=False)
    w2 = w.reshape(o, -1)
    for n0, n1 in _image_slices(n, o * oh * ow):
        y = w2 @ cols[:, n0 * oh * ow : n1 * oh * ow]  # (O, images OH OW)
        _swap01(y.reshape(o, n1 - n0, oh * ow), out[n0:n1].reshape(n1 - n0, o, oh * ow), bias)
    return out, cols


def _image_slices(n: int, per_image: int) -> list[tuple[int, int]]:
    """[(n0, n1), ...]: the batch in slices of whole images of about config.CONV_SLICE entries
    of a temporary that takes ``per_image`` entries per image (see config)."""
    step = max(1, config.CONV_SLICE // max(1, per_image))
    return [(n0, min(n, n0 + step)) for n0 in range(0, n, step)]


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
    gt = np.empty((o, n * oh * ow), dtype=g.dtype)
    no_bias = np.zeros(0, dtype=g.dtype)
    _swap01(np.ascontiguousarray(g).reshape(n, o, oh * ow), gt.reshape(o, n, oh * ow), no_bias)
    dw = (gt @ cols.T).reshape(w.shape) if need_w else None
    db = gt.sum(axis=1) if need_b else None
    dx = None
    if need_x:
        wt = w.reshape(o, -1).T
        dx = np.zeros(x_shape, dtype=np.result_type(wt, gt))
        (sh, sw), (ph, pw) = stride, padding
        for n0, n1 in _image_slices(n, c * kh * kw * oh * ow):
            dcols = wt @ gt[:, n0 * oh * ow : n1 * oh * ow]  # (C k k, images OH OW)
            _col2im(dcols, dx[n0:n1], kh, kw, sh, sw, ph, pw, oh, ow)
    return dx, dw, db


# ----- pooling -----


def max_pool2d_forward(
    x: np.ndarray, kernel: Pair, stride: Pair, padding: Pair
) -> tuple[np.ndarray, np.ndarray]:
    """y = max over each window (padding counts as -inf); returns (y, argmax in the window)."""
    n, c, h, w = x.shape
    (kh, kw), (sh, sw), (ph, pw) = kernel, stride, padding
    shape = (n, c, out_size(h, kh, sh, ph), out_size(w, kw, sw, pw))
    y, arg = np.empty(shape, dtype=x.dtype), np.empty(shape, dtype=np.intp)
    _max_pool(x, y, arg, kh, kw, sh, sw, ph, pw)
    return y, arg


def max_pool2d_backward(
    g: np.ndarray,
    arg: np.ndarray,
    x_shape: tuple[int, ...],
    kernel: Pair,
    stride: Pair,
    padding: Pair,
) -> np.ndarray:
    """dx: each window's gradient goes to the input entry that was its maximum."""
    dx = np.zeros(x_shape, dtype=g.dtype)
    (kh, kw), (sh, sw), (ph, pw) = kernel, stride, padding
    _max_pool_backward(g, arg, dx, kh, kw, sh, sw, ph, pw)
    return dx


def avg_pool2d_forward(x: np.ndarray, kernel: Pair, stride: Pair, padding: Pair) -> np.ndarray:
    """y = mean over each window; the zero padding counts (PyTorch's count_include_pad=True)."""
    n, c, h, w = x.shape
    (kh, kw), (sh, sw), (ph, pw) = kernel, stride, padding
    y = np.empty((n, c, out_size(h, kh, sh, ph), out_size(w, kw, sw, pw)), dtype=x.dtype)
    _avg_pool(x, y, kh, kw, sh, sw, ph, pw)
    y /= kh * kw
    return y


def avg_pool2d_backward(
    g: np.ndarray, x_shape: tuple[int, ...], kernel: Pair, stride: Pair, padding: Pair
) -> np.ndarray:
    """dx: each window spreads g / (kh kw) evenly over its entries."""
    (kh, kw), (sh, sw), (ph, pw) = kernel, stride, padding
    share = (g / (kh * kw)).astype(g.dtype, copy=False)
    dx = np.zeros(x_shape, dtype=g.dtype)
    _avg_pool_backward(share, dx, kh, kw, sh, sw, ph, pw)
    return dx
