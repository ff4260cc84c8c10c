"""Loss functions, penalties and the functional forms of the layers (``import ... as F``).

Losses take the network's output first and the target second, as PyTorch's do, and reduce with
``reduction="mean"`` (the default: the average over the samples, so the gradient's size does not
depend on the batch size), ``"sum"`` or ``"none"`` (one loss per entry or per sample).
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import numpy as np

from tinygrad_edu import ops
from tinygrad_edu.autograd import Function
from tinygrad_edu.errors import InputError
from tinygrad_edu.nn.layers import dropout
from tinygrad_edu.tensor import Tensor

__all__ = [
    "binary_cross_entropy",
    "cross_entropy",
    "dropout",
    "l1_loss",
    "l1_penalty",
    "l2_penalty",
    "leaky_relu",
    "log_softmax",
    "mse_loss",
    "relu",
    "sigmoid",
    "softmax",
    "tanh",
]

_FLOATS = (np.dtype(np.float32), np.dtype(np.float64))
_REDUCTIONS = ("mean", "sum", "none")


# ----- activations -----


def relu(x: Tensor) -> Tensor:
    return x.relu()


def sigmoid(x: Tensor) -> Tensor:
    return x.sigmoid()


def tanh(x: Tensor) -> Tensor:
    return x.tanh()


def leaky_relu(x: Tensor, slope: float = 0.01) -> Tensor:
    return x.leaky_relu(slope)


def softmax(x: Tensor, axis: int = -1) -> Tensor:
    return x.softmax(axis)


def log_softmax(x: Tensor, axis: int = -1) -> Tensor:
    return x.log_softmax(axis)


# ----- argument checks -----


def _check_reduction(reduction: str, name: str) -> None:
    if reduction not in _REDUCTIONS:
        raise InputError(f"{name}: reduction must be 'mean', 'sum' or 'none', got {reduction!r}")


def _check_prediction(x: Any, name: str) -> Tensor:
    if not isinstance(x, Tensor):
        raise TypeError(f"{name}: the input must be a Tensor, got {type(x).__name__}")
    if x.dtype not in _FLOATS:
        raise TypeError(f"{name}: the input must be float32 or float64, got dtype {x.dtype}")
    return x


def _as_target(target: Any, like: Tensor, name: str) -> Tensor:
    """The target as a float Tensor of the input's shape, device and (for arrays) dtype."""
    if not isinstance(target, Tensor):
        try:  # None, strings, ragged lists: say which loss was given them
            target = Tensor(np.asarray(target), dtype=like.dtype, device=like.device)
        except (TypeError, ValueError) as exc:
            kind = InputError if isinstance(exc, ValueError) else TypeError
            raise kind(f"{name}: invalid target ({exc})") from None
    elif target.dtype not in _FLOATS:
        target = Tensor(target.numpy(), dtype=like.dtype, device=like.device)
    if target.shape != like.shape:
        raise InputError(
            f"{name}: input shape {like.shape} and target shape {target.shape} differ; "
            "expected the same shape (reshape one, e.g. y.reshape(-1, 1))"
        )
    return target


def _reduce(losses: Tensor, reduction: str) -> Tensor:
    if reduction == "mean":
        return losses.mean()
    if reduction == "sum":
        return losses.sum()
    return losses


# ----- regression losses -----


def mse_loss(input: Tensor, target: Any, reduction: str = "mean") -> Tensor:
    """Mean squared error, the chapter's J = 1/n sum_i (y_i - f(x_i))^2."""
    _check_reduction(reduction, "mse_loss")
    input = _check_prediction(input, "mse_loss")
    diff = input - _as_target(target, input, "mse_loss")
    return _reduce(diff * diff, reduction)


def l1_loss(input: Tensor, target: Any, reduction: str = "mean") -> Tensor:
    """Mean absolute error, 1/n sum_i |y_i - f(x_i)|."""
    _check_reduction(reduction, "l1_loss")
    input = _check_prediction(input, "l1_loss")
    return _reduce((input - _as_target(target, input, "l1_loss")).abs(), reduction)


