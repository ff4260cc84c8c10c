"""The base class of every optimizer: parameter groups, per-parameter state, ``step``.

The design is PyTorch's, so code written for ``torch.optim`` reads the same here:

- ``param_groups`` is a list of dicts; each holds ``"params"`` (a list of Tensors) and that group's
  hyperparameters (``"lr"``, ``"momentum"``...), filled in from the constructor's defaults. A
  scheduler, or the user, may change them between steps.
- ``state[p]`` is a dict per parameter: a step counter and the buffers the rule keeps (a momentum
  buffer, running averages). Buffers are arrays of the parameter's backend, created on the first
  step that sees a gradient, so they live on the same device as the parameter.
- ``step()`` walks the groups, skips parameters without a gradient, and hands each parameter, its
  gradient and its state to one fused kernel of the parameter's backend (``backend.adam_step``
  ...). The arithmetic lives in ``tinygrad_edu/backend/optim_reference.py``; a subclass only
  says which buffers it needs and which kernel to call. The route, as in PyTorch: ``step`` ->
  the rule's ``_apply`` -> ``backend.<rule>_step`` -> its loop -> ``_<rule>_update``, one element
  (``backend/optim_cpu.py``).
- On the CPU, a group's parameters and their state buffers are views of a few flat arrays, so that
  one kernel call steps them all (``flat.py`` says how, and when it falls back to one call per
  parameter). The results are the same, bit for bit.

Updates are made directly on the parameters' arrays, so they are never recorded in the graph.
"""

from __future__ import annotations

import numbers
import operator
from collections.abc import Callable, Iterable
from typing import Any

import numpy as np

from tinygrad_edu.backend import get_backend
from tinygrad_edu.errors import InputError
from tinygrad_edu.optim.flat import FlatLayout, build_layouts
from tinygrad_edu.tensor import Tensor

_SET_MESSAGE = (
    "parameters must be in an ordered collection (a list), not a set, so that state_dict() "
    "numbers them the same way in every run"
)


