"""PyTorch's module-level constructors and dtypes: ``tg.tensor``, ``tg.zeros``, ``tg.float32``...

Each is a thin layer over ``Tensor`` (its static constructors where they exist); the dtype rules
are PyTorch's: ``tg.tensor([1, 2])`` is int64 and ``tg.tensor([1.0])`` float32, a numpy array
keeps its float dtype, ``tg.arange(5)`` is int64 and ``tg.arange(0.0, 1.0, 0.25)`` float32.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import numpy as np

from tinygrad_edu.errors import InputError
from tinygrad_edu.tensor import Tensor

float32 = np.dtype(np.float32)
float64 = np.dtype(np.float64)
int64 = np.dtype(np.int64)


def tensor(
    data: Any, dtype: Any = None, requires_grad: bool = False, device: str = "cpu"
) -> Tensor:
    """A new tensor holding a copy of ``data``. Without ``dtype``: integers (and an integer
    array) give int64, Python floats float32, a float64 numpy array or Tensor keeps float64."""
    if dtype is None:
        if isinstance(data, Tensor):
            dtype = data.dtype
        elif not isinstance(data, (str, bytes)) and data is not None:
            try:
                kind = np.asarray(data).dtype.kind
            except ValueError:  # ragged: Tensor() below says so
                kind = "f"
            dtype = int64 if kind in "iu" else None  # floats and bools: Tensor's own rule
    return Tensor(data, requires_grad=requires_grad, dtype=dtype, device=device)


def zeros(*size: Any, **kwargs: Any) -> Tensor:
    """Zeros of shape ``size`` (``zeros(2, 3)`` or ``zeros((2, 3))``), float32 by default."""
    return Tensor.zeros(*size, **kwargs)


def ones(*size: Any, **kwargs: Any) -> Tensor:
    return Tensor.ones(*size, **kwargs)


def full(size: Any, fill_value: float, dtype: Any = None, **kwargs: Any) -> Tensor:
    """``fill_value`` everywhere; an int fill gives int64 and a float float32, as PyTorch."""
    if dtype is None:
        is_int = isinstance(fill_value, (int, np.integer)) and not isinstance(fill_value, bool)
        dtype = int64 if is_int else float32
    return Tensor.full(size, fill_value, dtype=dtype, **kwargs)


def randn(*size: Any, **kwargs: Any) -> Tensor:
    """Samples of N(0, 1) from the library's seeded generator (``tg.manual_seed``)."""
    return Tensor.randn(*size, **kwargs)


def rand(*size: Any, **kwargs: Any) -> Tensor:
    """Samples of the uniform distribution on [0, 1)."""
    return Tensor.rand(*size, **kwargs)


def eye(n: int, m: int | None = None, **kwargs: Any) -> Tensor:
    """The n x m identity (m = n by default)."""
    if not isinstance(n, (int, np.integer)) or (m is not None and not isinstance(m, int)):
        raise TypeError(f"eye: n and m must be ints, got n={n!r}, m={m!r}")
    if n < 0 or (m is not None and m < 0):
        raise InputError(f"eye: n and m must be >= 0, got n={n}, m={m}")
    kwargs.setdefault("dtype", float32)
    return Tensor(np.eye(n, m), **kwargs)


def zeros_like(t: Tensor, dtype: Any = None, **kwargs: Any) -> Tensor:
    """Zeros of ``t``'s shape, dtype and device."""
    return full_like(t, 0, dtype=dtype, **kwargs)


def ones_like(t: Tensor, dtype: Any = None, **kwargs: Any) -> Tensor:
    """Ones of ``t``'s shape, dtype and device."""
    return full_like(t, 1, dtype=dtype, **kwargs)


def full_like(t: Tensor, fill_value: float, dtype: Any = None, **kwargs: Any) -> Tensor:
    if not isinstance(t, Tensor):
        raise TypeError(f"full_like: expected a Tensor, got {type(t).__name__}")
    kwargs.setdefault("device", t.device)
    return Tensor.full(t.shape, fill_value, dtype=t.dtype if dtype is None else dtype, **kwargs)


def arange(
    start: float, end: float | None = None, step: float = 1, dtype: Any = None, **kwargs: Any
) -> Tensor:
    """start, start + step, ... up to but excluding end (``arange(n)`` is 0..n-1); int64 when
    every argument is an int, else float32, as PyTorch."""
    if end is None:
        start, end = 0, start
    for name, v in (("start", start), ("end", end), ("step", step)):
        if isinstance(v, bool) or not isinstance(v, (int, float, np.integer, np.floating)):
            raise TypeError(f"arange: {name} must be a number, got {v!r}")
        if not math.isfinite(v):
            raise InputError(f"arange: {name} must be finite, got {v}")
    if step == 0:
        raise InputError("arange: step must be nonzero")
    if dtype is None:
        integral = all(isinstance(v, (int, np.integer)) for v in (start, end, step))
        dtype = int64 if integral else float32
    # float64 steps then one conversion: PyTorch's values (not float32 rounding at each step)
    count = max(0, math.ceil((end - start) / step))
    values = start + step * np.arange(count, dtype=np.float64)
    if np.dtype(dtype) == int64 and all(isinstance(v, (int, np.integer)) for v in (start, step)):
        values = start + step * np.arange(count, dtype=np.int64)  # exact beyond 2**53
    return Tensor(values, dtype=dtype, **kwargs)


def linspace(start: float, end: float, steps: int, dtype: Any = None, **kwargs: Any) -> Tensor:
    """``steps`` evenly spaced values from start to end, both included; float32 by default."""
    if isinstance(steps, bool) or not isinstance(steps, (int, np.integer)):
        raise TypeError(f"linspace: steps must be an int, got {steps!r}")
    if steps < 0:
        raise InputError(f"linspace: steps must be >= 0, got {steps}")
    return Tensor(
        np.linspace(start, end, steps), dtype=float32 if dtype is None else dtype, **kwargs
    )


def cat(tensors: Sequence[Tensor], dim: int = 0) -> Tensor:
    """Join tensors along an existing dim (``Tensor.cat``)."""
    return Tensor.cat(tensors, dim=dim)


def stack(tensors: Sequence[Tensor], dim: int = 0) -> Tensor:
    """Join tensors along a new dim (``Tensor.stack``)."""
    return Tensor.stack(tensors, dim=dim)


__all__ = [
    "arange",
    "cat",
    "eye",
    "float32",
    "float64",
    "full",
    "full_like",
    "int64",
    "linspace",
    "ones",
    "ones_like",
    "rand",
    "randn",
    "stack",
    "tensor",
    "zeros",
    "zeros_like",
]
