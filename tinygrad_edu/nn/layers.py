"""Layers: Linear, the activations, Sequential, and the chapter's regularizers (Dropout,
GaussianNoise).

Every layer is a Module whose ``forward`` is a few Tensor operations; the gradients come from the
ops' backward rules, so no layer here writes a derivative.
"""

from __future__ import annotations

import math
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
    """(N, d1, d2, ...) -> (N, d1 * d2 * ...): images to vectors for a Linear layer"""

    def forward(self, x: Tensor) -> Tensor:
        if x.ndim < 2:
            raise InputError(f"Flatten: expected a batch of shape (N, ...), got shape {x.shape}")
        return x.reshape(x.shape[0], -1)


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
