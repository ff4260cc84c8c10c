"""Gradient clipping and flat parameter vectors, PyTorch's ``torch.nn.utils``."""

from __future__ import annotations

import math
from collections.abc import Iterable
from typing import Any

from tinygrad_edu.autograd import no_grad
from tinygrad_edu.errors import InputError
from tinygrad_edu.tensor import Tensor

__all__ = [
    "clip_grad_norm_",
    "clip_grad_value_",
    "parameters_to_vector",
    "vector_to_parameters",
]


def _tensors(parameters: Any, name: str) -> list[Tensor]:
    if isinstance(parameters, Tensor):
        return [parameters]
    if not isinstance(parameters, Iterable):
        raise TypeError(f"{name}: expected a Tensor or an iterable of Tensors, got {parameters!r}")
    params = list(parameters)
    for p in params:
        if not isinstance(p, Tensor):
            raise TypeError(f"{name}: expected Tensors, got a {type(p).__name__}")
    return params


def clip_grad_norm_(
    parameters: Any,
    max_norm: float,
    norm_type: float = 2.0,
    error_if_nonfinite: bool = False,
) -> Tensor:
    """Scale the gradients so that their joint norm (all of them as one vector) is at most
    ``max_norm``: g <- g * min(1, max_norm / (norm + 1e-6)). Returns the norm before clipping,
    a 0-d Tensor (PyTorch's). ``norm_type`` may be ``float("inf")`` (the largest |g|).

    Used against exploding gradients (RNNs, transformers): the step keeps its direction but
    its length is bounded."""
    name = "clip_grad_norm_"
    grads = [p.grad for p in _tensors(parameters, name) if p.grad is not None]
    max_norm, norm_type = float(max_norm), float(norm_type)
    if not norm_type > 0:
        raise InputError(f"{name}: norm_type must be > 0 (or inf), got {norm_type}")
    if not grads:
        return Tensor(0.0)
    with no_grad():
        if math.isinf(norm_type):
            norms = [g.abs().max() for g in grads if g.size]
            total = Tensor.stack(norms).max() if norms else Tensor(0.0, dtype=grads[0].dtype)
        else:
            powers = [(g.abs() ** norm_type).sum() for g in grads]
            total = Tensor.stack(powers).sum() ** (1.0 / norm_type)
        value = float(total.item())
        if error_if_nonfinite and not math.isfinite(value):
            raise RuntimeError(
                f"{name}: the total norm of order {norm_type} of the gradients is {value}; "
                "set error_if_nonfinite=False to clip anyway"
            )
        coef = min(max_norm / (value + 1e-6), 1.0)
        for g in grads:
            g.mul_(coef)  # as PyTorch: always multiplied (by 1.0 when within the bound)
    return total


def clip_grad_value_(parameters: Any, clip_value: float) -> None:
    """Clamp every gradient entry into [-clip_value, clip_value], in place."""
    clip_value = float(clip_value)
    if not clip_value >= 0:
        raise InputError(f"clip_grad_value_: clip_value must be >= 0, got {clip_value}")
    with no_grad():
        for p in _tensors(parameters, "clip_grad_value_"):
            if p.grad is not None:
                p.grad.clamp_(-clip_value, clip_value)


def parameters_to_vector(parameters: Any) -> Tensor:
    """All parameters flattened and concatenated into one 1-D Tensor (differentiable, as
    PyTorch's: it is a reshape and a cat)."""
    params = _tensors(parameters, "parameters_to_vector")
    if not params:
        raise InputError("parameters_to_vector: no parameters given")
    return Tensor.cat([p.reshape(-1) for p in params])


def vector_to_parameters(vec: Tensor, parameters: Any) -> None:
    """Copy consecutive slices of the 1-D ``vec`` into the parameters, in place (the inverse
    of ``parameters_to_vector``). The parameters keep their objects, dtypes and devices."""
    name = "vector_to_parameters"
    if not isinstance(vec, Tensor):
        raise TypeError(f"{name}: expected vec to be a Tensor, got {type(vec).__name__}")
    if vec.ndim != 1:
        raise InputError(f"{name}: vec must be 1-D, got shape {vec.shape}")
    params = _tensors(parameters, name)
    total = sum(p.size for p in params)
    if total != vec.shape[0]:
        raise InputError(
            f"{name}: vec has {vec.shape[0]} entries but the parameters have {total} in all"
        )
    start = 0
    with no_grad():
        for p in params:
            p.copy_(vec[start : start + p.size].reshape(p.shape))
            start += p.size
