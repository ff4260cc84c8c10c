"""The reference backend: every kernel in plain numpy.

This module is the executable specification of the kernel interface (see ``backend/__init__.py``).
It is short on purpose: each function says in one or two numpy lines what the Numba and CUDA
kernels compute faster. Tests compare every other backend with it.

Conventions: arrays in, arrays out (never numpy scalars: 0-d results are wrapped), inputs are
never modified, and numpy's floating-point rules hold (1/0 is inf, log(0) is -inf, NaN stays).
"""

from __future__ import annotations

import numpy as np

from tinygrad_edu.backend.optim_reference import (  # noqa: F401  (part of the interface)
    adadelta_step,
    adagrad_step,
    adam_step,
    rmsprop_step,
    sgd_step,
)
from tinygrad_edu.errors import InputError
from tinygrad_edu.random import get_rng

Shape = tuple[int, ...]
Axis = tuple[int, ...] | None


def _arr(x) -> np.ndarray:
    """numpy returns scalars for 0-d results; the interface always returns arrays."""
    return x if type(x) is np.ndarray else np.asarray(x)


# ----- storage -----


def asarray(data: np.ndarray) -> np.ndarray:
    """Host numpy array -> this backend's array (here: the same array)."""
    return data


def to_numpy(x: np.ndarray) -> np.ndarray:
    return x


def zeros(shape: Shape, dtype) -> np.ndarray:
    return np.zeros(shape, dtype=dtype)


def full(shape: Shape, value: float, dtype) -> np.ndarray:
    return np.full(shape, value, dtype=dtype)


def zeros_like(x: np.ndarray) -> np.ndarray:
    return np.zeros_like(x)


def copy(x: np.ndarray) -> np.ndarray:
    return np.array(x, copy=True, order="C")


def astype(x: np.ndarray, dtype) -> np.ndarray:
    return x.astype(dtype)


def copy_into(dst: np.ndarray, src: np.ndarray) -> None:
    """Write ``src``'s values into ``dst``'s memory (same shape), converting to ``dst``'s dtype."""
    np.copyto(dst, src, casting="unsafe")


def is_view(x: np.ndarray) -> bool:
    """True when ``x`` may share memory with another array (the engine copies such gradients)."""
    return x.base is not None


# ----- elementwise -----

UNARY_UFUNCS = {
    "neg": np.negative,
    "exp": np.exp,
    "log": np.log,
    "sqrt": np.sqrt,
    "abs": np.abs,
    "sign": np.sign,
    "tanh": np.tanh,
    "sin": np.sin,
    "cos": np.cos,
    "log1p": np.log1p,
    "expm1": np.expm1,
    "square": np.square,
    "reciprocal": np.reciprocal,
}
UNARY_OPS = (*UNARY_UFUNCS, "relu", "sigmoid", "leaky_relu", "clip")


def clip_bounds(lo: float | None, hi: float | None) -> tuple[float, float]:
    """clip's bounds with None (no bound on that side) as -inf / inf."""
    return -np.inf if lo is None else lo, np.inf if hi is None else hi


def unary(op: str, x: np.ndarray, a: float | None = 0.0, b: float | None = 0.0) -> np.ndarray:
    """``op`` in neg exp log sqrt abs sign tanh sin cos log1p expm1 square reciprocal relu
    sigmoid, and leaky_relu (slope ``a``) and
    clip (bounds ``a`` and ``b``, None for no bound on that side; NaN passes through)."""
    ufunc = UNARY_UFUNCS.get(op)
    if ufunc is not None:
        return _arr(ufunc(x))
    if op == "relu":
        return _arr(np.maximum(x, 0))
    if op == "sigmoid":
        # With e = exp(-|x|) <= 1 nothing overflows, and e / (1 + e) keeps full relative
        # precision in the negative tail, where 1 - something would cancel.
        e = np.exp(-np.abs(x))
        out = np.where(x >= 0, 1 / (1 + e), e / (1 + e))
        return _arr(out.astype(x.dtype, copy=False) if x.dtype.kind == "f" else out)
    if op == "leaky_relu":
        return _arr(np.where(x > 0, x, x * a).astype(x.dtype, copy=False))
    if op == "clip":
        # NOTE: np.clip with both bounds None is an error.
        return copy(x) if a is None and b is None else _arr(np.clip(x, a, b))
    raise InputError(f"unary: unknown op {op!r}; expected one of {', '.join(UNARY_OPS)}")


