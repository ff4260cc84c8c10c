"""Loss functions, penalties and the functional forms of the layers (``import ... as F``).

Losses take the network's output first and the target second, as PyTorch's do, and reduce with
``reduction="mean"`` (the default: the average over the samples, so the gradient's size does not
depend on the batch size), ``"sum"`` or ``"none"`` (one loss per entry or per sample).
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from typing import Any

import numpy as np

from tinygrad_edu import ops
from tinygrad_edu.autograd import Op, no_grad
from tinygrad_edu.errors import InputError
from tinygrad_edu.tensor import Tensor

__all__ = [
    "binary_cross_entropy",
    "binary_cross_entropy_with_logits",
    "avg_pool2d",
    "batch_norm",
    "conv2d",
    "embedding",
    "layer_norm",
    "max_pool2d",
    "cross_entropy",
    "dropout",
    "elu",
    "erf",
    "gaussian_noise",
    "gelu",
    "huber_loss",
    "l1_loss",
    "l1_penalty",
    "l2_penalty",
    "leaky_relu",
    "log_softmax",
    "mse_loss",
    "nll_loss",
    "relu",
    "sigmoid",
    "smooth_l1_loss",
    "softmax",
    "softplus",
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


# ----- composed activations: built from existing ops, so their gradients (first and second)
# come from those ops' rules. The trick used throughout: a comparison gives a constant 0/1
# mask (not differentiable, as it should be), so a piecewise function is a sum of its pieces
# times masks, and |x| is x times its constant sign. Unlike ``x.abs()`` or ``x.relu()``, whose
# derivative at exactly 0 is a convention, this gives the true derivative at 0 too. -----


def _masks(x: Tensor) -> tuple[Tensor, Tensor]:
    """(x >= 0 as 0/1, the sign of x with sign(0) = +1), both constants in x's dtype."""
    nonneg = (x.detach() >= 0.0) * Tensor.ones((), dtype=x.dtype, device=x.device)
    return nonneg, nonneg * 2.0 - 1.0


def _log1p_exp_neg_abs(x: Tensor, sign: Tensor) -> Tensor:
    """log(1 + e^-|x|), in (0, log 2]: never overflows."""
    # NOTE: no log1p op exists, so for |x| > ~36 this is log(1 + tiny) = 0 instead of ~e^-|x|:
    # an absolute error below 1e-16, a large relative one (PyTorch uses log1p).
    return ((x * sign * -1.0).exp() + 1.0).log()


def softplus(x: Tensor, beta: float = 1.0, threshold: float = 20.0) -> Tensor:
    """log(1 + e^(beta x)) / beta, computed stably as max(bx, 0) + log(1 + e^-|bx|), divided by
    beta; where beta x > threshold it is x itself, as PyTorch's."""
    x = _check_input(x, "softplus")
    beta, threshold = float(beta), float(threshold)
    bx = x * beta
    nonneg, sign = _masks(bx)
    smooth = (bx * nonneg + _log1p_exp_neg_abs(bx, sign)) * (1.0 / beta)
    linear = (bx.detach() > threshold) * Tensor.ones((), dtype=x.dtype, device=x.device)
    return x * linear + smooth * (1.0 - linear)


def elu(x: Tensor, alpha: float = 1.0) -> Tensor:
    """x for x > 0, alpha (e^x - 1) otherwise; the gradient at 0 is alpha, as PyTorch's."""
    x = _check_input(x, "elu")
    pos = (x.detach() > 0.0) * Tensor.ones((), dtype=x.dtype, device=x.device)
    neg = 1.0 - pos
    # e^(x * neg): x where x <= 0, 0 elsewhere, so a large positive x never overflows exp.
    return x * pos + ((x * neg).exp() - 1.0) * (float(alpha) * neg)


