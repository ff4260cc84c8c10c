"""Flat buffers: one kernel call steps many parameters at once.

A step of a small network is mostly Python: one kernel call per parameter, each with its checks.
So each parameter group keeps its CPU parameters of one dtype end to end in one contiguous array
(a ``FlatLayout``), and each parameter's ``_data`` *is* a view of its slice: a (15, 784) weight
is ``flat[0:11760].reshape(15, 784)``. The optimizer state is laid out the same way, one flat
array per buffer (``exp_avg``, ``exp_avg_sq``...), and ``state[p]["exp_avg"]`` is a view of it.
The step kernels update elements independently, so one call on the flat arrays does what one
call per parameter did, on the same numbers in the same arithmetic: the results are bitwise equal.

Per step, for the members that have a gradient:

1. check, per parameter, that its gradient has the right shape and dtype and that its arrays are
   still the views (cheap identity tests);
2. copy the gradients into one reused flat gradient array (a plain copy, cheaper than a kernel
   call below ``GATHER_MAX`` elements; a larger parameter is stepped on its own gradient);
3. call the rule's kernel once per *run*: consecutive members that have a gradient and the same
   step count (Adam's bias correction depends on it, so parameters stepped together share it).

Whatever does not fit is stepped parameter by parameter, as before, so the semantics never change:
a parameter without a gradient is skipped (split runs); a parameter seen for the first time gets
its state from the rule (``_init_state``) and is stepped alone; an array that was replaced (by
``Module.load_state_dict``, ``p.data = ...``, ``Optimizer.load_state_dict``, an option switched on
later) is copied into its slice and re-pointed at the next step when it has the same shape and
dtype ("adopted"), and otherwise (a parameter moved to the GPU) its parameter is stepped alone.

NOTE: because ``_data`` is re-pointed when the optimizer is built, an array taken from a parameter
before that (``w = p.numpy()``) no longer follows the parameter. Take it after.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from tinygrad_edu import config
from tinygrad_edu.tensor import Tensor

GATHER_MAX = config.FLAT_GATHER_MAX  # see config.py


class _Member:
    """One parameter in a layout: its slice of the flat arrays, and its views of them."""

    __slots__ = (
        "param", "shape", "start", "stop", "view", "grad_view", "gathered", "buffers",
        "step", "state", "grad",
    )  # fmt: skip

    def __init__(self, param: Any, start: int, stop: int, flat: np.ndarray, grad: np.ndarray):
        self.param, self.shape, self.start, self.stop = param, param.shape, start, stop
        self.view = flat[start:stop].reshape(self.shape)
        self.grad_view = grad[start:stop].reshape(self.shape)
        self.gathered = stop - start <= GATHER_MAX
        self.buffers: dict[str, np.ndarray] = {}  # buffer name -> view, filled when adopted
        # During a step: the new step count (0: not stepped flat), the state, the own gradient.
        self.step, self.state, self.grad = 0, None, None


class FlatLayout:
    """The CPU parameters of one group and one dtype, and their state, in flat arrays."""

    def __init__(self, params: list[Any], dtype: np.dtype) -> None:
        self.dtype = dtype
        self.device = params[0].device  # "cpu": only numpy-backed parameters are laid out
        sizes = [p.size for p in params]
        self.size = sum(sizes)
        self.param = np.empty(self.size, dtype)
        self.grad = np.empty(self.size, dtype)
        self.buffers: dict[str, np.ndarray] = {}  # name -> flat array, made when first needed
        self.members: list[_Member] = []
        start = 0
        for p, size in zip(params, sizes):
            # The layout: the params end to end in one array, in group order,
            #     self.param = [ p0 (its size0 entries, C order) | p1 | p2 | ... ]
            #     p_k is self.param[start_k : start_k + size_k].reshape(p_k.shape)
            # (the same slices of self.grad and of each state buffer belong to p_k). Copy the
            # values into the slice, then re-point the parameter's storage at it: from here on
            # p._data *is* that view, so every op, .data and .numpy() read the flat array, and
            # one kernel call on self.param updates every parameter in place.
            # NOTE: here (and in _fits) the optimizer sets a Tensor's private storage, on
            # purpose. The parameter stays the same Tensor object, with the same shape, dtype,
            # device and values.
            member = _Member(p, start, start + size, self.param, self.grad)
            member.view[...] = p._data
            p._data = member.view
            self.members.append(member)
            start += size
        self._runs: dict[tuple[int, int, tuple[str, ...]], tuple] = {}

    # ----- keeping the views in place -----

    def _adopt(self, member: _Member, array: Any, name: str | None) -> np.ndarray | None:
        """Copy an array that replaced one of the member's views into its slice; return the view,
        or None if the array does not fit there (another device, shape or dtype)."""
        if (
            type(array) is not np.ndarray
            or array.shape != member.shape
            or array.dtype != self.dtype
        ):
            return None
        if name is None:
            view = member.view
        else:
            view = member.buffers.get(name)
            if view is None:
                flat = self.buffers.get(name)
                if flat is None:
                    flat = self.buffers[name] = np.empty(self.size, self.dtype)
                view = member.buffers[name] = flat[member.start : member.stop].reshape(member.shape)
        view[...] = array
        return view

    def _fits(self, member: _Member, st: dict | None, names: tuple[str, ...]) -> bool:
        """Can the member be stepped flat: it has state, and its param and the buffers ``names``
        are views of the flat arrays (arrays that replaced them are adopted here)?"""
        if st is None:  # its first step: the rule makes its state
            return False
        p = member.param
        if p._data is not member.view:  # replaced (p.data = ..., load_state_dict): adopt it
            view = self._adopt(member, p._data, None)
            if view is None:
                return False
            p._data = view  # re-pointed at its slice again, as in __init__
        views = member.buffers
        for name in names:
            array = st.get(name)
            if array is None or array is not views.get(name):
                view = self._adopt(member, array, name)
                if view is None:
                    return False
                st[name] = view
        return True

    def _run(self, i: int, j: int, names: tuple[str, ...]) -> tuple:
        """(param, grad, {name: buffer}) slices for members i..j-1, made once and cached."""
        key = (i, j, names)
        run = self._runs.get(key)
        if run is None:
            start, stop = self.members[i].start, self.members[j - 1].stop
            state = {name: self.buffers[name][start:stop] for name in names}
            run = self._runs[key] = (self.param[start:stop], self.grad[start:stop], state)
        return run

    # ----- the step -----

    def step(self, optimizer: Any, group: dict, names: tuple[str, ...], step_fn: Any) -> list:
        """Step every member that can go flat; return the params to step one by one.

        ``names`` are the state buffers the rule's kernel takes with the group's current options.
        Nothing changes (but adopted copies, which hold the same values) unless every gradient is
        valid: a bad one raises the optimizer's error before any update.
        """
        state, dtype, members = optimizer.state, self.dtype, self.members
        alone: list[Any] = []
        for member in members:  # 1. check, gather the gradients, count the steps
            member.step = 0  # 0: not stepped flat this time
            p = member.param
            g = p.grad
            if g is None:
                continue
            gd = g._data if type(g) is Tensor else None
            if (
                type(gd) is not np.ndarray
                or gd.shape != member.shape
                or (gd.dtype is not dtype and gd.dtype != dtype)  # `is`: the fast common case
            ):
                optimizer._checked_grad(p)  # raises if the gradient is wrong, in words
                alone.append(p)  # a valid gradient in an unusual array: step it the usual way
                continue
            st = state.get(p)
            fits = st is not None and p._data is member.view
            if fits:
                views = member.buffers
                for name in names:
                    view = views.get(name)
                    if view is None or st.get(name) is not view:
                        fits = False
                        break
            if not fits and not self._fits(member, st, names):
                alone.append(p)
                continue
            if member.gathered:
                member.grad_view[...] = gd
            else:
                member.grad = gd
            member.state = st
            member.step = st["step"] + 1
        n, i = len(members), 0
        while i < n:  # 2. one kernel call per run of members with the same step count
            first = members[i]
            step = first.step
            if not step:
                i += 1
                continue
            j = i + 1
            if first.gathered:
                while j < n and members[j].step == step and members[j].gathered:
                    j += 1
            param, grad, run_state = self._run(i, j, names)
            if not first.gathered:
                grad = np.ascontiguousarray(first.grad).reshape(-1)
                first.grad = None
            run_state["step"] = step
            optimizer._apply(step_fn, param, grad, run_state, group, check=False)
            for k in range(i, j):
                members[k].state["step"] = step
            i = j
        return alone


def build_layouts(params: list[Any]) -> list[FlatLayout]:
    """One layout per dtype for the parameters that live in numpy arrays (the CPU's)."""
    by_dtype: dict[np.dtype, list[Any]] = {}
    for p in params:
        if type(p._data) is np.ndarray:
            by_dtype.setdefault(p.dtype, []).append(p)
    return [FlatLayout(ps, dtype) for dtype, ps in by_dtype.items()]
