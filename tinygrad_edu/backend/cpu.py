"""The CPU backend: Numba kernels for the loops that pay for threads, numpy below that.

Every public function here has the name and meaning of its twin in ``reference.py``. Each one
looks at the size of its input: below ``config.PARALLEL_MIN`` elements, starting threads and
dispatching into Numba costs more than the loop itself, so the small case goes to numpy (which is
what the reference backend does). Above it, a private ``@njit(parallel=True)`` kernel runs.

Matrix products always go to numpy's BLAS (``np.matmul``): it is the fastest path at every size
measured on this project's machines (see ``benchmarks/``). ``matmul_blocked`` below is the
readable cache-blocked Numba kernel that shows what BLAS does; it is tested and benchmarked, and
used for nothing else.
"""

from __future__ import annotations

import numpy as np
from numba import njit, prange

from tinygrad_edu import config
from tinygrad_edu.backend import reference
from tinygrad_edu.backend.optim_cpu import (  # noqa: F401  (part of the interface)
    adadelta_step,
    adagrad_step,
    adam_step,
    rmsprop_step,
    sgd_step,
)

# These are the same in every case: delegate to the reference backend.
from tinygrad_edu.backend.reference import (  # noqa: F401  (part of the interface)
    argmax,
    asarray,
    astype,
    broadcast_to,
    concatenate,
    copy,
    full,
    getitem,
    getitem_backward,
    is_view,
    linear_backward,
    linear_forward,
    matmul,
    max,
    max_backward,
    min,
    reshape,
    sum_to,
    to_numpy,
    transpose,
    zeros,
    zeros_like,
)

_FLOATS = (np.dtype(np.float32), np.dtype(np.float64))


def _jit(parallel: bool = True):
    """The one decorator every kernel uses, its flags from ``config``."""
    return njit(
        parallel=parallel,
        fastmath=config.FASTMATH,
        cache=config.CACHE,
        error_model=config.ERROR_MODEL,
    )


def _big_float(*arrays) -> bool:
    """Worth a parallel kernel: large, floating point, one dtype."""
    x = arrays[0]
    if x.size < config.PARALLEL_MIN or x.dtype not in _FLOATS:
        return False
    return all(type(a) is np.ndarray and a.dtype == x.dtype for a in arrays)


def _flat(x: np.ndarray) -> np.ndarray:
    """A C-contiguous 1-D view (or copy, if ``x`` is not contiguous)."""
    return np.ascontiguousarray(x).reshape(-1)


# ----- elementwise -----
# One kernel per arity, the operation chosen by a small integer code. The branch is the same for
# every element, so the CPU predicts it; one kernel instead of nine keeps compile time down.

_UNARY_CODES = {
    "neg": 0, "exp": 1, "log": 2, "sqrt": 3, "abs": 4, "relu": 5, "sigmoid": 6, "tanh": 7,
    "sign": 8,
}  # fmt: skip


@_jit()
def _unary_kernel(code, x, out):
    for i in prange(x.size):  # each i writes only out[i]: no races
        v = x[i]
        if code == 0:
            out[i] = -v
        elif code == 1:
            out[i] = np.exp(v)
        elif code == 2:
            out[i] = np.log(v)
        elif code == 3:
            out[i] = np.sqrt(v)
        elif code == 4:
            out[i] = abs(v)
        elif code == 5:
            out[i] = v if v > 0 else 0.0
        elif code == 6:
            out[i] = 0.5 * np.tanh(0.5 * v) + 0.5
        elif code == 7:
            out[i] = np.tanh(v)
        else:
            out[i] = np.sign(v)


def unary(op: str, x: np.ndarray) -> np.ndarray:
    if not _big_float(x):
        return reference.unary(op, x)
    out = np.empty(x.shape, dtype=x.dtype)
    _unary_kernel(_UNARY_CODES[op], _flat(x), out.reshape(-1))
    return out


_BINARY_CODES = {"add": 0, "sub": 1, "mul": 2, "div": 3, "pow": 4}


@_jit(parallel=False)
def _apply_binary(code, a, b):
    if code == 0:
        return a + b
    if code == 1:
        return a - b
    if code == 2:
        return a * b
    if code == 3:
        return a / b
    return a**b


@_jit()
def _binary_same_shape(code, x, y, out):
    for i in prange(out.size):
        out[i] = _apply_binary(code, x[i], y[i])


@_jit()
def _binary_scalar(code, x, s, scalar_first, out):
    for i in prange(out.size):
        if scalar_first:
            out[i] = _apply_binary(code, s, x[i])
        else:
            out[i] = _apply_binary(code, x[i], s)


