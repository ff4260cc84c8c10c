"""Module: the base class of every layer and network.

A network is a tree of Modules. Assigning an attribute registers it, PyTorch's way:

    class MLP(nn.Module):
        def __init__(self):
            super().__init__()
            self.fc1 = nn.Linear(784, 15)     # a child Module
            self.fc2 = nn.Linear(15, 10)
            self.scale = Tensor(1.0, requires_grad=True)   # a parameter of this module

        def forward(self, x):
            return self.fc2(self.fc1(x).sigmoid()) * self.scale

``named_parameters()`` then walks the tree and names each parameter by its path:
``"scale"``, ``"fc1.weight"``, ``"fc1.bias"``, ... Those names are the keys of ``state_dict()``,
which is how weights are saved (``tg.save``) and restored (``load_state_dict``).

What registers: a ``Module``; a ``Parameter``, or any ``Tensor`` with ``requires_grad=True`` (a
parameter; it stays one if its ``requires_grad`` is later switched off to freeze it); a list or
tuple of Modules (children named ``"layers.0"``, ``"layers.1"``, ...). Anything else is a plain
attribute.

Buffers are state that is not trained but is saved: BatchNorm's running statistics.
``self.register_buffer("running_mean", tg.Tensor.zeros(3))`` registers one; assigning a Tensor
(or None) to that name later keeps it a buffer. ``named_buffers()`` walks them, ``state_dict()``
holds them after the parameters, and ``to(device)`` moves them.
"""

from __future__ import annotations

from collections import namedtuple
from collections.abc import Iterator, Mapping
from typing import Any

import numpy as np

from tinygrad_edu.backend import get_backend, parse_device
from tinygrad_edu.tensor import Tensor


class StateDictError(RuntimeError, ValueError):
    """``load_state_dict`` got keys or shapes that do not match the module (PyTorch raises a
    RuntimeError here; this is also a ValueError, the project's usual class for bad input)."""


IncompatibleKeys = namedtuple("IncompatibleKeys", ["missing_keys", "unexpected_keys"])


class Parameter(Tensor):
    """A Tensor that a Module registers as a parameter: ``nn.Parameter(tg.randn(3, 4))``.

    As PyTorch's, it requires grad by default, and a Module registers it even with
    ``requires_grad=False`` (a frozen parameter). NOTE: unlike PyTorch's, it holds a copy of the
    given tensor's values, not the same storage (Tensor has no public way to share storage);
    ops on a Parameter return plain Tensors, as PyTorch's do.
    """

    __slots__ = ()

    def __init__(self, data: Any = None, requires_grad: bool = True) -> None:
        if data is None:
            data = Tensor.zeros(0)
        if not isinstance(data, Tensor):
            data = Tensor(data)
        super().__init__(
            data.numpy(), requires_grad=requires_grad, dtype=data.dtype, device=data.device
        )

    def __repr__(self) -> str:
        return "Parameter containing:\n" + super().__repr__()


def _is_module_list(value: Any) -> bool:
    return (
        isinstance(value, (list, tuple))
        and len(value) > 0
        and all(isinstance(v, Module) for v in value)
    )


