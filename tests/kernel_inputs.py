"""The one input generator of the cross-backend kernel suite (tests/test_backends.py).

Every kernel test draws its arrays here, so every backend meets the same awkward values:

- ``special_values(dtype)``: NaN, +-inf, +-0.0, denormals, the smallest normal, eps, huge and tiny
  magnitudes, the points where exp (and so sigmoid's naive formula) overflows or underflows, and
  values on and next to the kinks of relu, leaky_relu and clip;
- ``values(rng, shape, dtype)``: random values with the special ones written into the first
  entries (and sprinkled at random places), so a small array gets as many as fit;
- shapes: 0-d, empty ``(0,)`` and ``(0, 3)``, a small matrix, and sizes on both sides of every
  dispatch threshold of the CPU and CUDA backends.

Thresholds: at their real values the CPU backend only switches to its parallel builds at 4M
elements. ``THRESHOLDS`` holds lowered values that ``lower_thresholds`` patches in (the backends
read them at call time), and the sizes below straddle those values: each path of each kernel runs
on a small array. CUDA sizes stay at a few hundred elements (the simulator runs every GPU thread
as a Python thread).
"""

from __future__ import annotations

import numpy as np

DTYPES = (np.float32, np.float64)

# ----- thresholds, lowered -----

# tinygrad_edu.config: read at call time by the CPU backend.
THRESHOLDS = {
    "PARALLEL_MIN": 96,  # serial build below, parallel build (and numba loops) from here
    "ELEMENTWISE_MIN": 32,  # activation backward: numpy below, one fused loop from here
    "SCALAR_EXP_MAX": 128,  # sigmoid: a scalar loop up to here, numpy's SIMD exp above
    "SMALL_LINEAR_MAX": 24,  # linear layers with at most this many outputs: the small kernel
    "DB_ONLY_MAX": 48,  # linear_backward without activation: db in one serial pass below this
    "BROADCAST_COPY_MAX": 12,  # broadcast_to: a new array up to this many elements, else a view
}
# tinygrad_edu.backend.cuda_kernels (copied from config at import; cuda.py reads them at launch
# time, the kernels do not).
CUDA_THRESHOLDS = {
    "MAX_BLOCKS": 1,  # one block: more than 256 items and every thread loops (grid-stride)
}
# Only for the tests of long reductions (a block per output is slow in the simulator).
CUDA_REDUCE_THRESHOLDS = {
    "REDUCE_BLOCK_MIN": 8,  # reductions at least this long get a block (shared-memory tree) each
    "REDUCE_MANY_OUTPUTS": 4,  # ... unless there are this many outputs and the axis is strided
}


def lower_thresholds(monkeypatch, cuda_kernels=None) -> None:
    """Patch the lowered thresholds in (``cuda_kernels``: the module, when CUDA is there)."""
    from tinygrad_edu import config

    for name, value in THRESHOLDS.items():
        monkeypatch.setattr(config, name, value)
    if cuda_kernels is not None:
        for name, value in CUDA_THRESHOLDS.items():
            monkeypatch.setattr(cuda_kernels, name, value)


def _straddle(n: int) -> list[int]:
    return [n - 1, n, n + 1]


# Element counts on both sides of every elementwise threshold, and 300 (> 256 threads per block:
# with MAX_BLOCKS = 1 the CUDA grid-stride loops go round twice).
THRESHOLD_SIZES = sorted(
    {
        *_straddle(THRESHOLDS["ELEMENTWISE_MIN"]),
        *_straddle(THRESHOLDS["PARALLEL_MIN"]),
        *_straddle(THRESHOLDS["SCALAR_EXP_MAX"]),
        300,
    }
)

# name -> shape, for elementwise kernels
ELEMENTWISE_SHAPES: dict[str, tuple[int, ...]] = {
    "0-d": (),
    "empty": (0,),
    "empty 2-d": (0, 3),
    "small": (5, 8),
    "3-d": (2, 3, 4),
    **{f"n={n}": (n,) for n in THRESHOLD_SIZES},
    "2-d above PARALLEL_MIN": (8, 13),
}

