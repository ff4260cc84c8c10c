"""``tg.cuda``: is a GPU there, how many, wait for it.

    >>> import tinygrad_edu as tg
    >>> device = "cuda" if tg.cuda.is_available() else "cpu"

Importing this module imports nothing from numba.cuda; each function does, when called.
Kernels are launched asynchronously: ``synchronize()`` waits until the GPU has finished them
(``.numpy()`` and ``.item()`` wait by themselves). Only GPU 0 is used.
"""

from __future__ import annotations

from tinygrad_edu.backend import cuda_support

__all__ = ["device_count", "is_available", "synchronize"]


def is_available() -> bool:
    """True when tensors can be put on ``device="cuda"``: numba-cuda is installed and a GPU (or
    numba's simulator, ``NUMBA_ENABLE_CUDASIM=1``) is usable."""
    return cuda_support.is_available()


def device_count() -> int:
    """The number of visible GPUs (0 when CUDA is not available; 1 in the simulator)."""
    if not is_available():
        return 0
    from numba import cuda

    return len(cuda.gpus)


def synchronize() -> None:
    """Wait until every kernel launched so far has finished."""
    cuda_support.require_cuda()
    from numba import cuda

    cuda.synchronize()
