"""Shared pieces of the asv suite and of ``python -m benchmarks.compare``.

- the sizes every benchmark uses, full by default and tiny when ``TINYGRAD_EDU_BENCH_TINY=1``
  (``tests/test_benchmarks.py`` runs every benchmark once that way, so none can rot);
- one multilayer perceptron built three ways from the same weights: in tinygrad_edu, in PyTorch,
  and by hand in numpy (forward pass, hand-written backward pass, SGD and Adam updates, no
  autograd). The numpy version is the floor: what a careful person writes by hand in numpy;
- the chain of small elementwise ops that measures per-op overhead;
- finite differences over a fixed sample of weights;
- the start-up probe that a fresh Python process runs (import, build, first training step).

This module imports only the standard library and numpy at the top, so the start-up probe
measures tinygrad_edu's own import and not this file's.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

# ----- sizes -----

TINY: bool = os.environ.get("TINYGRAD_EDU_BENCH_TINY", "0") == "1"

# The chapter's network (784-15-10, sigmoid, 11,935 parameters) and a wide ReLU network.
SMALL = "784-15-10"
SMALL_BATCH = 32
WIDE = "784-256-256-10"
WIDE_BATCH = 128
# Backprop vs finite differences: about 100 to about 100,000 parameters.
GROWTH = ("8-8-4", "64-16-10", "784-15-10", "784-64-10", "784-128-10")
GROWTH_BATCH = 32
FD_SAMPLE = 64  # weights whose central difference is timed, then scaled to all of them
FD_FULL_MAX_PARAMS = 12_000  # networks up to this size also get a full, unscaled FD timing
CHAIN_LEN = 100
CHAIN_SIZE = 16
MATMUL_SIZES = (128, 512, 1024)
BLOCKED_SIZES = (128, 512)
OPTIM_PARAMS = 1_000_000

if TINY:
    SMALL, SMALL_BATCH = "12-5-4", 4
    WIDE, WIDE_BATCH = "12-8-8-4", 8
    GROWTH = ("3-2-2", "12-5-4")
    GROWTH_BATCH = 4
    FD_SAMPLE = 4
    FD_FULL_MAX_PARAMS = 100
    CHAIN_LEN = 20
    CHAIN_SIZE = 4
    MATMUL_SIZES = (8, 16)
    BLOCKED_SIZES = (8,)
    OPTIM_PARAMS = 1_000

# ----- network specs, weights, data -----


def layer_sizes(name: str) -> tuple[int, ...]:
    """'784-15-10' -> (784, 15, 10)."""
    return tuple(int(n) for n in name.split("-"))


def n_params(name: str) -> int:
    """Weights plus biases of the fully connected network ``name``."""
    sizes = layer_sizes(name)
    return sum(i * o + o for i, o in zip(sizes[:-1], sizes[1:]))


def activation_of(name: str) -> str:
    """The chapter's networks (one hidden layer) use sigmoid; deeper ones use ReLU."""
    return "sigmoid" if len(layer_sizes(name)) <= 3 else "relu"


def init_weights(name: str, dtype: Any = np.float32, seed: int = 0) -> list[tuple[Any, Any]]:
    """[(W, b)] per layer, W of shape (out, in), drawn U(-1/sqrt(in), 1/sqrt(in)) as PyTorch's
    nn.Linear does; every contender starts from these same arrays."""
    rng = np.random.default_rng(seed)
    sizes = layer_sizes(name)
    weights = []
    for fan_in, fan_out in zip(sizes[:-1], sizes[1:]):
        bound = 1.0 / np.sqrt(fan_in)
        w = rng.uniform(-bound, bound, (fan_out, fan_in)).astype(dtype)
        b = rng.uniform(-bound, bound, fan_out).astype(dtype)
        weights.append((w, b))
    return weights


def make_batch(name: str, batch: int, dtype: Any = np.float32, seed: int = 1):
    """Inputs in [0, 1) (like pixel intensities) and integer class labels."""
    rng = np.random.default_rng(seed)
    sizes = layer_sizes(name)
    x = rng.random((batch, sizes[0])).astype(dtype)
    y = rng.integers(0, sizes[-1], batch).astype(np.int64)
    return x, y