class Optimizer:
    """Base class: subclasses define ``_kernel``, ``_validate_group``, ``_init_state``,
    ``_kernel_buffers``, ``_apply`` and ``_update``."""

    _kernel: str  # the name of the rule's step kernel in the backends ("adam_step")
    _use_flat = True  # step CPU parameters through flat buffers (False: one call per parameter)

    def __init__(self, params: Iterable[Any], defaults: dict[str, Any]) -> None:
        name = type(self).__name__
        self.defaults = dict(defaults)
        self.state: dict[Tensor, dict[str, Any]] = {}
        self.param_groups: list[dict[str, Any]] = []
        # Per group: (its params when laid out, their flat layouts, the params in none of them).
        self._flat: list[tuple[tuple[Tensor, ...], list[FlatLayout], list[Tensor]]] = []
        if isinstance(params, Tensor):
            raise TypeError(
                f"{name}: params should be an iterable of Tensors or of dicts, got a single "
                "Tensor; wrap it in a list: [t]"
            )
        if isinstance(params, dict):
            raise TypeError(f"{name}: params should be a list of dicts, got a single dict")
        if isinstance(params, (set, frozenset)):
            raise TypeError(f"{name}: {_SET_MESSAGE}")
        groups = list(params)
        if not groups:
            raise InputError(f"{name}: got an empty parameter list")
        if not isinstance(groups[0], dict):
            groups = [{"params": groups}]
        for group in groups:
            self.add_param_group(group)

    # ----- parameter groups -----

    def add_param_group(self, param_group: dict[str, Any]) -> None:
        """Add a group: ``{"params": [...], **options}``; missing options take the defaults."""
        name = type(self).__name__
        if not isinstance(param_group, dict) or "params" not in param_group:
            raise TypeError(f"{name}: a parameter group must be a dict with a 'params' entry")
        group = dict(param_group)
        params = group["params"]
        if isinstance(params, Tensor):
            params = [params]
        elif isinstance(params, (set, frozenset)):
            raise TypeError(f"{name}: {_SET_MESSAGE}")
        group["params"] = list(params)
        for k, p in enumerate(group["params"]):
            _check_param(name, k, p)
        if len({id(p) for p in group["params"]}) != len(group["params"]):
            raise InputError(f"{name}: a parameter group lists the same parameter twice")
        seen = {id(p) for g in self.param_groups for p in g["params"]}
        if any(id(p) in seen for p in group["params"]):
            raise InputError(f"{name}: some parameters appear in more than one parameter group")
        for key, default in self.defaults.items():
            group.setdefault(key, default)
        self._validate_group(group)
        self.param_groups.append(group)
        if self._use_flat:
            self._flat.append(self._lay_out(group["params"]))

    def _lay_out(self, params: list[Tensor]) -> tuple:
        layouts = build_layouts(params)
        laid_out = {id(m.param) for layout in layouts for m in layout.members}
        return tuple(params), layouts, [p for p in params if id(p) not in laid_out]

    def _layouts(self, k: int, group: dict[str, Any]) -> tuple:
        """Group k's layouts, laid out again if its list of parameters changed."""
        params = group["params"]
        if k < len(self._flat):
            flat = self._flat[k]
            laid_out = flat[0]
            if len(laid_out) == len(params) and all(map(operator.is_, laid_out, params)):
                return flat
        del self._flat[k:]
        for g in self.param_groups[len(self._flat) : k + 1]:
            self._flat.append(self._lay_out(g["params"]))
        return self._flat[k]

    # ----- the update -----

    def zero_grad(self, set_to_none: bool = True) -> None:
        """Forget the gradients: ``.grad = None`` (or zeros, with ``set_to_none=False``)."""
        for group in self.param_groups:
            for p in group["params"]:
                if p.grad is None:
                    continue
                if set_to_none:
                    p.grad = None
                else:
                    p.grad = Tensor(np.zeros(p.shape, p.dtype), device=p.device)

    def step(self, closure: Callable[[], Any] | None = None) -> Any:
        """Update every parameter that has a gradient; return ``closure()`` if one is given.

        ``closure`` re-evaluates the model and returns the loss (PyTorch's convention, needed by
        methods that look at the loss several times per step); it is called before the update.
        """
        loss = closure() if closure is not None else None
        for k, group in enumerate(self.param_groups):
            if not self._use_flat:
                for p in group["params"]:
                    if p.grad is not None:
                        self._step_param(p, group)
                continue
            _, layouts, others = self._layouts(k, group)
            if layouts:
                names = self._kernel_buffers(group)
                for layout in layouts:
                    # The rule's kernel on the layout's device (its params'). The layout calls
                    # it with check=False: it has checked its flat arrays once, and for a small
                    # network the kernel's own checks would cost more than the update.
                    step_fn = getattr(get_backend(layout.device), self._kernel)
                    for p in layout.step(self, group, names, step_fn):
                        self._step_param(p, group)
            for p in others:
                if p.grad is not None:
                    self._step_param(p, group)
        return loss

    def _step_param(self, p: Tensor, group: dict[str, Any]) -> None:
        """One parameter's update, with its own kernel call."""
        grad = self._checked_grad(p)
        backend = get_backend(p.device)
        state = self.state.get(p)
        if state is None:
            state = self.state[p] = self._init_state(backend, p, group)
        state["step"] += 1
        self._update(backend, p, grad, group, state)

    def _checked_grad(self, p: Tensor) -> Tensor:
        grad, name = p.grad, type(self).__name__
        if not isinstance(grad, Tensor):
            raise TypeError(
                f"{name}: a parameter's .grad must be a Tensor or None, got {type(grad).__name__}"
            )
        if grad.shape != p.shape or grad.dtype != p.dtype or grad.device != p.device:
            raise InputError(
                f"{name}: a parameter of shape {p.shape}, dtype {p.dtype}, device {p.device!r} "
                f"has a .grad of shape {grad.shape}, dtype {grad.dtype}, device {grad.device!r}"
            )
        return grad

    # ----- what each rule defines -----

    def _validate_group(self, group: dict[str, Any]) -> None:
        """Raise TypeError/ValueError naming the optimizer if a hyperparameter is invalid."""
        raise NotImplementedError

    def _init_state(self, backend: Any, p: Tensor, group: dict[str, Any]) -> dict[str, Any]:
        """The state of a parameter before its first update: ``{"step": 0, buffers...}``."""
        raise NotImplementedError

    def _kernel_buffers(self, group: dict[str, Any]) -> tuple[str, ...]:
        """The state buffers the kernel takes with the group's current options."""
        raise NotImplementedError

    def _apply(
        self, step_fn: Any, param: Any, grad: Any, state: dict, group: dict, check: bool = True
    ) -> None:
        """Call the rule's kernel ``step_fn`` on arrays: one parameter's or a flat run's.

        ``state`` maps "step" and the names of ``_kernel_buffers(group)`` to arrays like param.
        ``check`` goes to the kernel: False for a flat run, whose arrays the layout checked.
        """
        raise NotImplementedError

    def _update(self, backend: Any, p: Tensor, grad: Tensor, group: dict, state: dict) -> None:
        """Apply one update to one parameter in place (``state["step"]`` already counts it):
        make the buffers that options switched on since its first step need, then ``_apply``."""
        raise NotImplementedError

    # ----- saving and loading -----

    def state_dict(self) -> dict[str, Any]:
        """``{"state": {index: {name: value}}, "param_groups": [{options, "params": [index]}]}``.

        Parameters are numbered in group order, as PyTorch does; buffers are numpy copies (host
        copies for GPU parameters), so the dict can be saved and later changes do not leak into it.
        """
        index: dict[int, int] = {}
        groups = []
        for group in self.param_groups:
            saved = {k: v for k, v in group.items() if k != "params"}
            saved["params"] = [index.setdefault(id(p), len(index)) for p in group["params"]]
            groups.append(saved)
        state = {}
        for group in self.param_groups:
            for p in group["params"]:
                if p in self.state:
                    backend = get_backend(p.device)
                    state[index[id(p)]] = {
                        k: _host_copy(backend, v) for k, v in self.state[p].items()
                    }
        return {"state": state, "param_groups": groups}

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        """Restore what ``state_dict()`` returned, onto this optimizer's own parameters.

        The saved groups must match the current ones in number and size. Their hyperparameters
        replace the current ones; every buffer must have its parameter's shape (it is converted to
        the parameter's dtype and device). Nothing changes unless the whole dict is valid.
        """
        name = type(self).__name__
        if not isinstance(state_dict, dict) or set(state_dict) != {"state", "param_groups"}:
            raise InputError(
                f"{name}.load_state_dict: expected a dict with keys 'state' and 'param_groups'"
            )
        saved_groups, saved_state = state_dict["param_groups"], state_dict["state"]
        if len(saved_groups) != len(self.param_groups):
            raise InputError(
                f"{name}.load_state_dict: the dict has {len(saved_groups)} parameter groups, "
                f"the optimizer has {len(self.param_groups)}"
            )
        new_groups, params = [], []
        for k, (saved, group) in enumerate(zip(saved_groups, self.param_groups)):
            if len(saved["params"]) != len(group["params"]):
                raise InputError(
                    f"{name}.load_state_dict: group {k} has {len(saved['params'])} parameters in "
                    f"the dict and {len(group['params'])} in the optimizer"
                )
            missing = sorted(set(self.defaults) - set(saved))
            if missing:
                raise InputError(f"{name}.load_state_dict: group {k} lacks options {missing}")
            new_group = {key: v for key, v in saved.items() if key != "params"}
            new_group["params"] = group["params"]
            self._validate_group(new_group)
            new_groups.append(new_group)
            params += [(p, new_group) for p in group["params"]]
        new_state = {}
        for i, entry in saved_state.items():
            if not isinstance(i, (int, np.integer)) or not 0 <= i < len(params):
                raise InputError(
                    f"{name}.load_state_dict: state key {i!r} is not a parameter index "
                    f"(0 to {len(params) - 1})"
                )
            p, group = params[i]
            new_state[p] = self._load_param_state(i, p, group, entry)
        self.param_groups[:] = new_groups
        self.state = new_state

    def _load_param_state(self, i: int, p: Tensor, group: dict, entry: dict) -> dict[str, Any]:
        """Check one parameter's saved state against a fresh one; return it on p's device."""
        name = type(self).__name__
        backend = get_backend(p.device)
        fresh = self._init_state(backend, p, group)
        if set(entry) != set(fresh):
            raise InputError(
                f"{name}.load_state_dict: state of parameter {i} has keys {sorted(entry)}, "
                f"expected {sorted(fresh)} for these options"
            )
        loaded: dict[str, Any] = {}
        for key, value in entry.items():
            if key == "step":
                if not isinstance(value, (int, np.integer)) or value < 0:
                    raise InputError(
                        f"{name}.load_state_dict: parameter {i}: step must be an int >= 0, "
                        f"got {value!r}"
                    )
                loaded[key] = int(value)
            elif value is None:
                if fresh[key] is not None:
                    raise InputError(f"{name}.load_state_dict: parameter {i}: {key} is None")
                loaded[key] = None
            else:
                array = np.asarray(value)
                if array.shape != p.shape or array.dtype.kind not in "fiu":
                    raise InputError(
                        f"{name}.load_state_dict: parameter {i}: {key} has shape {array.shape} "
                        f"and dtype {array.dtype}, expected shape {p.shape} (a float array)"
                    )
                host = np.array(array, dtype=p.dtype, copy=True, order="C")
                loaded[key] = backend.asarray(host)
        return loaded

    def __repr__(self) -> str:
        lines = [f"{type(self).__name__} ("]
        for k, group in enumerate(self.param_groups):
            lines.append(f"Parameter Group {k}")
            lines += [f"    {key}: {v}" for key, v in sorted(group.items()) if key != "params"]
        return "\n".join(lines + [")"])


