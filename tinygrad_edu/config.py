"""Tunables for the kernels, in one place.

Environment variables override the defaults so that a user can experiment without editing code:
``TINYGRAD_EDU_FASTMATH=1``, ``TINYGRAD_EDU_CACHE=0``, ``TINYGRAD_EDU_PARALLEL_MIN=<elements>``,
``TINYGRAD_EDU_SCALAR_EXP_MAX``, ``TINYGRAD_EDU_ELEMENTWISE_MIN`` and
``TINYGRAD_EDU_SMALL_LINEAR_MAX`` (elements).
"""

import os

# Numba's fastmath lets LLVM reorder float operations; it changes results in the last bits and
# breaks NaN/inf semantics, so it is off by default.
FASTMATH: bool = os.environ.get("TINYGRAD_EDU_FASTMATH", "0") == "1"

# cache=True writes compiled kernels next to the source (or to NUMBA_CACHE_DIR) so a second
# process skips compilation.
CACHE: bool = os.environ.get("TINYGRAD_EDU_CACHE", "1") == "1"

# Below this many elements the CPU backend runs the serial build of a kernel (or one numpy call),
# above it the parallel build. Waking threads costs microseconds, and elementwise loops are
# limited by memory bandwidth, which two cores share: on this project's 2-core machines the
# parallel builds only paid off from about 4M elements (benchmarks/, docs/benchmarks.md).
# On a machine with many cores a lower value may pay; measure with the benchmarks.
PARALLEL_MIN: int = int(os.environ.get("TINYGRAD_EDU_PARALLEL_MIN", str(1 << 22)))

# numpy computes exp, log and tanh with SIMD instructions; a Numba loop calls the scalar libm
# function per element. Above this many elements numpy's vectorised pass wins even when the
# Numba kernel would fuse several numpy calls into one (measured: sigmoid at 4K elements).
SCALAR_EXP_MAX: int = int(os.environ.get("TINYGRAD_EDU_SCALAR_EXP_MAX", "4096"))

# A one-pass kernel for a simple elementwise rule (an activation's backward: two or three numpy
# operations) only beats numpy above this many elements; below it, preparing the call in Python
# costs more than numpy's extra passes (measured: tanh' at 480 elements, 1.5 us vs 1.3 us).
ELEMENTWISE_MIN: int = int(os.environ.get("TINYGRAD_EDU_ELEMENTWISE_MIN", "4096"))

# A linear layer whose output has at most this many entries (batch x out_features) runs in one
# Numba kernel (product, bias and activation) instead of BLAS, when its inputs are long rows
# (at least 256 features; shorter rows: up to 256 outputs). BLAS is tuned for large products
# and pays a fixed cost per call; measured on this project's 2-core machines (float32 and
# float64), the kernel takes 0.5-0.9x BLAS's time up to about 1,300 outputs (784-15 at batch 32:
# 6.7-9 us against 16 us) and up to 1.7x from about 2,000 (e.g. 128 x 32 outputs).
SMALL_LINEAR_MAX: int = int(os.environ.get("TINYGRAD_EDU_SMALL_LINEAR_MAX", "1280"))

# Below this many elements of a linear layer's output gradient, and without an activation, its
# bias gradient is one Numba pass (``rules.dz_and_db``); from here numpy's SIMD column sum wins
# (measured on 784-256-256-10 sizes and up).
DB_ONLY_MAX: int = 8192

# ``cpu.broadcast_to`` copies a broadcast result up to this many elements (1- or 2-D) instead
# of returning numpy's read-only view: numpy's broadcast_to costs about 1.8 us, an empty array
# and a copy 0.4 us, and the engine would copy a view before keeping it as a gradient.
BROADCAST_COPY_MAX: int = 4096

# The tile of ``cpu.matmul_blocked`` (the teaching kernel): a 64x64 float64 tile is 32 KiB, so
# three of them stay in a typical L2 cache.
BLOCKED_MATMUL_TILE: int = 64

# An optimizer's flat layout (optim/flat.py) copies the gradients of parameters up to this many
# elements into one flat gradient array, so that they share one kernel call. Copying costs about
# 1 ns per float32 element on the 2-core machine this was tuned on, a kernel call about 2 us:
# above ~16k elements a call of its own is cheaper (the 256 x 784 weight of the wide network).
FLAT_GATHER_MAX: int = 1 << 14

# The CPU convolution computes its large temporaries (the forward's product W cols before its
# transposed copy into NCHW, the backward's W^T g before col2im) a slice of whole images at a
# time, each slice about this many entries. Fresh multi-megabyte numpy arrays come from the
# OS page by page, and on the 2-core VMs this was tuned on every first touch of a page costs
# microseconds: batch 32 of 16-channel 28x28 images touched ~3,400 fresh pages per conv
# forward + backward in one piece. A slice this size is reused from the heap.
CONV_SLICE: int = 1 << 18

# ----- CUDA launch sizes (backend/cuda_kernels.py) -----
CUDA_THREADS: int = 256  # threads per block of the elementwise, per-row and copy kernels
CUDA_MAX_BLOCKS: int = 4096  # grid-stride loops: more blocks only add scheduling overhead
CUDA_REDUCE_THREADS: int = 128  # threads sharing one output of a block reduction (a power of 2)
CUDA_REDUCE_BLOCK_MIN: int = 256  # outputs that sum at least this many inputs get a block each
CUDA_REDUCE_MANY_OUTPUTS: int = 2048  # ... unless there are this many, side by side in memory
# The matmul tile: a block computes a BM x BN tile of C, stepping through K BK at a time; each of
# its (BM / TM) * (BN / TN) = 256 threads keeps a TM x TN patch of C in registers; PAD extra
# columns in the shared tiles keep transposing stores free of bank conflicts.
CUDA_MATMUL_TILE: dict[str, int] = {"BM": 128, "BN": 128, "BK": 8, "TM": 8, "TN": 8, "PAD": 4}

# Numba's default error model for @njit is "python", which raises ZeroDivisionError on 1/0.
# numpy's model gives inf/nan as numpy does.
ERROR_MODEL: str = "numpy"


# NOTE: Numba's parallel kernels run on OpenMP threads, and numpy's matrix products on OpenBLAS
# threads, on the same cores. By default OpenMP threads spin for a while after each parallel loop,
# and the spinning starves the BLAS threads: a 784-256-256-10 training step measured 30x slower
# on 2 cores (when the parallel threshold was low). Passive waiting costs a few microseconds per
# parallel loop instead. The OpenMP runtime reads the setting when it starts, at the first
# parallel kernel, so it is set then and not at import: a library imported earlier (PyTorch
# brings its own OpenMP) keeps its own behaviour. A user's own OMP_WAIT_POLICY always wins.
def prepare_threads() -> None:
    """Call before launching a parallel kernel (cheap after the first time)."""
    os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")


def parallel(n: int) -> bool:
    """Should a kernel over ``n`` elements run its parallel build?  (Prepares the threads.)"""
    if n < PARALLEL_MIN:
        return False
    prepare_threads()
    return True