@_jit()
def _binary_broadcast(code, x, x_strides, y, y_strides, shape, out):
    """General broadcasting: element i of ``out`` is unravelled to a multi-index, and each input
    is read through its element strides, which are 0 along the axes it is broadcast over."""
    ndim = shape.size
    for i in prange(out.size):
        rest = i
        xi = 0
        yi = 0
        for d in range(ndim - 1, -1, -1):
            k = rest % shape[d]
            rest //= shape[d]
            xi += k * x_strides[d]
            yi += k * y_strides[d]
        out[i] = _apply_binary(code, x[xi], y[yi])


def _broadcast_strides(x: np.ndarray, shape: tuple[int, ...]) -> np.ndarray:
    """Element strides of a C-contiguous ``x`` read as if broadcast to ``shape``."""
    strides = np.zeros(len(shape), dtype=np.int64)
    step = 1
    offset = len(shape) - x.ndim
    for d in range(x.ndim - 1, -1, -1):
        if x.shape[d] != 1:
            strides[d + offset] = step
        step *= x.shape[d]
    return strides


def binary(op: str, x, y) -> np.ndarray:
    if x.size < config.PARALLEL_MIN if type(x) is np.ndarray else y.size < config.PARALLEL_MIN:
        if type(y) is not np.ndarray or y.size < config.PARALLEL_MIN:  # small: numpy
            return reference.binary(op, x, y)
    code = _BINARY_CODES[op]
    if type(y) is not np.ndarray or y.size == 1:  # tensor (op) scalar
        if type(x) is np.ndarray and _big_float(x) and np.ndim(y) == 0:
            out = np.empty(x.shape, dtype=x.dtype)
            _binary_scalar(code, _flat(x), x.dtype.type(y), False, out.reshape(-1))
            return out
        return reference.binary(op, x, y)
    if type(x) is not np.ndarray or x.size == 1:  # scalar (op) tensor
        if _big_float(y) and np.ndim(x) == 0:
            out = np.empty(y.shape, dtype=y.dtype)
            _binary_scalar(code, _flat(y), y.dtype.type(x), True, out.reshape(-1))
            return out
        return reference.binary(op, x, y)
    if x.shape == y.shape:
        if not _big_float(x, y):
            return reference.binary(op, x, y)
        out = np.empty(x.shape, dtype=x.dtype)
        _binary_same_shape(code, _flat(x), _flat(y), out.reshape(-1))
        return out
    shape = np.broadcast_shapes(x.shape, y.shape)
    big = x if x.size >= y.size else y
    if np.prod(shape) < config.PARALLEL_MIN or not _big_float(big, x, y):
        return reference.binary(op, x, y)
    out = np.empty(shape, dtype=x.dtype)
    x, y = np.ascontiguousarray(x), np.ascontiguousarray(y)
    _binary_broadcast(
        code,
        x.reshape(-1),
        _broadcast_strides(x, shape),
        y.reshape(-1),
        _broadcast_strides(y, shape),
        np.array(shape, dtype=np.int64),
        out.reshape(-1),
    )
    return out


def compare(op: str, x, y) -> np.ndarray:
    return reference.compare(op, x, y)


# ----- fused activation backward: one pass, no temporaries -----


@_jit()
def _relu_backward_kernel(g, x, out):
    for i in prange(out.size):
        out[i] = g[i] if x[i] > 0 else 0.0


@_jit()
def _sigmoid_backward_kernel(g, y, out):
    for i in prange(out.size):
        out[i] = g[i] * y[i] * (1 - y[i])


@_jit()
def _tanh_backward_kernel(g, y, out):
    for i in prange(out.size):
        out[i] = g[i] * (1 - y[i] * y[i])


@_jit()
def _leaky_relu_kernel(x, slope, out):
    for i in prange(out.size):
        out[i] = x[i] if x[i] > 0 else x[i] * slope


@_jit()
def _leaky_relu_backward_kernel(g, x, slope, out):
    for i in prange(out.size):
        out[i] = g[i] if x[i] > 0 else g[i] * slope


def _fused(kernel, reference_fn, g, x, *scalars):
    if g.shape != x.shape or not _big_float(g, x):
        return reference_fn(g, x, *scalars)
    out = np.empty(g.shape, dtype=g.dtype)
    kernel(_flat(g), _flat(x), *[g.dtype.type(s) for s in scalars], out.reshape(-1))
    return out


