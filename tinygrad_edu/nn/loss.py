"""Loss modules: ``criterion = nn.CrossEntropyLoss(); loss = criterion(model(x), y)``.

Each holds its options (``reduction=`` "mean", "sum" or "none", and ``delta``/``beta``) and calls
its functional twin in ``nn.functional``, where the maths is.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from tinygrad_edu.nn import functional as F
from tinygrad_edu.nn.functional import _check_reduction
from tinygrad_edu.nn.module import Module
from tinygrad_edu.tensor import Tensor


class _Loss(Module):
    _fn: Any = None

    # NOTE: keyword-only, because PyTorch's positional order differs between losses (its
    # MSELoss(x) means size_average=x, a deprecated argument not supported here).
    def __init__(self, *, reduction: str = "mean") -> None:
        super().__init__()
        _check_reduction(reduction, type(self).__name__)
        self.reduction = reduction

    def forward(self, input: Tensor, target: Any) -> Tensor:
        return type(self)._fn(input, target, reduction=self.reduction)

    def extra_repr(self) -> str:
        return f"reduction={self.reduction!r}"


def _check_weight(value: Any, what: str, loss: Module) -> Any:
    """None, a Tensor or an array of numbers (a string here is a misplaced ``reduction``)."""
    if value is not None and not isinstance(value, Tensor):
        try:
            np.asarray(value, dtype=np.float64)
        except (TypeError, ValueError):
            raise TypeError(
                f"{type(loss).__name__}: {what} must be a Tensor or an array of numbers, got "
                f"{value!r} (reduction is a keyword argument)"
            ) from None
    return value


class MSELoss(_Loss):
    """(input - target)^2, reduced (``F.mse_loss``)"""

    _fn = staticmethod(F.mse_loss)


class L1Loss(_Loss):
    """|input - target|, reduced (``F.l1_loss``)"""

    _fn = staticmethod(F.l1_loss)


class CrossEntropyLoss(_Loss):
    """-log softmax(logits)[label] for (N, C) logits and N integer labels (``F.cross_entropy``),
    with PyTorch's ``weight``, ``ignore_index`` and ``label_smoothing``.

    NOTE: probability targets (an (N, C) float target) are not supported."""

    def __init__(
        self,
        weight: Any = None,
        *,
        ignore_index: int = -100,
        reduction: str = "mean",
        label_smoothing: float = 0.0,
    ) -> None:
        super().__init__(reduction=reduction)
        self.weight, self.ignore_index = _check_weight(weight, "weight", self), int(ignore_index)
        self.label_smoothing = float(label_smoothing)

    def forward(self, input: Tensor, target: Any) -> Tensor:
        return F.cross_entropy(
            input,
            target,
            reduction=self.reduction,
            weight=self.weight,
            ignore_index=self.ignore_index,
            label_smoothing=self.label_smoothing,
        )


class NLLLoss(_Loss):
    """-w[label_i] input[i, label_i] for (N, C) log-probabilities (``F.nll_loss``), with
    PyTorch's ``weight`` and ``ignore_index``."""

    def __init__(
        self, weight: Any = None, *, ignore_index: int = -100, reduction: str = "mean"
    ) -> None:
        super().__init__(reduction=reduction)
        self.weight, self.ignore_index = _check_weight(weight, "weight", self), int(ignore_index)

    def forward(self, input: Tensor, target: Any) -> Tensor:
        return F.nll_loss(
            input, target, self.weight, ignore_index=self.ignore_index, reduction=self.reduction
        )


class BCELoss(_Loss):
    """-(t log p + (1 - t) log(1 - p)) for probabilities p (``F.binary_cross_entropy``)"""

    _fn = staticmethod(F.binary_cross_entropy)


class BCEWithLogitsLoss(_Loss):
    """BCELoss of sigmoid(logits), computed stably from the logits
    (``F.binary_cross_entropy_with_logits``), with PyTorch's ``weight`` and ``pos_weight``."""

    def __init__(self, weight: Any = None, *, reduction: str = "mean", pos_weight: Any = None):
        super().__init__(reduction=reduction)
        self.weight = _check_weight(weight, "weight", self)
        self.pos_weight = _check_weight(pos_weight, "pos_weight", self)

    def forward(self, input: Tensor, target: Any) -> Tensor:
        return F.binary_cross_entropy_with_logits(
            input, target, self.weight, reduction=self.reduction, pos_weight=self.pos_weight
        )


class HuberLoss(_Loss):
    """0.5 d^2 where |d| < delta, delta (|d| - delta/2) elsewhere (``F.huber_loss``)"""

    def __init__(self, reduction: str = "mean", delta: float = 1.0) -> None:  # torch's order
        super().__init__(reduction=reduction)
        self.delta = F._check_positive(delta, "delta", "HuberLoss", allow_zero=False)

    def forward(self, input: Tensor, target: Any) -> Tensor:
        return F.huber_loss(input, target, reduction=self.reduction, delta=self.delta)

    def extra_repr(self) -> str:
        return f"reduction={self.reduction!r}, delta={self.delta}"


class SmoothL1Loss(_Loss):
    """0.5 d^2 / beta where |d| < beta, |d| - beta/2 elsewhere (``F.smooth_l1_loss``)"""

    def __init__(self, *, reduction: str = "mean", beta: float = 1.0) -> None:
        super().__init__(reduction=reduction)
        self.beta = F._check_positive(beta, "beta", "SmoothL1Loss", allow_zero=True)

    def forward(self, input: Tensor, target: Any) -> Tensor:
        return F.smooth_l1_loss(input, target, reduction=self.reduction, beta=self.beta)

    def extra_repr(self) -> str:
        return f"reduction={self.reduction!r}, beta={self.beta}"
