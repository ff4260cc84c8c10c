"""The CPU backend: Numba kernels, each in a serial and a parallel build, and numpy where one
numpy call already does the job.

Every public function here has the name and meaning of its twin in ``reference.py``. Three
cases, chosen per call by size (measured on this project's 2-core machines):

- one simple step on a small array (``x + y`` on 32x15): numpy's single ufunc call is as cheap as
  anything, so the reference implementation runs;
- a fused kernel (softmax + cross-entropy, an activation's backward, ...) on a small array: the
  serial Numba build, one pass instead of numpy's several calls and temporaries (calling a serial
  Numba kernel costs about 0.2 us, like a numpy ufunc);
- anything with at least ``config.PARALLEL_MIN`` elements: the parallel build, whose ``prange``
  loop is split across cores (waking the thread pool costs about 5 us, so it only pays here).

Matrix products always go to numpy's BLAS (``np.matmul``): it is the fastest path at every size
measured (see ``benchmarks/``). ``matmul_blocked`` below is the readable cache-blocked Numba kernel
that shows what BLAS does; it is tested and benchmarked, and used for nothing else.
"""

from __future__ import annotations

import numpy as np
from numba import prange

from tinygrad_edu import config
from tinygrad_edu.backend import reference
from tinygrad_edu.backend.jit import Kernel, jit
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
    bernoulli_mask,
    concatenate,
    copy,
    copy_into,
    full,
    getitem,
    getitem_backward,
    is_view,
    matmul,
    max,
    max_backward,
    min,
    normal,
    reshape,
    sum_to,
    to_numpy,
    transpose,
    zeros,
    zeros_like,
)
from tinygrad_edu.errors import InputError

_FLOATS = (np.dtype(np.float32), np.dtype(np.float64))


_jit = jit
_Kernel = Kernel


def _floats(*arrays) -> bool:
    """Kernels take C-contiguous-able float arrays of one dtype; anything else goes to numpy."""
    dtype = arrays[0].dtype
    if dtype not in _FLOATS:
        return False
    for a in arrays:  # a plain loop: this runs on every call, and all(<generator>) is slower
        if type(a) is not np.ndarray or a.dtype != dtype:
            return False
    return True


def _big(*arrays) -> bool:
    """Large float arrays: worth a parallel kernel even for one simple step."""
    return arrays[0].size >= config.PARALLEL_MIN and _floats(*arrays)


def broadcast_to(x: np.ndarray, shape: tuple[int, ...]) -> np.ndarray:
    """x broadcast to ``shape``: a read-only view, or for a small result a new array (numpy's
    broadcast_to costs about 1.8 us, an empty array and a copy 0.4 us; and the engine would
    copy a view anyway before keeping it as a leaf's gradient)."""
    if len(shape) > 2 or (shape and shape[0] * (shape[1] if len(shape) == 2 else 1) > 4096):
        return np.broadcast_to(x, shape)
    out = np.empty(shape, dtype=x.dtype)
    np.copyto(out, x)
    return out


def _flat(x: np.ndarray) -> np.ndarray:
    """A C-contiguous 1-D view (or copy, if ``x`` is not contiguous)."""
    return x.reshape(-1) if x.flags.c_contiguous else np.ascontiguousarray(x).reshape(-1)


# ----- elementwise -----
# One kernel per arity, the operation chosen by a small integer code. The branch is the same for
# every element, so the CPU predicts it; one kernel instead of nine keeps compile time down.

_UNARY_CODES = {
    "neg": 0, "exp": 1, "log": 2, "sqrt": 3, "abs": 4, "relu": 5, "sigmoid": 6, "tanh": 7,
    "sign": 8,
}  # fmt: skip


@_jit(parallel=False)
def _sigmoid(v):
    """1 / (1 + e^-v) without overflow, and accurate in the negative tail (no cancellation)."""
    if v >= 0:
        return 1.0 / (1.0 + np.exp(-v))
    e = np.exp(v)
    return e / (1.0 + e)


@_Kernel
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
            out[i] = 0.0 if v <= 0 else v  # NaN stays NaN, as np.maximum(x, 0)
        elif code == 6:
            out[i] = _sigmoid(v)
        elif code == 7:
            out[i] = np.tanh(v)
        else:
            out[i] = np.sign(v)


