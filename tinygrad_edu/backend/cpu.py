"""The CPU backend: numpy where one numpy call already does the job, else a Numba loop built
from the rules of ``backend/rules.py``, in its serial or its parallel build.

Every public function here has the name and meaning of its twin in ``reference.py``. Which of
the three runs is decided in one place, ``_build`` below, by the kind of rule and the size
(measured on this project's 2-core machines; the numbers are in ``config.py``):

- one simple step on a small array (``x + y`` on 32x15): numpy's single ufunc call is as cheap as
  anything, so the reference implementation runs;
- a fused rule (an activation's backward, softmax, cross-entropy, ...): the serial Numba build,
  one pass instead of numpy's several calls and temporaries (calling a serial Numba kernel costs
  about 0.2 us, like a numpy ufunc);
- anything with at least ``config.PARALLEL_MIN`` elements: the parallel build, whose ``prange``
  loop is split across cores (waking the thread pool costs about 5 us, so it only pays here).

Matrix products always go to numpy's BLAS (``np.matmul``): it is the fastest path at every size
measured (see ``benchmarks/``), except the small layers of ``rules.linear_small``.
``matmul_blocked`` below is the readable cache-blocked Numba kernel that shows what BLAS does; it
is tested and benchmarked, and used for nothing else.
"""

from __future__ import annotations

import numpy as np
from numba import prange

from tinygrad_edu import config
from tinygrad_edu.backend import reference, rules
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
    compare,
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
    where,
    zeros,
    zeros_like,
)
from tinygrad_edu.errors import InputError

_FLOATS = (np.dtype(np.float32), np.dtype(np.float64))


# ----- where a call runs: numpy, the serial build or the parallel build -----
# A rule is of one of four kinds, by what numpy would do in its place:
UFUNC = "ufunc"  # one numpy ufunc: as fast as a loop until threads pay off
VECTOR_MATH = "vector math"  # numpy's SIMD exp/log/tanh beat a loop of scalar libm calls
FUSED = "fused"  # several numpy calls and temporaries; a loop wins from ELEMENTWISE_MIN
FUSED_EXP = "fused exp"  # several numpy calls around an exp: a loop wins up to SCALAR_EXP_MAX
ROWS = "rows"  # a per-row rule (softmax, cross-entropy): a loop always wins


def _build(kernel: Kernel, kind: str, n: int):
    """The build of ``kernel`` to run over ``n`` elements, or None where numpy is faster."""
    if kind is UFUNC:
        use_loop = n >= config.PARALLEL_MIN
    elif kind is FUSED:
        use_loop = n >= config.ELEMENTWISE_MIN
    elif kind is FUSED_EXP:
        use_loop = n <= config.SCALAR_EXP_MAX
    else:
        use_loop = kind is ROWS
    return kernel(n) if use_loop else None


def _floats(*arrays) -> bool:
    """Kernels take C-contiguous-able float arrays of one dtype; anything else goes to numpy."""
    dtype = arrays[0].dtype
    if dtype not in _FLOATS:
        return False
    for a in arrays:  # a plain loop: this runs on every call, and all(<generator>) is slower
        if type(a) is not np.ndarray or a.dtype != dtype:
            return False
    return True


def _flat(x: np.ndarray) -> np.ndarray:
    """A C-contiguous 1-D view (or copy, if ``x`` is not contiguous)."""
    return x.reshape(-1) if x.flags.c_contiguous else np.ascontiguousarray(x).reshape(-1)


def broadcast_to(x: np.ndarray, shape: tuple[int, ...]) -> np.ndarray:
    """x broadcast to ``shape``: a read-only view, or for a small result (up to
    ``config.BROADCAST_COPY_MAX`` elements) a new array, which is cheaper."""
    size = shape[0] * (shape[1] if len(shape) == 2 else 1) if shape else 1
    if len(shape) > 2 or size > config.BROADCAST_COPY_MAX:
        return np.broadcast_to(x, shape)
    out = np.empty(shape, dtype=x.dtype)
    np.copyto(out, x)
    return out


# ----- elementwise -----

_NUMPY_UNARY = reference.UNARY_UFUNCS  # the ops that are one numpy ufunc
_NUMPY_BINARY = reference.BINARY_UFUNCS

_UNARY_KIND = {
    "neg": UFUNC, "sqrt": UFUNC, "abs": UFUNC, "sign": UFUNC, "relu": UFUNC, "clip": UFUNC,
    "exp": VECTOR_MATH, "log": VECTOR_MATH, "tanh": VECTOR_MATH,
    "sigmoid": FUSED_EXP, "leaky_relu": FUSED,
    "square": UFUNC, "reciprocal": UFUNC,
    "sin": VECTOR_MATH, "cos": VECTOR_MATH, "log1p": VECTOR_MATH, "expm1": VECTOR_MATH,
}  # fmt: skip