# ----- classification losses -----


def _labels(labels: Any, n: int, classes: int) -> np.ndarray:
    """Integer class labels as a 1-D int64 array of length n, each in [0, classes)."""
    name = "cross_entropy"
    if isinstance(labels, Tensor):
        array = labels.numpy()
    else:
        if isinstance(labels, (bool, int, float, np.generic)):
            raise InputError(f"{name}: labels must be a 1-D sequence of ints, got {labels!r}")
        try:
            array = np.asarray(labels)
        except ValueError as exc:
            raise InputError(f"{name}: labels are not a flat list of ints ({exc})") from None
    if array.dtype.kind not in "iu" or array.dtype == np.bool_:
        hint = (
            " (a float Tensor? build labels with dtype='int64')" if array.dtype.kind == "f" else ""
        )
        raise InputError(
            f"{name}: labels must be integers (class indices), got dtype {array.dtype}{hint}"
        )
    if array.ndim != 1:
        raise InputError(
            f"{name}: labels must be 1-D (one class index per row), got shape {array.shape}"
        )
    if len(array) != n:
        raise InputError(
            f"{name}: {len(array)} labels for {n} rows of logits; expected one label per row"
        )
    if n:
        low, high = array.min(), array.max()
        if low < 0 or high >= classes:
            bad = low if low < 0 else high
            raise InputError(
                f"{name}: label {int(bad)} is out of range for {classes} classes; "
                f"expected labels in [0, {classes - 1}]"
            )
    return np.ascontiguousarray(array, dtype=np.int64)


def cross_entropy(logits: Tensor, labels: Any, reduction: str = "mean") -> Tensor:
    """-log softmax(logits)[label], the loss of a classifier with integer labels.

    ``logits``: (N, C) unnormalised scores. ``labels``: N ints in [0, C) (an int64 Tensor, an
    integer numpy array or a list). One fused op: a stable log-softmax per row forward, and
    softmax minus one-hot backward (``ops.CrossEntropy``).
    """
    _check_reduction(reduction, "cross_entropy")
    logits = _check_prediction(logits, "cross_entropy")
    if logits.ndim != 2:
        raise InputError(
            f"cross_entropy: logits must be 2-D (N samples, C classes), got shape {logits.shape}"
        )
    n, classes = logits.shape
    if classes == 0:
        raise InputError(f"cross_entropy: logits have 0 classes (shape {logits.shape})")
    if (
        isinstance(labels, Tensor)
        and labels.dtype == np.int64
        and labels.shape == (n,)
        and labels.device == logits.device
    ):
        # The common case (a DataLoader batch): pass the labels where they are. Every
        # backend's cross-entropy kernel checks their range (reference.check_labels).
        return ops.CrossEntropy.apply(logits, labels._data, reduction)
    array = _labels(labels, n, classes)
    return ops.CrossEntropy.apply(logits, logits._backend.asarray(array), reduction)


def _clamped_log(b, x):
    """max(log x, -100). The argument is first raised to 1e-45 (log = -103.6; in float32 the
    smallest subnormal, log = -103.3) so that x = 0 gives -100 without a log(0) warning."""
    return b.unary("clip", b.unary("log", b.unary("clip", x, 1e-45, None)), -100.0, None)


