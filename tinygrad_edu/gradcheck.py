"""Finite differences: the slow, obviously-correct way to get a gradient.

The chapter's definition of the derivative, applied one weight at a time:

    forward:  dJ/dw_i ~ (J(w + eps e_i) - J(w)) / eps                    error O(eps)
    central:  dJ/dw_i ~ (J(w + eps e_i) - J(w - eps e_i)) / (2 eps)      error O(eps^2)

Each entry costs one (forward) or two (central) evaluations of J, so a network with P parameters
needs P or 2P forward passes, where backpropagation needs one forward and one backward pass.
That is why backprop wins, and why finite differences stay useful: they check it.
"""

from __future__ import annotations

import operator
import warnings
from collections.abc import Callable, Iterable, Sequence
from typing import Any

import numpy as np

from tinygrad_edu.autograd import enable_grad, grad, no_grad
from tinygrad_edu.errors import InputError
from tinygrad_edu.tensor import Tensor


class GradcheckError(AssertionError):
    """Backprop and finite differences disagree."""


def _evaluate(f: Callable[[], Tensor], where: str) -> float:
    out = f()
    if not isinstance(out, Tensor) or out.size != 1:
        shape = out.shape if isinstance(out, Tensor) else type(out).__name__
        raise InputError(f"{where}: f() must return a single-element Tensor, got {shape}")
    return float(out.item())


def _evaluate_at(f: Callable[[], Tensor], t: Tensor, values: np.ndarray, in_place: bool) -> float:
    if not in_place:
        t.data = values
    return _evaluate(f, "numerical_gradient")


def _check_tensors(tensors: Sequence[Tensor], where: str) -> list[Tensor]:
    tensors = list(tensors)
    for k, t in enumerate(tensors):
        if not isinstance(t, Tensor):
            raise TypeError(f"{where}: tensors[{k}] is a {type(t).__name__}, not a Tensor")
        if t.dtype not in (np.float32, np.float64):
            raise TypeError(f"{where}: tensors[{k}] has dtype {t.dtype}; expected a float dtype")
    return tensors


def numerical_gradient(
    f: Callable[[], Tensor],
    tensors: Sequence[Tensor],
    eps: float = 1e-6,
    method: str = "central",
    entries: Iterable[tuple[int, Any]] | None = None,
) -> list[np.ndarray]:
    """dJ/dt for each tensor t, by finite differences, as float64 numpy arrays.

    ``f()`` takes no arguments and returns a single-element Tensor J computed from ``tensors``.
    Each entry is nudged in place, J re-evaluated (without recording a graph), and the entry
    restored, even if ``f`` raises.

    ``entries`` differentiates only some entries (a sample, when all would take too long): pairs
    ``(k, index)``, the position of the tensor in ``tensors`` and an index into it (a tuple, or
    an int into the flattened tensor). The other entries of the result are NaN.

    This is the library's one finite-difference routine: ``gradcheck``, the CLI's ``gradcheck``
    command and the benchmarks all call it.
    """
    if method not in ("central", "forward"):
        raise InputError(
            f"numerical_gradient: method must be 'central' or 'forward', got {method!r}"
        )
    if not eps > 0:
        raise InputError(f"numerical_gradient: eps must be positive, got {eps}")
    tensors = _check_tensors(tensors, "numerical_gradient")
    picks = None if entries is None else _group_entries(tensors, entries)
    grads = []
    with no_grad():
        base = _evaluate(f, "numerical_gradient") if method == "forward" else 0.0
        for k, t in enumerate(tensors):
            if picks is None:
                indices, grad = np.ndindex(t.shape), np.zeros(t.shape, dtype=np.float64)
            else:
                indices, grad = picks[k], np.full(t.shape, np.nan)
            # On the CPU the entries are nudged in place; elsewhere a host copy is nudged and
            # sent back each time. Either way the tensor ends with exactly its old values.
            original = t._data
            in_place = t.device == "cpu" and original.flags.writeable
            values = original if in_place else t.data.copy()
            index, v = None, None
            try:
                for index in indices:
                    v = values[index]
                    values[index] = v + eps
                    plus = _evaluate_at(f, t, values, in_place)
                    if method == "central":  # (J(w + eps e_i) - J(w - eps e_i)) / 2 eps
                        values[index] = v - eps
                        minus = _evaluate_at(f, t, values, in_place)
                        grad[index] = (plus - minus) / (2 * eps)
                    else:  # (J(w + eps e_i) - J(w)) / eps
                        grad[index] = (plus - base) / eps
                    values[index] = v
            finally:
                if index is not None and values.size:
                    values[index] = v  # undo the nudge in flight if f() raised
                t._data = original
            grads.append(grad)
    return grads