_TRANSCENDENTAL = ("exp", "log", "tanh", "sigmoid")
_NUMPY_FIRST = ("exp", "log", "tanh", "neg", "sqrt", "abs", "sign")  # numpy below PARALLEL_MIN


_NUMPY_UNARY = reference._UNARY  # the ops that are one numpy ufunc


def unary(op: str, x: np.ndarray) -> np.ndarray:
    if op in _NUMPY_FIRST and type(x) is np.ndarray and x.size < config.PARALLEL_MIN:
        out = _NUMPY_UNARY[op](x)  # one numpy call, inlined: the hot path of small ops
        return out if type(out) is np.ndarray else np.asarray(out)
    if not _floats(x):
        return reference.unary(op, x)
    if op in _TRANSCENDENTAL:
        # numpy's exp/log/tanh are SIMD-vectorised and Numba's are not; only a small sigmoid
        # (several numpy calls) is faster as one scalar loop.
        if op != "sigmoid" or x.size > config.SCALAR_EXP_MAX:
            return reference.unary(op, x)
    elif x.size < config.PARALLEL_MIN:
        return reference.unary(op, x)
    out = np.empty(x.shape, dtype=x.dtype)
    _unary_kernel(x.size)(_UNARY_CODES[op], _flat(x), out.reshape(-1))
    return out


_BINARY_CODES = {"add": 0, "sub": 1, "mul": 2, "div": 3, "pow": 4}
_NUMPY_BINARY = reference._BINARY


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


@_Kernel
def _binary_same_shape(code, x, y, out):
    for i in prange(out.size):
        out[i] = _apply_binary(code, x[i], y[i])


@_Kernel
def _binary_scalar(code, x, s, scalar_first, out):
    for i in prange(out.size):
        if scalar_first:
            out[i] = _apply_binary(code, s, x[i])
        else:
            out[i] = _apply_binary(code, x[i], s)