# erfc(z) = t exp(-z^2 + P(u)) for z >= 0, t = 2 / (2 + z) (Numerical Recipes' form), P a
# Chebyshev series in u = t mapped from [t(26), 1] to [-1, 1]. The coefficients were fitted
# (numpy.polynomial.chebyshev.chebfit, degree 24, 400 Chebyshev nodes) to log(erfc(z) / t) + z^2
# with Python's math.erfc; erf's absolute error is below 2e-15 everywhere (tests check 1e-13).
# NOTE: no erf primitive exists; composing it keeps its gradients (of any order) for free.
_ERFC_ZMAX = 26.0  # erfc(26) < 1e-295: beyond it erf is +-1 in float64
_ERFC_TMIN = 2.0 / (2.0 + _ERFC_ZMAX)
_ERFC_CHEB = (
    -0.6092679598644096,
    0.6040158823276686,
    0.013711483828848868,
    -0.008217478410721818,
    -0.0005296465789376909,
    0.000285729708154113,
    1.4928076139832898e-05,
    -1.3583334852605024e-05,
    3.004956017555666e-08,
    6.984316890341471e-07,
    -5.8473433343268505e-08,
    -3.306831359635432e-08,
    6.6623012103778365e-09,
    1.139010202269649e-09,
    -5.181310033177721e-10,
    7.22420192109526e-13,
    2.962632804344823e-11,
    -4.2580907479504e-12,
    -1.0377683114916284e-12,
    3.9797133550257666e-13,
    -6.955509591969128e-15,
    -2.0992136172602086e-14,
    4.898688471093382e-15,
    -6.751397572340237e-16,
    6.280369834735106e-16,
)


def erf(x: Tensor) -> Tensor:
    """The error function 2/sqrt(pi) int_0^x e^(-s^2) ds, composed from exp and arithmetic
    (accurate to ~2e-15 in float64): erf(x) = sign(x) (1 - erfc(|x|))."""
    x = _check_input(x, "erf")
    _, sign = _masks(x)
    z = (x * sign).clip(None, _ERFC_ZMAX)  # |x| as x * constant sign: smooth at 0 as well
    t = 2.0 / (z + 2.0)
    u = (t - _ERFC_TMIN) * (2.0 / (1.0 - _ERFC_TMIN)) - 1.0
    # Clenshaw's recurrence: b_k = 2u b_(k+1) - b_(k+2) + c_k, P = u b_1 - b_2 + c_0.
    # float32 needs fewer terms: the ones dropped sum to < 1e-9, far below its rounding.
    terms = _ERFC_CHEB if x.dtype == np.float64 else _ERFC_CHEB[:14]
    b1, b2 = None, None
    for c in reversed(terms[1:]):
        if b1 is None:
            b1, b2 = u * 0.0 + c, u * 0.0
        else:
            b1, b2 = u * b1 * 2.0 - b2 + c, b1
    series = u * b1 - b2 + terms[0]
    erfc = t * (series - z * z).exp()
    return (1.0 - erfc) * sign


def gelu(x: Tensor, approximate: str = "none") -> Tensor:
    """x Phi(x), Phi the standard normal CDF: ``"none"`` is x/2 (1 + erf(x / sqrt 2)) (exact,
    PyTorch's default, erf composed above); ``"tanh"`` is Hendrycks & Gimpel's
    x/2 (1 + tanh(sqrt(2/pi) (x + 0.044715 x^3)))."""
    if approximate not in ("none", "tanh"):
        raise InputError(f"gelu: approximate must be 'none' or 'tanh', got {approximate!r}")
    x = _check_input(x, "gelu")
    if approximate == "tanh":
        inner = (x + x * x * x * 0.044715) * math.sqrt(2.0 / math.pi)
        return x * 0.5 * (inner.tanh() + 1.0)
    return x * 0.5 * (erf(x * (1.0 / math.sqrt(2.0))) + 1.0)


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


# ----- random layers: dropout and noise -----


class _Draw(Op):
    """Random numbers of x's shape and dtype, drawn by x's backend where x lives (a GPU tensor's
    on the GPU: no host round trip). Not differentiable: x only says where, and how big.

    ``kind`` is the backend's generator: "bernoulli_mask" (1 with probability ``arg``, else 0)
    or "normal" (N(0, arg^2)). Called on ``x.detach()``, so the graph never records it.
    """

    def forward(ctx, x, kind, arg):
        return getattr(ctx.backend, kind)(x.shape, arg, x.dtype)


def _check_probability(p: Any, where: str) -> float:
    if isinstance(p, bool) or not isinstance(p, (int, float, np.integer, np.floating)):
        raise TypeError(f"{where}: p must be a number, got {p!r}")
    if not 0.0 <= p <= 1.0:
        raise InputError(f"{where}: p must be in [0, 1], got {p}")
    return float(p)


def _check_std(std: Any, where: str) -> float:
    std = float(std)
    if not (std >= 0 and math.isfinite(std)):
        raise InputError(f"{where}: std must be a finite number >= 0, got {std}")
    return std


