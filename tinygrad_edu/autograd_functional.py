"""Functional transforms built on ``tg.grad``: ``tg.autograd.functional.jacobian``, ``hessian``,
``hvp`` and ``vjp``, for functions of one Tensor (PyTorch's ``torch.autograd.functional`` shapes).

Each is a few lines of ``tg.grad``: a Jacobian is one backward pass per output entry (a
vector-Jacobian product with a one-hot vector), and a Hessian is the Jacobian of the gradient,
which ``create_graph=True`` makes differentiable.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from tinygrad_edu.autograd import enable_grad, grad
from tinygrad_edu.tensor import Tensor

Fn = Callable[[Tensor], Tensor]


def _input(x: Tensor) -> Tensor:
    """A fresh leaf with x's values that requires grad (the caller's x is left as it is)."""
    if not isinstance(x, Tensor):
        raise TypeError(f"expected a Tensor input, got {type(x).__name__}")
    return x.detach().requires_grad_(True)


def _one_hot(like: Tensor, flat_index: int) -> Tensor:
    seed = np.zeros(like.shape, dtype=like.dtype)
    seed.reshape(-1)[flat_index] = 1
    return Tensor(seed, device=like.device)


def _rows(y: Tensor, x: Tensor, create_graph: bool) -> Tensor:
    """The Jacobian dy/dx, of shape y.shape + x.shape: one vector-Jacobian product per entry."""
    rows = []
    for i in range(y.size):
        (g,) = grad(y, x, _one_hot(y, i), retain_graph=True, create_graph=create_graph,
                    allow_unused=True)  # fmt: skip
        rows.append(np.zeros(x.shape, x.dtype) if g is None else g.numpy())
    return Tensor(np.stack(rows).reshape(tuple(y.shape) + tuple(x.shape)), device=x.device)


def vjp(f: Fn, x: Tensor, v: Tensor | None = None) -> tuple[Tensor, Tensor]:
    """(f(x), v^T J): the vector-Jacobian product, one backward pass."""
    x = _input(x)
    with enable_grad():
        y = f(x)
        (g,) = grad(y, x, v, allow_unused=True)
    return y.detach(), Tensor(np.zeros(x.shape, x.dtype)) if g is None else g


def jacobian(f: Fn, x: Tensor) -> Tensor:
    """J[i..., j...] = d f(x)[i...] / d x[j...], of shape f(x).shape + x.shape."""
    x = _input(x)
    with enable_grad():
        return _rows(f(x), x, create_graph=False)


def hessian(f: Fn, x: Tensor) -> Tensor:
    """H[i..., j...] = d^2 f / (d x[i...] d x[j...]) for a single-element f(x), of shape
    x.shape + x.shape: the Jacobian of the gradient, which create_graph=True records."""
    x = _input(x)
    with enable_grad():
        y = f(x)
        if y.size != 1:
            raise RuntimeError(f"hessian: f(x) must have a single element, got shape {y.shape}")
        (g,) = grad(y, x, create_graph=True)
        return _rows(g, x, create_graph=False)


def hvp(f: Fn, x: Tensor, v: Tensor) -> tuple[Tensor, Tensor]:
    """(f(x), H v) for a single-element f(x), without forming H: the gradient of g . v, where
    g = df/dx is recorded (two backward passes)."""
    x = _input(x)
    with enable_grad():
        y = f(x)
        if y.size != 1:
            raise RuntimeError(f"hvp: f(x) must have a single element, got shape {y.shape}")
        (g,) = grad(y, x, create_graph=True)
        (hv,) = grad(g, x, v, allow_unused=True)
    return y.detach(), Tensor(np.zeros(x.shape, x.dtype)) if hv is None else hv
