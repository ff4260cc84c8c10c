"""Weight initialisation, PyTorch's ``torch.nn.init``: each function fills a tensor in place
(outside the graph, as under ``no_grad``) with numbers drawn from the library's generator
(``tg.manual_seed`` makes them repeatable), and returns the same tensor.

Why the scale matters: a neuron's weighted sum of ``fan_in`` inputs has variance
``fan_in * Var(w) * Var(x)``. Xavier/Glorot (2010) picks ``Var(w) = 2 / (fan_in + fan_out)``
to keep the variance of activations and of gradients about the same from layer to layer;
Kaiming/He (2015) picks ``Var(w) = gain^2 / fan`` with the ReLU's ``gain = sqrt(2)``, because
a ReLU zeroes half its inputs.

    model.apply(lambda m: nn.init.kaiming_uniform_(m.weight, nonlinearity="relu")
                if isinstance(m, nn.Linear) else None)
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from tinygrad_edu.autograd import no_grad
from tinygrad_edu.errors import InputError
from tinygrad_edu.random import get_rng
from tinygrad_edu.tensor import Tensor

__all__ = [
    "calculate_gain",
    "constant_",
    "kaiming_normal_",
    "kaiming_uniform_",
    "normal_",
    "ones_",
    "uniform_",
    "xavier_normal_",
    "xavier_uniform_",
    "zeros_",
]


def _check_tensor(tensor: Any, name: str) -> Tensor:
    if not isinstance(tensor, Tensor):
        raise TypeError(f"{name}: expected a Tensor, got {type(tensor).__name__}")
    return tensor


def _fill(tensor: Tensor, values: np.ndarray) -> Tensor:
    """Write ``values`` into ``tensor``'s storage, outside the graph; returns the tensor."""
    with no_grad():
        tensor.copy_(Tensor(values, dtype=tensor.dtype, device=tensor.device))
    return tensor


def calculate_gain(nonlinearity: str, param: float | None = None) -> float:
    """The factor by which to scale the weights' standard deviation for this nonlinearity
    (PyTorch's table): 1 for linear/conv/sigmoid, 5/3 for tanh, sqrt(2) for relu,
    sqrt(2 / (1 + slope^2)) for leaky_relu (slope ``param``, default 0.01), 3/4 for selu."""
    linear = ("linear", "conv1d", "conv2d", "conv3d", "conv_transpose1d", "conv_transpose2d")
    if nonlinearity in linear + ("conv_transpose3d", "sigmoid"):
        return 1.0
    if nonlinearity == "tanh":
        return 5.0 / 3.0
    if nonlinearity == "relu":
        return math.sqrt(2.0)
    if nonlinearity == "leaky_relu":
        if param is None:
            slope = 0.01
        elif isinstance(param, bool) or not isinstance(param, (int, float)):
            raise InputError(f"calculate_gain: negative_slope {param!r} is not a valid number")
        else:
            slope = float(param)
        return math.sqrt(2.0 / (1.0 + slope**2))
    if nonlinearity == "selu":
        return 3.0 / 4.0
    raise InputError(f"calculate_gain: unsupported nonlinearity {nonlinearity!r}")


def _calculate_fan_in_and_fan_out(tensor: Tensor, name: str) -> tuple[int, int]:
    """PyTorch's fans: a Linear weight (out, in) has fan_in = in, fan_out = out; a conv weight
    (out, in, k1, k2, ...) multiplies both by the receptive field k1 * k2 * ..."""
    if tensor.ndim < 2:
        raise InputError(
            f"{name}: fan in and fan out can not be computed for a tensor with fewer than 2 "
            f"dimensions (got shape {tensor.shape})"
        )
    receptive = int(np.prod(tensor.shape[2:])) if tensor.ndim > 2 else 1
    return tensor.shape[1] * receptive, tensor.shape[0] * receptive


def _fan(tensor: Tensor, mode: str, name: str) -> int:
    if mode not in ("fan_in", "fan_out"):
        raise InputError(f"{name}: mode must be 'fan_in' or 'fan_out', got {mode!r}")
    fan_in, fan_out = _calculate_fan_in_and_fan_out(tensor, name)
    return fan_in if mode == "fan_in" else fan_out


