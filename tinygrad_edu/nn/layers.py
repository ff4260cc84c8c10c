"""Layers: Linear, the activations, Sequential, and the chapter's regularizers (Dropout,
GaussianNoise).

Every layer is a Module whose ``forward`` is a few Tensor operations; the gradients come from the
ops' backward rules, so no layer here writes a derivative.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Iterator, Mapping
from typing import Any

import numpy as np

from tinygrad_edu import ops
from tinygrad_edu.errors import InputError
from tinygrad_edu.nn import functional as F
from tinygrad_edu.nn.functional import _check_input, _check_probability, _check_std
from tinygrad_edu.nn.module import Module
from tinygrad_edu.random import get_rng
from tinygrad_edu.tensor import Tensor


def _to_float64(x: Tensor) -> Tensor:
    """float32 -> float64, differentiably (the backward casts the gradient back)."""
    return x * Tensor.ones((), dtype="float64", device=x.device)


# ----- the fully connected layer -----


class Linear(Module):
    """y = x W^T + b: every output neuron is a weighted sum of every input, plus a bias.

    ``weight`` has shape (out_features, in_features) and ``bias`` (out_features,). Both start
    uniform in [-1/sqrt(in_features), 1/sqrt(in_features)], PyTorch's default: the spread of a
    neuron's weighted sum then stays about the same whatever the number of inputs, so sigmoid and
    tanh units start in their sensitive range instead of saturated.

    Input: (..., in_features) -> output (..., out_features). The multiply and the bias run as one
    fused op (``ops.Linear``): one graph node and one kernel call instead of three.
    """

    def __init__(
        self, in_features: int, out_features: int, bias: bool = True, dtype: Any = None
    ) -> None:
        super().__init__()
        for what, n in (("in_features", in_features), ("out_features", out_features)):
            if not isinstance(n, (int, np.integer)) or isinstance(n, bool):
                raise TypeError(f"Linear: {what} must be an int, got {n!r}")
            if n < 1:
                raise InputError(f"Linear: {what} must be >= 1, got {n}")
        self.in_features, self.out_features = int(in_features), int(out_features)
        dtype = "float32" if dtype is None else dtype
        bound = 1.0 / math.sqrt(self.in_features)
        rng = get_rng()
        w = rng.uniform(-bound, bound, (self.out_features, self.in_features))
        self.weight = Tensor(w, dtype=dtype, requires_grad=True)
        if bias:
            b = rng.uniform(-bound, bound, self.out_features)
            self.bias = Tensor(b, dtype=dtype, requires_grad=True)
        else:
            self.bias = None

    def forward(self, x: Tensor, activation: str | None = None) -> Tensor:
        """``activation`` ("relu", "sigmoid", "tanh") is applied inside the same fused op;
        ``Sequential`` passes it when this layer is followed by that activation."""
        shape = _check_input(x, "Linear").shape
        if not shape or shape[-1] != self.in_features:
            raise InputError(
                f"Linear: input of shape {shape} does not match in_features="
                f"{self.in_features}; expected shape (..., {self.in_features})"
            )
        w, b = self.weight, self.bias
        if x.dtype != w.dtype:  # float32 meets float64 as float64, as elsewhere
            if x.dtype == np.float32:
                x = _to_float64(x)
            else:
                w = _to_float64(w)
                b = None if b is None else _to_float64(b)
        if len(shape) == 2:
            return ops.Linear.apply(x, w, b, activation)
        # The fused op wants a matrix, one row per sample: flatten the leading dims, then restore.
        y = ops.Linear.apply(x.reshape(-1, self.in_features), w, b, activation)
        return y.reshape(shape[:-1] + (self.out_features,))

    def extra_repr(self) -> str:
        return (
            f"in_features={self.in_features}, out_features={self.out_features}, "
            f"bias={self.bias is not None}"
        )


# ----- containers -----


class Sequential(Module):
    """Layers applied one after the other, e.g.
    ``Sequential(Linear(64, 15), Sigmoid(), Linear(15, 10))``.

    The layers are children named "0", "1", ... (so parameters are "0.weight", "2.bias", ...);
    pass one dict instead to name them. ``seq[i]`` is a layer, ``seq[a:b]`` a new Sequential
    sharing those layers, ``len(seq)`` the number of layers.
    """

    def __init__(self, *layers: Any) -> None:
        super().__init__()
        if len(layers) == 1 and isinstance(layers[0], Mapping):
            named = list(layers[0].items())
        else:
            named = [(str(i), layer) for i, layer in enumerate(layers)]
        for name, layer in named:
            self._add(name, layer)

    def _add(self, name: str, layer: Any) -> None:
        if not isinstance(layer, Module):
            raise TypeError(
                f"Sequential: layer {name!r} is a {type(layer).__name__}, not a Module "
                "(write nn.ReLU(), not nn.ReLU or F.relu)"
            )
        setattr(self, name, layer)

    def append(self, layer: Module) -> Sequential:
        self._add(str(len(self)), layer)
        return self

    def _layers(self) -> list[Module]:
        return list(self.children())

    def __len__(self) -> int:
        return len(self._registries()[1])

    def __iter__(self) -> Iterator[Module]:
        return iter(self._layers())

    def __getitem__(self, index: int | slice) -> Any:
        layers = self._layers()
        if isinstance(index, slice):
            return Sequential(*layers[index])
        if not isinstance(index, (int, np.integer)) or not -len(layers) <= index < len(layers):
            raise IndexError(f"Sequential: index {index!r} out of range for {len(layers)} layers")
        return layers[index]

    def __setattr__(self, name: str, value: Any) -> None:
        super().__setattr__(name, value)
        self.__dict__.pop("_fused_plan", None)  # the layers may have changed: plan again

    def __delattr__(self, name: str) -> None:
        super().__delattr__(name)
        self.__dict__.pop("_fused_plan", None)

    def _plan(self) -> list[tuple[Module, str | None]]:
        """The layers in order as (layer, activation fused into it), worked out once."""
        plan = self.__dict__.get("_fused_plan")
        if plan is None:
            layers, plan, i = self._layers(), [], 0
            while i < len(layers):
                following = type(layers[i + 1]) if i + 1 < len(layers) else None
                if type(layers[i]) is Linear and following in _FUSABLE:
                    # Linear then ReLU/Sigmoid/Tanh: one fused op (one graph node, one pass over
                    # the output) instead of two; the numbers are the same.
                    plan.append((layers[i], _FUSABLE[following]))
                    i += 2
                else:
                    plan.append((layers[i], None))
                    i += 1
            self.__dict__["_fused_plan"] = plan  # not through __setattr__: not a child
        return plan

    def forward(self, x: Tensor) -> Tensor:
        for layer, activation in self._plan():
            x = layer(x) if activation is None else layer(x, activation=activation)
        return x


class ModuleList(Module):
    """A list of Modules whose parameters the owner registers: ``self.blocks =
    nn.ModuleList([nn.Linear(4, 4) for _ in range(3)])``. Children are named "0", "1", ...
    (parameters "blocks.0.weight", ...). It has no forward: iterate over it in yours."""

    def __init__(self, modules: Any = None) -> None:
        super().__init__()
        if modules is not None:
            self.extend(modules)

    def _list(self) -> list[Module]:
        return [self.__dict__[name] for name in self._registries()[1]]

    def _reset(self, modules: list[Module]) -> None:
        for name in list(self._registries()[1]):
            delattr(self, name)
        for i, module in enumerate(modules):
            setattr(self, str(i), _check_module(module, "ModuleList", i))

    def append(self, module: Module) -> ModuleList:
        setattr(self, str(len(self)), _check_module(module, "ModuleList", len(self)))
        return self

    def extend(self, modules: Any) -> ModuleList:
        if isinstance(modules, Module) or not hasattr(modules, "__iter__"):
            raise TypeError(
                f"ModuleList.extend: expected an iterable of Modules, got {type(modules).__name__}"
            )
        for module in modules:
            self.append(module)
        return self

    def insert(self, index: int, module: Module) -> None:
        modules = self._list()
        modules.insert(index, _check_module(module, "ModuleList", index))
        self._reset(modules)

    def _index(self, index: Any) -> int:
        n = len(self)
        if not isinstance(index, (int, np.integer)) or isinstance(index, bool):
            raise TypeError(f"ModuleList: indices must be integers or slices, got {index!r}")
        if not -n <= index < n:
            raise IndexError(f"ModuleList: index {index} is out of range for {n} modules")
        return int(index) % n

    def __getitem__(self, index: int | slice) -> Any:
        if isinstance(index, slice):
            return ModuleList(self._list()[index])
        return self._list()[self._index(index)]

    def __setitem__(self, index: int, module: Module) -> None:
        i = self._index(index)
        modules = self._list()
        modules[i] = _check_module(module, "ModuleList", i)
        self._reset(modules)  # re-registered in order (a reassigned name would move last)

    def __delitem__(self, index: int | slice) -> None:
        modules = self._list()
        if isinstance(index, slice):
            del modules[index]
        else:
            del modules[self._index(index)]
        self._reset(modules)

    def __len__(self) -> int:
        return len(self._registries()[1])

    def __iter__(self) -> Iterator[Module]:
        return iter(self._list())

    def __iadd__(self, modules: Any) -> ModuleList:
        return self.extend(modules)


class ModuleDict(Module):
    """A dict of Modules whose parameters the owner registers; keys are the children's names
    (parameters "heads.cls.weight", ...), kept in insertion order."""

    def __init__(self, modules: Any = None) -> None:
        super().__init__()
        if modules is not None:
            self.update(modules)

    def _check_key(self, key: Any) -> str:
        if not isinstance(key, str):
            raise TypeError(f"ModuleDict: keys must be strings, got {key!r}")
        if not key or "." in key or key in dir(ModuleDict):
            raise KeyError(f"ModuleDict: {key!r} cannot name a module (empty, dotted or reserved)")
        return key

    def __setitem__(self, key: str, module: Module) -> None:
        setattr(self, self._check_key(key), _check_module(module, "ModuleDict", key))

    def __getitem__(self, key: str) -> Module:
        if key not in self._registries()[1]:
            raise KeyError(key)
        return self.__dict__[key]

    def __delitem__(self, key: str) -> None:
        if key not in self._registries()[1]:
            raise KeyError(key)
        delattr(self, key)

    def __contains__(self, key: Any) -> bool:
        return key in self._registries()[1]

    def __len__(self) -> int:
        return len(self._registries()[1])

    def __iter__(self) -> Iterator[str]:
        return iter(list(self._registries()[1]))

    def keys(self) -> list[str]:
        return list(self._registries()[1])

    def values(self) -> list[Module]:
        return [self.__dict__[k] for k in self.keys()]

    def items(self) -> list[tuple[str, Module]]:
        return [(k, self.__dict__[k]) for k in self.keys()]

    def pop(self, key: str) -> Module:
        module = self[key]
        del self[key]
        return module

    def clear(self) -> None:
        for key in self.keys():
            del self[key]

    def update(self, modules: Any) -> None:
        pairs = modules.items() if isinstance(modules, Mapping) else modules
        for pair in pairs:
            key, module = pair
            self[key] = module


def _check_module(module: Any, where: str, key: Any) -> Module:
    if not isinstance(module, Module):
        raise TypeError(
            f"{where}: entry {key!r} is a {type(module).__name__}, not a Module "
            "(write nn.ReLU(), not nn.ReLU or F.relu)"
        )
    return module


# ----- activations: no parameters, one op each -----


class ReLU(Module):
    """max(x, 0)"""

    def forward(self, x: Tensor) -> Tensor:
        return x.relu()


class Sigmoid(Module):
    """1 / (1 + e^-x): the chapter's activation, squashing to (0, 1)"""

    def forward(self, x: Tensor) -> Tensor:
        return x.sigmoid()


