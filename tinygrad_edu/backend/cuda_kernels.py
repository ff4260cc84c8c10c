"""The GPU kernels: every ``@cuda.jit`` function of the CUDA backend except the optimizer steps.

``backend/cuda.py`` checks and prepares the arguments and launches these; read that module first.
Conventions shared by every kernel here:

- arrays arrive flat (1-D, C-contiguous); shapes and strides, when a kernel needs them, arrive as
  tuples of ints (counted in elements, never bytes), which numba passes by value with the launch,
  so no metadata is copied to the GPU;
- a kernel over n items uses a grid-stride loop: thread t of the T threads in the grid handles
  items t, t + T, t + 2T, ...; any grid size is correct, and the launch picks one that fills the
  GPU;
- ``code`` arguments pick the operation (``rules``' constants); the branch is the same for every
  thread, so it costs next to nothing and keeps one compiled kernel per dtype instead of one per op;
- the per-element and per-row maths is not here: it is ``backend/rules.py``'s, compiled below as
  device functions from the same Python source the CPU loops are built from.

Each kernel's docstring says which thread computes what.
"""

from __future__ import annotations

import functools
import math

import numpy as np
from numba import config as numba_config
from numba import cuda
from numba.cuda.random import xoroshiro128p_normal_float64, xoroshiro128p_uniform_float64

from tinygrad_edu import config
from tinygrad_edu.backend import rules

# ----- launch sizes -----

# The tunables are in tinygrad_edu/config.py, which says what each does.
THREADS = config.CUDA_THREADS
MAX_BLOCKS = config.CUDA_MAX_BLOCKS
REDUCE_THREADS = config.CUDA_REDUCE_THREADS
REDUCE_BLOCK_MIN = config.CUDA_REDUCE_BLOCK_MIN
REDUCE_MANY_OUTPUTS = config.CUDA_REDUCE_MANY_OUTPUTS

# Matmul: a block computes a MATMUL_BM x MATMUL_BN tile of C, stepping through K MATMUL_BK at a
# time; each of its (BM / TM) * (BN / TN) = 256 threads keeps a MATMUL_TM x MATMUL_TN patch of C
# in registers (register blocking: 64 multiply-adds for every 16 reads of shared memory).
_TILE = config.CUDA_MATMUL_TILE
MATMUL_BM, MATMUL_BN, MATMUL_BK = _TILE["BM"], _TILE["BN"], _TILE["BK"]
MATMUL_TM, MATMUL_TN, MATMUL_PAD = _TILE["TM"], _TILE["TN"], _TILE["PAD"]

_TX = MATMUL_BN // MATMUL_TN  # threads along a block's columns (16)
_TY = MATMUL_BM // MATMUL_TM  # threads along its rows (16)
_NT = _TX * _TY  # threads per block (256)
_A_LOADS = MATMUL_BM * MATMUL_BK // _NT  # elements of the A tile each thread loads (4)
_B_LOADS = MATMUL_BK * MATMUL_BN // _NT  # elements of the B tile each thread loads (4)
_A_WIDTH = MATMUL_BM + MATMUL_PAD
_B_WIDTH = MATMUL_BN + MATMUL_PAD

# Device functions are inlined into the kernels that call them (forceinline, at the NVVM level), so
# an op code costs a branch, not a call. The simulator has no such option and needs none.
if numba_config.ENABLE_CUDASIM:
    device_function = functools.partial(cuda.jit, device=True)
else:
    device_function = functools.partial(cuda.jit, device=True, forceinline=True)

# ----- the rules of backend/rules.py, compiled for the GPU -----
# The same Python functions the CPU loops inline (``py_func`` is the function before Numba's CPU
# compilation); ``rules.py`` says what each computes and the operation codes.

RULES = tuple(device_function(rule.py_func) for rule in rules.RULES)
(
    unary_rule,
    binary_rule,
    backward_rule,
    cross_entropy_grad_rule,
    softmax_row,
    softmax_backward_row,
    cross_entropy_row,
) = RULES  # in rules.RULES's order