# ----- plain distributions and constants -----


def uniform_(tensor: Tensor, a: float = 0.0, b: float = 1.0) -> Tensor:
    """Fill with U(a, b)."""
    tensor = _check_tensor(tensor, "uniform_")
    if not float(a) <= float(b):
        raise InputError(f"uniform_: expected a <= b, got a={a}, b={b}")
    return _fill(tensor, get_rng().uniform(float(a), float(b), tensor.shape))


def normal_(tensor: Tensor, mean: float = 0.0, std: float = 1.0) -> Tensor:
    """Fill with N(mean, std^2)."""
    tensor = _check_tensor(tensor, "normal_")
    if not float(std) >= 0:
        raise InputError(f"normal_: std must be >= 0, got {std}")
    return _fill(tensor, get_rng().normal(float(mean), float(std), tensor.shape))


def constant_(tensor: Tensor, val: float) -> Tensor:
    """Fill with ``val``."""
    tensor = _check_tensor(tensor, "constant_")
    with no_grad():
        tensor.fill_(val)
    return tensor


def zeros_(tensor: Tensor) -> Tensor:
    """Fill with 0 (the usual start for biases)."""
    tensor = _check_tensor(tensor, "zeros_")
    with no_grad():
        tensor.zero_()
    return tensor


def ones_(tensor: Tensor) -> Tensor:
    """Fill with 1."""
    return constant_(_check_tensor(tensor, "ones_"), 1.0)


# ----- scaled for the layer's fans -----


def xavier_uniform_(tensor: Tensor, gain: float = 1.0) -> Tensor:
    """U(-a, a) with a = gain sqrt(6 / (fan_in + fan_out)) (Glorot & Bengio, 2010)."""
    tensor = _check_tensor(tensor, "xavier_uniform_")
    fan_in, fan_out = _calculate_fan_in_and_fan_out(tensor, "xavier_uniform_")
    std = gain * math.sqrt(2.0 / float(fan_in + fan_out))
    bound = math.sqrt(3.0) * std  # U(-a, a) has standard deviation a / sqrt(3)
    return _fill(tensor, get_rng().uniform(-bound, bound, tensor.shape))


def xavier_normal_(tensor: Tensor, gain: float = 1.0) -> Tensor:
    """N(0, std^2) with std = gain sqrt(2 / (fan_in + fan_out))."""
    tensor = _check_tensor(tensor, "xavier_normal_")
    fan_in, fan_out = _calculate_fan_in_and_fan_out(tensor, "xavier_normal_")
    std = gain * math.sqrt(2.0 / float(fan_in + fan_out))
    return _fill(tensor, get_rng().normal(0.0, std, tensor.shape))


def kaiming_uniform_(
    tensor: Tensor, a: float = 0.0, mode: str = "fan_in", nonlinearity: str = "leaky_relu"
) -> Tensor:
    """U(-bound, bound) with bound = gain sqrt(3 / fan) (He et al., 2015); ``a`` is the
    leaky_relu's negative slope, ``mode`` chooses fan_in (keeps the forward pass's variance)
    or fan_out (the backward pass's)."""
    tensor = _check_tensor(tensor, "kaiming_uniform_")
    fan = _fan(tensor, mode, "kaiming_uniform_")
    std = calculate_gain(nonlinearity, a) / math.sqrt(fan)
    bound = math.sqrt(3.0) * std
    return _fill(tensor, get_rng().uniform(-bound, bound, tensor.shape))


def kaiming_normal_(
    tensor: Tensor, a: float = 0.0, mode: str = "fan_in", nonlinearity: str = "leaky_relu"
) -> Tensor:
    """N(0, std^2) with std = gain / sqrt(fan)."""
    tensor = _check_tensor(tensor, "kaiming_normal_")
    fan = _fan(tensor, mode, "kaiming_normal_")
    std = calculate_gain(nonlinearity, a) / math.sqrt(fan)
    return _fill(tensor, get_rng().normal(0.0, std, tensor.shape))
