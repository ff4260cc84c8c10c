"""Tensor: an array, the gradient that backprop leaves in it, and its link into the graph.

A Tensor holds its numbers in ``_data``, an array of its device's backend (a numpy array on the
CPU). Arithmetic on Tensors calls the ``Function`` subclasses in ``ops.py``; when an input
requires a gradient, the result remembers the node that made it (``_ctx``), and
``loss.backward()`` walks those links back (``autograd.backward``).
"""

from __future__ import annotations

import weakref
from collections.abc import Iterator, Sequence
from typing import Any, NamedTuple

import numpy as np

from tinygrad_edu import autograd
from tinygrad_edu import ops as F
from tinygrad_edu.backend import get_backend, parse_device
from tinygrad_edu.errors import InputError
from tinygrad_edu.random import get_rng

_DTYPES = {
    np.dtype(np.float32): np.dtype(np.float32),
    np.dtype(np.float64): np.dtype(np.float64),
    np.dtype(np.int64): np.dtype(np.int64),
}
_FLOAT_DTYPES = (np.dtype(np.float32), np.dtype(np.float64))


class TensorIndexError(IndexError, ValueError):
    """An index out of range; an IndexError (so iteration stops) and a ValueError."""


class DimensionError(IndexError, InputError):
    """A dim (axis) out of range: an IndexError, as PyTorch raises, and an InputError."""


class TensorOverflowError(OverflowError, InputError):
    """A value that does not fit the dtype asked for: Python's OverflowError and an InputError."""


_I64 = np.iinfo(np.int64)
_I64_RANGE = f"int64's range [{_I64.min}, {_I64.max}]"


def _resolve_dtype(dtype: Any) -> np.dtype:
    """'float32' | 'float64' | 'int64' | numpy dtype -> the numpy dtype, or a clear TypeError."""
    try:
        resolved = np.dtype(dtype).newbyteorder("=")  # '>f8' is float64 too
    except TypeError:
        resolved = None
    if resolved not in _DTYPES:
        raise TypeError(
            f"Tensor: unsupported dtype {dtype!r}; expected 'float32', 'float64' or 'int64'"
        )
    return _DTYPES[resolved]


def _to_numpy(data: Any, dtype: Any) -> np.ndarray:
    """Turn user data into a fresh C-contiguous numpy array of a supported dtype.

    Nothing is converted silently: a value that the target dtype cannot hold (an integer
    beyond int64, NaN as int64, 10**400 as a float) raises instead of wrapping round.
    """
    if data is None or isinstance(data, (str, bytes)):
        raise TypeError(f"Tensor: cannot make a tensor from {type(data).__name__}")
    if isinstance(data, Tensor):
        data = data.numpy()
    keeps_dtype = isinstance(data, np.ndarray)  # float32/float64 arrays keep theirs
    try:
        array = np.array(data)
    except ValueError as exc:  # numpy's message for ragged nested lists
        raise InputError(f"Tensor: data is ragged or not rectangular ({exc})") from None
    if array.dtype.kind not in "biufO":
        raise TypeError(
            f"Tensor: data must be numeric (bool, int or float), got numpy dtype {array.dtype}"
        )
    if not array.dtype.isnative:  # the other byte order (a big-endian file): swap, keep the dtype
        array = array.astype(array.dtype.newbyteorder("="))
    if dtype is None:
        floating = keeps_dtype and array.dtype in _FLOAT_DTYPES
        target = array.dtype if floating else np.dtype(np.float32)
    else:
        target = _resolve_dtype(dtype)
    if target == np.int64 and array.dtype.kind == "f" and isinstance(data, (list, tuple)):
        array = np.array(data, dtype=object)  # numpy made [2**53 + 1, 1.0] float64: keep ints exact
    if array.dtype == object:  # numpy's container for ints beyond 64 bits (and non-numbers)
        array = _from_python_numbers(array, target)
    if target == np.int64:
        _check_int64(array)
    # copy=None: `array` is already a fresh copy; np.ascontiguousarray would turn 0-d into 1-d
    return np.array(array, dtype=target, order="C", copy=None)


def _from_python_numbers(array: np.ndarray, target: np.dtype) -> np.ndarray:
    """An object array of Python numbers -> a numeric array, every integer checked against
    ``target``'s range (numpy would wrap round, or give inf)."""
    values = [v.item() if isinstance(v, np.generic) else v for v in array.ravel().tolist()]
    limit = float(np.finfo(target).max) if target.kind == "f" else None
    for v in values:
        if not isinstance(v, (int, float)):  # bool is an int
            raise TypeError(
                f"Tensor: data must be numeric (bool, int or float), got {type(v).__name__} "
                f"{v!r} (numpy dtype object)"
            )
        if isinstance(v, int) and limit is None and not _I64.min <= v <= _I64.max:
            raise TensorOverflowError(f"Tensor: value {_show(v)} is outside {_I64_RANGE}")
        if isinstance(v, int) and limit is not None and abs(v) > limit:  # exact int/float compare
            raise TensorOverflowError(
                f"Tensor: value {_show(v)} is too large for {target} "
                f"(largest finite value {limit:g})"
            )
    if limit is not None:
        return np.array(values, dtype=target).reshape(array.shape)
    _check_int64(np.array([v for v in values if isinstance(v, float)], dtype=np.float64))
    return np.array([int(v) for v in values], dtype=np.int64).reshape(array.shape)  # exact


def _show(v: int) -> str:
    """A huge int for a message (str() of one beyond 4300 digits raises in Python 3.11+);
    0.30103 is log10(2), digits per bit."""
    if v.bit_length() <= 128:
        return str(v)
    return (
        f"about {'-' if v < 0 else ''}10**{int(v.bit_length() * 0.30103)} ({v.bit_length()} bits)"
    )


def _check_int64(array: np.ndarray) -> None:
    """Raise unless every value of ``array`` becomes the same number as int64."""
    if array.dtype.kind == "u" and array.size and array.max() > _I64.max:
        bad = array[array > _I64.max].flat[0]
        raise TensorOverflowError(
            f"Tensor: value {bad!s} (dtype {array.dtype}) is outside {_I64_RANGE}"
        )
    if array.dtype.kind != "f":
        return
    # 2.0**63 itself does not fit: int64's largest value is 2**63 - 1
    wide = array.astype(np.float64, copy=False)  # float16 cannot even hold the bound 2**63
    fits = np.isfinite(wide) & (wide >= -(2.0**63)) & (wide < 2.0**63)
    if not fits.all():
        bad = array[~fits].flat[0]
        raise TensorOverflowError(
            f"Tensor: value {bad!s} cannot become int64: expected a finite value in {_I64_RANGE}"
        )
    integral = array == np.trunc(array)
    if not integral.all():
        raise InputError(
            f"Tensor: dtype int64 asked for, but the data has the non-integer value "
            f"{array[~integral].flat[0]!s}"
        )


def _normalize_axis(axis: Any, ndim: int, op: str) -> tuple[int, ...] | None:
    """None | int | tuple -> None or a sorted tuple of non-negative axes (checked)."""
    if axis is None:
        return None
    if isinstance(axis, (int, np.integer)):
        axes = (axis,)
    elif isinstance(axis, (tuple, list)):
        axes = tuple(axis)
    else:
        raise TypeError(f"{op}: axis must be None, an int or a tuple of ints, got {axis!r}")
    out = []
    for a in axes:
        if not isinstance(a, (int, np.integer)) or not -max(ndim, 1) <= a < max(ndim, 1):
            raise DimensionError(
                f"{op}: dim (axis) {axis!r} is out of range for a tensor with {ndim} dims "
                f"(expected a dim in [{-max(ndim, 1)}, {max(ndim, 1) - 1}])"
            )
        out.append(int(a) % max(ndim, 1))
    if len(set(out)) != len(out):
        raise InputError(f"{op}: axis {axis!r} repeats an axis")
    return tuple(sorted(out)) if ndim else None


