"""The CUDA tests: they run where numba.cuda can run kernels, and are skipped everywhere else.

Two ways in:
- on a machine with an NVIDIA GPU, ``pytest tests/cuda`` runs them on the GPU (and so does the
  main ``pytest`` run; ``benchmarks/gpu_check.py`` runs them too);
- anywhere, ``NUMBA_ENABLE_CUDASIM=1 pytest tests/cuda`` runs them in numba's simulator, which
  executes the same kernels thread by thread on the CPU. ``tests/test_cuda_sim.py`` does exactly
  that in a subprocess, so the main ``pytest`` covers the kernels in CI. The variable must be set
  before numba is first imported, which is why the simulator never runs in the main process: it
  would turn every later numba.cuda import in that process into the simulator too.

The simulator is slow (each GPU thread is a Python thread): keep every shape here tiny.
"""

from __future__ import annotations

import os

import numpy as np
import pytest

from tinygrad_edu.backend import cuda_support

SIMULATOR = os.environ.get("NUMBA_ENABLE_CUDASIM") == "1"
REASON = cuda_support.cuda_unavailable_reason()

if REASON is not None:
    collect_ignore_glob = ["test_*.py"]  # the modules import the CUDA backend: do not collect


def pytest_report_header(config):
    where = "the numba.cuda simulator" if SIMULATOR else "the GPU"
    return f"cuda tests: {'skipped, ' + REASON if REASON else 'running on ' + where}"


def pytest_configure(config):
    # numba's xoroshiro128+ wraps uint64 arithmetic on purpose; in the simulator numpy warns.
    config.addinivalue_line("filterwarnings", "ignore:overflow encountered:RuntimeWarning")
    # ... and numba.cuda.random, run as Python by the simulator, passes a deprecated option.
    config.addinivalue_line("filterwarnings", "ignore:The keyword argument 'nopython=False'")


@pytest.fixture(scope="session")
def C():
    """The CUDA backend module."""
    from tinygrad_edu.backend import get_backend

    return get_backend("cuda")


@pytest.fixture
def dev(C):
    """Host array -> device array."""
    return lambda x: C.asarray(np.asarray(x))


@pytest.fixture
def host(C):
    """Device array (or None) -> host array."""
    return lambda x: None if x is None else C.to_numpy(x)


# "Matches the reference to 1e-6 in float64" (and float32 to its own rounding).
TOL = {
    np.dtype(np.float64): {"rtol": 1e-6, "atol": 1e-6},
    np.dtype(np.float32): {"rtol": 1e-5, "atol": 1e-5},
}


@pytest.fixture
def check(C):
    """check(actual, expected): same shape and dtype, values equal to the dtype's tolerance
    (exactly for integers); ``actual`` may be a device array."""

    def check(actual, expected):
        actual = actual if isinstance(actual, np.ndarray) else C.to_numpy(actual)
        expected = np.asarray(expected)
        assert actual.shape == expected.shape, (actual.shape, expected.shape)
        assert actual.dtype == expected.dtype, (actual.dtype, expected.dtype)
        if expected.dtype in TOL:
            np.testing.assert_allclose(actual, expected, **TOL[expected.dtype])
        else:
            np.testing.assert_array_equal(actual, expected)

    return check