def _group_entries(tensors: list[Tensor], entries: Iterable[tuple[int, Any]]) -> list[list]:
    """``(k, index)`` pairs -> per tensor, its index tuples (each checked to be in range)."""
    picks: list[list] = [[] for _ in tensors]
    for pair in entries:
        try:
            k, index = pair
            k = operator.index(k)
            shape = tensors[k].shape
            if isinstance(index, (int, np.integer)):
                index = np.unravel_index(int(index), shape)
            index = tuple(operator.index(i) for i in index)
            if len(index) != len(shape) or not all(0 <= i < n for i, n in zip(index, shape)):
                raise IndexError
        except (TypeError, ValueError, IndexError):
            raise InputError(
                f"numerical_gradient: entries must be (tensor position, index) pairs that name "
                f"one entry of one of the {len(tensors)} tensors, got {pair!r}"
            ) from None
        picks[k].append(index)
    return picks


def gradcheck(
    f: Callable[[], Tensor],
    tensors: Sequence[Tensor],
    eps: float = 1e-6,
    atol: float = 1e-5,
    rtol: float = 1e-3,
    check_grad_grad: bool = False,
) -> bool:
    """Compare backprop's gradient with central differences, entry by entry.

    Passes when ``|a - n| <= atol + rtol * |n|`` everywhere (a: backprop, n: numerical) and
    returns True; otherwise raises ``GradcheckError`` naming the tensor, the index and both
    values. The tensors' ``.grad`` is left as it was. Use float64: float32 rounding errors
    divided by a small eps swamp the derivative.

    With ``check_grad_grad=True`` second derivatives are checked too (PyTorch's gradgradcheck):
    for fixed random directions v_i, s = sum_i <dJ/dx_i, v_i> is built by
    ``tg.grad(J, tensors, create_graph=True)``, and s's gradient by backprop (which runs
    backward through the recorded backward pass) is compared with central differences of s.
    """
    tensors = _check_tensors(tensors, "gradcheck")
    if any(t.dtype == np.float32 for t in tensors):
        warnings.warn(
            "gradcheck: float32 tensors give noisy finite differences; use float64",
            stacklevel=2,
        )
    for k, t in enumerate(tensors):
        if not t.requires_grad:
            raise InputError(f"gradcheck: tensors[{k}] does not require grad")
    saved = [t.grad for t in tensors]
    try:
        for t in tensors:
            t.grad = None
        out = f()
        if not isinstance(out, Tensor) or out.size != 1:
            raise InputError("gradcheck: f() must return a single-element Tensor")
        out.backward()
        analytic = [
            np.zeros(t.shape) if t.grad is None else t.grad.numpy().astype(np.float64)
            for t in tensors
        ]
    finally:
        for t, g in zip(tensors, saved):
            t.grad = g
    numeric = numerical_gradient(f, tensors, eps=eps, method="central")
    _compare(analytic, numeric, atol, rtol, "")
    if check_grad_grad:
        s = _directional_gradient(f, tensors)
        analytic = _gradient_of(s, tensors)
        numeric = numerical_gradient(s, tensors, eps=eps, method="central")
        _compare(
            analytic,
            numeric,
            atol,
            rtol,
            " (second derivatives: the gradient of s = sum_i <dJ/dx_i, v_i>)",
        )
    return True


def _compare(analytic: list, numeric: list, atol: float, rtol: float, what: str) -> None:
    for k, (a, n) in enumerate(zip(analytic, numeric)):
        bad = ~(np.abs(a - n) <= atol + rtol * np.abs(n))
        if bad.any():
            index = tuple(int(i) for i in np.argwhere(bad)[0])
            raise GradcheckError(
                f"gradcheck{what}: tensor {k} (shape {a.shape}), index {index}: backprop gives "
                f"{a[index]!r}, finite differences give {n[index]!r} "
                f"(allowed |a - n| <= {atol} + {rtol} * |n|); {int(bad.sum())} entries differ"
            )


def _directional_gradient(f: Callable[[], Tensor], tensors: list[Tensor]) -> Callable:
    """s() = sum_i <dJ/dx_i, v_i>, a scalar whose gradient is the Hessian times v (v random
    and fixed), recorded even where numerical_gradient switches recording off."""
    rng = np.random.default_rng(0)
    directions = [Tensor(rng.standard_normal(t.shape), dtype=t.dtype).to(t.device) for t in tensors]

    def s() -> Tensor:
        with enable_grad():
            grads = grad(f(), tensors, create_graph=True, allow_unused=True)
            terms = [(g * v).sum() for g, v in zip(grads, directions) if g is not None]
            total = terms[0] if terms else Tensor(0.0)
            for term in terms[1:]:
                total = total + term
            return total

    return s


def _gradient_of(s: Callable[[], Tensor], tensors: list[Tensor]) -> list[np.ndarray]:
    """ds/dx by backprop as float64 arrays (zeros where s does not depend on a tensor)."""
    out = s()
    if not out.requires_grad:  # J is linear: its gradient is constant, the Hessian zero
        return [np.zeros(t.shape) for t in tensors]
    found = grad(out, tensors, allow_unused=True)
    return [
        np.zeros(t.shape) if g is None else g.numpy().astype(np.float64)
        for t, g in zip(tensors, found)
    ]