@_Kernel
def _binary_broadcast(code, x, x_strides, y, y_strides, shape, out):
    """General broadcasting: element i of ``out`` is unravelled to a multi-index, and each input
    is read through its element strides, which are 0 along the axes it is broadcast over."""
    ndim = shape.size
    for i in prange(out.size):
        rest = np.int64(i)  # a copy: numba forbids writing to the prange index
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
    """Broadcasting add sub mul div pow; a parallel kernel for large float arrays, else numpy."""
    x_array, y_array = type(x) is np.ndarray, type(y) is np.ndarray
    big = (x_array and x.size >= config.PARALLEL_MIN) or (y_array and y.size >= config.PARALLEL_MIN)
    if not big:  # one numpy ufunc call (inlined: this is the hottest path of a small network)
        out = _NUMPY_BINARY[op](x, y)
        return out if type(out) is np.ndarray else np.asarray(out)
    code = _BINARY_CODES[op]
    if not y_array or not x_array:  # array (op) Python scalar, either way round
        array, scalar = (x, y) if x_array else (y, x)
        # A numpy float64 scalar would promote a float32 array (numpy's rule): leave it to numpy.
        if not _floats(array) or type(scalar) not in (float, int):
            return reference.binary(op, x, y)
        out = np.empty(array.shape, dtype=array.dtype)
        kernel = _binary_scalar(array.size)
        kernel(code, _flat(array), array.dtype.type(scalar), not x_array, out.reshape(-1))
        return out
    if not _floats(x, y):
        return reference.binary(op, x, y)
    if x.shape == y.shape:
        out = np.empty(x.shape, dtype=x.dtype)
        _binary_same_shape(x.size)(code, _flat(x), _flat(y), out.reshape(-1))
        return out
    shape = np.broadcast_shapes(x.shape, y.shape)
    out = np.empty(shape, dtype=x.dtype)
    x, y = np.ascontiguousarray(x), np.ascontiguousarray(y)
    _binary_broadcast(out.size)(
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
    # One numpy comparison plus a cast: memory-bound, nothing for a kernel to fuse.
    return reference.compare(op, x, y)


# ----- activations and their backward: one pass, no temporaries -----


@_Kernel
def _relu_backward_kernel(g, x, out):
    for i in prange(out.size):
        out[i] = g[i] if x[i] > 0 else 0.0


@_Kernel
def _sigmoid_backward_kernel(g, y, out):
    for i in prange(out.size):
        out[i] = g[i] * y[i] * (1 - y[i])


@_Kernel
def _tanh_backward_kernel(g, y, out):
    for i in prange(out.size):
        out[i] = g[i] * (1 - y[i] * y[i])


@_Kernel
def _leaky_relu_kernel(x, slope, out):
    for i in prange(out.size):
        out[i] = x[i] if x[i] > 0 else x[i] * slope


@_Kernel
def _leaky_relu_backward_kernel(g, x, slope, out):
    for i in prange(out.size):
        out[i] = g[i] if x[i] > 0 else g[i] * slope


@_Kernel
def _clip_kernel(x, lo, hi, out):
    for i in prange(out.size):
        v = x[i]
        if v < lo:
            v = lo
        if v > hi:
            v = hi
        out[i] = v


@_Kernel
def _clip_backward_kernel(g, x, lo, hi, out):
    for i in prange(out.size):
        out[i] = g[i] if lo <= x[i] <= hi else 0.0


def _elementwise(kernel, reference_fn, g, x, *scalars):
    """Run a two-input elementwise kernel, or the reference when the inputs do not suit it.
    (Written for a short path: on small arrays this wrapper costs more than the kernel.)"""
    if g.size < config.ELEMENTWISE_MIN or g.shape != x.shape or not _floats(g, x):
        return reference_fn(g, x, *scalars)
    out = np.empty_like(g, order="C")
    build = kernel(g.size)
    if scalars:
        cast = g.dtype.type
        build(_flat(g), _flat(x), *[cast(s) for s in scalars], out.reshape(-1))
    else:
        build(_flat(g), _flat(x), out.reshape(-1))
    return out


def relu_backward(g: np.ndarray, x: np.ndarray) -> np.ndarray:
    return _elementwise(_relu_backward_kernel, reference.relu_backward, g, x)


def sigmoid_backward(g: np.ndarray, y: np.ndarray) -> np.ndarray:
    return _elementwise(_sigmoid_backward_kernel, reference.sigmoid_backward, g, y)


def tanh_backward(g: np.ndarray, y: np.ndarray) -> np.ndarray:
    return _elementwise(_tanh_backward_kernel, reference.tanh_backward, g, y)


def leaky_relu_backward(g: np.ndarray, x: np.ndarray, slope: float) -> np.ndarray:
    return _elementwise(_leaky_relu_backward_kernel, reference.leaky_relu_backward, g, x, slope)


def leaky_relu(x: np.ndarray, slope: float) -> np.ndarray:
    if not _floats(x):
        return reference.leaky_relu(x, slope)
    out = np.empty(x.shape, dtype=x.dtype)
    _leaky_relu_kernel(x.size)(_flat(x), x.dtype.type(slope), out.reshape(-1))
    return out


def clip(x: np.ndarray, lo: float | None, hi: float | None) -> np.ndarray:
    if not _big(x) or lo is None or hi is None:
        return reference.clip(x, lo, hi)
    out = np.empty(x.shape, dtype=x.dtype)
    _clip_kernel(x.size)(_flat(x), x.dtype.type(lo), x.dtype.type(hi), out.reshape(-1))
    return out


def clip_backward(g: np.ndarray, x: np.ndarray, lo: float | None, hi: float | None):
    if lo is None or hi is None:
        return reference.clip_backward(g, x, lo, hi)
    return _elementwise(_clip_backward_kernel, reference.clip_backward, g, x, lo, hi)


# ----- reductions -----
# A reduction over the leading or trailing axes of a contiguous array is a reduction over one axis
# of a 2-D view. Threads split the axis that is kept, so no two threads write the same output.


@_Kernel
def _sum_rows_kernel(x, out):
    """out[i] = sum_j x[i, j]; each thread takes whole rows."""
    for i in prange(x.shape[0]):
        acc = 0.0
        for j in range(x.shape[1]):
            acc += x[i, j]
        out[i] = acc


@_Kernel
def _sum_cols_kernel(x, out):
    """out[j] = sum_i x[i, j]; threads take blocks of columns and scan rows in memory order."""
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
    if not _big(x) or not x.flags.c_contiguous:
        return reference.sum(x, axis, keepdims)
    axes = tuple(range(x.ndim)) if axis is None else tuple(sorted(axis))
    view, over_rows = _as_2d_reduction(x, axes)
    # A full reduction stays with numpy's pairwise sum, which is more accurate than one
    # accumulator per thread for very long vectors.
    if view is None or len(axes) == x.ndim:
        return reference.sum(x, axis, keepdims)
    if over_rows:
        out = np.empty(view.shape[0], dtype=x.dtype)
        _sum_rows_kernel(x.size)(view, out)
    else:
        out = np.empty(view.shape[1], dtype=x.dtype)
        _sum_cols_kernel(x.size)(view, out)
    kept = tuple(1 if d in axes else n for d, n in enumerate(x.shape))
    dropped = tuple(n for d, n in enumerate(x.shape) if d not in axes)
    return out.reshape(kept if keepdims else dropped)


# ----- softmax family, row by row over the last axis -----
# Each prange iteration owns one row: rows are independent, so there are no races.


@_Kernel
def _log_softmax_rows(x, out):
    for i in prange(x.shape[0]):
        m = x[i, 0]
        for j in range(1, x.shape[1]):
            if x[i, j] > m or x[i, j] != x[i, j]:  # the max, or NaN if there is one
                m = x[i, j]
        s = 0.0
        for j in range(x.shape[1]):
            s += np.exp(x[i, j] - m)
        lse = m + np.log(s)
        for j in range(x.shape[1]):
            out[i, j] = x[i, j] - lse


@_Kernel
def _softmax_backward_rows(g, y, out):
    """dx = y * (g - sum(g * y)) per row."""
    for i in prange(y.shape[0]):
        dot = 0.0
        for j in range(y.shape[1]):
            dot += g[i, j] * y[i, j]
        for j in range(y.shape[1]):
            out[i, j] = y[i, j] * (g[i, j] - dot)


@_Kernel
def _log_softmax_backward_rows(g, y, out):
    """dx = g - exp(y) * sum(g) per row."""
    for i in prange(y.shape[0]):
        total = 0.0
        for j in range(y.shape[1]):
            total += g[i, j]
        for j in range(y.shape[1]):
            out[i, j] = g[i, j] - np.exp(y[i, j]) * total


@_Kernel
def _cross_entropy_rows(logits, labels, losses, probs):
    """losses[i] = logsumexp(z_i) - z_i[label_i]; probs[i] = softmax(z_i), saved for backward.
    Returns the number of labels outside [0, C) (their rows are skipped) and the sum of the
    losses (accumulated in float64)."""
    bad = 0
    total = 0.0
    for i in prange(logits.shape[0]):
        if labels[i] < 0 or labels[i] >= logits.shape[1]:
            bad += 1  # a prange reduction: Numba gives each thread its own counter
            continue
        m = logits[i, 0]
        for j in range(1, logits.shape[1]):
            if logits[i, j] > m or logits[i, j] != logits[i, j]:
                m = logits[i, j]
        s = 0.0
        for j in range(logits.shape[1]):
            e = np.exp(logits[i, j] - m)
            probs[i, j] = e
            s += e
        for j in range(logits.shape[1]):
            probs[i, j] /= s
        losses[i] = m + np.log(s) - logits[i, labels[i]]
        total += losses[i]  # a prange reduction too
    return bad, total


@_Kernel
def _cross_entropy_backward_rows(g_rows, scale, probs, labels, out):
    """dz_i = (softmax(z_i) - onehot(label_i)) * g_i * scale; a g_rows of length 1 is shared by
    all rows."""
    shared = g_rows.shape[0] != probs.shape[0]
    for i in prange(probs.shape[0]):
        g = (g_rows[0] if shared else g_rows[i]) * scale
        for j in range(probs.shape[1]):
            out[i, j] = probs[i, j] * g
        out[i, labels[i]] -= g


def _rows(x: np.ndarray, axis: int) -> np.ndarray | None:
    """A 2-D (rows, last axis) view when ``axis`` is the last, non-empty axis of a float array."""
    if x.ndim == 0 or axis != x.ndim - 1 or x.shape[-1] == 0 or x.size == 0 or not _floats(x):
        return None
    return np.ascontiguousarray(x).reshape(-1, x.shape[-1])


def log_softmax(x: np.ndarray, axis: int) -> np.ndarray:
    rows = _rows(x, axis)
    if rows is None:
        return reference.log_softmax(x, axis)
    out = np.empty(rows.shape, dtype=x.dtype)
    _log_softmax_rows(x.size)(rows, out)
    return out.reshape(x.shape)


def softmax(x: np.ndarray, axis: int) -> np.ndarray:
    if _rows(x, axis) is None:
        return reference.softmax(x, axis)
    out = log_softmax(x, axis)  # then exp in place: one more pass, no new array
    flat = out.reshape(-1)
    _unary_kernel(flat.size)(_UNARY_CODES["exp"], flat, flat)  # in place
    return out


def softmax_backward(g: np.ndarray, y: np.ndarray, axis: int) -> np.ndarray:
    rows = _rows(y, axis)
    if rows is None or g.shape != y.shape or not _floats(g, y):
        return reference.softmax_backward(g, y, axis)
    out = np.empty(rows.shape, dtype=y.dtype)
    _softmax_backward_rows(y.size)(np.ascontiguousarray(g).reshape(rows.shape), rows, out)
    return out.reshape(y.shape)


def log_softmax_backward(g: np.ndarray, y: np.ndarray, axis: int) -> np.ndarray:
    rows = _rows(y, axis)
    if rows is None or g.shape != y.shape or not _floats(g, y):
        return reference.log_softmax_backward(g, y, axis)
    out = np.empty(rows.shape, dtype=y.dtype)
    _log_softmax_backward_rows(y.size)(np.ascontiguousarray(g).reshape(rows.shape), rows, out)
    return out.reshape(y.shape)


def cross_entropy_forward(logits: np.ndarray, labels: np.ndarray, reduction: str = "none"):
    rows = _rows(logits, 1) if logits.ndim == 2 else None
    if rows is None or labels.dtype != np.int64 or labels.shape != (logits.shape[0],):
        # checks, and says what is wrong
        return reference.cross_entropy_forward(logits, labels, reduction)
    losses = np.empty(logits.shape[0], dtype=logits.dtype)
    probs = np.empty(logits.shape, dtype=logits.dtype)
    bad, total = _cross_entropy_rows(logits.size)(rows, np.ascontiguousarray(labels), losses, probs)
    if bad:
        reference.check_labels(logits, labels)  # raises, naming the bad label
    if reduction == "none":
        return losses, probs
    if reduction == "mean":
        total /= logits.shape[0]  # not 0: _rows sent empty logits to the reference
    return np.array(total, dtype=logits.dtype), probs


def cross_entropy_backward(
    g: np.ndarray, probs: np.ndarray, labels: np.ndarray, reduction: str = "none"
) -> np.ndarray:
    if not _floats(probs) or labels.dtype != np.int64 or probs.ndim != 2 or not probs.size:
        return reference.cross_entropy_backward(g, probs, labels, reduction)
    out = np.empty(probs.shape, dtype=probs.dtype)
    g_rows = np.ascontiguousarray(g, dtype=probs.dtype).reshape(-1)
    scale = 1.0 / probs.shape[0] if reduction == "mean" else 1.0
    _cross_entropy_backward_rows(probs.size)(
        g_rows, scale, probs, np.ascontiguousarray(labels), out
    )
    return out


# ----- a whole linear layer: BLAS for the product, one fused pass for the rest -----

_ACTIVATION_CODES = {None: 0, "relu": 1, "sigmoid": 2, "tanh": 3}
_NO_BIAS = {dtype: np.zeros(1, dtype) for dtype in _FLOATS}  # stand-ins the kernels never read


@_jit(parallel=False)
def _activate(v, code):
    """act(v) for an activation code of ``_ACTIVATION_CODES``."""
    if code == 1:
        return 0.0 if v <= 0 else v
    if code == 2:
        return _sigmoid(v)
    if code == 3:
        return np.tanh(v)
    return v


@_Kernel
def _bias_activation_rows(y, b, has_bias, code):
    """In place: y[i, j] = act(y[i, j] + b[j]); each iteration owns one row."""
    for i in prange(y.shape[0]):
        for j in range(y.shape[1]):
            y[i, j] = _activate(y[i, j] + b[j] if has_bias else y[i, j], code)


# "reassoc" lets LLVM split each dot product into several SIMD partial sums (BLAS sums in its own
# order too); "contract" allows fused multiply-adds. NaN and inf keep their meaning.
@_jit(parallel=False, fastmath={"reassoc", "contract"})
def _linear_small(x, w, b, has_bias, code, y):
    """y = act(x W^T + b) for small layers (see ``linear_forward``).

    Each product y[i, j] is the dot product of row i of x and row j of W, both contiguous. They
    are computed in blocks of 4 rows x 2 columns: each step of k loads 4 + 2 numbers for 8
    multiply-adds, and the 8 sums stay in registers (AVX2 has 16; 4 x 3 would spill). The last
    block of a row or column may overlap the one before it and compute some sums twice, which
    is cheaper than remainder loops and writes the same values. Each sum starts from its first
    term, which gives it the arrays' float type. Bias and activation follow in a second pass
    (measured faster than inside the first).
    """
    n, k_dim = x.shape
    m = w.shape[0]
    if n < 4 or m < 2:  # too small for one block: one dot product at a time
        for i in range(n):
            for j in range(m):
                s = x[i, 0] * w[j, 0]
                for k in range(1, k_dim):
                    s += x[i, k] * w[j, k]
                y[i, j] = s
    else:
        for i_block in range(0, n, 4):
            i = i_block if i_block + 4 <= n else n - 4  # NOTE: min() is a kernel in this file
            for j_block in range(0, m, 2):
                j = j_block if j_block + 2 <= m else m - 2
                u, v = w[j, 0], w[j + 1, 0]
                x0, x1, x2, x3 = x[i, 0], x[i + 1, 0], x[i + 2, 0], x[i + 3, 0]
                a0, a1, a2, a3 = x0 * u, x1 * u, x2 * u, x3 * u
                b0, b1, b2, b3 = x0 * v, x1 * v, x2 * v, x3 * v
                for k in range(1, k_dim):
                    u, v = w[j, k], w[j + 1, k]
                    x0, x1, x2, x3 = x[i, k], x[i + 1, k], x[i + 2, k], x[i + 3, k]
                    a0 += x0 * u
                    a1 += x1 * u
                    a2 += x2 * u
                    a3 += x3 * u
                    b0 += x0 * v
                    b1 += x1 * v
                    b2 += x2 * v
                    b3 += x3 * v
                y[i, j], y[i + 1, j], y[i + 2, j], y[i + 3, j] = a0, a1, a2, a3
                y[i, j + 1], y[i + 1, j + 1], y[i + 2, j + 1], y[i + 3, j + 1] = b0, b1, b2, b3
    for i in range(n):
        for j in range(m):
            y[i, j] = _activate(y[i, j] + b[j] if has_bias else y[i, j], code)


# Measured (784-256-256-10 sizes and up): the one-pass dZ-and-db kernel beats the elementwise
# kernel plus numpy's column sum at every size below the parallel threshold (0.5-0.7x of the
# time). Without an activation there is only db to compute, and numpy's SIMD column sum wins
# from about this many elements.
_DB_ONLY_MAX = 8192


@_jit(parallel=False)
def _dz_and_db(g, y, code, dz, db):
    """dZ = G act'(Z), written with the layer's output Y = act(Z), and db = the column sums of dZ,
    in one pass over G (for code 0, no activation, dZ is G itself and only db is written)."""
    db[:] = 0.0
    for i in range(g.shape[0]):
        for j in range(g.shape[1]):
            v = g[i, j]
            if code == 1:
                v = v if y[i, j] > 0 else 0.0
            elif code == 2:
                v = v * y[i, j] * (1 - y[i, j])
            elif code == 3:
                v = v * (1 - y[i, j] * y[i, j])
            if code != 0:
                dz[i, j] = v
            db[j] += v


_ACTIVATION_BACKWARD = {
    "relu": lambda g, y: relu_backward(g, y),  # relu'(z) = [z > 0] = [y > 0]
    "sigmoid": lambda g, y: sigmoid_backward(g, y),
    "tanh": lambda g, y: tanh_backward(g, y),
}


def linear_forward(x: np.ndarray, w: np.ndarray, b: np.ndarray | None, activation=None):
    if x.ndim != 2 or not (_floats(x, w) if b is None else _floats(x, w, b)):
        return reference.linear_forward(x, w, b, activation)
    (n, k_dim), m = x.shape, w.shape[0]
    bias = _NO_BIAS[x.dtype] if b is None else b
    if n * m <= config.SMALL_LINEAR_MAX and (k_dim >= 256 or n * m <= 256) and k_dim:
        # Small layers (see config.SMALL_LINEAR_MAX): one kernel call for product, bias and
        # activation. (k_dim > 0: the kernel reads x[i, 0].)
        y = np.empty((n, m), dtype=x.dtype)
        _linear_small(x, w, bias, b is not None, _ACTIVATION_CODES[activation], y)
        return y
    y = x @ w.T  # BLAS reads w transposed in place: no copy
    if b is None and activation is None:
        return y
    if activation in ("sigmoid", "tanh") and y.size > config.SCALAR_EXP_MAX:
        # Large: add the bias in the kernel, then numpy's vectorised exp/tanh (see unary).
        _bias_activation_rows(y.size)(y, bias, b is not None, _ACTIVATION_CODES[None])
        return reference.unary(activation, y)
    _bias_activation_rows(y.size)(y, bias, b is not None, _ACTIVATION_CODES[activation])
    return y


def linear_backward(g, x, w, need_x: bool, need_w: bool, need_b: bool, activation=None, y=None):
    if g.ndim != 2 or not _floats(g, x, w) or (activation is not None and not _floats(g, y)):
        return reference.linear_backward(g, x, w, need_x, need_w, need_b, activation, y)
    one_pass_max = _DB_ONLY_MAX if activation is None else config.PARALLEL_MIN
    if need_b and g.size < one_pass_max and g.flags.c_contiguous:
        # dZ and db in one serial pass, instead of up to four numpy calls (or two passes).
        dz = g if activation is None else np.empty(g.shape, dtype=g.dtype)
        db = np.empty(g.shape[1], dtype=g.dtype)
        y_or_g = g if activation is None else np.ascontiguousarray(y)
        _dz_and_db(g, y_or_g, _ACTIVATION_CODES[activation], dz, db)
        dx = dz @ w if need_x else None
        dw = dz.T @ x if need_w else None
        return dx, dw, db
    # Large: dZ in one elementwise pass (parallel build); then BLAS for the products and numpy's
    # vectorised column sum for db.
    dz = g if activation is None else _ACTIVATION_BACKWARD[activation](g, y)
    dx = dz @ w if need_x else None
    dw = dz.T @ x if need_w else None
    db = dz.sum(axis=0) if need_b else None
    return dx, dw, db


# ----- matmul, the teaching version -----

TILE = 64  # a 64x64 float64 tile is 32 KiB: three of them stay in a typical L2 cache


@_jit(parallel=True)
def _matmul_blocked_kernel(a, b, out):
    """out = a @ b, tile by tile. Threads split the rows of ``out`` into bands of TILE rows, so
    each thread writes its own band only. Within a band, the k-loop walks tiles of ``a`` and
    ``b`` that fit in cache, and the innermost loop runs along a row of ``b`` and ``out``
    (contiguous memory), which LLVM vectorises."""
    n, kdim = a.shape
    m = b.shape[1]
    for band in prange((n + TILE - 1) // TILE):
        i0 = band * TILE
        i1 = i0 + TILE if i0 + TILE < n else n  # NOTE: min/max/sum are kernels here
        for i in range(i0, i1):
            for j in range(m):
                out[i, j] = 0.0
        for k0 in range(0, kdim, TILE):
            k1 = k0 + TILE if k0 + TILE < kdim else kdim
            for j0 in range(0, m, TILE):
                j1 = j0 + TILE if j0 + TILE < m else m
                for i in range(i0, i1):
                    for k in range(k0, k1):
                        aik = a[i, k]
                        for j in range(j0, j1):
                            out[i, j] += aik * b[k, j]


def matmul_blocked(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """2-D ``a @ b`` with the blocked Numba kernel (for teaching and benchmarks)."""
    if a.ndim != 2 or b.ndim != 2 or a.shape[1] != b.shape[0]:
        raise InputError(f"matmul_blocked: shapes {a.shape} and {b.shape} do not align")
    dtype = np.result_type(a, b)
    if dtype not in _FLOATS:
        dtype = np.dtype(np.float64)
    out = np.empty((a.shape[0], b.shape[1]), dtype=dtype)
    config.prepare_threads()
    _matmul_blocked_kernel(
        np.ascontiguousarray(a, dtype=dtype), np.ascontiguousarray(b, dtype=dtype), out
    )
    return out