SUM, MAX, MIN = range(3)  # the reduction kernels' codes


@device_function
def _offset(i, shape, strides):
    """The memory offset of item i of a C-ordered walk over ``shape``, read with ``strides``."""
    offset = 0
    for d in range(len(shape) - 1, -1, -1):
        offset += (i % shape[d]) * strides[d]
        i //= shape[d]
    return offset


@device_function
def _fold(code, acc, v):
    """One step of a reduction. max/min keep a NaN once they meet one, as numpy does."""
    if code == SUM:
        return acc + v
    if code == MAX:
        return v if (v > acc or v != v) else acc
    return v if (v < acc or v != v) else acc


# ----- storage and elementwise -----


@cuda.jit
def fill_kernel(out, value):
    """Thread t writes out[i] = value for its items i."""
    for i in range(cuda.grid(1), out.size, cuda.gridsize(1)):
        out[i] = value


@cuda.jit
def cast_kernel(x, out):
    """Thread t writes out[i] = x[i] converted to out's dtype."""
    for i in range(cuda.grid(1), out.size, cuda.gridsize(1)):
        out[i] = x[i]


@cuda.jit
def unary_kernel(code, x, a, b, out):
    """Thread t writes out[i] = op(x[i]) for its items i."""
    for i in range(cuda.grid(1), out.size, cuda.gridsize(1)):
        out[i] = unary_rule(code, x[i], a, b)


@cuda.jit
def where_kernel(cond, x, y, out):
    """Same shapes: thread t writes out[i] = x[i] if cond[i] != 0 else y[i]."""
    for i in range(cuda.grid(1), out.size, cuda.gridsize(1)):
        out[i] = x[i] if cond[i] != 0 else y[i]


@cuda.jit
def binary_kernel(code, x, y, out):
    """Same shapes: thread t writes out[i] = x[i] op y[i]."""
    for i in range(cuda.grid(1), out.size, cuda.gridsize(1)):
        out[i] = binary_rule(code, x[i], y[i])


@cuda.jit
def binary_scalar_kernel(code, x, s, scalar_first, out):
    """Array op scalar: thread t writes out[i] = x[i] op s (or s op x[i])."""
    for i in range(cuda.grid(1), out.size, cuda.gridsize(1)):
        if scalar_first:
            out[i] = binary_rule(code, s, x[i])
        else:
            out[i] = binary_rule(code, x[i], s)


@cuda.jit
def binary_broadcast_kernel(code, x, x_strides, y, y_strides, shape, out):
    """Broadcasting: thread t writes out[i] for its items i; each input is read through strides
    that are 0 along the axes it is broadcast over."""
    for i in range(cuda.grid(1), out.size, cuda.gridsize(1)):
        out[i] = binary_rule(code, x[_offset(i, shape, x_strides)], y[_offset(i, shape, y_strides)])


@cuda.jit
def backward_kernel(code, g, x, a, b, out):
    """Fused activation backward: thread t writes out[i] = g[i] * f'(x[i]) in one pass."""
    for i in range(cuda.grid(1), out.size, cuda.gridsize(1)):
        out[i] = backward_rule(code, g[i], x[i], a, b)


# ----- reductions -----
# The inputs of output o sit at base(o) + offset(r) for r in range(red_size): ``out_shape`` and
# ``out_strides`` walk the kept axes, ``red_shape`` and ``red_strides`` the reduced ones.


@cuda.jit
def reduce_thread_kernel(code, x, out, out_shape, out_strides, red_shape, red_strides, init):
    """Short reductions: thread t computes out[o] for its outputs o, folding all red_size inputs
    of o itself. Neighbouring threads take neighbouring outputs, so when the kept axes are the
    last ones (a sum over rows), their reads are neighbours in memory too."""
    red_size = 1
    for n in red_shape:
        red_size *= n
    for o in range(cuda.grid(1), out.size, cuda.gridsize(1)):
        base = _offset(o, out_shape, out_strides)
        acc = init if code == SUM else x[base]
        for r in range(red_size):
            acc = _fold(code, acc, x[base + _offset(r, red_shape, red_strides)])
        out[o] = acc