def relu_backward(g: np.ndarray, x: np.ndarray) -> np.ndarray:
    return _fused(_relu_backward_kernel, reference.relu_backward, g, x)


def sigmoid_backward(g: np.ndarray, y: np.ndarray) -> np.ndarray:
    return _fused(_sigmoid_backward_kernel, reference.sigmoid_backward, g, y)


def tanh_backward(g: np.ndarray, y: np.ndarray) -> np.ndarray:
    return _fused(_tanh_backward_kernel, reference.tanh_backward, g, y)


def leaky_relu_backward(g: np.ndarray, x: np.ndarray, slope: float) -> np.ndarray:
    return _fused(_leaky_relu_backward_kernel, reference.leaky_relu_backward, g, x, slope)


def leaky_relu(x: np.ndarray, slope: float) -> np.ndarray:
    if not _big_float(x):
        return reference.leaky_relu(x, slope)
    out = np.empty(x.shape, dtype=x.dtype)
    _leaky_relu_kernel(_flat(x), x.dtype.type(slope), out.reshape(-1))
    return out


def clip(x: np.ndarray, lo: float | None, hi: float | None) -> np.ndarray:
    return reference.clip(x, lo, hi)


def clip_backward(g: np.ndarray, x: np.ndarray, lo: float | None, hi: float | None):
    return reference.clip_backward(g, x, lo, hi)


# ----- reductions -----
# A reduction over the leading or trailing axes of a contiguous array is a reduction over one axis
# of a 2-D view. Threads split the axis that is kept, so no two threads write the same output.


@_jit()
def _sum_rows_kernel(x, out):
    """out[i] = sum_j x[i, j]; one thread per block of rows."""
    for i in prange(x.shape[0]):
        acc = 0.0
        for j in range(x.shape[1]):
            acc += x[i, j]
        out[i] = acc