def _check_input(x: Any, where: str) -> Tensor:
    if not isinstance(x, Tensor):
        raise TypeError(f"{where}: expected a Tensor as input, got {type(x).__name__}")
    if x.dtype not in _FLOATS:
        raise TypeError(
            f"{where}: expected a float32 or float64 input, got dtype {x.dtype} "
            "(convert with Tensor(x, dtype='float32'))"
        )
    return x


def dropout(x: Tensor, p: float = 0.5, training: bool = True) -> Tensor:
    """The function behind ``Dropout``: zero entries with probability p, scale the rest by
    1/(1-p); the identity when not training or p == 0; all zeros when p == 1."""
    p = _check_probability(p, "dropout")
    x = _check_input(x, "dropout")
    if not training or p == 0.0:
        return x
    if p == 1.0:
        return x * 0.0
    keep = _Draw.apply(x.detach(), "bernoulli_mask", 1.0 - p)  # 1 = keep, drawn on x's device
    return x * keep * (1.0 / (1.0 - p))


def gaussian_noise(x: Tensor, std: float, training: bool = True) -> Tensor:
    """The function behind ``GaussianNoise``: x + N(0, std^2) noise, fresh at every call, when
    training; the identity when not training or std == 0."""
    std = _check_std(std, "gaussian_noise")
    x = _check_input(x, "GaussianNoise")
    if not training or std == 0:
        return x
    return x + _Draw.apply(x.detach(), "normal", std)  # drawn on x's device


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


def _labels(labels: Any, n: int, classes: int, name: str = "cross_entropy") -> np.ndarray:
    """Integer class labels as a 1-D int64 array of length n, each in [0, classes)."""
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


