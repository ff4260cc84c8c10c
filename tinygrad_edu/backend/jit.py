"""How every CPU kernel is compiled: one decorator, and a kernel in a serial and a parallel build.

Size-based dispatch lives here too (``Kernel.__call__``): a kernel over ``n`` elements runs its
parallel build from ``config.PARALLEL_MIN`` elements, its serial build below.
"""

from __future__ import annotations

import types

from numba import njit

from tinygrad_edu import config


def jit(parallel: bool = False, fastmath: bool | set[str] = False, inline: str = "never"):
    """The one Numba decorator of the CPU kernels, its flags from ``config`` (``fastmath`` lets a
    kernel ask for some of LLVM's fast-math flags even when ``config.FASTMATH`` is off;
    ``inline="always"`` inlines a small rule into its callers at Numba's IR level)."""
    return njit(
        parallel=parallel,
        fastmath=config.FASTMATH or fastmath,
        cache=config.CACHE,
        error_model=config.ERROR_MODEL,
        inline=inline,
    )


class Kernel:
    """A loop in two builds: ``serial`` (one thread) and ``parallel`` (``prange`` split across
    threads). ``kernel(n)`` picks the build for a problem of ``n`` elements.

    NOTE: the serial build is compiled from a renamed copy of the function. Numba's disk cache
    keys compiled code by the function's name and argument types, not by its ``parallel`` flag;
    one function compiled both ways would overwrite its own cache entry.
    """

    def __init__(self, fn: types.FunctionType) -> None:
        twin = types.FunctionType(fn.__code__, fn.__globals__, fn.__name__ + "_serial")
        twin.__qualname__ = fn.__qualname__ + "_serial"
        twin.__doc__ = fn.__doc__
        self.py_func = fn
        self.serial = jit(False)(twin)
        self.parallel = jit(True)(fn)
        self.__doc__ = fn.__doc__

    def __call__(self, n: int):
        return self.parallel if config.parallel(n) else self.serial