def unary(op: str, x: np.ndarray, a: float | None = 0.0, b: float | None = 0.0) -> np.ndarray:
    """See ``reference.unary``."""
    ufunc = _NUMPY_UNARY.get(op)
    if ufunc is not None and type(x) is np.ndarray and x.size < config.PARALLEL_MIN:
        # What _build decides for a small ufunc or vector-math op, inlined: the hot path.
        out = ufunc(x)
        return out if type(out) is np.ndarray else np.asarray(out)
    kind = _UNARY_KIND.get(op)
    if kind is not None and type(x) is np.ndarray and x.dtype in _FLOATS:
        build = _build(rules.unary_loop, kind, x.size)
        if build is not None and (op != "clip" or a is not None or b is not None):
            if op == "clip":
                a, b = reference.clip_bounds(a, b)
            out = np.empty(x.shape, dtype=x.dtype)
            cast = x.dtype.type
            build(rules.UNARY_CODES[op], _flat(x), cast(a), cast(b), out.reshape(-1))
            return out
    return reference.unary(op, x, a, b)


def binary(op: str, x, y) -> np.ndarray:
    """Broadcasting add sub mul div pow; a parallel loop for large float arrays, else numpy."""
    x_array, y_array = type(x) is np.ndarray, type(y) is np.ndarray
    big = (x_array and x.size >= config.PARALLEL_MIN) or (y_array and y.size >= config.PARALLEL_MIN)
    if not big:  # one numpy ufunc call (inlined: this is the hottest path of a small network)
        out = _NUMPY_BINARY[op](x, y)
        return out if type(out) is np.ndarray else np.asarray(out)
    code = rules.BINARY_CODES[op]
    if not y_array or not x_array:  # array (op) Python scalar, either way round
        array, scalar = (x, y) if x_array else (y, x)
        # A numpy float64 scalar would promote a float32 array (numpy's rule): leave it to numpy.
        if not _floats(array) or type(scalar) not in (float, int):
            return reference.binary(op, x, y)
        out = np.empty(array.shape, dtype=array.dtype)
        rules.binary_scalar_loop(array.size)(
            code, _flat(array), array.dtype.type(scalar), not x_array, out.reshape(-1)
        )
        return out
    if not _floats(x, y):
        return reference.binary(op, x, y)
    if x.shape == y.shape:
        out = np.empty(x.shape, dtype=x.dtype)
        rules.binary_loop(x.size)(code, _flat(x), _flat(y), out.reshape(-1))
        return out
    shape = np.broadcast_shapes(x.shape, y.shape)
    out = np.empty(shape, dtype=x.dtype)
    x, y = np.ascontiguousarray(x), np.ascontiguousarray(y)
    rules.binary_broadcast_loop(out.size)(
        code,
        x.reshape(-1),
        _broadcast_strides(x, shape),
        y.reshape(-1),
        _broadcast_strides(y, shape),
        np.array(shape, dtype=np.int64),
        out.reshape(-1),
    )
    return out


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


def activation_backward(op: str, g: np.ndarray, saved: np.ndarray, a=0.0, b=0.0) -> np.ndarray:
    """See ``reference.activation_backward``: one pass, no temporaries, from ELEMENTWISE_MIN."""
    build = _build(rules.backward_loop, FUSED, g.size)  # first: small arrays go to numpy
    if build is not None and g.shape == saved.shape and op in rules.BACKWARD_CODES:
        if _floats(g, saved):
            if op == "clip":
                if a is None and b is None:  # no bounds: the gradient passes, NaN included
                    return reference.activation_backward(op, g, saved, a, b)
                a, b = reference.clip_bounds(a, b)
            out = np.empty(g.shape, dtype=g.dtype)
            cast = g.dtype.type
            build(
                rules.BACKWARD_CODES[op], _flat(g), _flat(saved), cast(a), cast(b), out.reshape(-1)
            )
            return out
    return reference.activation_backward(op, g, saved, a, b)


# ----- reductions -----
# A reduction over the leading or trailing axes of a contiguous array is a reduction over one axis
# of a 2-D view. Threads split the axis that is kept, so no two threads write the same output.


@Kernel
def _sum_rows_kernel(x, out):
    """out[i] = sum_j x[i, j]; each thread takes whole rows."""
    for i in prange(x.shape[0]):
        acc = 0.0
        for j in range(x.shape[1]):
            acc += x[i, j]
        out[i] = acc


@Kernel
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
    if x.size < config.PARALLEL_MIN or not _floats(x) or not x.flags.c_contiguous:
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


def _rows(x: np.ndarray, axis: int) -> np.ndarray | None:
    """A flat C-contiguous copy or view when ``axis`` is the last, non-empty axis of a float
    array (rows of ``x.shape[-1]`` entries); else None (the reference handles it)."""
    if x.ndim == 0 or axis != x.ndim - 1 or x.size == 0 or not _floats(x):
        return None
    return _flat(x)


def softmax(x: np.ndarray, axis: int, log: bool = False) -> np.ndarray:
    """See ``reference.softmax``."""
    rows = _rows(x, axis)
    if rows is None:
        return reference.softmax(x, axis, log)
    out = np.empty(x.shape, dtype=x.dtype)
    rules.softmax_rows_loop(x.size)(log, rows, out.reshape(-1), x.shape[-1])
    return out


