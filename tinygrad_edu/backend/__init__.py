"""Kernel backends.

The ops in ``tinygrad_edu/ops.py`` never compute anything themselves: they call named kernels on
the backend of their inputs' device (``backend.binary("mul", x, y)``, ``backend.matmul(a, b)``...).
Each backend is a module that implements the same set of functions:

- ``reference``: plain numpy, the executable specification every other backend is tested against;
- ``cpu``: Numba loops in a serial and a parallel build, numpy where one numpy call does the job;
- ``cuda``: numba.cuda kernels, imported only when a tensor is put on a GPU.

The per-element and per-row maths of the Numba and CUDA kernels is written once, in ``rules.py``
(see its docstring, and docs/architecture.md).

The list of kernel names every backend provides is ``KERNELS`` below.
"""

from __future__ import annotations

import importlib
from types import ModuleType

from tinygrad_edu.errors import InputError

# The interface: every backend module defines these names (tests check it).
KERNELS: tuple[str, ...] = (
    # storage
    "asarray",
    "to_numpy",
    "zeros",
    "full",
    "zeros_like",
    "copy",
    "copy_into",
    "astype",
    "is_view",
    # elementwise
    "unary",
    "binary",
    "compare",
    "activation_backward",
    "where",
    # reductions
    "sum",
    "max",
    "min",
    "sum_to",
    "broadcast_to",
    "argmax",
    "max_backward",
    # movement
    "reshape",
    "transpose",
    "getitem",
    "getitem_backward",
    "concatenate",
    # linear algebra and fused network ops
    "matmul",
    "linear_forward",
    "linear_backward",
    "softmax",
    "softmax_backward",
    "cross_entropy_forward",
    "cross_entropy_backward",
    # random numbers, drawn where the tensor lives
    "bernoulli_mask",
    "normal",
    # optimizer steps (one pass over a parameter and its state)
    "sgd_step",
    "adagrad_step",
    "adadelta_step",
    "rmsprop_step",
    "adam_step",
)

_BACKENDS: dict[str, ModuleType] = {}


def parse_device(device: object) -> str:
    """Normalise a device name: ``"cpu"``, ``"cuda"`` or ``"cuda:0"`` (only GPU 0 is supported)."""
    if isinstance(device, str):
        name = device.strip().lower()
        if name == "cpu":
            return "cpu"
        if name in ("cuda", "cuda:0", "gpu"):
            return "cuda"
    raise InputError(f"device: unknown device {device!r}; expected 'cpu', 'cuda' or 'cuda:0'")


def get_backend(device: str) -> ModuleType:
    """The kernel module for a (normalised) device name; the CUDA one is imported on first use."""
    backend = _BACKENDS.get(device)
    if backend is None:
        if device == "cpu":
            backend = importlib.import_module("tinygrad_edu.backend.cpu")
        elif device == "cuda":
            from tinygrad_edu.backend import cuda_support

            cuda_support.require_cuda()  # raises a RuntimeError that says why
            backend = importlib.import_module("tinygrad_edu.backend.cuda")
        elif device == "reference":
            backend = importlib.import_module("tinygrad_edu.backend.reference")
        else:
            raise InputError(f"get_backend: unknown device {device!r}")
        _BACKENDS[device] = backend
    return backend