def _int_axis(axis: Any, op: str) -> int:
    """Ops that take one axis: a tuple or None there is a TypeError naming the op."""
    if not isinstance(axis, (int, np.integer)) or isinstance(axis, bool):
        raise TypeError(f"{op}: axis must be an int, got {axis!r}")
    return axis


_UNSET: Any = object()  # "not given": None is a meaningful dim (all of them)


def _spelling(
    op: str,
    axis: Any,
    dim: Any,
    keepdims: Any = _UNSET,
    keepdim: Any = _UNSET,
    default: Any = None,
) -> tuple[Any, bool]:
    """numpy's ``axis=``/``keepdims=`` or PyTorch's ``dim=``/``keepdim=`` -> (axis, keepdims).

    Giving both spellings of one argument is a TypeError (which one was meant is not clear);
    giving neither gives ``default`` (an explicit None stays None).
    """
    if dim is _UNSET and keepdim is _UNSET:  # the common numpy spelling: one test, no more
        return (default if axis is _UNSET else axis), keepdims is not _UNSET and bool(keepdims)
    if axis is not _UNSET and dim is not _UNSET:
        raise TypeError(f"{op}: got both axis= and dim=; give one (they mean the same)")
    if keepdims is not _UNSET and keepdim is not _UNSET:
        raise TypeError(f"{op}: got both keepdims= and keepdim=; give one (they mean the same)")
    axis = dim if axis is _UNSET else axis
    keep = keepdim if keepdims is _UNSET else keepdims
    return (default if axis is _UNSET else axis), (False if keep is _UNSET else bool(keep))


class ValuesIndices(NamedTuple):
    """What ``t.max(dim=d)`` and ``t.min(dim=d)`` return, as torch.return_types.max: the
    extreme values (differentiable) and their int64 indices along ``d``."""

    values: Tensor
    indices: Tensor


def _number(value: Any, op: str, arg: str) -> float:
    """A real-number argument as a float, or a TypeError naming the op."""
    if not isinstance(value, (int, float, np.integer, np.floating)):
        raise TypeError(f"{op}: {arg} must be a number, got {type(value).__name__}")
    return float(value)


def _shape_arg(shape: tuple, op: str) -> tuple[int, ...]:
    """Accept f(2, 3) and f((2, 3))."""
    if len(shape) == 1 and isinstance(shape[0], (tuple, list)):
        shape = tuple(shape[0])
    if not all(isinstance(n, (int, np.integer)) for n in shape):
        raise TypeError(f"{op}: shape must be ints, got {shape!r}")
    return tuple(int(n) for n in shape)