class Module:
    """Base class of layers and networks: subclass it, assign layers and parameters in
    ``__init__`` (after ``super().__init__()``), and write ``forward``.

    New modules are in training mode (``.training is True``); ``eval()`` switches the whole tree
    to evaluation mode (dropout and input noise off), ``train()`` back.
    """

    training: bool = True

    def __init__(self) -> None:
        # Names in registration order; the values themselves live in the instance __dict__, so
        # reading ``self.fc1`` in forward is an ordinary (fast) attribute access. Attributes
        # assigned before super().__init__() have already created these: keep them.
        if "_param_names" not in self.__dict__:
            object.__setattr__(self, "_param_names", {})
            object.__setattr__(self, "_child_names", {})
            object.__setattr__(self, "training", True)
        if "_buffer_names" not in self.__dict__:
            object.__setattr__(self, "_buffer_names", {})

    # ----- registration -----

    def _registries(self) -> tuple[dict[str, None], dict[str, None]]:
        d = self.__dict__
        if "_param_names" not in d:  # a subclass forgot super().__init__(): be forgiving
            Module.__init__(self)
        return d["_param_names"], d["_child_names"]

    def _buffer_registry(self) -> dict[str, None]:
        d = self.__dict__
        if "_buffer_names" not in d:
            Module.__init__(self)
        return d["_buffer_names"]

    def register_buffer(self, name: str, tensor: Tensor | None, persistent: bool = True) -> None:
        """Register ``tensor`` as a buffer named ``name``: module state that is not a parameter
        (no optimizer sees it) but is saved by ``state_dict`` (unless ``persistent=False``) and
        moved by ``to``. ``None`` reserves the name (the buffer is then skipped)."""
        who = f"register_buffer ({type(self).__name__})"
        if not isinstance(name, str) or not name or "." in name:
            raise KeyError(f"{who}: the name must be a non-empty string without '.', got {name!r}")
        if tensor is not None and not isinstance(tensor, Tensor):
            got = type(tensor).__name__
            raise TypeError(f"{who}: {name!r} must be a Tensor or None, got {got}")
        if name in self._registries()[0] or name in self._registries()[1]:
            raise KeyError(f"{who}: {name!r} is already a parameter or a child module")
        object.__setattr__(self, name, tensor)
        self._buffer_registry()[name] = None
        if not persistent:
            self.__dict__.setdefault("_non_persistent", set()).add(name)

    def __setattr__(self, name: str, value: Any) -> None:
        params, children = self._registries()
        params.pop(name, None)
        children.pop(name, None)
        buffers = self._buffer_registry()
        if name in buffers:
            if value is None or isinstance(value, Tensor):  # a buffer stays one when reassigned
                object.__setattr__(self, name, value)
                return
            del buffers[name]
        if isinstance(value, Parameter) or (isinstance(value, Tensor) and value.requires_grad):
            params[name] = None
        elif isinstance(value, Module) or _is_module_list(value):
            children[name] = None
        object.__setattr__(self, name, value)

    def __delattr__(self, name: str) -> None:
        params, children = self._registries()
        params.pop(name, None)
        children.pop(name, None)
        self._buffer_registry().pop(name, None)
        object.__delattr__(self, name)

    # ----- walking the tree -----

    def named_children(self) -> Iterator[tuple[str, Module]]:
        """Direct children as ``(name, module)``; members of a list attribute are ``"name.i"``."""
        _, children = self._registries()
        for name in children:
            value = self.__dict__[name]
            if isinstance(value, Module):
                yield name, value
            else:
                for i, child in enumerate(value):
                    yield f"{name}.{i}", child

    def children(self) -> Iterator[Module]:
        for _, child in self.named_children():
            yield child

    def named_modules(self, prefix: str = "") -> Iterator[tuple[str, Module]]:
        """This module (name ``""``) and every module below it, each once, parents first."""
        seen: set[int] = set()
        stack = [(prefix, self)]
        while stack:
            name, module = stack.pop()
            if id(module) in seen:
                continue
            seen.add(id(module))
            yield name, module
            kids = [(f"{name}.{n}" if name else n, m) for n, m in module.named_children()]
            stack.extend(reversed(kids))  # so that children come out in order

    def modules(self) -> Iterator[Module]:
        for _, module in self.named_modules():
            yield module

    def apply(self, fn: Any) -> Module:
        """Call ``fn(module)`` on every child (recursively), then on this module; returns self.
        The usual use is initialisation: ``model.apply(init_weights)``."""
        if not callable(fn):
            raise TypeError(f"apply: fn must be callable, got {type(fn).__name__}")
        for child in self.children():
            child.apply(fn)
        fn(self)
        return self

    def named_parameters(self, prefix: str = "") -> Iterator[tuple[str, Tensor]]:
        """Every parameter as ``(dotted name, Tensor)``: a module's own parameters first, then its
        children's, in the order they were assigned. A tensor shared by two layers is listed
        once, under its first name."""
        seen: set[int] = set()
        for module_name, module in self.named_modules(prefix):
            params, _ = module._registries()
            for name in params:
                p = module.__dict__[name]
                if id(p) not in seen:
                    seen.add(id(p))
                    yield (f"{module_name}.{name}" if module_name else name), p

    def parameters(self) -> list[Tensor]:
        """The parameters as a list (hand it to an optimizer)."""
        return [p for _, p in self.named_parameters()]

    def named_buffers(
        self, prefix: str = "", _persistent_only: bool = False
    ) -> Iterator[tuple[str, Tensor]]:
        """Every buffer as ``(dotted name, Tensor)``, in the order of ``named_parameters``
        (``None`` buffers are skipped)."""
        seen: set[int] = set()
        for module_name, module in self.named_modules(prefix):
            skip = module.__dict__.get("_non_persistent", set()) if _persistent_only else ()
            for name in module._buffer_registry():
                b = module.__dict__[name]
                if b is not None and id(b) not in seen and name not in skip:
                    seen.add(id(b))
                    yield (f"{module_name}.{name}" if module_name else name), b

    def buffers(self) -> list[Tensor]:
        """The buffers as a list."""
        return [b for _, b in self.named_buffers()]

    def requires_grad_(self, requires_grad: bool = True) -> Module:
        """Switch ``requires_grad`` of every parameter (``False`` freezes the module); returns
        self. Frozen parameters stay registered, so ``True`` unfreezes them again."""
        for p in self.parameters():
            p.requires_grad_(bool(requires_grad))
        return self

    def num_parameters(self) -> int:
        """The number of trainable numbers (11,935 for the chapter's 784-15-10 network)."""
        return sum(p.size for p in self.parameters())

    # ----- training -----

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        return self.forward(*args, **kwargs)

    def forward(self, *args: Any, **kwargs: Any) -> Any:
        raise NotImplementedError(f"{type(self).__name__} does not define forward()")

    def zero_grad(self) -> None:
        """Forget the gradients of every parameter (``.grad = None``), before the next backward."""
        for p in self.parameters():
            p.grad = None

    def train(self, mode: bool = True) -> Module:
        """Training mode for this module and all below it (dropout and noise active)."""
        for module in self.modules():
            object.__setattr__(module, "training", bool(mode))
        return self

    def eval(self) -> Module:
        """Evaluation mode: dropout and input noise become the identity."""
        return self.train(False)

    # ----- saving and restoring -----

    def state_dict(self) -> dict[str, np.ndarray]:
        """``{dotted name: numpy copy}`` of every parameter and persistent buffer (module by
        module, parameters first, as PyTorch); later training does not change it."""
        return {name: np.array(t.numpy(), copy=True) for name, t in self._saved_tensors().items()}

    def _saved_tensors(self) -> dict[str, Tensor]:
        """Module by module, its parameters then its persistent buffers (PyTorch's key order)."""
        own: dict[str, Tensor] = {}
        seen: set[int] = set()
        for module_name, module in self.named_modules():
            skip = module.__dict__.get("_non_persistent", set())
            names = list(module._registries()[0])
            names += [n for n in module._buffer_registry() if n not in skip]
            for name in names:
                t = module.__dict__[name]
                if t is not None and id(t) not in seen:
                    seen.add(id(t))
                    own[f"{module_name}.{name}" if module_name else name] = t
        return own

    def load_state_dict(self, state_dict: Mapping[str, Any], strict: bool = True) -> Any:
        """Copy the values of ``state_dict`` (numpy arrays or Tensors) into the parameters.

        The parameter Tensors stay the same objects (an optimizer built on them keeps working),
        and each keeps its dtype and device. With ``strict=True`` every key must match; a shape
        mismatch is an error either way. Returns ``(missing_keys, unexpected_keys)``.
        """
        who = f"load_state_dict ({type(self).__name__})"
        if not isinstance(state_dict, Mapping):
            raise TypeError(f"{who}: expected a dict of name -> array, got {type(state_dict)}")
        own = self._saved_tensors()
        missing = [k for k in own if k not in state_dict]
        unexpected = [k for k in state_dict if k not in own]
        values, problems = {}, []
        for name, p in own.items():
            if name not in state_dict:
                continue
            value = state_dict[name]
            array = value.numpy() if isinstance(value, Tensor) else np.asarray(value)
            if array.dtype.kind not in "biuf":
                problems.append(f"{name!r} has non-numeric dtype {array.dtype}")
            elif array.shape != p.shape:
                problems.append(
                    f"{name!r} has shape {array.shape} in the state dict but {p.shape} in the model"
                )
            else:
                values[name] = array
        if strict:
            if missing:
                problems.append(f"missing keys: {missing}")
            if unexpected:
                problems.append(f"unexpected keys: {unexpected}")
        if problems:
            raise StateDictError(f"{who}: " + "; ".join(problems))
        for name, array in values.items():
            own[name].data = array  # converted to the parameter's dtype, on its device
        return IncompatibleKeys(missing, unexpected)

    # ----- devices -----

    def to(self, device: str) -> Module:
        """Move every parameter (and its gradient) and buffer to ``device`` in place; returns self.

        The parameters stay the same Tensor objects, so build the optimizer after calling ``to``
        or before, either works (its state is created on the parameters' device at the first step).
        """
        target = parse_device(device)
        get_backend(target)  # raises a clear error if the device is not usable
        for p in self.parameters() + self.buffers():
            if p.device == target:
                continue
            grad = None if p.grad is None else p.grad.to(target)
            # NOTE: Tensor has no in-place move (``.to`` returns a new Tensor), so the parameter
            # is re-initialised in place: its constructor runs again on the same object, with
            # its values, dtype and requires_grad, on the target device. It stays the same
            # Tensor object (an optimizer built before ``to`` still holds it); ``__init__``
            # clears .grad, so the moved gradient is put back after.
            p.__init__(p.numpy(), requires_grad=p.requires_grad, dtype=p.dtype, device=target)
            p.grad = grad
        return self

    # ----- printing -----

    def extra_repr(self) -> str:
        """The text inside the parentheses of this module's repr (e.g. the layer sizes)."""
        return ""

    def __repr__(self) -> str:
        lines = []
        _, children = self._registries()
        for name in children:
            value = self.__dict__[name]
            if isinstance(value, Module):
                lines.append(f"({name}): {value!r}")
            else:
                inner = "\n".join(f"  ({i}): {_indent(repr(m))}" for i, m in enumerate(value))
                lines.append(f"({name}): {type(value).__name__}(\n{inner}\n)")
        head = f"{type(self).__name__}({self.extra_repr()}"
        if not lines:
            return head + ")"
        return head + "\n" + "\n".join("  " + _indent(line) for line in lines) + "\n)"


def _indent(text: str) -> str:
    """Indent every line but the first by two spaces."""
    return text.replace("\n", "\n  ")