def cross_entropy(
    logits: Tensor,
    labels: Any,
    reduction: str = "mean",
    *,
    weight: Any = None,
    ignore_index: int = -100,
    label_smoothing: float = 0.0,
) -> Tensor:
    """-log softmax(logits)[label], the loss of a classifier with integer labels.

    ``logits``: (N, C) unnormalised scores. ``labels``: N ints in [0, C) (an int64 Tensor, an
    integer numpy array or a list). One fused op: a stable log-softmax per row forward, and
    softmax minus one-hot backward (``ops.CrossEntropy``).

    PyTorch's options (keyword-only here): ``weight`` (C,) scales each class's loss (the mean
    then divides by the summed weights of the labels); rows labelled ``ignore_index`` count for
    nothing; ``label_smoothing`` eps mixes the one-hot target with the uniform distribution,
    (1 - eps) nll + eps * mean_c(-log softmax). With any of them the loss is composed from
    ``log_softmax`` and ``nll_loss`` instead of the fused op.
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
    label_smoothing = float(label_smoothing)
    if not 0.0 <= label_smoothing <= 1.0:
        raise InputError(f"cross_entropy: label_smoothing must be in [0, 1], got {label_smoothing}")
    if weight is not None or label_smoothing or 0 <= ignore_index < classes:
        return _weighted_nll(
            logits.log_softmax(-1), labels, weight, ignore_index, reduction, label_smoothing,
            "cross_entropy",
        )  # fmt: skip
    try:
        return _fused_cross_entropy(logits, labels, reduction)
    except InputError:
        # NOTE: an ignore_index outside [0, C) (PyTorch's default, -100) is refused by the fused
        # op's range check; only then are the labels scanned for it (not on every step).
        if not _has_ignored(labels, ignore_index):
            raise
    return _weighted_nll(
        logits.log_softmax(-1), labels, None, ignore_index, reduction, 0.0, "cross_entropy"
    )


def _fused_cross_entropy(logits: Tensor, labels: Any, reduction: str) -> Tensor:
    n, classes = logits.shape
    if (
        isinstance(labels, Tensor)
        and labels.dtype == np.int64
        and labels.shape == (n,)
        and labels.device == logits.device
    ):
        # The common case (a DataLoader batch): pass the labels where they are (apply hands the
        # op their array). Every backend's cross-entropy kernel checks their range
        # (reference.check_labels).
        return ops.CrossEntropy.apply(logits, labels, reduction)
    labels = Tensor(_labels(labels, n, classes), dtype=np.int64, device=logits.device)
    return ops.CrossEntropy.apply(logits, labels, reduction)


def binary_cross_entropy(input: Tensor, target: Any, reduction: str = "mean") -> Tensor:
    """-(t log p + (1 - t) log(1 - p)) for probabilities p in [0, 1] (e.g. a sigmoid's output)
    and targets t in [0, 1] of the same shape. One fused op (``ops.BinaryCrossEntropy``), its
    logs clamped at -100 as PyTorch's are, so p = 0 or 1 gives a large finite loss."""
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
    return _reduce(ops.BinaryCrossEntropy.apply(input, target), reduction)


def nll_loss(
    input: Tensor,
    target: Any,
    weight: Any = None,
    *,
    ignore_index: int = -100,
    reduction: str = "mean",
) -> Tensor:
    """-w[t_i] input[i, t_i]: the negative log-likelihood of log-probabilities ``input`` (N, C),
    e.g. a log_softmax's output, for integer labels ``target`` (N,); ``nll_loss(log_softmax(z),
    y)`` equals ``cross_entropy(z, y)``. ``weight`` (C,) and ``ignore_index`` as PyTorch's: the
    mean divides by the summed weights of the rows not ignored."""
    name = "nll_loss"
    _check_reduction(reduction, name)
    input = _check_prediction(input, name)
    if input.ndim != 2:
        raise InputError(
            f"{name}: input must be 2-D (N samples, C classes), got shape {input.shape}"
        )
    return _weighted_nll(input, target, weight, ignore_index, reduction, 0.0, name)


def _has_ignored(labels: Any, ignore_index: int) -> bool:
    try:
        array = labels.numpy() if isinstance(labels, Tensor) else np.asarray(labels)
    except (TypeError, ValueError):  # not labels at all: the caller's own check says why
        return False
    return array.dtype.kind in "iu" and bool((array == ignore_index).any())


def _weighted_nll(
    log_probs: Tensor,
    labels: Any,
    weight: Any,
    ignore_index: int,
    reduction: str,
    smoothing: float,
    name: str,
) -> Tensor:
    """The NLL of (N, C) log-probabilities with PyTorch's weight, ignore_index and label
    smoothing. The weights and the ignore mask are constants: the loss is linear in log_probs,
    so its gradient comes from GetItem, Sum and the products."""
    n, classes = log_probs.shape
    array = labels.numpy() if isinstance(labels, Tensor) else labels
    raw = np.asarray(array)
    keep = (raw != ignore_index) if raw.dtype.kind in "iu" else np.ones(raw.shape, dtype=bool)
    labels = _labels(np.where(keep, raw, 0) if raw.dtype.kind in "iu" else raw, n, classes, name)
    if weight is None:
        class_weight = np.ones(classes)
    else:
        class_weight = weight.numpy() if isinstance(weight, Tensor) else np.asarray(weight)
        if class_weight.shape != (classes,):
            raise InputError(
                f"{name}: weight must have shape ({classes},), one per class, got "
                f"{class_weight.shape}"
            )
    row_weight = class_weight[labels] * keep  # w[t_i], 0 for ignored rows
    as_tensor = lambda a: Tensor(a, dtype=log_probs.dtype, device=log_probs.device)  # noqa: E731
    losses = log_probs[np.arange(n), labels] * as_tensor(-row_weight)
    if smoothing:
        # PyTorch's smoothing term: -sum_c w_c log p_ic / C for every row not ignored
        spread = (log_probs * as_tensor(class_weight)).sum(axis=1) * as_tensor(
            keep * (-1.0 / classes)
        )
        losses = losses * (1.0 - smoothing) + spread * smoothing
    if reduction == "none":
        return losses
    if reduction == "sum":
        return losses.sum()
    return losses.sum() * (1.0 / float(row_weight.sum()) if row_weight.sum() else float("nan"))


def binary_cross_entropy_with_logits(
    input: Tensor,
    target: Any,
    weight: Any = None,
    reduction: str = "mean",
    pos_weight: Any = None,
) -> Tensor:
    """binary_cross_entropy(sigmoid(x), t), computed stably from the logits x:
    max(x, 0) - x t + log(1 + e^-|x|), never overflowing; its gradient is sigmoid(x) - t.

    ``weight`` (broadcast to the input) scales each entry's loss; ``pos_weight`` (broadcast,
    typically one per class) scales the positive term, PyTorch's
    (1 - t) x + (1 + (pos_weight - 1) t) (log(1 + e^-|x|) + max(-x, 0))."""
    name = "binary_cross_entropy_with_logits"
    _check_reduction(reduction, name)
    input = _check_prediction(input, name)
    target = _as_target(target, input, name)
    nonneg, sign = _masks(input)
    if pos_weight is None:
        losses = input * nonneg - input * target + _log1p_exp_neg_abs(input, sign)
    else:
        pos_weight = _as_weight(pos_weight, input, "pos_weight", name)
        log_weight = (pos_weight - 1.0) * target + 1.0
        softplus_neg = _log1p_exp_neg_abs(input, sign) - input * (1.0 - nonneg)  # log(1+e^-x)
        losses = (1.0 - target) * input + log_weight * softplus_neg
    if weight is not None:
        losses = losses * _as_weight(weight, input, "weight", name)
    return _reduce(losses, reduction)


def _as_weight(weight: Any, like: Tensor, what: str, name: str) -> Tensor:
    """A weight Tensor that broadcasts to ``like``'s shape."""
    if not isinstance(weight, Tensor):
        weight = Tensor(np.asarray(weight, dtype=np.float64), dtype=like.dtype, device=like.device)
    try:
        np.broadcast_shapes(weight.shape, like.shape)
    except ValueError:
        raise InputError(
            f"{name}: {what} of shape {weight.shape} does not broadcast to the input's shape "
            f"{like.shape}"
        ) from None
    return weight


def _check_positive(value: Any, what: str, name: str, allow_zero: bool) -> float:
    value = float(value)
    if not (value > 0 or (allow_zero and value == 0)) or not math.isfinite(value):
        bound = ">= 0" if allow_zero else "> 0"
        raise InputError(f"{name}: {what} must be a finite number {bound}, got {value}")
    return value


def huber_loss(input: Tensor, target: Any, reduction: str = "mean", delta: float = 1.0) -> Tensor:
    """0.5 d^2 where |d| < delta, delta (|d| - delta/2) elsewhere (d = input - target): squared
    near the target, absolute (robust to outliers) far from it."""
    name = "huber_loss"
    _check_reduction(reduction, name)
    delta = _check_positive(delta, "delta", name, allow_zero=False)
    input = _check_prediction(input, name)
    d = input - _as_target(target, input, name)
    _, sign = _masks(d)
    near = (d.detach() * sign < delta) * Tensor.ones((), dtype=d.dtype, device=d.device)
    losses = d * d * (0.5 * near) + (d * sign - 0.5 * delta) * ((1.0 - near) * delta)
    return _reduce(losses, reduction)


def smooth_l1_loss(
    input: Tensor, target: Any, reduction: str = "mean", beta: float = 1.0
) -> Tensor:
    """0.5 d^2 / beta where |d| < beta, |d| - beta/2 elsewhere: huber_loss / beta (with
    delta = beta); beta = 0 is the L1 loss."""
    name = "smooth_l1_loss"
    _check_reduction(reduction, name)
    beta = _check_positive(beta, "beta", name, allow_zero=True)
    input = _check_prediction(input, name)
    d = input - _as_target(target, input, name)
    if beta == 0.0:  # the L1 loss, with its gradient 0 at d = 0 (abs's), as PyTorch
        return _reduce(d.abs(), reduction)
    _, sign = _masks(d)
    near = (d.detach() * sign < beta) * Tensor.ones((), dtype=d.dtype, device=d.device)
    losses = d * d * (0.5 / beta * near) + (d * sign - 0.5 * beta) * (1.0 - near)
    return _reduce(losses, reduction)


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


# ----- image layers (NCHW): convolution and pooling, ops in ops_conv.py -----


def _image_input(x: Any, layer: str) -> Tensor:
    return _check_input(x, layer)  # a float Tensor; the 4-d shape is checked in ops_conv


def conv2d(
    input: Tensor,
    weight: Tensor,
    bias: Tensor | None = None,
    stride: int | tuple[int, int] = 1,
    padding: int | tuple[int, int] = 0,
) -> Tensor:
    """2-d cross-correlation, as ``torch.nn.functional.conv2d`` (dilation 1, groups 1):
    input (N, C, H, W), weight (O, C, kh, kw), bias (O,) -> (N, O, OH, OW) with
    OH = floor((H + 2 padding - kh) / stride) + 1."""
    from tinygrad_edu import ops_conv

    x = _image_input(input, "conv2d")
    w = _check_input(weight, "conv2d")
    s, p = ops_conv.pair(stride, "stride", "conv2d"), ops_conv.pair(padding, "padding", "conv2d")
    ops_conv.check_conv2d(x.shape, w.shape, None if bias is None else bias.shape, s, p)
    if w.dtype != x.dtype or (bias is not None and bias.dtype != x.dtype):
        raise InputError(
            f"conv2d: input ({x.dtype}), weight ({w.dtype})"
            + ("" if bias is None else f" and bias ({bias.dtype})")
            + " must have the same dtype"
        )
    return ops_conv.Conv2d.apply(x, w, bias, s, p)


def _pool_args(layer: str, kernel_size: Any, stride: Any, padding: Any) -> tuple:
    from tinygrad_edu import ops_conv

    k = ops_conv.pair(kernel_size, "kernel_size", layer)
    s = k if stride is None else ops_conv.pair(stride, "stride", layer)
    return k, s, ops_conv.pair(padding, "padding", layer)


def max_pool2d(
    input: Tensor,
    kernel_size: int | tuple[int, int],
    stride: int | tuple[int, int] | None = None,
    padding: int | tuple[int, int] = 0,
) -> Tensor:
    """The maximum over each kernel_size window (stride defaults to kernel_size; padding is
    -inf), as ``torch.nn.functional.max_pool2d``; (N, C, H, W) -> (N, C, OH, OW)."""
    from tinygrad_edu import ops_conv

    x = _image_input(input, "max_pool2d")
    k, s, p = _pool_args("max_pool2d", kernel_size, stride, padding)
    ops_conv.check_pool2d("max_pool2d", x.shape, k, s, p)
    return ops_conv.MaxPool2d.apply(x, k, s, p)


def avg_pool2d(
    input: Tensor,
    kernel_size: int | tuple[int, int],
    stride: int | tuple[int, int] | None = None,
    padding: int | tuple[int, int] = 0,
) -> Tensor:
    """The mean over each kernel_size window (zero padding counted, PyTorch's default
    count_include_pad=True), as ``torch.nn.functional.avg_pool2d``."""
    from tinygrad_edu import ops_conv

    x = _image_input(input, "avg_pool2d")
    k, s, p = _pool_args("avg_pool2d", kernel_size, stride, padding)
    ops_conv.check_pool2d("avg_pool2d", x.shape, k, s, p)
    return ops_conv.AvgPool2d.apply(x, k, s, p)


# ----- normalization and embedding (the functions behind nn.BatchNorm*, LayerNorm, Embedding) -----
# Composed of Tensor ops (mean, sub, mul, sqrt, div, indexing): their backward rules give the
# gradient, so none is written here.


def batch_norm(
    input: Tensor,
    running_mean: Tensor | None,
    running_var: Tensor | None,
    weight: Tensor | None = None,
    bias: Tensor | None = None,
    training: bool = False,
    momentum: float = 0.1,
    eps: float = 1e-5,
) -> Tensor:
    """y = (x - mean) / sqrt(var + eps) * weight + bias per channel (axis 1) of x (N, C, ...).

    ``training=True``: mean and the biased var of the batch over every axis but 1; when running
    statistics are given they are updated in place (outside the graph), with the unbiased var:
    ``running <- (1 - momentum) * running + momentum * batch``. ``training=False``: the running
    statistics are used (both must be given).
    """
    x = _check_input(input, "batch_norm")
    if x.ndim < 2:
        raise InputError(f"batch_norm: expected an input (N, C, ...) of >= 2 dims, got {x.shape}")
    c = x.shape[1]
    stat_shape = (1, c) + (1,) * (x.ndim - 2)
    for what, t in (("running_mean", running_mean), ("running_var", running_var)):
        if t is not None and (not isinstance(t, Tensor) or t.shape != (c,)):
            got = t.shape if isinstance(t, Tensor) else type(t).__name__
            raise InputError(f"batch_norm: {what} must be a Tensor of shape ({c},), got {got}")
    for what, t in (("weight", weight), ("bias", bias)):
        if t is not None and (not isinstance(t, Tensor) or t.shape != (c,)):
            got = t.shape if isinstance(t, Tensor) else type(t).__name__
            raise InputError(f"batch_norm: {what} must be a Tensor of shape ({c},), got {got}")
    if training:
        axes = (0,) + tuple(range(2, x.ndim))
        n = x.size // c if c else 0
        if n <= 1:
            raise InputError(
                f"batch_norm: expected more than 1 value per channel when training, got input "
                f"of shape {x.shape}"
            )
        mean = x.mean(axes, keepdims=True)
        centred = x - mean
        var = (centred * centred).mean(axes, keepdims=True)
        if running_mean is not None or running_var is not None:
            with no_grad():  # state, not part of the graph (PyTorch updates it in place too)
                if running_mean is not None:
                    running_mean.mul_(1.0 - momentum)
                    running_mean.add_(mean.detach().reshape(c) * momentum)
                if running_var is not None:
                    running_var.mul_(1.0 - momentum)
                    running_var.add_(var.detach().reshape(c) * (momentum * n / (n - 1)))
        y = centred / (var + eps).sqrt()
    else:
        if running_mean is None or running_var is None:
            raise InputError(
                "batch_norm: training=False needs running_mean and running_var (got None)"
            )
        y = (x - running_mean.reshape(stat_shape)) / (running_var.reshape(stat_shape) + eps).sqrt()
    if weight is not None:
        y = y * weight.reshape(stat_shape)
    if bias is not None:
        y = y + bias.reshape(stat_shape)
    return y


def layer_norm(
    input: Tensor,
    normalized_shape: Any,
    weight: Tensor | None = None,
    bias: Tensor | None = None,
    eps: float = 1e-5,
    _who: str = "layer_norm",
) -> Tensor:
    """y = (x - mean) / sqrt(var + eps) * weight + bias, mean and biased var per sample over the
    last ``len(normalized_shape)`` dims of x, which must equal ``normalized_shape``."""
    x = _check_input(input, _who)
    shape = (normalized_shape,) if isinstance(normalized_shape, int) else tuple(normalized_shape)
    k = len(shape)
    if k == 0 or x.ndim < k or x.shape[x.ndim - k :] != shape:
        raise InputError(
            f"{_who}: input of shape {x.shape} does not end in normalized_shape {shape}; "
            f"expected (*, {', '.join(map(str, shape))})"
        )
    for what, t in (("weight", weight), ("bias", bias)):
        if t is not None and (not isinstance(t, Tensor) or t.shape != shape):
            got = t.shape if isinstance(t, Tensor) else type(t).__name__
            raise InputError(f"{_who}: {what} must be a Tensor of shape {shape}, got {got}")
    axes = tuple(range(x.ndim - k, x.ndim))
    centred = x - x.mean(axes, keepdims=True)
    var = (centred * centred).mean(axes, keepdims=True)
    y = centred / (var + eps).sqrt()
    if weight is not None:
        y = y * weight
    if bias is not None:
        y = y + bias
    return y


def embedding(
    input: Any, weight: Tensor, padding_idx: int | None = None, _who: str = "embedding"
) -> Tensor:
    """``weight[input]``: the rows of ``weight`` (num_embeddings, dim) picked by the int ids in
    ``input`` (any shape S; the result has shape S + (dim,)). The gradient of each occurrence is
    added into its row. The row ``padding_idx`` gets no gradient (its value is still read)."""
    if not isinstance(weight, Tensor) or weight.ndim != 2:
        got = weight.shape if isinstance(weight, Tensor) else type(weight).__name__
        raise InputError(f"{_who}: weight must be a 2-D Tensor (num_embeddings, dim), got {got}")
    ids = input.numpy() if isinstance(input, Tensor) else np.asarray(input)
    if ids.dtype.kind not in "iu":
        raise TypeError(f"{_who}: expected integer ids (int64), got dtype {ids.dtype}")
    num = weight.shape[0]
    if ids.size and (ids.min() < 0 or ids.max() >= num):
        bad = ids.min() if ids.min() < 0 else ids.max()
        raise IndexError(
            f"{_who}: id {int(bad)} is out of range for num_embeddings={num} "
            f"(ids must be in [0, {num - 1}]; input shape {ids.shape})"
        )
    ids = ids.astype(np.int64, copy=False)
    out = weight[ids]
    if padding_idx is not None and weight.requires_grad:
        # NOTE: the padding row is read from a detached copy of the table, so its value is used
        # but no gradient reaches it; everywhere else the rows come from the table itself.
        pad = padding_idx % num
        is_pad = (ids == pad)[..., None].astype(weight.dtype)
        if is_pad.any():
            mask = Tensor(is_pad, dtype=weight.dtype, device=weight.device)
            out = out * (1.0 - mask) + weight.detach()[ids] * mask
    return out