class _BinaryCrossEntropy(Function):
    """L = -(t log p + (1 - t) log(1 - p)), each log clamped at -100 as PyTorch does, so that
    p = 0 or 1 gives a large finite loss rather than inf.

    dL/dp = (p - t) / max(p (1 - p), 1e-12)      (PyTorch's formula, finite at p = 0 and 1)
    dL/dt = log(1 - p) - log(p)                   (clamped logs)

    NOTE: a fused op, not a composition: composed, the clamp's zero gradient meets log's
    1/p = inf at p = 0 and makes NaN.
    """

    def forward(ctx, p, t):
        b = ctx.backend
        log_p = _clamped_log(b, p)
        log_q = _clamped_log(b, b.binary("sub", 1.0, p))
        ctx.save_for_backward(p, t, log_p, log_q)
        # -(t log p + (1 - t) log q) = -(log q + t (log p - log q))
        return b.unary(
            "neg", b.binary("add", log_q, b.binary("mul", t, b.binary("sub", log_p, log_q)))
        )

    def backward(ctx, g):
        b, (p, t, log_p, log_q) = ctx.backend, ctx.saved
        need_p, need_t = ctx.needs_input_grad
        dp = dt = None
        if need_p:
            denom = b.unary("clip", b.binary("mul", p, b.binary("sub", 1.0, p)), 1e-12, None)
            dp = b.binary("mul", g, b.binary("div", b.binary("sub", p, t), denom))
        if need_t:
            dt = b.binary("mul", g, b.binary("sub", log_q, log_p))
        return dp, dt


def binary_cross_entropy(input: Tensor, target: Any, reduction: str = "mean") -> Tensor:
    """-(t log p + (1 - t) log(1 - p)) for probabilities p in [0, 1] (e.g. a sigmoid's output)
    and targets t in [0, 1] of the same shape."""
    name = "binary_cross_entropy"
    _check_reduction(reduction, name)
    input = _check_prediction(input, name)
    target = _as_target(target, input, name)
    if input.size:
        low, high = float(input.min().item()), float(input.max().item())
        if not (low >= 0.0 and high <= 1.0):  # also catches NaN
            raise InputError(
                f"{name}: input must hold probabilities in [0, 1], got values in [{low}, {high}] "
                "(apply sigmoid first, or use cross_entropy on raw scores)"
            )
    if target.dtype != input.dtype:
        target = target * Tensor.ones((), dtype=input.dtype, device=input.device)
    return _reduce(_BinaryCrossEntropy.apply(input, target), reduction)


# ----- weight penalties (regularization) -----


def _params(params: Any, name: str) -> list[Tensor]:
    if hasattr(params, "parameters") and callable(params.parameters):
        params = params.parameters()  # a Module
    if isinstance(params, Tensor):
        params = [params]
    params = list(params) if isinstance(params, Iterable) else None
    if params is None or not all(isinstance(p, Tensor) for p in params):
        raise TypeError(f"{name}: params must be an iterable of Tensors (or a Module)")
    return params


def _check_lam(lam: Any, name: str) -> float:
    try:
        lam = float(lam)
    except (TypeError, ValueError):
        raise TypeError(f"{name}: lam must be a number, got {lam!r}") from None
    if not lam >= 0:
        raise InputError(f"{name}: lam must be >= 0, got {lam}")
    return lam


def l2_penalty(params: Any, lam: float) -> Tensor:
    """R = 1/2 * lam * sum(w^2) over every entry of every tensor in ``params``.

    Added to the loss it pulls weights towards 0 ("weight decay": dR/dw = lam * w). The 1/2 is
    there so that the derivative has no factor 2. Usually given the weights only, not the biases.
    """
    params, lam = _params(params, "l2_penalty"), _check_lam(lam, "l2_penalty")
    if not params:
        return Tensor(0.0)
    total = sum(((p * p).sum() for p in params[1:]), (params[0] * params[0]).sum())
    return total * (0.5 * lam)


def l1_penalty(params: Any, lam: float) -> Tensor:
    """R = lam * sum(|w|): pushes weights to exactly 0 (sparse weights); dR/dw = lam * sign(w)."""
    params, lam = _params(params, "l1_penalty"), _check_lam(lam, "l1_penalty")
    if not params:
        return Tensor(0.0)
    total = sum((p.abs().sum() for p in params[1:]), params[0].abs().sum())
    return total * lam