class Tanh(Module):
    """tanh x, squashing to (-1, 1)"""

    def forward(self, x: Tensor) -> Tensor:
        return x.tanh()


class LeakyReLU(Module):
    """x for x > 0, slope * x otherwise: negative inputs keep a small gradient"""

    def __init__(self, slope: float = 0.01) -> None:
        super().__init__()
        self.slope = float(slope)

    def forward(self, x: Tensor) -> Tensor:
        return x.leaky_relu(self.slope)

    def extra_repr(self) -> str:
        return f"slope={self.slope}"


# Activations that ops.Linear can apply in the same pass (see Sequential.forward).
_FUSABLE = {ReLU: "relu", Sigmoid: "sigmoid", Tanh: "tanh"}


class Flatten(Module):
    """Dims ``start_dim`` .. ``end_dim`` merged into one, as PyTorch's: with the defaults,
    (N, d1, d2, ...) -> (N, d1 * d2 * ...), images to vectors for a Linear layer."""

    def __init__(self, start_dim: int = 1, end_dim: int = -1) -> None:
        super().__init__()
        self.start_dim, self.end_dim = int(start_dim), int(end_dim)

    def forward(self, x: Tensor) -> Tensor:
        ndim = max(x.ndim, 1)  # a 0-d tensor flattens as if 1-D, as PyTorch's
        start, end = self.start_dim, self.end_dim
        for d in (start, end):
            if not -ndim <= d < ndim:
                raise InputError(
                    f"Flatten: dimension {d} is out of range for an input of shape {x.shape} "
                    f"(expected a dim in [{-ndim}, {ndim - 1}])"
                )
        start, end = start % ndim, end % ndim
        if start > end:
            raise InputError(
                f"Flatten: start_dim {self.start_dim} comes after end_dim {self.end_dim} "
                f"for an input of shape {x.shape}"
            )
        shape = x.shape if x.ndim else (1,)
        merged = int(np.prod(shape[start : end + 1]))
        return x.reshape(*shape[:start], merged, *shape[end + 1 :])

    def extra_repr(self) -> str:
        return f"start_dim={self.start_dim}, end_dim={self.end_dim}"