# ----- tinygrad_edu -----


def have_nn() -> bool:
    try:
        from tinygrad_edu import nn
    except ImportError:
        return False
    return hasattr(nn, "Sequential") and hasattr(nn, "functional")


class _CoreMLP:
    """The MLP written with the core alone (``ops.Linear``): used when ``tinygrad_edu.nn`` is
    missing, e.g. when asv benchmarks an older commit."""

    def __init__(self, weights, activation: str) -> None:
        from tinygrad_edu import Tensor

        self.params = [Tensor(a, requires_grad=True) for pair in weights for a in pair]
        self.activation = activation

    def __call__(self, x):
        from tinygrad_edu import ops

        layers = len(self.params) // 2
        for i in range(layers):
            x = ops.Linear.apply(x, self.params[2 * i], self.params[2 * i + 1])
            if i < layers - 1:
                x = x.sigmoid() if self.activation == "sigmoid" else x.relu()
        return x

    def parameters(self):
        return list(self.params)


def tg_mlp(name: str, dtype: Any = np.float32, seed: int = 0):
    """(model, parameters): ``nn.Sequential`` of ``nn.Linear`` and activations when ``nn``
    exists, the core-only ``_CoreMLP`` otherwise; weights from ``init_weights``."""
    weights = init_weights(name, dtype, seed)
    activation = activation_of(name)
    if not have_nn():
        model = _CoreMLP(weights, activation)
        return model, model.parameters()
    from tinygrad_edu import nn

    layers: list[Any] = []
    for i, (w, b) in enumerate(weights):
        linear = nn.Linear(w.shape[1], w.shape[0], dtype=np.dtype(dtype).name)
        linear.weight.data = w
        linear.bias.data = b
        layers.append(linear)
        if i < len(weights) - 1:
            layers.append(nn.Sigmoid() if activation == "sigmoid" else nn.ReLU())
    model = nn.Sequential(*layers)
    return model, list(model.parameters())


def tg_labels(y: np.ndarray):
    """Labels in the form the loss takes: an int64 Tensor (nn) or the int64 array (core op)."""
    if not have_nn():
        return y
    from tinygrad_edu import Tensor

    return Tensor(y, dtype="int64")


def tg_loss_fn() -> Callable[[Any, Any], Any]:
    """Mean cross-entropy of logits and labels: ``nn.functional.cross_entropy`` or the fused op."""
    if have_nn():
        from tinygrad_edu.nn import functional

        return functional.cross_entropy
    from tinygrad_edu import ops

    return lambda logits, labels: ops.CrossEntropy.apply(logits, labels, "mean")


OPTIMIZERS: dict[str, tuple[str, dict[str, Any]]] = {
    # label: (tinygrad_edu.optim / torch.optim class name, options)
    "SGD": ("SGD", {"lr": 0.01}),
    "SGD(momentum)": ("SGD", {"lr": 0.01, "momentum": 0.9}),
    "Adagrad": ("Adagrad", {"lr": 0.01}),
    "Adadelta": ("Adadelta", {"lr": 1.0}),
    "RMSprop": ("RMSprop", {"lr": 0.001}),
    "Adam": ("Adam", {"lr": 0.001}),
    "AdamW": ("AdamW", {"lr": 0.001}),
}


def tg_optimizer(label: str, params):
    """The optimizer ``label`` of ``OPTIMIZERS``; NotImplementedError when it does not exist (asv
    then marks the benchmark as skipped, e.g. on a commit that predates ``tinygrad_edu.optim``)."""
    class_name, options = OPTIMIZERS[label]
    try:
        from tinygrad_edu import optim
    except ImportError:
        raise NotImplementedError("tinygrad_edu.optim is not available") from None
    cls = getattr(optim, class_name, None)
    if cls is None:
        raise NotImplementedError(f"tinygrad_edu.optim.{class_name} is not available")
    return cls(params, **options)