# ----- helpers -----


def _host_copy(backend: Any, value: Any) -> Any:
    """A numpy copy of a state buffer; step counters and None pass through."""
    if value is None or isinstance(value, numbers.Number):
        return value
    return np.array(backend.to_numpy(value), copy=True)


def _check_param(name: str, k: int, p: Any) -> None:
    if not isinstance(p, Tensor):
        raise TypeError(f"{name}: parameter {k} is a {type(p).__name__}, not a Tensor")
    if p.dtype not in (np.float32, np.float64):
        raise TypeError(f"{name}: parameter {k} has dtype {p.dtype}; only float tensors train")
    if not p.requires_grad:
        raise TypeError(
            f"{name}: parameter {k} has requires_grad=False, so it would never get a gradient"
        )
    if not p.is_leaf:
        raise InputError(f"{name}: parameter {k} is not a leaf tensor (it was computed by an op)")


def check_hyperparameter(
    optimizer: str,
    key: str,
    value: Any,
    low: float = 0.0,
    high: float | None = None,
    high_open: bool = False,
) -> None:
    """TypeError unless ``value`` is a real number; ValueError unless low <= value <= high
    (``< high`` when ``high_open``). The message names the optimizer, the option and the value."""
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise TypeError(f"{optimizer}: {key} must be a real number, got {value!r}")
    too_high = high is not None and (value >= high if high_open else value > high)
    if not value >= low or too_high:  # `not >=` also catches NaN
        expected = f">= {low}" if high is None else f"in [{low}, {high}{')' if high_open else ']'}"
        raise InputError(f"{optimizer}: invalid {key} value {value!r}; expected {expected}")