# Cases that only straddle the CPU backend's thresholds: CUDA skips them (the simulator is slow).
CPU_ONLY = {f"n={n}" for n in THRESHOLD_SIZES if n != 300} | {
    "2-d above PARALLEL_MIN", "95 elements", "96 elements", "130 elements",
}  # fmt: skip


def for_backend(backend: str, cases: dict) -> list:
    """The (name, case) items of ``cases`` that ``backend`` runs."""
    skip = CPU_ONLY if backend == "cuda" else set()
    return [(k, v) for k, v in cases.items() if k not in skip]


# (rows, classes) for the row kernels (softmax, cross-entropy): empty, one entry, small, and
# element counts just below and at PARALLEL_MIN (the serial and the parallel row loops).
ROW_SHAPES: dict[str, tuple[int, int]] = {
    "empty": (0, 3),
    "1x1": (1, 1),
    "small": (5, 7),
    "95 elements": (5, 19),
    "96 elements": (8, 12),
    "130 elements": (10, 13),
}

# ----- values -----

CLIP_BOUNDS = (-0.5, 0.75)  # the clip tests' bounds: the special values sit on and beside them
LEAKY_SLOPE = 0.1


def special_values(dtype) -> np.ndarray:
    """The values every elementwise kernel must get right, in ``dtype``."""
    dtype = np.dtype(dtype)
    fi = np.finfo(dtype)
    exp_max = np.log(fi.max)  # exp overflows just above this, exp(-x) for x just below -exp_max
    lo, hi = CLIP_BOUNDS
    up, down = (
        (lambda v: np.nextafter(dtype.type(v), dtype.type(np.inf))),
        (lambda v: np.nextafter(dtype.type(v), dtype.type(-np.inf))),
    )
    values = [
        np.nan, np.inf, -np.inf, 0.0, -0.0,
        fi.smallest_subnormal, -fi.smallest_subnormal, fi.tiny, -fi.tiny, fi.eps, -fi.eps,
        1.0, -1.0, 2.5, -3.0, 1e4, -1e4, fi.max, -fi.max,
        down(exp_max), up(exp_max), -down(exp_max), -up(exp_max), -exp_max - 30.0,
        lo, hi, down(lo), up(lo), down(hi), up(hi),
    ]  # fmt: skip
    return np.array(values, dtype=dtype)


def values(rng: np.random.Generator, shape, dtype, specials: bool = True, scale=3.0) -> np.ndarray:
    """Random values of ``shape`` with the special ones in the first entries (as many as fit,
    starting at a random one of them) and a few more at random places."""
    a = np.array(rng.standard_normal(shape) * scale, dtype=dtype)  # 0-d: an array, not a scalar
    flat = a.reshape(-1)
    if specials and flat.size:
        s = special_values(dtype)
        s = np.roll(s, -int(rng.integers(len(s))))
        k = min(len(s), flat.size)
        flat[:k] = s[:k]
        idx = rng.choice(flat.size, size=min(8, flat.size), replace=False)
        flat[idx] = rng.choice(s, size=idx.size)
    return a


def moderate(rng: np.random.Generator, shape, dtype) -> np.ndarray:
    """Like ``values``, without the huge finite magnitudes (near finfo.max), whose sums overflow
    in float32 or not depending on the order of summation and the accumulator's precision."""
    a = values(rng, shape, dtype)
    a[np.isfinite(a) & (np.abs(a) > 1e5)] = 7.0
    return a


def saved_output(op: str, x: np.ndarray) -> np.ndarray:
    """What an activation's forward saves for its backward: the output for sigmoid and tanh,
    the input for relu, leaky_relu and clip."""
    if op in ("sigmoid", "tanh"):
        with np.errstate(all="ignore"):
            e = np.exp(-np.abs(x))
            if op == "tanh":
                return np.tanh(x)
            return np.where(x >= 0, 1 / (1 + e), e / (1 + e)).astype(x.dtype)
    return x


def labels(rng: np.random.Generator, n: int, classes: int) -> np.ndarray:
    """Valid int64 labels, the first ones at the edges of the range."""
    out = rng.integers(0, max(classes, 1), n).astype(np.int64)
    out[: min(n, 2)] = [0, classes - 1][: min(n, 2)]
    return out