class TgNetwork:
    """One tinygrad_edu network with its batch: forward, backward and training step closures."""

    def __init__(
        self, name: str, batch: int, optimizer: str | None = None, dtype: Any = np.float32
    ) -> None:
        from tinygrad_edu import Tensor

        self.name = name
        self.model, self.params = tg_mlp(name, dtype)
        x, y = make_batch(name, batch, dtype)
        self.x = Tensor(x)
        self.y = tg_labels(y)
        self.loss_fn = tg_loss_fn()
        self.optimizer = None if optimizer is None else tg_optimizer(optimizer, self.params)
        self.graph = None  # a loss whose graph is kept for timing backward alone

    def forward(self):
        """The loss, recording the graph (as in training)."""
        return self.loss_fn(self.model(self.x), self.y)

    def zero_grad(self) -> None:
        for p in self.params:
            p.grad = None

    def forward_backward(self) -> None:
        self.zero_grad()
        self.forward().backward()

    def keep_graph(self) -> None:
        self.graph = self.forward()

    def backward_again(self) -> None:
        """Backward through the kept graph (``retain_graph=True`` so it can be repeated); the
        gradients are cleared first so nothing is accumulated."""
        self.zero_grad()
        self.graph.backward(retain_graph=True)

    def step(self) -> None:
        """One training step: clear the gradients, forward, backward, optimizer update."""
        self.optimizer.zero_grad()
        self.loss_fn(self.model(self.x), self.y).backward()
        self.optimizer.step()

    def loss_value(self) -> float:
        import tinygrad_edu as tg

        with tg.no_grad():
            return float(self.forward().item())


# ----- the floor: the same network by hand in numpy -----


class NumpyMLP:
    """The MLP in plain numpy: forward pass, hand-written backward pass, no autograd.

    It does what a careful person writes by hand: BLAS for the products, activations computed in
    place, no gradient for the input. ``params`` is ``[W0, b0, W1, b1, ...]``.
    """

    def __init__(self, name: str, dtype: Any = np.float32, seed: int = 0) -> None:
        self.params = [a.copy() for pair in init_weights(name, dtype, seed) for a in pair]
        self.sigmoid = activation_of(name) == "sigmoid"
        self.layers = len(self.params) // 2

    def loss(self, x: np.ndarray, y: np.ndarray) -> float:
        """Mean cross-entropy; keeps what ``backward`` needs."""
        self.inputs, a = [], x
        for i in range(self.layers):
            w, b = self.params[2 * i], self.params[2 * i + 1]
            self.inputs.append(a)
            z = a @ w.T
            z += b
            if i < self.layers - 1:
                if self.sigmoid:  # sigmoid(z) = 0.5 tanh(z / 2) + 0.5, in place
                    z *= 0.5
                    np.tanh(z, out=z)
                    z *= 0.5
                    z += 0.5
                else:
                    np.maximum(z, 0, out=z)
            a = z
        shifted = a - a.max(axis=1, keepdims=True)
        e = np.exp(shifted)
        s = e.sum(axis=1, keepdims=True)
        e /= s
        self.probs, self.y = e, y
        rows = np.arange(len(y))
        return float(np.mean(np.log(s[:, 0]) - shifted[rows, y]))

    def backward(self) -> list[np.ndarray]:
        """Gradients of the last ``loss`` for every parameter, in ``params`` order."""
        n = len(self.y)
        g = self.probs.copy()  # dL/dz = (softmax - onehot) / n
        g[np.arange(n), self.y] -= 1
        g /= n
        grads: list[Any] = [None] * len(self.params)
        for i in range(self.layers - 1, -1, -1):
            a = self.inputs[i]
            grads[2 * i] = g.T @ a
            grads[2 * i + 1] = g.sum(axis=0)
            if i > 0:  # no gradient for the network's input
                da = g @ self.params[2 * i]
                if self.sigmoid:
                    da *= a * (1 - a)
                else:
                    da[a <= 0] = 0
                g = da
        return grads