class Identity(Module):
    """Returns its input unchanged (a placeholder, e.g. for a removed layer); any constructor
    arguments are ignored, as PyTorch's."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__()

    def forward(self, x: Any) -> Any:
        return x


# ----- composed activations (nn.functional builds them from existing ops) -----


def _legacy_softmax_dim(ndim: int, name: str) -> int:
    warnings.warn(
        f"{name}: implicit dimension choice is deprecated (as in PyTorch); pass dim=",
        UserWarning,
        stacklevel=3,
    )
    return 0 if ndim in (0, 1, 3) else 1


class Softmax(Module):
    """e^x_i / sum_j e^x_j along ``dim``: each slice becomes a probability distribution."""

    def __init__(self, dim: int | None = None) -> None:
        super().__init__()
        self.dim = dim

    def forward(self, x: Tensor) -> Tensor:
        dim = self.dim if self.dim is not None else _legacy_softmax_dim(x.ndim, "Softmax")
        return x.softmax(dim)

    def extra_repr(self) -> str:
        return f"dim={self.dim}"


class LogSoftmax(Module):
    """log softmax(x) along ``dim``, computed stably (x - max - log sum e^(x - max))."""

    def __init__(self, dim: int | None = None) -> None:
        super().__init__()
        self.dim = dim

    def forward(self, x: Tensor) -> Tensor:
        dim = self.dim if self.dim is not None else _legacy_softmax_dim(x.ndim, "LogSoftmax")
        return x.log_softmax(dim)

    def extra_repr(self) -> str:
        return f"dim={self.dim}"


class GELU(Module):
    """x Phi(x) (``F.gelu``): exact (erf) by default, as PyTorch; ``approximate="tanh"``."""

    def __init__(self, approximate: str = "none") -> None:
        super().__init__()
        if approximate not in ("none", "tanh"):
            raise InputError(f"GELU: approximate must be 'none' or 'tanh', got {approximate!r}")
        self.approximate = approximate

    def forward(self, x: Tensor) -> Tensor:
        return F.gelu(x, approximate=self.approximate)

    def extra_repr(self) -> str:
        return f"approximate={self.approximate!r}"


class ELU(Module):
    """x for x > 0, alpha (e^x - 1) otherwise (``F.elu``)"""

    def __init__(self, alpha: float = 1.0) -> None:
        super().__init__()
        self.alpha = float(alpha)

    def forward(self, x: Tensor) -> Tensor:
        return F.elu(x, self.alpha)

    def extra_repr(self) -> str:
        return f"alpha={self.alpha}"


class Softplus(Module):
    """log(1 + e^(beta x)) / beta, linear above ``threshold`` (``F.softplus``)"""

    def __init__(self, beta: float = 1.0, threshold: float = 20.0) -> None:
        super().__init__()
        self.beta, self.threshold = float(beta), float(threshold)

    def forward(self, x: Tensor) -> Tensor:
        return F.softplus(x, self.beta, self.threshold)

    def extra_repr(self) -> str:
        return f"beta={self.beta}, threshold={self.threshold}"


# ----- the chapter's regularizers: active in training mode only -----


class Dropout(Module):
    """Training: each entry is zeroed with probability p, and the survivors are scaled by 1/(1-p)
    so that the expected value of every entry is unchanged. Evaluation (``model.eval()``): the
    identity, which is why the scaling is done at training time ("inverted dropout").

    Each minibatch gets a new random mask, so the network cannot rely on any one neuron being
    there: that is the regularising effect (Srivastava et al., 2014).
    """

    def __init__(self, p: float = 0.5) -> None:
        super().__init__()
        self.p = _check_probability(p, "Dropout")

    def forward(self, x: Tensor) -> Tensor:
        return F.dropout(x, self.p, self.training)

    def extra_repr(self) -> str:
        return f"p={self.p}"


class GaussianNoise(Module):
    """Training: x + N(0, std^2) noise, fresh for every minibatch; evaluation: the identity.

    Training on noisy copies of the inputs teaches the network that nearby inputs share a label;
    for small noise it works like an L2 penalty (Bishop, 1995, "Training with noise is
    equivalent to Tikhonov regularization").
    """

    def __init__(self, std: float) -> None:
        super().__init__()
        self.std = _check_std(std, "GaussianNoise")

    def forward(self, x: Tensor) -> Tensor:
        return F.gaussian_noise(x, self.std, self.training)

    def extra_repr(self) -> str:
        return f"std={self.std}"