BINARY_UFUNCS = {
    "add": np.add,
    "sub": np.subtract,
    "mul": np.multiply,
    "div": np.divide,
    "pow": np.power,
    "maximum": np.maximum,
    "minimum": np.minimum,
}


def binary(op: str, x, y) -> np.ndarray:
    """Broadcasting ``op`` in add sub mul div pow maximum minimum; either side may be a Python
    scalar. maximum and minimum propagate NaN."""
    return _arr(BINARY_UFUNCS[op](x, y))


def where(cond, x, y) -> np.ndarray:
    """Broadcasting selection: x where ``cond`` is nonzero, else y (``cond`` a 0/1 float or bool
    array; x and y arrays or Python scalars)."""
    return _arr(np.where(cond != 0, x, y))


_COMPARE = {
    "eq": np.equal,
    "ne": np.not_equal,
    "lt": np.less,
    "le": np.less_equal,
    "gt": np.greater,
    "ge": np.greater_equal,
}


def compare(op: str, x, y) -> np.ndarray:
    """Broadcasting comparison as float32 0.0/1.0."""
    return _arr(_COMPARE[op](x, y)).astype(np.float32)


# NOTE: numpy takes twice as long over a small array with a Python number as with a 0-d array
# (0.5 vs 0.25 us), and the result is the same: the backward rules below subtract from these.
_ONE = {np.dtype(np.float32): np.ones((), np.float32), np.dtype(np.float64): np.ones(())}

ACTIVATIONS = ("relu", "leaky_relu", "clip", "sigmoid", "tanh")


def activation_backward(op: str, g: np.ndarray, saved: np.ndarray, a=0.0, b=0.0) -> np.ndarray:
    """g * f'(.) for the activation ``op``, written with the value its forward saved:

    - relu: saved = x, relu'(x) = [x > 0] (0 at 0, as PyTorch);
    - leaky_relu: saved = x, slope ``a``: 1 if x > 0 else slope;
    - clip: saved = x, bounds ``a``, ``b`` (None: none on that side): [lo <= x <= hi];
    - sigmoid: saved = y = sigmoid(x): y (1 - y);
    - tanh: saved = y = tanh(x): 1 - y^2.
    """
    if op == "relu":
        return _arr(np.where(saved > 0, g, 0).astype(g.dtype, copy=False))
    if op == "leaky_relu":
        return _arr(np.where(saved > 0, g, g * a).astype(g.dtype, copy=False))
    if op == "clip":
        inside = np.ones(saved.shape, dtype=bool)
        if a is not None:
            inside &= saved >= a
        if b is not None:
            inside &= saved <= b
        return _arr(np.where(inside, g, 0).astype(g.dtype, copy=False))
    one = _ONE.get(saved.dtype, 1)
    if op == "sigmoid":
        return _arr(g * saved * (one - saved))
    if op == "tanh":
        return _arr(g * (one - saved * saved))
    raise InputError(
        f"activation_backward: unknown activation {op!r}; expected one of {', '.join(ACTIVATIONS)}"
    )


# ----- reductions -----


def sum(x: np.ndarray, axis: Axis, keepdims: bool) -> np.ndarray:  # noqa: A001
    return _arr(np.add.reduce(x, axis=axis, keepdims=keepdims))  # np.sum, without its wrapper


def max(x: np.ndarray, axis: Axis, keepdims: bool) -> np.ndarray:  # noqa: A001
    return _arr(np.max(x, axis=axis, keepdims=keepdims))


def min(x: np.ndarray, axis: Axis, keepdims: bool) -> np.ndarray:  # noqa: A001
    return _arr(np.min(x, axis=axis, keepdims=keepdims))