class NumpySGD:
    """PyTorch's SGD with momentum: buf = mu buf + g (buf = g at the first step); p -= lr buf.
    In place, with one scratch array per parameter, so a step allocates nothing."""

    def __init__(self, params, lr: float, momentum: float = 0.0) -> None:
        self.params, self.lr, self.momentum = params, lr, momentum
        self.buffers: list[Any] = [None] * len(params)
        self.scratch = [np.empty_like(p) for p in params]

    def step(self, grads) -> None:
        for k, (p, g, tmp) in enumerate(zip(self.params, grads, self.scratch)):
            if self.momentum:
                buf = self.buffers[k]
                if buf is None:
                    buf = self.buffers[k] = g.copy()
                else:
                    buf *= self.momentum
                    buf += g
                g = buf
            np.multiply(g, self.lr, out=tmp)
            p -= tmp


class NumpyAdam:
    """PyTorch's Adam: m, v running moments; p -= lr/bc1 * m / (sqrt(v)/sqrt(bc2) + eps).
    In place, with one scratch array per parameter, so a step allocates nothing."""

    def __init__(self, params, lr: float = 1e-3, betas=(0.9, 0.999), eps: float = 1e-8) -> None:
        self.params, self.lr, self.betas, self.eps = params, lr, betas, eps
        self.m = [np.zeros_like(p) for p in params]
        self.v = [np.zeros_like(p) for p in params]
        self.scratch = [np.empty_like(p) for p in params]
        self.t = 0

    def step(self, grads) -> None:
        self.t += 1
        b1, b2 = self.betas
        step_size = self.lr / (1 - b1**self.t)
        bc2_sqrt = (1 - b2**self.t) ** 0.5
        for p, g, m, v, tmp in zip(self.params, grads, self.m, self.v, self.scratch):
            m *= b1  # m = b1 m + (1 - b1) g
            np.multiply(g, 1 - b1, out=tmp)
            m += tmp
            v *= b2  # v = b2 v + (1 - b2) g^2
            np.multiply(g, g, out=tmp)
            tmp *= 1 - b2
            v += tmp
            np.sqrt(v, out=tmp)  # p -= step_size * m / (sqrt(v) / sqrt(bc2) + eps)
            tmp /= bc2_sqrt
            tmp += self.eps
            np.divide(m, tmp, out=tmp)
            tmp *= step_size
            p -= tmp


class LeanNumpyMLP:
    """The numpy floor at its leanest: ``NumpyMLP``'s arithmetic with every array allocated
    once for the batch size. Products write into their outputs (``np.dot(..., out=)``, BLAS
    reading transposes in place), activations, softmax and gradients are computed in place, so
    a training step allocates only a few batch-sized index arrays. ``backward`` returns the
    same gradient arrays every time (overwritten by the next call)."""

    def __init__(self, name: str, batch: int, dtype: Any = np.float32, seed: int = 0) -> None:
        self.params = [a.copy() for pair in init_weights(name, dtype, seed) for a in pair]
        self.sigmoid = activation_of(name) == "sigmoid"
        self.layers = len(self.params) // 2
        widths = layer_sizes(name)[1:]
        self.z = [np.empty((batch, n), dtype) for n in widths]  # each layer's output
        self.dz = [np.empty((batch, n), dtype) for n in widths]  # dL/d(layer output)
        self.scratch = [np.empty((batch, n), dtype) for n in widths]
        self.probs = np.empty((batch, widths[-1]), dtype)
        self.row_max = np.empty((batch, 1), dtype)
        self.row_sum = np.empty((batch, 1), dtype)
        self.grads = [np.empty_like(p) for p in self.params]
        self.rows = np.arange(batch)

    def loss(self, x: np.ndarray, y: np.ndarray) -> float:
        """Mean cross-entropy; keeps what ``backward`` needs."""
        self.x, self.y, a = x, y, x
        for i in range(self.layers):
            w, b, z = self.params[2 * i], self.params[2 * i + 1], self.z[i]
            np.dot(a, w.T, out=z)
            z += b
            if i < self.layers - 1:
                if self.sigmoid:  # sigmoid(z) = 0.5 tanh(z / 2) + 0.5, in place
                    z *= 0.5
                    np.tanh(z, out=z)
                    z *= 0.5
                    z += 0.5
                else:
                    np.maximum(z, 0, out=z)
            a = z
        p = self.probs
        np.max(a, axis=1, keepdims=True, out=self.row_max)
        np.subtract(a, self.row_max, out=p)
        picked = p[self.rows, y]  # the shifted logits of the labels (batch entries)
        np.exp(p, out=p)
        np.sum(p, axis=1, keepdims=True, out=self.row_sum)
        p /= self.row_sum
        return float(np.mean(np.log(self.row_sum[:, 0]) - picked))

    def backward(self) -> list[np.ndarray]:
        """Gradients of the last ``loss`` for every parameter, in ``params`` order."""
        n = len(self.y)
        g = self.dz[-1]  # dL/dz = (softmax - onehot) / n
        np.copyto(g, self.probs)
        g[self.rows, self.y] -= 1
        g *= 1.0 / n
        for i in range(self.layers - 1, -1, -1):
            a = self.x if i == 0 else self.z[i - 1]
            np.dot(g.T, a, out=self.grads[2 * i])
            np.sum(g, axis=0, out=self.grads[2 * i + 1])
            if i > 0:  # no gradient for the network's input
                da, tmp = self.dz[i - 1], self.scratch[i - 1]
                np.dot(g, self.params[2 * i], out=da)
                if self.sigmoid:  # da *= a (1 - a)
                    np.subtract(1, a, out=tmp)
                    tmp *= a
                else:  # da *= [a > 0]
                    np.greater(a, 0, out=tmp)
                da *= tmp
                g = da
        return self.grads