class Tensor:
    """An n-dimensional array that records the operations applied to it for backpropagation.

    >>> w = Tensor([[1.0, 2.0]], requires_grad=True)
    >>> (w * w).sum().backward()
    >>> w.grad.tolist()
    [[2.0, 4.0]]
    """

    __slots__ = ("_data", "requires_grad", "grad", "_ctx", "device", "_backend", "__weakref__")
    __array_ufunc__ = None  # ndarray + Tensor defers to Tensor.__radd__
    __hash__ = object.__hash__  # == is elementwise, identity is the hash

    def __init__(
        self, data: Any, requires_grad: bool = False, dtype: Any = None, device: str = "cpu"
    ) -> None:
        array = _to_numpy(data, dtype)
        if requires_grad and array.dtype not in _FLOAT_DTYPES:
            raise TypeError(
                f"Tensor: only float tensors can require gradients, got dtype {array.dtype}"
            )
        self.device = parse_device(device)
        self._backend = get_backend(self.device)
        self._data = self._backend.asarray(array)
        self.requires_grad = bool(requires_grad)
        self.grad: Tensor | None = None
        self._ctx = None

    @classmethod
    def _wrap(cls, array: Any, device: str = "cpu", backend: Any = None) -> Tensor:
        """Internal: a Tensor around a backend array, without checks or copies (the ops' path)."""
        t = object.__new__(cls)
        t._data = array
        t.device = device
        t._backend = backend if backend is not None else get_backend(device)
        t.requires_grad = False
        t.grad = None
        t._ctx = None
        return t

    # ----- constructors -----

    @classmethod
    def zeros(cls, *shape: Any, **kwargs: Any) -> Tensor:
        return cls(np.zeros(_shape_arg(shape, "Tensor.zeros")), **_f32(kwargs))

    @classmethod
    def ones(cls, *shape: Any, **kwargs: Any) -> Tensor:
        return cls(np.ones(_shape_arg(shape, "Tensor.ones")), **_f32(kwargs))

    @classmethod
    def full(cls, shape: Any, value: float, **kwargs: Any) -> Tensor:
        shape = (shape,) if isinstance(shape, (int, np.integer)) else tuple(shape)
        return cls(np.full(_shape_arg(shape, "Tensor.full"), value), **_f32(kwargs))

    @classmethod
    def randn(cls, *shape: Any, **kwargs: Any) -> Tensor:
        """Samples of the standard normal N(0, 1), from the library's seeded generator."""
        return cls(get_rng().standard_normal(_shape_arg(shape, "Tensor.randn")), **_f32(kwargs))

    @classmethod
    def rand(cls, *shape: Any, **kwargs: Any) -> Tensor:
        """Samples of the uniform distribution on [0, 1)."""
        return cls(get_rng().random(_shape_arg(shape, "Tensor.rand")), **_f32(kwargs))

    @classmethod
    def eye(cls, n: int, **kwargs: Any) -> Tensor:
        return cls(np.eye(n), **_f32(kwargs))

    @staticmethod
    def cat(tensors: Sequence[Tensor], axis: Any = _UNSET, *, dim: Any = _UNSET) -> Tensor:
        """Join tensors along an existing axis (``dim=`` as PyTorch, ``axis=`` as numpy)."""
        axis = _spelling("cat", axis, dim, default=0)[0]
        tensors = list(tensors)
        if not tensors or not all(isinstance(t, Tensor) for t in tensors):
            raise TypeError("cat: expected a non-empty sequence of Tensors")
        ndim = tensors[0].ndim
        if ndim == 0:
            raise InputError("cat: zero-dimensional tensors cannot be concatenated; use stack")
        (ax,) = _normalize_axis(_int_axis(axis, "cat"), ndim, "cat")
        for t in tensors:
            if t.ndim != ndim or t.shape[:ax] + t.shape[ax + 1 :] != (
                tensors[0].shape[:ax] + tensors[0].shape[ax + 1 :]
            ):
                shapes = [x.shape for x in tensors]
                raise InputError(f"cat: shapes {shapes} differ outside axis {axis}")
        tensors = _common_dtype(tensors, "cat")
        return F.Cat.apply(*tensors, axis=ax)

    @staticmethod
    def stack(tensors: Sequence[Tensor], axis: Any = _UNSET, *, dim: Any = _UNSET) -> Tensor:
        """Join tensors along a new axis (``dim=`` as PyTorch, ``axis=`` as numpy)."""
        axis = _spelling("stack", axis, dim, default=0)[0]
        tensors = list(tensors)
        if not tensors or not all(isinstance(t, Tensor) for t in tensors):
            raise TypeError("stack: expected a non-empty sequence of Tensors")
        shapes = {t.shape for t in tensors}
        if len(shapes) != 1:
            raise InputError(f"stack: all tensors must have one shape, got {sorted(shapes)}")
        ndim = tensors[0].ndim + 1
        (ax,) = _normalize_axis(_int_axis(axis, "stack"), ndim, "stack")
        shape = tensors[0].shape
        tensors = _common_dtype(tensors, "stack")
        expanded = [t.reshape(shape[:ax] + (1,) + shape[ax:]) for t in tensors]
        return Tensor.cat(expanded, axis=ax)

    # ----- attributes -----

    @property
    def data(self) -> np.ndarray:
        """The values as a numpy array (the storage itself on the CPU, a copy from a GPU)."""
        return self._backend.to_numpy(self._data)

    @data.setter
    def data(self, value: Any) -> None:
        if value is self._data:  # `t.data -= x` already changed the storage in place
            return
        array = _to_numpy(value, self.dtype)
        self._data = self._backend.asarray(array)

    @property
    def shape(self) -> tuple[int, ...]:
        return self._data.shape

    @property
    def ndim(self) -> int:
        return len(self._data.shape)

    @property
    def dtype(self) -> np.dtype:
        return self._data.dtype

    @property
    def size(self) -> int:
        return int(self._data.size)

    @property
    def is_leaf(self) -> bool:
        return self._ctx is None

    @property
    def grad_fn(self) -> Any:
        """The graph node that made this tensor (``grad_fn.name()`` is its op), or None for a
        leaf or a tensor made without recording."""
        return self._ctx

    def register_hook(self, hook: Any) -> autograd.RemovableHandle:
        """Call ``hook(grad)`` with the gradient that reaches this tensor during each backward
        pass; a Tensor it returns replaces that gradient. ``handle.remove()`` stops it."""
        if not self.requires_grad:
            raise RuntimeError("register_hook: this tensor does not require grad")
        return autograd.register_hook(self, hook)

    def retain_grad(self) -> None:
        """Keep ``.grad`` on this non-leaf tensor too (leaves keep theirs anyway)."""
        if self._ctx is None:
            return
        if any(getattr(h, "retains_grad", False) for h in autograd._hooks.get(id(self), ())):
            return  # retained already
        me = weakref.ref(self)  # the hook must not keep the tensor alive

        def keep(g: Tensor) -> None:
            t = me()
            if t is not None:
                g = g if g.requires_grad else Tensor._wrap(g._backend.copy(g._data), g.device)
                t.grad = g if t.grad is None else t.grad + g

        keep.retains_grad = True
        autograd.register_hook(self, keep)

    def numpy(self) -> np.ndarray:
        return self.data

    def item(self) -> float | int:
        if self.size != 1:
            raise InputError(f"item: only one-element tensors can be converted, shape {self.shape}")
        return self.data.reshape(()).item()

    def tolist(self) -> Any:
        return self.data.tolist()

    def __array__(self, dtype: Any = None, copy: Any = None) -> np.ndarray:
        array = self.data
        return array if dtype is None else array.astype(dtype)

    def __len__(self) -> int:
        if self.ndim == 0:
            raise TypeError("len() of a 0-d tensor")
        return self.shape[0]

    def __iter__(self) -> Iterator[Tensor]:
        for i in range(len(self)):
            yield self[i]

    def __bool__(self) -> bool:
        if self.size != 1:
            raise RuntimeError(
                f"bool: the truth value of a tensor with {self.size} elements is ambiguous"
            )
        return bool(self.item())

    def __int__(self) -> int:
        """``int(t)`` of a one-element tensor, as PyTorch (truncates a float)."""
        return int(self._one_element("int"))

    def __float__(self) -> float:
        """``float(t)`` of a one-element tensor, as PyTorch."""
        return float(self._one_element("float"))

    def _one_element(self, op: str) -> Any:
        if self.size != 1:
            raise RuntimeError(
                f"{op}: only a tensor with one element converts to a Python number, got shape "
                f"{self.shape}"
            )
        return self.item()

    def __repr__(self) -> str:
        body = np.array2string(self.data, separator=", ", prefix="tensor(")
        extras = [] if self.dtype == np.float32 else [f"dtype={self.dtype}"]
        if self.device != "cpu":
            extras.append(f"device='{self.device}'")
        if self.requires_grad:
            extras.append("requires_grad=True")
        return "tensor(" + ", ".join([body] + extras) + ")"

    # ----- graph -----

    def backward(
        self, grad: Any = None, retain_graph: bool | None = None, create_graph: bool = False
    ) -> None:
        """Backpropagate from this tensor: accumulate d(self)/d(leaf) into each leaf's ``.grad``.

        ``grad`` is dL/d(self); omit it only when self has a single element (then it is 1).
        With ``create_graph=True`` the backward pass is recorded too: the leaves' ``.grad`` are
        Tensors with a graph of their own, which can be differentiated again (higher-order
        gradients). ``retain_graph`` defaults to ``create_graph``, as in PyTorch.
        """
        if retain_graph is None:
            retain_graph = create_graph
        g = self._seed_gradient(grad, "backward", create_graph)
        autograd.backward(self, g, retain_graph, create_graph)

    def _seed_gradient(self, grad: Any, where: str, create_graph: bool) -> Any:
        """dL/d(self) to start a backward walk: an array, or a Tensor with ``create_graph``."""
        if not self.requires_grad:
            raise RuntimeError(
                f"{where}: this tensor does not require grad and has no graph; create the "
                "inputs with requires_grad=True"
            )
        if create_graph and isinstance(grad, Tensor) and grad.shape == self.shape:
            return grad if grad.dtype == self.dtype else F.Cast.apply(grad, self.dtype)
        if grad is None:
            if self.size != 1:
                raise RuntimeError(
                    f"{where}: grad can be omitted only for a single-element output; "
                    f"this one has shape {self.shape}. Pass grad= of that shape."
                )
            g = np.array(1, dtype=self.dtype).reshape(self.shape)  # np.ones is slower
        else:
            g = np.asarray(grad.numpy() if isinstance(grad, Tensor) else grad, dtype=self.dtype)
            if g.shape != self.shape:
                if g.size != 1:
                    raise InputError(f"{where}: grad has shape {g.shape}, expected {self.shape}")
                g = np.full(self.shape, g.reshape(()), dtype=self.dtype)
            elif not g.flags.c_contiguous:  # a slice or a broadcast view: the kernels want rows
                g = np.ascontiguousarray(g)
            # NOTE: the user's array itself enters the graph, not a copy (copying a 1024 x 1024
            # gradient took as long as one of the two matmuls of its backward). That is safe:
            # no backward rule writes into the gradient it is given, and a leaf that the array
            # (or a view of it) reaches gets a copy (autograd._accumulate_leaf), so the user's
            # later edits of it never show up in a .grad.
        g = self._backend.asarray(g)
        return Tensor._wrap(g, self.device, self._backend) if create_graph else g

    def detach(self) -> Tensor:
        """The same values, cut from the graph (shares storage)."""
        return Tensor._wrap(self._data, self.device)

    def zero_grad(self) -> None:
        self.grad = None

    def requires_grad_(self, flag: bool = True) -> Tensor:
        if flag and self.dtype not in _FLOAT_DTYPES:
            raise TypeError(f"requires_grad_: dtype {self.dtype} cannot require gradients")
        self.requires_grad = flag
        return self

    def cpu(self) -> Tensor:
        return self.to("cpu")

    def cuda(self) -> Tensor:
        return self.to("cuda")

    # ----- elementwise arithmetic -----

    def _binary(
        self, fn: type, other: Any, name: str, reverse: bool = False, scalar_fn: Any = None
    ) -> Tensor:
        """``fn`` on self and other (in that order, or the other way round with ``reverse``);
        ``scalar_fn``, when given, takes over if other is a Python number."""
        given = other
        if type(other) is not float and type(other) is not Tensor:  # the common cases pass
            other = self._operand(other, name)  # (Function.apply checks the devices)
        if self._data.dtype.kind == "i" or (
            type(other) is Tensor and other._data.dtype.kind == "i"
        ):
            integer = isinstance(given, (int, np.integer))  # bool is an int
            self, other = self._promote(other, name, integer, reverse)
        if scalar_fn is not None and (type(other) is float or type(other) is int):
            return scalar_fn.apply(self, other)
        x, y = (other, self) if reverse else (self, other)
        try:
            return fn.apply(x, y)
        except ValueError:
            xs, ys = _shape_of(x), _shape_of(y)
            try:
                np.broadcast_shapes(xs, ys)
            except ValueError:
                pass
            else:
                raise  # not a shape problem: let the original error through
            raise InputError(
                f"{name}: shapes {xs} and {ys} cannot be broadcast together "
                "(trailing dims must be equal or 1)"
            ) from None

    def _promote(self, other: Any, name: str, integer: bool, reverse: bool) -> tuple:
        """PyTorch's promotion where an operand is int64: int64 with int64 or a Python int stays
        int64 (add, sub, mul, pow), a true division of two integers is float32, int64 with a
        Python float is float32, and int64 with a float tensor takes that tensor's dtype."""
        x = self
        if isinstance(other, Tensor):
            if x.dtype.kind == "f":
                other = F.Cast.apply(other, x.dtype)
            elif other.dtype.kind == "f":
                x = F.Cast.apply(x, other.dtype)
            elif name == "div":
                x, other = x._floating(), other._floating()
        elif integer and name != "div" and not (name == "pow" and reverse):
            other = int(other)
            if name == "pow" and other < 0:
                raise InputError(
                    f"pow: an int64 tensor to the negative power {other} is not an integer; "
                    "convert the tensor to float first (t.float() ** n)"
                )
        else:  # a Python float (or 2 ** t, whose negative exponents need floats)
            x = x._floating()
        return x, other

    def _floating(self) -> Tensor:
        """This tensor, or for int64 its float32 conversion (the ops that compute in floats:
        exp, log, sin, ... of an int64 tensor give float32, as PyTorch)."""
        if self._data.dtype.kind == "f":
            return self
        return F.Cast.apply(self, np.dtype(np.float32))

    def _operand(self, other: Any, name: str) -> Any:
        """Python scalars stay scalars (they never change the tensor's dtype); arrays and lists
        become tensors of the same kind of float."""
        if type(other) is float:
            return other
        if isinstance(other, Tensor):
            if other.device != self.device:
                raise RuntimeError(
                    f"{name}: tensors are on different devices, {self.device!r} and "
                    f"{other.device!r}"
                )
            return other
        if isinstance(other, (bool, int, float, np.integer, np.floating)):
            try:
                return float(other)
            except OverflowError:  # a Python int beyond any float, e.g. 10**400
                raise TensorOverflowError(
                    f"{name}: the number {_show(int(other))} is too large for a float operand"
                ) from None
        if isinstance(other, (np.ndarray, list, tuple)):
            try:  # a ragged or non-numeric list: say which op was given it
                array = np.asarray(other)
                native = array.dtype.newbyteorder("=")  # a big-endian float64 is float64 too
                dtype = native if native in _FLOAT_DTYPES else self.dtype
                return Tensor(array, dtype=dtype, device=self.device)
            except (TypeError, ValueError) as exc:
                kind = InputError if isinstance(exc, ValueError) else TypeError
                raise kind(f"{name}: invalid operand ({exc})") from None
        raise TypeError(f"{name}: unsupported operand of type {type(other).__name__}")

    # x + c, c + x and x * c, c * x with a Python number c are the simpler ops AddScalar and
    # MulScalar (the same numbers: float + and * are commutative); x - c is x + (-c) exactly.

    # NOTE: x + c and x * c with a float c skip _binary (one Python call fewer per op, the
    # commonest ops of a chain of small elementwise ops); _binary would pick the same op.

    def __add__(self, other: Any) -> Tensor:
        if type(other) is float and self._data.dtype.kind == "f":
            return F.AddScalar.apply(self, other)
        return self._binary(F.Add, other, "add", scalar_fn=F.AddScalar)

    def __radd__(self, other: Any) -> Tensor:
        return self._binary(F.Add, other, "add", reverse=True, scalar_fn=F.AddScalar)

    def __sub__(self, other: Any) -> Tensor:
        if (type(other) is float or type(other) is int) and self._data.dtype.kind == "f":
            return F.AddScalar.apply(self, -self._operand(other, "sub"))
        return self._binary(F.Sub, other, "sub")

    def __rsub__(self, other: Any) -> Tensor:
        return self._binary(F.Sub, other, "sub", reverse=True)

    def __mul__(self, other: Any) -> Tensor:
        if type(other) is float and self._data.dtype.kind == "f":
            return F.MulScalar.apply(self, other)
        return self._binary(F.Mul, other, "mul", scalar_fn=F.MulScalar)

    def __rmul__(self, other: Any) -> Tensor:
        return self._binary(F.Mul, other, "mul", reverse=True, scalar_fn=F.MulScalar)

    def __truediv__(self, other: Any) -> Tensor:
        return self._binary(F.Div, other, "div")

    def __rtruediv__(self, other: Any) -> Tensor:
        return self._binary(F.Div, other, "div", reverse=True)

    def __pow__(self, other: Any) -> Tensor:
        return self._binary(F.Pow, other, "pow")

    def __rpow__(self, other: Any) -> Tensor:
        return self._binary(F.Pow, other, "pow", reverse=True)

    def __neg__(self) -> Tensor:
        return F.Neg.apply(self)

    def __matmul__(self, other: Any) -> Tensor:
        return self.matmul(other)

    def __rmatmul__(self, other: Any) -> Tensor:
        other = self._operand(other, "matmul")
        if not isinstance(other, Tensor):  # 2.0 @ t: a Python number has no dimensions
            raise InputError("matmul: both operands must have at least one dimension")
        return other.matmul(self)

    # ----- in place: x -= y keeps x (the same object, its storage, its requires_grad) -----
    # NOTE: without these, Python runs `x = x - y`, which rebinds the name to a new tensor: the
    # hand-written step `with tg.no_grad(): w -= lr * w.grad` would then leave `w` unchanged.

    def __iadd__(self, other: Any) -> Tensor:
        return self._in_place("add_", Tensor.__add__, other)

    def __isub__(self, other: Any) -> Tensor:
        return self._in_place("sub_", Tensor.__sub__, other)

    def __imul__(self, other: Any) -> Tensor:
        return self._in_place("mul_", Tensor.__mul__, other)

    def __itruediv__(self, other: Any) -> Tensor:
        return self._in_place("div_", Tensor.__truediv__, other)

    def __ipow__(self, other: Any) -> Tensor:
        return self._in_place("pow_", Tensor.__pow__, other)

    def add_(self, other: Any, alpha: float = 1) -> Tensor:
        """self += alpha * other, in place."""
        return self._in_place("add_", Tensor.__add__, other if alpha == 1 else alpha * other)

    def sub_(self, other: Any, alpha: float = 1) -> Tensor:
        """self -= alpha * other, in place."""
        return self._in_place("sub_", Tensor.__sub__, other if alpha == 1 else alpha * other)

    def mul_(self, other: Any) -> Tensor:
        return self._in_place("mul_", Tensor.__mul__, other)

    def div_(self, other: Any) -> Tensor:
        return self._in_place("div_", Tensor.__truediv__, other)

    def clamp_(self, min: float | None = None, max: float | None = None) -> Tensor:
        return self._in_place("clamp_", lambda t, _: t.clip(min, max), None)

    def fill_(self, value: float) -> Tensor:
        return self._in_place("fill_", lambda t, v: t._full_like(v), float(value))

    def zero_(self) -> Tensor:
        return self.fill_(0.0)

    def copy_(self, src: Any) -> Tensor:
        """Write ``src``'s values (broadcast to this tensor's shape) into this tensor."""
        if isinstance(src, Tensor) and src.dtype != self.dtype:  # as PyTorch: src is converted
            src = src._cast(self.dtype)
        return self._in_place("copy_", lambda t, s: t._full_like(0.0) + s, src)

    def _full_like(self, value: float) -> Tensor:
        return Tensor.full(self.shape, value, dtype=self.dtype, device=self.device)

    def _in_place(self, name: str, op: Any, other: Any) -> Tensor:
        """Compute ``op(self, other)`` and write the result into this tensor's storage.

        In place means outside the graph for a leaf, as PyTorch's rule: a leaf that requires a
        gradient (a parameter) may be changed in place only with grad mode off
        (``with tg.no_grad():``). Anything else whose result must be recorded (``total +=
        loss``) is recorded, as PyTorch does, and this tensor becomes the recorded result.
        """
        if autograd.is_grad_enabled():
            if self.requires_grad and self._ctx is None:
                raise RuntimeError(
                    f"{name}: in-place update of a leaf tensor that requires grad while grad "
                    "mode is on; do it inside `with tg.no_grad():` (e.g. a hand-written gradient "
                    "step), or write it out of place (x = x - y)"
                )
            if self.requires_grad or (isinstance(other, Tensor) and other.requires_grad):
                # The op's input is a twin holding the present value and graph link, so this
                # tensor can become the output without becoming its own input; its old storage
                # stays with any node that saved it (nothing saved for a backward is overwritten).
                before = Tensor._wrap(self._data, self.device, self._backend)
                before._ctx, before.requires_grad = self._ctx, self.requires_grad
                out = op(before, other)
                self._data, self._ctx, self.requires_grad = out._data, out._ctx, out.requires_grad
                return self
        if type(other) is int and self.dtype.kind == "i":  # labels += 1 stays integer
            other = Tensor(other, dtype=self.dtype, device=self.device)
        with autograd.no_grad():
            out = op(self, other)
        if out.shape != self.shape:
            raise InputError(
                f"{name}: the result has shape {out.shape}, which does not fit in place into "
                f"this tensor's shape {self.shape}"
            )
        if not np.can_cast(out.dtype, self.dtype, "same_kind"):
            raise TypeError(
                f"{name}: the result's dtype {out.dtype} cannot be stored in place in a "
                f"tensor of dtype {self.dtype}"
            )
        self._backend.copy_into(self._data, out._data)
        return self

    # ----- comparisons: not differentiable, float32 0.0 / 1.0 -----

    def _compare(self, op: str, other: Any) -> Tensor:
        y = self._operand(other, op)
        y_data = y._data if isinstance(y, Tensor) else y
        try:
            out = self._backend.compare(op, self._data, y_data)
        except ValueError:
            raise InputError(
                f"{op}: shapes {self.shape} and {_shape_of(y)} cannot be broadcast together"
            ) from None
        return Tensor._wrap(out, self.device)

    def __eq__(self, other: Any) -> Tensor:  # type: ignore[override]
        return self._compare("eq", other)

    def __ne__(self, other: Any) -> Tensor:  # type: ignore[override]
        return self._compare("ne", other)

    def __lt__(self, other: Any) -> Tensor:
        return self._compare("lt", other)

    def __le__(self, other: Any) -> Tensor:
        return self._compare("le", other)

    def __gt__(self, other: Any) -> Tensor:
        return self._compare("gt", other)

    def __ge__(self, other: Any) -> Tensor:
        return self._compare("ge", other)

    # ----- unary functions -----

    def exp(self) -> Tensor:
        return F.Exp.apply(self._floating())

    def log(self) -> Tensor:
        return F.Log.apply(self._floating())

    def sqrt(self) -> Tensor:
        return F.Sqrt.apply(self._floating())

    def abs(self) -> Tensor:
        return F.Abs.apply(self)

    def relu(self) -> Tensor:
        return F.ReLU.apply(self)

    def sigmoid(self) -> Tensor:
        return F.Sigmoid.apply(self._floating())

    def tanh(self) -> Tensor:
        return F.Tanh.apply(self._floating())

    def leaky_relu(self, slope: float = 0.01) -> Tensor:
        slope = _number(slope, "leaky_relu", "slope")
        return F.LeakyReLU.apply(self._floating(), slope)  # int64 * 0.5 is float32, as PyTorch

    def clip(self, lo: float | None = None, hi: float | None = None) -> Tensor:
        lo = None if lo is None else _number(lo, "clip", "lo")
        hi = None if hi is None else _number(hi, "clip", "hi")
        # NOTE: lo > hi gives hi everywhere (min(max(x, lo), hi)), as PyTorch's clamp.
        return F.Clip.apply(self, lo, hi)

    # ----- contract v2: elementwise (PyTorch spellings) -----

    def sin(self) -> Tensor:
        return F.Sin.apply(self._floating())

    def cos(self) -> Tensor:
        return F.Cos.apply(self._floating())

    def log1p(self) -> Tensor:
        """log(1 + x), accurate for tiny x."""
        return F.Log1p.apply(self._floating())

    def expm1(self) -> Tensor:
        """e^x - 1, accurate for tiny x."""
        return F.Expm1.apply(self._floating())

    def square(self) -> Tensor:
        return F.Square.apply(self)  # int64 stays int64, as PyTorch

    def reciprocal(self) -> Tensor:
        return F.Reciprocal.apply(self._floating())

    def sign(self) -> Tensor:
        """-1, 0 or 1 (NaN stays NaN); its gradient is 0."""
        return F.Sign.apply(self)

    def clamp(self, min: float | None = None, max: float | None = None) -> Tensor:  # noqa: A002
        """PyTorch's name for ``clip``: min(max(x, min), max); min > max gives max everywhere."""
        return self.clip(min, max)

    def hardtanh(self, min_val: float = -1.0, max_val: float = 1.0) -> Tensor:
        """clamp(x, min_val, max_val), with PyTorch's gradient: 1 strictly inside the bounds, 0
        on them (clamp's is 1 on them)."""
        lo, hi = _number(min_val, "hardtanh", "min_val"), _number(max_val, "hardtanh", "max_val")
        x = self._floating()
        inside = (x > lo) * (x < hi)
        return where(inside, x, x.detach().clip(lo, hi))

    def relu6(self) -> Tensor:
        """min(max(x, 0), 6): hardtanh(x, 0, 6), as PyTorch."""
        return self.hardtanh(0.0, 6.0)

    def softplus(self, beta: float = 1.0, threshold: float = 20.0) -> Tensor:
        """log(1 + e^(beta x)) / beta (see ``nn.functional.softplus``)."""
        from tinygrad_edu.nn import functional

        return functional.softplus(self._floating(), beta, threshold)

    def gelu(self, approximate: str = "none") -> Tensor:
        """x Phi(x) (see ``nn.functional.gelu``)."""
        from tinygrad_edu.nn import functional

        return functional.gelu(self._floating(), approximate)

    def masked_fill(self, mask: Any, value: float) -> Tensor:
        """``value`` where ``mask`` is true (broadcast), this tensor's entries elsewhere; the
        gradient flows to the entries kept."""
        value = _number(value, "masked_fill", "value")
        if isinstance(value, float) and self.dtype.kind == "i" and value.is_integer():
            value = int(value)  # an int64 tensor filled with an integral value stays int64
        return where(mask, value, self, op="masked_fill")

    # ----- reductions -----

    # Each reduction takes numpy's axis=/keepdims= and PyTorch's dim=/keepdim= (_spelling).

    def sum(
        self,
        axis: Any = _UNSET,
        keepdims: Any = _UNSET,
        *,
        dim: Any = _UNSET,
        keepdim: Any = _UNSET,
    ) -> Tensor:
        axis, keepdims = _spelling("sum", axis, dim, keepdims, keepdim)
        return F.Sum.apply(self, _normalize_axis(axis, self.ndim, "sum"), keepdims)

    def mean(
        self,
        axis: Any = _UNSET,
        keepdims: Any = _UNSET,
        *,
        dim: Any = _UNSET,
        keepdim: Any = _UNSET,
    ) -> Tensor:
        axis, keepdims = _spelling("mean", axis, dim, keepdims, keepdim)
        axes = _normalize_axis(axis, self.ndim, "mean")
        count = self.size if axes is None else int(np.prod([self.shape[a] for a in axes]))
        return F.Sum.apply(self, axes, keepdims) * (1.0 / count if count else float("nan"))

    def max(
        self,
        axis: Any = _UNSET,
        keepdims: Any = _UNSET,
        *,
        dim: Any = _UNSET,
        keepdim: Any = _UNSET,
    ) -> Any:
        """The largest entry (over ``axis``), a Tensor; with ``dim=d``, as PyTorch, the named
        tuple ``(values, indices)`` along d (values differentiable, as the Tensor form)."""
        return self._extremum(F.Max, "max", axis, keepdims, dim, keepdim)

    def min(
        self,
        axis: Any = _UNSET,
        keepdims: Any = _UNSET,
        *,
        dim: Any = _UNSET,
        keepdim: Any = _UNSET,
    ) -> Any:
        """The smallest entry: as ``max``."""
        return self._extremum(F.Min, "min", axis, keepdims, dim, keepdim)

    def _extremum(
        self, fn: type, name: str, axis: Any, keepdims: Any, dim: Any, keepdim: Any
    ) -> Any:
        torch_form = dim is not _UNSET and dim is not None
        axis, keepdims = _spelling(name, axis, dim, keepdims, keepdim)
        values = fn.apply(self, _normalize_axis(axis, self.ndim, name), keepdims)
        if not torch_form:
            return values
        # NOTE: values has the tie rule of the Tensor form (tied entries share the gradient);
        # PyTorch gives it all to the entry at `indices`. Without ties they agree.
        arg = self.argmax if name == "max" else self.argmin
        return ValuesIndices(values, arg(_int_axis(axis, name), keepdim=keepdims))

    def argmax(
        self,
        axis: Any = _UNSET,
        keepdims: Any = _UNSET,
        *,
        dim: Any = _UNSET,
        keepdim: Any = _UNSET,
    ) -> Tensor:
        """Index of the first largest entry (flattened when axis is None), an int64 tensor."""
        axis, keepdims = _spelling("argmax", axis, dim, keepdims, keepdim)
        return self._arg_extremum("argmax", self._data, axis, keepdims)

    def argmin(
        self,
        axis: Any = _UNSET,
        keepdims: Any = _UNSET,
        *,
        dim: Any = _UNSET,
        keepdim: Any = _UNSET,
    ) -> Tensor:
        """Index of the first smallest entry: the first largest of -x (the order reversed)."""
        axis, keepdims = _spelling("argmin", axis, dim, keepdims, keepdim)
        # NOTE: for int64, -x wraps only at int64's smallest value, which argmin then misses.
        return self._arg_extremum("argmin", self._backend.unary("neg", self._data), axis, keepdims)

    def _arg_extremum(self, name: str, data: Any, axis: Any, keepdims: bool) -> Tensor:
        if axis is not None:
            (axis,) = _normalize_axis(_int_axis(axis, name), self.ndim, name) or (0,)
        if self.size == 0 and (axis is None or self.shape[axis] == 0):  # as numpy
            raise InputError(
                f"{name}: cannot take the {name} over an empty axis (shape {self.shape}, "
                f"axis {axis}); expected at least one entry"
            )
        out = Tensor._wrap(self._backend.argmax(data, axis), self.device)
        if keepdims:  # the reduced axis (all of them for axis=None) kept with size 1
            kept = (1,) * self.ndim if axis is None or self.ndim == 0 else None
            out = out.reshape(kept or self.shape[:axis] + (1,) + self.shape[axis + 1 :])
        return out

    # ----- shape -----

    def reshape(self, *shape: Any) -> Tensor:
        return self._reshape(shape, "reshape")

    def view(self, *shape: Any) -> Tensor:
        """PyTorch's view: here the same as reshape (every tensor is contiguous)."""
        return self._reshape(shape, "view")

    def _reshape(self, shape: tuple, op: str) -> Tensor:
        shape = _shape_arg(shape, op)
        if shape.count(-1) > 1 or any(n < -1 for n in shape):
            raise InputError(f"{op}: invalid shape {shape}: at most one -1, no other negatives")
        known = int(np.prod([n for n in shape if n != -1]))
        if -1 in shape:
            if known == 0 or self.size % known:
                raise InputError(
                    f"{op}: cannot reshape a tensor of shape {self.shape} ({self.size} "
                    f"elements) into {shape}"
                )
            shape = tuple(self.size // known if n == -1 else n for n in shape)
        elif known != self.size:
            raise InputError(
                f"{op}: cannot reshape a tensor of shape {self.shape} ({self.size} elements) "
                f"into {shape} ({known} elements)"
            )
        if shape == self.shape:
            return self
        return F.Reshape.apply(self, shape)

    def flatten(self, start_dim: int = 0, end_dim: int = -1) -> Tensor:
        """Merge dims start_dim..end_dim (all by default) into one, as PyTorch (composed: a
        reshape). A 0-d tensor becomes shape (1,)."""
        if self.ndim == 0:
            _normalize_axis(_int_axis(start_dim, "flatten"), 1, "flatten")
            _normalize_axis(_int_axis(end_dim, "flatten"), 1, "flatten")
            return self.reshape(1)
        (start,) = _normalize_axis(_int_axis(start_dim, "flatten"), self.ndim, "flatten")
        (end,) = _normalize_axis(_int_axis(end_dim, "flatten"), self.ndim, "flatten")
        if start > end:
            raise InputError(
                f"flatten: start_dim {start_dim} comes after end_dim {end_dim} "
                f"(tensor shape {self.shape})"
            )
        merged = int(np.prod(self.shape[start : end + 1]))
        return self.reshape(self.shape[:start] + (merged,) + self.shape[end + 1 :])

    def transpose(self, *axes: Any) -> Tensor:
        """numpy's transpose: a full permutation of the axes; no argument reverses them.
        Two dims of a tensor with other than 2 dims swap those two, as PyTorch's
        ``transpose(dim0, dim1)`` (for 2 dims both readings agree)."""
        if len(axes) == 2 and self.ndim not in (0, 2) and all(type(a) is int for a in axes):
            d0, d1 = (_normalize_axis(a, self.ndim, "transpose")[0] for a in axes)
            perm = list(range(self.ndim))
            perm[d0], perm[d1] = d1, d0
            return F.Transpose.apply(self, tuple(perm))
        if not axes:
            axes = tuple(range(self.ndim))[::-1]
        else:
            axes = _shape_arg(axes, "transpose")
            in_range = all(-self.ndim <= a < self.ndim for a in axes)
            if not in_range or sorted(a % self.ndim for a in axes) != list(range(self.ndim)):
                raise InputError(
                    f"transpose: axes {axes} are not a permutation of the {self.ndim} axes of a "
                    f"tensor of shape {self.shape}"
                )
            axes = tuple(a % self.ndim for a in axes)
        return F.Transpose.apply(self, axes)

    @property
    def T(self) -> Tensor:
        return self.transpose()

    def __getitem__(self, index: Any) -> Tensor:
        index = _normalize_index(index)
        try:  # every backend indexes with numpy's rules and raises numpy's errors: reword them
            return F.GetItem.apply(self, index)
        except IndexError as exc:
            raise TensorIndexError(f"getitem: {exc} (tensor shape {self.shape})") from None
        except (TypeError, ValueError) as exc:
            raise TypeError(f"getitem: invalid index {index!r} ({exc})") from None

    # ----- linear algebra and the softmax family -----

    def matmul(self, other: Any) -> Tensor:
        """numpy's matmul: 1-D vectors are promoted and the added axis removed again."""
        other = self._operand(other, "matmul")
        if not isinstance(other, Tensor) or self.ndim == 0 or other.ndim == 0:
            raise InputError("matmul: both operands must have at least one dimension")
        a = self.reshape(1, -1) if self.ndim == 1 else self
        b = other.reshape(-1, 1) if other.ndim == 1 else other
        if a.shape[-1] != b.shape[-2]:
            raise InputError(
                f"matmul: shapes {self.shape} and {other.shape} do not align: "
                f"{a.shape[-1]} != {b.shape[-2]}"
            )
        try:
            np.broadcast_shapes(a.shape[:-2], b.shape[:-2])
        except ValueError:
            raise InputError(
                f"matmul: batch dims of {self.shape} and {other.shape} cannot be broadcast"
            ) from None
        a, b = _common_dtype([a, b], "matmul")
        out = F.MatMul.apply(a, b)
        if self.ndim == 1 and other.ndim == 1:
            return out.reshape(())
        if self.ndim == 1:
            return out.reshape(out.shape[:-2] + out.shape[-1:])
        if other.ndim == 1:
            return out.reshape(out.shape[:-1])
        return out

    def softmax(self, axis: Any = _UNSET, *, dim: Any = _UNSET) -> Tensor:
        axis = _spelling("softmax", axis, dim, default=-1)[0]
        (axis,) = _normalize_axis(_int_axis(axis, "softmax"), self.ndim, "softmax") or (0,)
        return F.Softmax.apply(self, axis)

    def log_softmax(self, axis: Any = _UNSET, *, dim: Any = _UNSET) -> Tensor:
        axis = _int_axis(_spelling("log_softmax", axis, dim, default=-1)[0], "log_softmax")
        (axis,) = _normalize_axis(axis, self.ndim, "log_softmax") or (0,)
        return F.LogSoftmax.apply(self, axis)

    # ----- contract v2: PyTorch's shape ops, var/std/logsumexp, dtype conversions -----
    # Composed from the primitives above (so each is differentiable to any order, create_graph
    # included), except expand, the primitive ops.Expand.

    def unsqueeze(self, dim: int) -> Tensor:
        """A new axis of size 1 at ``dim`` (in [-ndim-1, ndim], as PyTorch). Composed: a reshape."""
        (d,) = _normalize_axis(_int_axis(dim, "unsqueeze"), self.ndim + 1, "unsqueeze")
        return self.reshape(self.shape[:d] + (1,) + self.shape[d:])

    def squeeze(self, dim: Any = None) -> Tensor:
        """Drop axes of size 1: all of them, or those of ``dim`` (an int or a tuple) that have
        size 1 (another size is left as it is, as PyTorch). Composed: a reshape."""
        if dim is None:
            drop = {d for d, n in enumerate(self.shape) if n == 1}
        else:
            dims = dim if isinstance(dim, (tuple, list)) else (_int_axis(dim, "squeeze"),)
            axes = _normalize_axis(tuple(dims), self.ndim, "squeeze") or ()
            drop = {d for d in axes if self.shape[d] == 1}
        return self.reshape(tuple(n for d, n in enumerate(self.shape) if d not in drop))

    def permute(self, *dims: Any) -> Tensor:
        """The axes reordered: output axis i is input axis dims[i] (``permute(2, 0, 1)`` or
        ``permute((2, 0, 1))``). Composed: the primitive Transpose."""
        dims = _shape_arg(dims, "permute")
        if len(dims) != self.ndim:
            raise InputError(
                f"permute: dims {dims} has {len(dims)} entries, expected one per dim of the "
                f"tensor of shape {self.shape} ({self.ndim})"
            )
        if self.ndim == 0:
            return self
        axes = [_normalize_axis(d, self.ndim, "permute")[0] for d in dims]
        if len(set(axes)) != len(axes):
            raise InputError(f"permute: dims {dims} repeats a dim (tensor shape {self.shape})")
        return F.Transpose.apply(self, tuple(axes))

    def expand(self, *sizes: Any) -> Tensor:
        """This tensor broadcast to ``sizes`` without copying: -1 keeps a size, a size-1 dim
        may become any size, and new dims may be added in front, as PyTorch. The gradient is
        summed back over the broadcast dims."""
        sizes = _shape_arg(sizes, "expand")
        lead = len(sizes) - self.ndim
        if lead < 0:
            raise InputError(
                f"expand: sizes {sizes} have fewer dims than the tensor of shape {self.shape}"
            )
        shape = []
        for i, n in enumerate(sizes):
            old = self.shape[i - lead] if i >= lead else None
            if n == -1 and old is not None:
                n = old
            if n < 0 or (old is not None and old != 1 and n != old):
                raise InputError(
                    f"expand: cannot expand a tensor of shape {self.shape} to {sizes}: dim {i} "
                    f"of size {old} must stay {old} (or -1); only size-1 dims can grow"
                    if old is not None
                    else f"expand: a new leading dim must have a size >= 0, got {n} in {sizes}"
                )
            shape.append(n)
        shape = tuple(shape)
        return self if shape == self.shape else F.Expand.apply(self, shape)

    def var(
        self,
        dim: Any = _UNSET,
        *,
        keepdim: Any = _UNSET,
        correction: Any = None,
        unbiased: bool | None = None,
        axis: Any = _UNSET,
        keepdims: Any = _UNSET,
    ) -> Tensor:
        """sum((x - mean)^2) / (N - correction) over ``dim`` (all dims by default), N the number
        of entries reduced; correction=1 (the default, or unbiased=True) is Bessel's, 0 the
        population variance. N - correction <= 0 gives inf or nan, as PyTorch. Composed."""
        axis, keepdim = _spelling("var", axis, dim, keepdims, keepdim)
        if correction is not None and unbiased is not None:
            raise TypeError("var: got both correction= and unbiased=; give one")
        if correction is None:  # unbiased=False is correction=0, as PyTorch
            correction = 0 if unbiased is not None and not unbiased else 1
        correction = _number(correction, "var", "correction")
        x = self if self.dtype in _FLOAT_DTYPES else F.Cast.apply(self, np.dtype(np.float32))
        axes = _normalize_axis(axis, x.ndim, "var")
        count = x.size if axes is None else int(np.prod([x.shape[a] for a in axes]))
        d = x - x.mean(axes, keepdims=True)
        total = (d * d).sum(axes, keepdims=keepdim)
        denom = max(0.0, count - correction)
        # NOTE: * inf for a zero denominator: sum/0 without numpy's divide warning (0 -> nan)
        return total * (1.0 / denom if denom else float("inf"))

    def std(
        self,
        dim: Any = _UNSET,
        *,
        keepdim: Any = _UNSET,
        correction: Any = None,
        unbiased: bool | None = None,
        axis: Any = _UNSET,
        keepdims: Any = _UNSET,
    ) -> Tensor:
        """sqrt(var(...)), the same arguments. Composed."""
        return self.var(
            dim,
            keepdim=keepdim,
            correction=correction,
            unbiased=unbiased,
            axis=axis,
            keepdims=keepdims,
        ).sqrt()

    def logsumexp(
        self,
        dim: Any = _UNSET,
        keepdim: Any = _UNSET,
        *,
        axis: Any = _UNSET,
        keepdims: Any = _UNSET,
    ) -> Tensor:
        """log(sum(exp(x))) over ``dim``, computed as m + log(sum(exp(x - m))) with m the max, so
        that large entries do not overflow. Composed; m is a constant (the result does not
        depend on it, so neither does the gradient, softmax(x))."""
        if dim is _UNSET and axis is _UNSET:
            raise TypeError("logsumexp: missing the dim argument (an int or a tuple of ints)")
        axis, keepdim = _spelling("logsumexp", axis, dim, keepdims, keepdim)
        x = self if self.dtype in _FLOAT_DTYPES else F.Cast.apply(self, np.dtype(np.float32))
        axes = _normalize_axis(axis, x.ndim, "logsumexp")
        big = float(np.finfo(x.dtype).max)
        # An infinite max is clipped to the largest float, so a row of -inf gives -inf (and one
        # holding +inf gives +inf) instead of inf - inf = nan.
        m = x.detach().max(axes, keepdims=True).clip(-big, big)
        out = (x - m).exp().sum(axes, keepdims=True).log() + m
        return out if keepdim else out.reshape(_drop_dims(out.shape, axes))

    def to(self, *args: Any, dtype: Any = None, device: Any = None) -> Tensor:
        """This tensor on another device and/or with another dtype, as PyTorch: ``to(dtype)``,
        ``to(device)``, ``to(device, dtype)``, ``to(other_tensor)``; itself when nothing
        changes. float <-> float is differentiable (the gradient is cast back)."""
        for a in args:
            if isinstance(a, Tensor):
                device, dtype = a.device, a.dtype
            elif isinstance(a, str) and device is None and a not in ("float32", "float64", "int64"):
                device = a
            elif dtype is None:
                dtype = a
            else:
                raise TypeError(f"to: unexpected argument {a!r}; expected a device and a dtype")
        out = self
        if device is not None:
            target = parse_device(device)
            if target != self.device:
                get_backend(target)  # raises a clear error if the device is not usable
                out = F.ToDevice.apply(self, target)
        return out if dtype is None else out._cast(_resolve_dtype(dtype))

    def _cast(self, dtype: np.dtype) -> Tensor:
        if dtype == self.dtype:
            return self
        if dtype in _FLOAT_DTYPES and self.dtype in _FLOAT_DTYPES:
            return F.Cast.apply(self, dtype)
        if dtype == np.int64:
            _check_int64(np.trunc(self.numpy()))  # no silent wrap-round of NaN or 1e30
        # int <-> float is not differentiable (as PyTorch: an int tensor has no gradient)
        return Tensor._wrap(self._backend.astype(self._data, dtype), self.device, self._backend)

    def float(self) -> Tensor:
        return self._cast(np.dtype(np.float32))

    def double(self) -> Tensor:
        return self._cast(np.dtype(np.float64))

    def long(self) -> Tensor:
        """int64, rounding toward zero as PyTorch."""
        return self._cast(np.dtype(np.int64))

    def type(self, dtype: Any = None) -> Any:
        """``type(dtype)`` is ``to(dtype)``; ``type()`` names the dtype ('float32')."""
        return str(self.dtype) if dtype is None else self._cast(_resolve_dtype(dtype))


def _f32(kwargs: dict) -> dict:
    """numpy's constructors make float64 arrays; keep float32 the default, as PyTorch does."""
    kwargs.setdefault("dtype", "float32")
    return kwargs


def _drop_dims(shape: tuple[int, ...], axes: tuple[int, ...] | None) -> tuple[int, ...]:
    return () if axes is None else tuple(n for d, n in enumerate(shape) if d not in axes)


def _shape_of(x: Any) -> tuple[int, ...]:
    return x.shape if isinstance(x, Tensor) else ()


def _common_dtype(tensors: list[Tensor], op: str) -> list[Tensor]:
    """Kernels that join or multiply arrays want one dtype: float32 meets float64 as float64."""
    dtypes = {t.dtype for t in tensors}
    if len(dtypes) == 1:
        return tensors
    if not dtypes <= set(_FLOAT_DTYPES):
        raise TypeError(
            f"{op}: dtypes {sorted(map(str, dtypes))} cannot be mixed; convert the int64 tensor "
            "with Tensor(t, dtype='float32') first"
        )
    return [t if t.dtype == np.float64 else F.Cast.apply(t, np.dtype(np.float64)) for t in tensors]


def _normalize_index(index: Any) -> Any:
    """Tensors and lists in an index become numpy integer arrays (numpy's advanced indexing)."""
    if isinstance(index, tuple):
        return tuple(_normalize_index(i) for i in index)
    if isinstance(index, Tensor):
        return index.numpy()
    if isinstance(index, list):
        return np.asarray(index)
    return index


# ----- contract v2: elementwise module functions (tg.maximum, tg.minimum, tg.where) -----


def _as_tensor_pair(a: Any, b: Any, op: str) -> tuple[Tensor, Any, bool]:
    """(the Tensor operand, the other one, whether they were swapped): at least one must be a
    Tensor; maximum and minimum are symmetric, so the Tensor may go first."""
    if isinstance(a, Tensor):
        return a, b, False
    if isinstance(b, Tensor):
        return b, a, True
    raise TypeError(
        f"{op}: expected at least one Tensor, got {type(a).__name__} and {type(b).__name__}"
    )


def maximum(a: Any, b: Any) -> Tensor:
    """The elementwise maximum of a and b (broadcasting; NaN if either is NaN). Where they tie,
    each gets half of the gradient, as PyTorch."""
    t, other, _ = _as_tensor_pair(a, b, "maximum")
    return t._binary(F.Maximum, other, "maximum")


def minimum(a: Any, b: Any) -> Tensor:
    """The elementwise minimum of a and b (broadcasting); ties split the gradient equally."""
    t, other, _ = _as_tensor_pair(a, b, "minimum")
    return t._binary(F.Minimum, other, "minimum")


def where(cond: Any, a: Any, b: Any, op: str = "where") -> Tensor:
    """a where ``cond`` is true, b elsewhere, all three broadcast together.

    ``cond`` is a bool or 0/1 Tensor or numpy array (any nonzero counts as true); ``a`` and
    ``b`` are Tensors or numbers. The gradient flows to the chosen side only (0 elsewhere).
    """
    tensors = [v for v in (cond, a, b) if isinstance(v, Tensor)]
    if not tensors:
        raise TypeError(f"{op}: expected a Tensor among cond, a and b")
    device = tensors[0].device
    for v in tensors:
        if v.device != device:
            raise RuntimeError(
                f"{op}: tensors are on different devices, {device!r} and {v.device!r}"
            )
    cond_t = _condition(cond, op, device)
    a, b = (_where_operand(v, op, "a" if i == 0 else "b", device) for i, v in enumerate((a, b)))
    shapes = [cond_t.shape, *(v.shape for v in (a, b) if isinstance(v, Tensor))]
    try:
        np.broadcast_shapes(*shapes)
    except ValueError:
        names = ", ".join(str(s) for s in shapes)
        raise InputError(
            f"{op}: shapes of cond, a and b ({names}) cannot be broadcast together "
            "(trailing dims must be equal or 1)"
        ) from None
    a, b = _where_dtypes(a, b, op)
    if not isinstance(a, Tensor) and not isinstance(b, Tensor):  # two numbers: a constant
        return Tensor._wrap(cond_t._backend.where(cond_t._data, a, b), device, cond_t._backend)
    return F.Where.apply(cond_t, a, b)


def _condition(cond: Any, op: str, device: str) -> Tensor:
    """cond as a float32 0/1 Tensor on ``device`` (a constant: no gradient flows into it)."""
    if isinstance(cond, Tensor):
        # float32 0/1 on any backend (a comparison); nonzero is true, as in a Python if
        return Tensor._wrap(cond._backend.compare("ne", cond._data, 0.0), device, cond._backend)
    if isinstance(cond, (np.ndarray, list, tuple, bool, np.bool_)):
        array = np.asarray(cond)
        if array.dtype.kind not in "biuf":
            raise TypeError(f"{op}: cond must be bool or numeric, got numpy dtype {array.dtype}")
        return Tensor((array != 0).astype(np.float32), device=device)
    raise TypeError(f"{op}: cond must be a Tensor or a numpy array, got {type(cond).__name__}")


def _where_operand(v: Any, op: str, name: str, device: str) -> Any:
    if isinstance(v, Tensor):
        return v
    if isinstance(v, (bool, int, float, np.integer, np.floating)):
        return v.item() if isinstance(v, np.generic) else v
    if isinstance(v, (np.ndarray, list, tuple)):
        array = np.asarray(v)
        dtype = array.dtype if array.dtype in _FLOAT_DTYPES else None
        return Tensor(array, dtype=dtype, device=device)
    raise TypeError(f"{op}: {name} must be a Tensor or a number, got {type(v).__name__}")


def _where_dtypes(a: Any, b: Any, op: str) -> tuple[Any, Any]:
    """One dtype for both sides, by PyTorch's rules: two tensors meet at the wider float (int64
    with a float tensor takes the float), a Python float with an int64 tensor gives float32."""
    ta = a if isinstance(a, Tensor) else None
    tb = b if isinstance(b, Tensor) else None
    if ta is not None and tb is not None:
        if ta.dtype == tb.dtype:
            return a, b
        if ta.dtype.kind == "i":
            return F.Cast.apply(ta, tb.dtype), b
        if tb.dtype.kind == "i":
            return a, F.Cast.apply(tb, ta.dtype)
        return _common_dtype([ta, tb], op)
    t, number = (ta, b) if ta is not None else (tb, a)
    if t is None:
        return float(a), float(b)
    if t.dtype.kind == "i" and isinstance(number, float):
        t = t._floating()
    elif t.dtype.kind == "f":
        number = float(number)
    return (t, number) if ta is not None else (number, t)