def max_backward(g: np.ndarray, x: np.ndarray, out: np.ndarray, axis: Axis) -> np.ndarray:
    """Gradient of max/min: the entries equal to the result share ``g`` equally.

    ``g`` and ``out`` come with the reduced axes kept (size 1), so they broadcast against ``x``.
    """
    mask = (x == out) | (np.isnan(x) & np.isnan(out))  # a NaN max came from the NaN entries
    count = np.sum(mask, axis=axis, keepdims=True)
    with np.errstate(invalid="ignore", divide="ignore"):
        return _arr((mask * (g / count)).astype(g.dtype, copy=False))


def sum_to(g: np.ndarray, shape: Shape) -> np.ndarray:
    """Undo broadcasting: sum ``g`` down to ``shape`` (leading axes, then axes of size 1)."""
    if g.shape == shape:
        return g
    lead = g.ndim - len(shape)
    axes = tuple(range(lead)) + tuple(
        i + lead for i, n in enumerate(shape) if n == 1 and g.shape[i + lead] != 1
    )
    out = np.sum(g, axis=axes, keepdims=True) if axes else g
    return _arr(out.reshape(shape))


def broadcast_to(x: np.ndarray, shape: Shape) -> np.ndarray:
    """A read-only broadcast view (no copy)."""
    return np.broadcast_to(x, shape)


def argmax(x: np.ndarray, axis: int | None) -> np.ndarray:
    return _arr(np.argmax(x, axis=axis)).astype(np.int64, copy=False)


# ----- movement -----


def reshape(x: np.ndarray, shape: Shape) -> np.ndarray:
    return x.reshape(shape)


def transpose(x: np.ndarray, axes: Shape) -> np.ndarray:
    return x.transpose(axes)


def getitem(x: np.ndarray, index) -> np.ndarray:
    return _arr(x[index])


def getitem_backward(g: np.ndarray, shape: Shape, index) -> np.ndarray:
    """Scatter ``g`` back into zeros of ``shape``; repeated indices accumulate (np.add.at)."""
    out = np.zeros(shape, dtype=g.dtype)
    np.add.at(out, index, g)
    return out


def concatenate(xs: list[np.ndarray], axis: int) -> np.ndarray:
    return np.concatenate(xs, axis=axis)


# ----- random numbers (dropout masks, input noise) -----
# Drawn from the library's seeded generator, so ``tg.manual_seed`` makes them repeatable. The CUDA
# backend draws them on the GPU instead, so a training step needs no host round trip.


def bernoulli_mask(shape: Shape, p: float, dtype) -> np.ndarray:
    """Each entry 1 with probability ``p``, else 0 (dropout keeps entries where it is 1)."""
    if not 0.0 <= p <= 1.0:
        raise InputError(f"bernoulli_mask: p must be in [0, 1], got {p}")
    return (get_rng().random(shape) < p).astype(dtype)


def normal(shape: Shape, std: float, dtype) -> np.ndarray:
    """Entries drawn from N(0, std^2)."""
    if not std >= 0:
        raise InputError(f"normal: std must be >= 0, got {std}")
    return get_rng().normal(0.0, std, shape).astype(dtype, copy=False)


# ----- linear algebra and fused network ops -----


def matmul(a: np.ndarray, b: np.ndarray, transpose_a: bool = False, transpose_b: bool = False):
    """``op(a) @ op(b)`` for arrays of 2 or more dims, batch dims broadcast.

    The transposes are views: BLAS reads the other memory order without a copy.
    """
    if transpose_a:
        a = np.swapaxes(a, -1, -2)
    if transpose_b:
        b = np.swapaxes(b, -1, -2)
    return np.matmul(a, b)


# Activations that can be fused into a linear layer; each one's derivative can be computed from
# its output y alone: relu' = [y > 0], sigmoid' = y (1 - y), tanh' = 1 - y^2.
FUSED_ACTIVATIONS = (None, "relu", "sigmoid", "tanh")