class NumpyNetwork:
    """The numpy floor with its batch: the same closures as ``TgNetwork``; ``lean=True`` uses
    ``LeanNumpyMLP`` (preallocated buffers, products written in place)."""

    def __init__(
        self,
        name: str,
        batch: int,
        optimizer: str | None = None,
        dtype: Any = np.float32,
        lean: bool = False,
    ) -> None:
        self.mlp: Any = LeanNumpyMLP(name, batch, dtype) if lean else NumpyMLP(name, dtype)
        self.params = self.mlp.params
        self.x, self.y = make_batch(name, batch, dtype)
        self.optimizer: Any = None
        if optimizer == "SGD(momentum)":
            self.optimizer = NumpySGD(self.params, lr=0.01, momentum=0.9)
        elif optimizer == "Adam":
            self.optimizer = NumpyAdam(self.params, lr=0.001)
        elif optimizer is not None:
            raise ValueError(f"NumpyNetwork: no numpy version of optimizer {optimizer!r}")

    def forward(self) -> float:
        return self.mlp.loss(self.x, self.y)

    def keep_graph(self) -> None:
        self.forward()

    def backward_again(self) -> list[np.ndarray]:
        return self.mlp.backward()

    def step(self) -> None:
        self.mlp.loss(self.x, self.y)
        self.optimizer.step(self.mlp.backward())


# ----- PyTorch, when it is installed -----


def torch_module():
    """torch limited to 2 threads, or None when it is not installed."""
    try:
        import torch
    except ImportError:
        return None
    torch.set_num_threads(2)
    return torch


class TorchNetwork:
    """The same network and batch in PyTorch (``nn.Sequential``, ``F.cross_entropy``)."""

    def __init__(self, name: str, batch: int, optimizer: str | None = None) -> None:
        torch = torch_module()
        layers: list[Any] = []
        weights = init_weights(name)
        sigmoid = activation_of(name) == "sigmoid"
        for i, (w, b) in enumerate(weights):
            linear = torch.nn.Linear(w.shape[1], w.shape[0])
            with torch.no_grad():
                linear.weight.copy_(torch.from_numpy(w))
                linear.bias.copy_(torch.from_numpy(b))
            layers.append(linear)
            if i < len(weights) - 1:
                layers.append(torch.nn.Sigmoid() if sigmoid else torch.nn.ReLU())
        self.torch = torch
        self.model = torch.nn.Sequential(*layers)
        self.params = list(self.model.parameters())
        x, y = make_batch(name, batch)
        self.x, self.y = torch.from_numpy(x), torch.from_numpy(y)
        self.optimizer = None
        if optimizer is not None:
            class_name, options = OPTIMIZERS[optimizer]
            self.optimizer = getattr(torch.optim, class_name)(self.params, **options)
        self.graph = None

    def forward(self):
        return torch_cross_entropy(self.torch, self.model(self.x), self.y)

    def keep_graph(self) -> None:
        self.graph = self.forward()

    def backward_again(self) -> None:
        for p in self.params:
            p.grad = None
        self.graph.backward(retain_graph=True)

    def step(self) -> None:
        self.optimizer.zero_grad(set_to_none=True)
        self.forward().backward()
        self.optimizer.step()