@_jit()
def _sum_cols_kernel(x, out):
    """out[j] = sum_i x[i, j]; threads take column blocks, each scanning rows in memory order."""
    n, m = x.shape
    block = 256
    for b in prange((m + block - 1) // block):
        lo = b * block
        hi = lo + block if lo + block < m else m
        for j in range(lo, hi):
            out[j] = 0.0
        for i in range(n):
            for j in range(lo, hi):
                out[j] += x[i, j]


def _as_2d_reduction(x: np.ndarray, axes: tuple[int, ...]):
    """If ``axes`` are the leading or the trailing axes, return (2-D view, reduce_rows)."""
    nd = x.ndim
    k = len(axes)
    if axes == tuple(range(nd - k, nd)):
        return x.reshape(-1, int(np.prod(x.shape[nd - k :]))), True
    if axes == tuple(range(k)):
        return x.reshape(int(np.prod(x.shape[:k])), -1), False
    return None, False


def sum(x: np.ndarray, axis, keepdims: bool) -> np.ndarray:  # noqa: A001
    if not _big_float(x) or not x.flags.c_contiguous:
        return reference.sum(x, axis, keepdims)
    axes = tuple(range(x.ndim)) if axis is None else tuple(sorted(axis))
    view, over_rows = _as_2d_reduction(x, axes)
    # A full reduction stays with numpy's pairwise sum, which is more accurate than one
    # accumulator per thread for very long vectors.
    if view is None or len(axes) == x.ndim:
        return reference.sum(x, axis, keepdims)
    if over_rows:
        out = np.empty(view.shape[0], dtype=x.dtype)
        _sum_rows_kernel(view, out)
    else:
        out = np.empty(view.shape[1], dtype=x.dtype)
        _sum_cols_kernel(view, out)
    kept = tuple(1 if d in axes else n for d, n in enumerate(x.shape))
    return out.reshape(
        kept if keepdims else tuple(n for d, n in enumerate(x.shape) if d not in axes)
    )


# ----- softmax family, row by row over the last axis -----


@_jit()
def _log_softmax_rows(x, out):
    for i in prange(x.shape[0]):  # one row per iteration: rows are independent
        m = x[i, 0]
        for j in range(1, x.shape[1]):
            if x[i, j] > m or x[i, j] != x[i, j]:
                m = x[i, j]
        s = 0.0
        for j in range(x.shape[1]):
            s += np.exp(x[i, j] - m)
        lse = m + np.log(s)
        for j in range(x.shape[1]):
            out[i, j] = x[i, j] - lse


@_jit()
def _cross_entropy_rows(logits, labels, losses, probs):
    """losses[i] = logsumexp(z_i) - z_i[label_i]; probs[i] = softmax(z_i), saved for backward."""
    for i in prange(logits.shape[0]):
        m = logits[i, 0]
        for j in range(1, logits.shape[1]):
            if logits[i, j] > m:
                m = logits[i, j]
        s = 0.0
        for j in range(logits.shape[1]):
            e = np.exp(logits[i, j] - m)
            probs[i, j] = e
            s += e
        for j in range(logits.shape[1]):
            probs[i, j] /= s
        losses[i] = m + np.log(s) - logits[i, labels[i]]


@_jit()
def _cross_entropy_backward_rows(g_rows, probs, labels, out):
    for i in prange(probs.shape[0]):
        for j in range(probs.shape[1]):
            out[i, j] = probs[i, j] * g_rows[i]
        out[i, labels[i]] -= g_rows[i]


def _last_axis(x: np.ndarray, axis: int) -> bool:
    return axis in (-1, x.ndim - 1) and x.ndim >= 1 and x.flags.c_contiguous and _big_float(x)


def log_softmax(x: np.ndarray, axis: int) -> np.ndarray:
    if not _last_axis(x, axis) or x.shape[-1] == 0:
        return reference.log_softmax(x, axis)
    out = np.empty(x.shape, dtype=x.dtype)
    _log_softmax_rows(x.reshape(-1, x.shape[-1]), out.reshape(-1, x.shape[-1]))
    return out


def softmax(x: np.ndarray, axis: int) -> np.ndarray:
    if not _last_axis(x, axis) or x.shape[-1] == 0:
        return reference.softmax(x, axis)
    out = log_softmax(x, axis)
    _unary_kernel(_UNARY_CODES["exp"], out.reshape(-1), out.reshape(-1))  # in place
    return out


softmax_backward = reference.softmax_backward
log_softmax_backward = reference.log_softmax_backward


def cross_entropy_forward(logits: np.ndarray, labels: np.ndarray):
    if not _big_float(logits) or not logits.flags.c_contiguous or logits.shape[1] == 0:
        return reference.cross_entropy_forward(logits, labels)
    losses = np.empty(logits.shape[0], dtype=logits.dtype)
    probs = np.empty(logits.shape, dtype=logits.dtype)
    _cross_entropy_rows(logits, labels, losses, probs)
    return losses, probs


def cross_entropy_backward(g_rows: np.ndarray, probs: np.ndarray, labels: np.ndarray):
    if not _big_float(probs):
        return reference.cross_entropy_backward(g_rows, probs, labels)
    out = np.empty(probs.shape, dtype=probs.dtype)
    _cross_entropy_backward_rows(
        np.ascontiguousarray(g_rows, dtype=probs.dtype), probs, labels, out
    )
    return out


# ----- matmul, the teaching version -----

TILE = 64  # a 64x64 float64 tile is 32 KiB: three of them stay in a typical L2 cache


@_jit()
def _matmul_blocked_kernel(a, b, out):
    """out = a @ b, tile by tile. Threads split the rows of ``out`` into bands of TILE rows, so
    each thread writes its own band only. Within a band, the k-loop walks tiles of ``a`` and
    ``b`` that fit in cache, and the innermost loop runs along a row of ``b`` and ``out``
    (contiguous memory), which LLVM vectorises."""
    n, kdim = a.shape
    m = b.shape[1]
    for band in prange((n + TILE - 1) // TILE):
        i0 = band * TILE
        i1 = min(i0 + TILE, n)
        for i in range(i0, i1):
            for j in range(m):
                out[i, j] = 0.0
        for k0 in range(0, kdim, TILE):
            k1 = min(k0 + TILE, kdim)
            for j0 in range(0, m, TILE):
                j1 = min(j0 + TILE, m)
                for i in range(i0, i1):
                    for k in range(k0, k1):
                        aik = a[i, k]
                        for j in range(j0, j1):
                            out[i, j] += aik * b[k, j]


def matmul_blocked(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """2-D ``a @ b`` with the blocked Numba kernel (for teaching and benchmarks)."""
    if a.ndim != 2 or b.ndim != 2 or a.shape[1] != b.shape[0]:
        raise ValueError(f"matmul_blocked: shapes {a.shape} and {b.shape} do not align")
    dtype = np.result_type(a, b)
    out = np.empty((a.shape[0], b.shape[1]), dtype=dtype)
    _matmul_blocked_kernel(
        np.ascontiguousarray(a, dtype=dtype), np.ascontiguousarray(b, dtype=dtype), out
    )
    return out
