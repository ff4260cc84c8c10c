"""Is a usable GPU there?  Answered without importing numba.cuda until someone asks."""

from __future__ import annotations

import os


def cuda_unavailable_reason() -> str | None:
    """None when CUDA kernels can run (a GPU or the simulator), else why not."""
    try:
        from numba import cuda
    except ImportError:
        return "numba.cuda cannot be imported; install the extra: pip install 'tinygrad-edu[cuda]'"
    if os.environ.get("NUMBA_ENABLE_CUDASIM") == "1":
        return None
    try:
        if not cuda.is_available():
            return "no CUDA driver or no NVIDIA GPU was found (numba.cuda.is_available() is False)"
        if len(cuda.gpus) == 0:
            return "no CUDA device is visible"
    except Exception as exc:  # the driver can fail in many ways; report its words
        return f"the CUDA driver failed: {exc}"
    return None


def is_available() -> bool:
    """True when tensors can be put on ``device="cuda"``."""
    return cuda_unavailable_reason() is None


def require_cuda() -> None:
    reason = cuda_unavailable_reason()
    if reason is not None:
        raise RuntimeError(f"device 'cuda' is not available: {reason}")