def torch_cross_entropy(torch, logits, y):
    return torch.nn.functional.cross_entropy(logits, y)


# ----- the chain of small elementwise ops -----


def chain(x, length: int = CHAIN_LEN):
    """``length`` small elementwise ops in a row, cycling through scalar multiply, scalar add,
    tanh and a tensor-tensor multiply by the input; works on tinygrad_edu and torch tensors."""
    y = x
    for i in range(length):
        k = i % 4
        if k == 0:
            y = y * 0.999
        elif k == 1:
            y = y + 0.001
        elif k == 2:
            y = y.tanh()
        else:
            y = y * x
    return y


def chain_forward_backward(x, length: int = CHAIN_LEN) -> None:
    """Build the chain from a leaf ``x`` (requires_grad) and backpropagate its sum into x.grad."""
    x.grad = None
    chain(x, length).sum().backward()


def chain_input(size: int = CHAIN_SIZE) -> np.ndarray:
    return np.random.default_rng(2).uniform(0.9, 1.1, size).astype(np.float32)


def numpy_chain_forward_backward(x: np.ndarray, length: int = CHAIN_LEN) -> np.ndarray:
    """The floor for the chain: the same ops in numpy and their derivatives by hand."""
    values = [x]
    y = x
    for i in range(length):
        k = i % 4
        if k == 0:
            y = y * 0.999
        elif k == 1:
            y = y + 0.001
        elif k == 2:
            y = np.tanh(y)
        else:
            y = y * x
        values.append(y)
    g = np.ones_like(y)
    dx = np.zeros_like(x)
    for i in range(length - 1, -1, -1):
        k = i % 4
        if k == 0:
            g = g * 0.999
        elif k == 2:
            out = values[i + 1]
            g = g * (1 - out * out)
        elif k == 3:
            dx += g * values[i]
            g = g * x
    return dx + g


# ----- finite differences over a sample of the weights -----


def fd_sample(params, k: int, seed: int = 0) -> list[tuple[int, int]]:
    """``k`` (tensor index, flat index) pairs drawn uniformly from all the weights."""
    sizes = [int(np.prod(p.shape)) for p in params]
    total = sum(sizes)
    picks = np.random.default_rng(seed).choice(total, size=min(k, total), replace=False)
    starts = np.cumsum([0] + sizes[:-1])
    out = []
    for flat in sorted(int(i) for i in picks):
        t = int(np.searchsorted(starts, flat, side="right") - 1)
        out.append((t, flat - int(starts[t])))
    return out


# ----- timing -----


def median_time(fn: Callable[[], Any], repeat: int = 7, min_time: float = 0.01) -> float:
    """Median seconds per call of ``fn``, each sample running it enough times to last min_time."""
    fn()  # warm-up: compile kernels, fill caches
    number, elapsed = 1, 0.0
    while True:
        start = time.perf_counter()
        for _ in range(number):
            fn()
        elapsed = time.perf_counter() - start
        if elapsed >= min_time or number >= 1_000_000:
            break
        number *= 2 if elapsed == 0 else max(2, int(min_time / elapsed * 1.2))
    samples = [elapsed / number]
    for _ in range(repeat - 1):
        start = time.perf_counter()
        for _ in range(number):
            fn()
        samples.append((time.perf_counter() - start) / number)
    return float(np.median(samples))


# ----- start-up in a fresh process -----