@cuda.jit
def reduce_block_kernel(code, x, out, out_shape, out_strides, red_shape, red_strides):
    """Long reductions: block b computes out[o] for o = b, b + B, ... Thread k of the block folds
    inputs k, k + REDUCE_THREADS, ... into a partial result in shared memory; the partials are
    then halved pairwise (a tree) until partial[0] holds the answer. Accumulates in float64."""
    partial = cuda.shared.array(REDUCE_THREADS, np.float64)
    k = cuda.threadIdx.x
    red_size = 1
    for n in red_shape:
        red_size *= n
    for o in range(cuda.blockIdx.x, out.size, cuda.gridDim.x):
        base = _offset(o, out_shape, out_strides)
        acc = 0.0 if code == SUM else x[base]  # red_size >= REDUCE_BLOCK_MIN > 0 here
        for r in range(k, red_size, REDUCE_THREADS):
            acc = _fold(code, acc, x[base + _offset(r, red_shape, red_strides)])
        partial[k] = acc
        cuda.syncthreads()
        half = REDUCE_THREADS // 2
        while half > 0:
            if k < half:
                partial[k] = _fold(code, partial[k], partial[k + half])
            cuda.syncthreads()
            half //= 2
        if k == 0:
            out[o] = partial[0]
        cuda.syncthreads()  # partial[0] is read before the next output overwrites it


@cuda.jit
def argmax_kernel(x, out, out_shape, out_strides, red_shape, red_strides):
    """Thread t computes out[o] = the first r with the largest x (a NaN counts as largest)."""
    red_size = 1
    for n in red_shape:
        red_size *= n
    for o in range(cuda.grid(1), out.size, cuda.gridsize(1)):
        base = _offset(o, out_shape, out_strides)
        best = x[base]
        where = 0
        for r in range(1, red_size):
            v = x[base + _offset(r, red_shape, red_strides)]
            if best == best and (v > best or v != v):  # once best is NaN, it stays
                best = v
                where = r
        out[o] = where


# ----- movement: strided copies, gathers and scatters -----


@cuda.jit
def gather_strided_kernel(src, offset, strides, shape, out):
    """Thread t writes out[i] = src[offset + (multi-index of i in shape) . strides]: transpose,
    broadcast (stride 0), basic slicing (offset and stepped strides) in one kernel."""
    for i in range(cuda.grid(1), out.size, cuda.gridsize(1)):
        out[i] = src[offset + _offset(i, shape, strides)]


@cuda.jit
def scatter_strided_kernel(src, dst, offset, strides, shape):
    """The reverse: thread t writes dst[offset + (multi-index of i) . strides] = src[i]. The
    destinations are distinct (a basic slice or a block of a concatenation): no races."""
    for i in range(cuda.grid(1), src.size, cuda.gridsize(1)):
        dst[offset + _offset(i, shape, strides)] = src[i]


@cuda.jit
def gather_kernel(src, index, out):
    """Advanced indexing: thread t writes out[i] = src[index[i]]."""
    for i in range(cuda.grid(1), out.size, cuda.gridsize(1)):
        out[i] = src[index[i]]


@cuda.jit
def scatter_add_kernel(src, index, dst):
    """Its gradient: thread t adds src[i] into dst[index[i]]. Repeated indices make several
    threads add into one element, so the add is atomic."""
    for i in range(cuda.grid(1), src.size, cuda.gridsize(1)):
        cuda.atomic.add(dst, index[i], src[i])


# ----- softmax family -----
# The axis of length L splits the array into rows: row r = (outer index q, inner index p) holds
# the elements q * L * inner + j * inner + p for j in range(L). One thread per row.