def softmax_backward(g: np.ndarray, y: np.ndarray, axis: int, log: bool = False) -> np.ndarray:
    """See ``reference.softmax_backward``."""
    rows = _rows(y, axis)
    if rows is None or g.shape != y.shape or not _floats(g, y):
        return reference.softmax_backward(g, y, axis, log)
    out = np.empty(y.shape, dtype=y.dtype)
    rules.softmax_backward_rows_loop(y.size)(log, _flat(g), rows, out.reshape(-1), y.shape[-1])
    return out


def cross_entropy_forward(logits: np.ndarray, labels: np.ndarray, reduction: str = "none"):
    """See ``reference.cross_entropy_forward``."""
    rows = _rows(logits, 1) if logits.ndim == 2 else None
    if rows is None or labels.dtype != np.int64 or labels.shape != (logits.shape[0],):
        # checks, and says what is wrong
        return reference.cross_entropy_forward(logits, labels, reduction)
    losses = np.empty(logits.shape[0], dtype=logits.dtype)
    probs = np.empty(logits.shape, dtype=logits.dtype)
    loop = rules.cross_entropy_rows_loop(logits.size)
    bad, total = loop(rows, np.ascontiguousarray(labels), losses, probs.reshape(-1))
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
    """See ``reference.cross_entropy_backward``."""
    if not _floats(probs) or labels.dtype != np.int64 or probs.ndim != 2 or not probs.size:
        return reference.cross_entropy_backward(g, probs, labels, reduction)
    out = np.empty(probs.shape, dtype=probs.dtype)
    g_rows = np.ascontiguousarray(g, dtype=probs.dtype).reshape(-1)
    scale = 1.0 / probs.shape[0] if reduction == "mean" else 1.0
    rules.cross_entropy_backward_loop(probs.size)(
        g_rows, scale, _flat(probs), np.ascontiguousarray(labels), out.reshape(-1)
    )
    return out


# ----- a whole linear layer: BLAS for the product, one fused pass for the rest -----

_NO_BIAS = {dtype: np.zeros(1, dtype) for dtype in _FLOATS}  # stand-ins the kernels never read


def linear_forward(x: np.ndarray, w: np.ndarray, b: np.ndarray | None, activation=None):
    """See ``reference.linear_forward``."""
    if x.ndim != 2 or not (_floats(x, w) if b is None else _floats(x, w, b)):
        return reference.linear_forward(x, w, b, activation)
    (n, k_dim), m = x.shape, w.shape[0]
    bias = _NO_BIAS[x.dtype] if b is None else b
    code = rules.FUSED_ACTIVATIONS[activation][0]
    if n * m <= config.SMALL_LINEAR_MAX and (k_dim >= 256 or n * m <= 256) and k_dim:
        # Small layers (see config.SMALL_LINEAR_MAX): one kernel call for product, bias and
        # activation. (k_dim > 0: the kernel reads x[i, 0].)
        y = np.empty((n, m), dtype=x.dtype)
        rules.linear_small(x, w, bias, b is not None, code, y)
        return y
    y = x @ w.T  # BLAS reads w transposed in place: no copy
    if b is None and activation is None:
        return y
    if activation in ("sigmoid", "tanh") and y.size > config.SCALAR_EXP_MAX:
        # Large: add the bias in the kernel, then numpy's vectorised exp/tanh (see unary).
        rules.bias_activation_rows(y.size)(y, bias, b is not None, rules.IDENTITY)
        return reference.unary(activation, y)
    rules.bias_activation_rows(y.size)(y, bias, b is not None, code)
    return y


def linear_backward(g, x, w, need_x: bool, need_w: bool, need_b: bool, activation=None, y=None):
    """See ``reference.linear_backward``."""
    if g.ndim != 2 or not _floats(g, x, w) or (activation is not None and not _floats(g, y)):
        return reference.linear_backward(g, x, w, need_x, need_w, need_b, activation, y)
    one_pass_max = config.DB_ONLY_MAX if activation is None else config.PARALLEL_MIN
    if need_b and g.size < one_pass_max and g.flags.c_contiguous:
        # dZ and db in one serial pass, instead of up to four numpy calls (or two passes):
        # measured 0.5-0.7x of their time below the parallel threshold (config.DB_ONLY_MAX).
        dz = g if activation is None else np.empty(g.shape, dtype=g.dtype)
        db = np.empty(g.shape[1], dtype=g.dtype)
        y_or_g = g if activation is None else np.ascontiguousarray(y)
        rules.dz_and_db(g, y_or_g, rules.FUSED_ACTIVATIONS[activation][1], dz, db)
        dx = dz @ w if need_x else None
        dw = dz.T @ x if need_w else None
        return dx, dw, db
    # Large: dZ in one elementwise pass (parallel build); then BLAS for the products and numpy's
    # vectorised column sum for db.
    dz = g if activation is None else activation_backward(activation, g, y)
    dx = dz @ w if need_x else None
    dw = dz.T @ x if need_w else None
    db = dz.sum(axis=0) if need_b else None
    return dx, dw, db


# ----- matmul, the teaching version -----

TILE = config.BLOCKED_MATMUL_TILE


@jit(parallel=True)
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