def linear_forward(x: np.ndarray, w: np.ndarray, b: np.ndarray | None, activation=None):
    """y = act(x W^T + b) for x (n, in), W (out, in), b (out,); act in FUSED_ACTIVATIONS."""
    y = x @ w.T
    if b is not None:
        y += b
    return y if activation is None else unary(activation, y)


def linear_backward(g, x, w, need_x: bool, need_w: bool, need_b: bool, activation=None, y=None):
    """dZ = G act'(Z);  dX = dZ W,  dW = dZ^T X,  db = sum of dZ over rows; each when needed."""
    dz = g if activation is None else activation_backward(activation, g, y)
    dx = dz @ w if need_x else None
    dw = dz.T @ x if need_w else None
    db = dz.sum(axis=0) if need_b else None
    return dx, dw, db


def softmax(x: np.ndarray, axis: int, log: bool = False) -> np.ndarray:
    """softmax: exp(x - max) / sum(exp(x - max)), subtracting the max so exp cannot overflow;
    log-softmax (``log``): x - max - log(sum(exp(x - max)))."""
    if x.size == 0:  # nothing to normalise (numpy's max refuses an empty axis)
        return np.zeros(x.shape, dtype=np.result_type(x.dtype, np.float32))
    shifted = x - np.max(x, axis=axis, keepdims=True)
    if log:
        return shifted - np.log(np.sum(np.exp(shifted), axis=axis, keepdims=True))
    z = np.exp(shifted)
    z /= np.sum(z, axis=axis, keepdims=True)
    return z


def softmax_backward(g: np.ndarray, y: np.ndarray, axis: int, log: bool = False) -> np.ndarray:
    """softmax (y the saved softmax): dx = y * (g - sum(g * y));
    log-softmax (y the saved log-softmax): dx = g - exp(y) * sum(g)."""
    if log:
        return g - np.exp(y) * np.sum(g, axis=axis, keepdims=True)
    return y * (g - np.sum(g * y, axis=axis, keepdims=True))


def cross_entropy_forward(logits: np.ndarray, labels: np.ndarray, reduction: str = "none"):
    """(loss, probs): the per-row losses -log softmax(z)[label], reduced by ``reduction``
    ("none": all N of them, "sum" or "mean": a 0-d array), and the softmax probabilities
    (saved for the backward pass)."""
    check_labels(logits, labels)
    logp = softmax(logits, 1, log=True)
    losses = -logp[np.arange(len(labels)), labels]
    if reduction == "none":
        return losses, np.exp(logp)
    total = np.sum(losses)
    if reduction == "mean":
        total = total / len(labels) if len(labels) else np.full((), np.nan, losses.dtype)
    return np.asarray(total, dtype=losses.dtype), np.exp(logp)


def check_labels(logits: np.ndarray, labels: np.ndarray) -> None:
    """Labels must be one integer in [0, C) per row of the (N, C) logits."""
    if logits.ndim != 2 or labels.shape != (logits.shape[0],):
        raise InputError(
            f"cross_entropy: logits of shape {logits.shape} need (N, C) and labels of shape "
            f"(N,), got labels of shape {labels.shape}"
        )
    if labels.dtype.kind not in "iu":
        raise InputError(f"cross_entropy: labels must be integers, got dtype {labels.dtype}")
    bad = (labels < 0) | (labels >= logits.shape[1])
    if bad.any():
        raise InputError(
            f"cross_entropy: label {labels[bad][0]} is out of range for {logits.shape[1]} classes"
        )


def cross_entropy_backward(
    g: np.ndarray, probs: np.ndarray, labels: np.ndarray, reduction: str = "none"
) -> np.ndarray:
    """dz = (softmax(z) - onehot(label)) * dL/d(loss_i): ``g`` holds one entry per row
    (reduction "none") or the one gradient of the reduced loss, which every row shares ("sum"),
    divided by N ("mean")."""
    d = probs.copy()
    d[np.arange(len(labels)), labels] -= 1
    g_rows = g.reshape(-1, 1)
    if reduction == "mean":
        g_rows = g_rows / (len(labels) or 1)
    d *= g_rows
    return d