@cuda.jit
def softmax_rows_kernel(log, x, out, length, inner):
    """Thread t handles its rows r: ``rules.softmax_row`` on the row that starts at
    (r // inner) * length * inner + r % inner and steps by ``inner``."""
    rows = out.size // length if length else 0
    for r in range(cuda.grid(1), rows, cuda.gridsize(1)):
        start = (r // inner) * length * inner + r % inner
        softmax_row(log, x, out, start, inner, length)


@cuda.jit
def softmax_backward_rows_kernel(log, g, y, out, length, inner):
    """Thread t handles its rows: ``rules.softmax_backward_row``."""
    rows = out.size // length if length else 0
    for r in range(cuda.grid(1), rows, cuda.gridsize(1)):
        start = (r // inner) * length * inner + r % inner
        softmax_backward_row(log, g, y, out, start, inner, length)


@cuda.jit
def cross_entropy_rows_kernel(logits, labels, losses, probs):
    """Thread t handles rows i of the flat (n, c) logits: ``rules.cross_entropy_row``. A label
    outside [0, c) gives a NaN loss instead of a read outside the row (the host checked them)."""
    n = losses.size
    c = logits.size // n
    for i in range(cuda.grid(1), n, cuda.gridsize(1)):
        label = labels[i]
        if 0 <= label < c:
            losses[i] = cross_entropy_row(logits, probs, i * c, c, label)
        else:
            losses[i] = math.nan


@cuda.jit
def cross_entropy_backward_kernel(g_rows, scale, probs, labels, out):
    """Thread t writes out[e] for its elements e = i * c + j of the flat (n, c) probs:
    ``rules.cross_entropy_grad_rule``; a g_rows of length 1 is shared by every row."""
    n = labels.size
    c = probs.size // n
    for e in range(cuda.grid(1), n * c, cuda.gridsize(1)):
        i = e // c
        g = (g_rows[i] if g_rows.size == n else g_rows[0]) * scale
        out[e] = cross_entropy_grad_rule(probs[e], e % c == labels[i], g)


# ----- random numbers: one xoroshiro128+ generator state per thread -----


@cuda.jit
def bernoulli_kernel(states, p, out):
    """Thread t draws out[i] = 1 with probability p (else 0) for its items, from states[t]."""
    t = cuda.grid(1)
    for i in range(t, out.size, cuda.gridsize(1)):
        out[i] = 1 if xoroshiro128p_uniform_float64(states, t) < p else 0


@cuda.jit
def normal_kernel(states, std, out):
    """Thread t draws out[i] ~ N(0, std^2) for its items, from states[t]."""
    t = cuda.grid(1)
    for i in range(t, out.size, cuda.gridsize(1)):
        out[i] = std * xoroshiro128p_normal_float64(states, t)


# ----- matmul -----


@cuda.jit
def matmul_kernel(
    a, b, c, bias, has_bias, m, n, k, sa_m, sa_k, sb_k, sb_n, batch_shape, a_batch, b_batch
):
    """C = op(A) op(B) (+ bias), tiled in shared memory with register blocking.

    Who computes what: block (x, y) owns the MATMUL_BM x MATMUL_BN tile of C starting at row
    y * MATMUL_BM, column x * MATMUL_BN, for every batch entry z = blockIdx.z, + gridDim.z, ...
    Thread (tx, ty) of the block owns the MATMUL_TM x MATMUL_TN entries at rows ty + i * 16 and
    columns tx + j * 16 of that tile; the interleaving makes neighbouring threads write
    neighbouring columns (coalesced) and read neighbouring shared-memory words (no conflicts).

    A[i, kk] is read at a[a_off + i * sa_m + kk * sa_k]: a transposed operand is the same memory
    read with swapped strides, so dC B^T and A^T dC need no transposed copies. Each step through
    K, the 256 threads copy a BK-deep slice of A's rows and B's columns into shared memory (zeros
    past the edges, so sizes need not be multiples of the tile), then each thread does
    BK * TM * TN multiply-adds from registers. ``batch_shape`` with the batch strides of A and B
    (0 along broadcast axes) maps z to each operand's matrix. The bias is added as each entry
    is written.

    NOTE: the write loop must unroll completely, or ``acc`` moves from registers to local memory
    (ptxas then reports a 256-byte stack frame). Applying an activation here too was enough to
    stop the unrolling, so activations run as a separate elementwise pass.
    """
    tile_a = cuda.shared.array((MATMUL_BK, _A_WIDTH), a.dtype)  # tile_a[kk, i] = A[row0+i, k0+kk]
    tile_b = cuda.shared.array((MATMUL_BK, _B_WIDTH), a.dtype)  # tile_b[kk, j] = B[k0+kk, col0+j]
    acc = cuda.local.array((MATMUL_TM, MATMUL_TN), a.dtype)
    a_reg = cuda.local.array(MATMUL_TM, a.dtype)
    b_reg = cuda.local.array(MATMUL_TN, a.dtype)
    tx = cuda.threadIdx.x
    ty = cuda.threadIdx.y
    tid = ty * _TX + tx
    row0 = cuda.blockIdx.y * MATMUL_BM
    col0 = cuda.blockIdx.x * MATMUL_BN
    batches = 1
    for size in batch_shape:
        batches *= size
    for z in range(cuda.blockIdx.z, batches, cuda.gridDim.z):
        a_off = 0
        b_off = 0
        rest = z
        for d in range(len(batch_shape) - 1, -1, -1):
            index = rest % batch_shape[d]
            rest //= batch_shape[d]
            a_off += index * a_batch[d]
            b_off += index * b_batch[d]
        for i in range(MATMUL_TM):
            for j in range(MATMUL_TN):
                acc[i, j] = 0
        for k0 in range(0, k, MATMUL_BK):
            # Load the tiles; consecutive threads take consecutive addresses of the operand.
            for load in range(_A_LOADS):
                e = tid + load * _NT
                if sa_k == 1:  # A's rows are contiguous: walk along k first
                    i = e // MATMUL_BK
                    kk = e % MATMUL_BK
                else:
                    kk = e // MATMUL_BM
                    i = e % MATMUL_BM
                if row0 + i < m and k0 + kk < k:
                    tile_a[kk, i] = a[a_off + (row0 + i) * sa_m + (k0 + kk) * sa_k]
                else:
                    tile_a[kk, i] = 0
            for load in range(_B_LOADS):
                e = tid + load * _NT
                if sb_n == 1:  # B's rows are contiguous: walk along n first
                    kk = e // MATMUL_BN
                    j = e % MATMUL_BN
                else:
                    j = e // MATMUL_BK
                    kk = e % MATMUL_BK
                if col0 + j < n and k0 + kk < k:
                    tile_b[kk, j] = b[b_off + (k0 + kk) * sb_k + (col0 + j) * sb_n]
                else:
                    tile_b[kk, j] = 0
            cuda.syncthreads()
            for kk in range(MATMUL_BK):
                for i in range(MATMUL_TM):
                    a_reg[i] = tile_a[kk, ty + i * _TY]
                for j in range(MATMUL_TN):
                    b_reg[j] = tile_b[kk, tx + j * _TX]
                for i in range(MATMUL_TM):
                    for j in range(MATMUL_TN):
                        acc[i, j] += a_reg[i] * b_reg[j]
            cuda.syncthreads()  # everyone is done with the tiles before they are overwritten
        c_off = z * m * n
        for i in range(MATMUL_TM):
            row = row0 + ty + i * _TY
            if row < m:
                for j in range(MATMUL_TN):
                    col = col0 + tx + j * _TX
                    if col < n:
                        value = acc[i, j]
                        if has_bias:
                            value += bias[col]
                        c[c_off + row * n + col] = value