# The probe loads this file by its path, and runs in a scratch directory without the repository on
# sys.path: tinygrad_edu is then imported from wherever it is installed (under asv, the environment
# being benchmarked), never from the checkout next to this file.
_PROBE = (
    "import time; _t0 = time.perf_counter(); "
    "import sys; sys.modules.update(dict.fromkeys({hide!r})); import importlib.util as u; "
    "s = u.spec_from_file_location('tinygrad_edu_bench_common', {path!r}); "
    "m = u.module_from_spec(s); s.loader.exec_module(m); m.startup_probe({contender!r}, _t0)"
)


def startup_probe(contender: str, t0: float) -> None:
    """Run in a fresh process: import ``contender``, build the small network, do its first
    training step (SGD with momentum), print the times as JSON on the last line of stdout."""
    if contender == "tinygrad_edu":
        import tinygrad_edu  # noqa: F401

        try:
            import tinygrad_edu.nn  # noqa: F401
            import tinygrad_edu.optim  # noqa: F401
        except ImportError:
            pass
        imported = time.perf_counter()
        network: Any = TgNetwork(SMALL, SMALL_BATCH, "SGD(momentum)")
    elif contender == "torch":
        torch_module()
        imported = time.perf_counter()
        network = TorchNetwork(SMALL, SMALL_BATCH, "SGD(momentum)")
    elif contender == "numpy":
        imported = time.perf_counter()
        network = NumpyNetwork(SMALL, SMALL_BATCH, "SGD(momentum)")
    else:
        raise ValueError(f"startup_probe: unknown contender {contender!r}")
    built = time.perf_counter()
    network.step()
    done = time.perf_counter()
    report = {"import_s": imported - t0, "build_s": built - imported, "first_step_s": done - built,
              "in_process_s": done - t0, "done_epoch": time.time()}  # fmt: skip
    print(json.dumps(report))


# Numba imports SciPy (when it is installed) the first time it compiles or loads a kernel, to see
# whether its own np.dot can call BLAS: about 0.2 s on the 2-core machine. tinygrad_edu does not
# need SciPy, and a fresh install (numpy and numba) does not have it; ``hide=WITHOUT_SCIPY`` makes
# the probe run as it would there.
WITHOUT_SCIPY = ("scipy",)


def run_startup(
    contender: str, numba_cache_dir: str | os.PathLike, hide: tuple[str, ...] = ()
) -> dict[str, float]:
    """Start a fresh Python process that runs ``startup_probe``; the Numba cache is
    ``numba_cache_dir`` (empty: cold start; filled by an earlier run: warm start). The modules
    named in ``hide`` cannot be imported in that process (as if they were not installed).

    Python's own cache of compiled modules (``.pyc``, in ``__pycache__`` folders next to the
    sources) is used and written as usual, even where the environment sets
    PYTHONDONTWRITEBYTECODE (this project's machines do: every import would compile the
    library's source again, about 30 ms, which no installed package pays: pip writes the
    ``.pyc`` files when it installs).

    Returns the probe's in-process times plus ``ready_s``, from launch to the end of the first
    step (interpreter start-up included: what a user waits for), and ``wall_s``, from launch to
    the process's exit (which adds the interpreter's tear-down)."""
    env = dict(os.environ)
    env["NUMBA_CACHE_DIR"] = os.fspath(numba_cache_dir)
    env.pop("PYTHONDONTWRITEBYTECODE", None)
    code = _PROBE.format(path=str(Path(__file__).resolve()), contender=contender, hide=hide)
    start, launched = time.perf_counter(), time.time()
    proc = subprocess.run(
        [sys.executable, "-c", code], env=env, cwd=numba_cache_dir, capture_output=True, text=True
    )
    wall = time.perf_counter() - start
    if proc.returncode != 0:
        raise RuntimeError(
            f"run_startup: the {contender} start-up probe failed (exit {proc.returncode}):\n"
            f"{proc.stderr[-3000:]}"
        )
    report = json.loads(proc.stdout.strip().splitlines()[-1])
    report["ready_s"] = report.pop("done_epoch") - launched
    report["wall_s"] = wall
    return report
