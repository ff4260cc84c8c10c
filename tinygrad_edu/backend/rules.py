"""The kernels' rules, each written once, and the CPU loops built from them.

A *rule* is the maths of one element (``unary_rule``: relu(v), ``backward_rule``: g * relu'(x),
...) or of one row (``softmax_row``). It is a plain function of scalars, or of a row given as
(flat array, start, stride, length), and it is the only place that maths is written. It becomes:

- the CPU kernels: the loops at the bottom of this module call the rules per element, and
  ``Kernel`` compiles each loop twice, serial and parallel (``prange``); ``backend/cpu.py``
  decides, by size, between numpy, the serial build and the parallel build;
- the CUDA kernels: ``backend/cuda_kernels.py`` compiles the same Python functions
  (``rule.py_func``) as CUDA device functions and calls them from its grid-stride loops.

``tests/test_backends.py`` holds every backend to ``reference.py``, the numpy specification,
which is written independently of this module (plain numpy, no shared code).

Rules are ``inline="always"``: Numba pastes them into the loops that call them, so passing an
operation code costs one predictable branch, and a row rule's array arguments cost nothing
(an array passed to a function that is not inlined is reference-counted on every call).
A rule may not call another rule or any Numba function: the CUDA compiler sees only its Python
source, so the maths functions below are the only names a rule uses besides its arguments.

NOTE: the CPU loops live in this file on purpose. Numba's disk cache notices an edit to the
file that defines a kernel, not to the files of the functions that kernel inlines; a loop in
another file would keep running a rule's old version from the cache after the rule changed.
"""

from __future__ import annotations

import math

import numpy as np
from numba import config as numba_config
from numba import prange

from tinygrad_edu.backend.jit import Kernel, jit

# NOTE: the CUDA simulator runs rules as Python, where math.log(0.0) raises and math.exp(1000.0)
# overflows with an error; compiled code (Numba CPU or a GPU) returns -inf and inf. numpy's scalar
# functions return what compiled code does, so the simulator gets those. On the CPU both compile
# to the same libm calls.
if numba_config.ENABLE_CUDASIM:
    exp, log, sqrt, tanh = np.exp, np.log, np.sqrt, np.tanh
    sin, cos, log1p, expm1 = np.sin, np.cos, np.log1p, np.expm1
else:
    exp, log, sqrt, tanh = math.exp, math.log, math.sqrt, math.tanh
    sin, cos, log1p, expm1 = math.sin, math.cos, math.log1p, math.expm1

rule = jit(inline="always")

# ----- operation codes (the backends map names to these) -----

NEG, EXP, LOG, SQRT, ABS, SIGN, TANH, RELU, SIGMOID, LEAKY_RELU, CLIP, IDENTITY = range(12)
SIN, COS, LOG1P, EXPM1, SQUARE, RECIPROCAL = range(12, 18)  # contract v2's elementwise ops
UNARY_CODES = {
    "neg": NEG, "exp": EXP, "log": LOG, "sqrt": SQRT, "abs": ABS, "sign": SIGN, "tanh": TANH,
    "relu": RELU, "sigmoid": SIGMOID, "leaky_relu": LEAKY_RELU, "clip": CLIP,
    "sin": SIN, "cos": COS, "log1p": LOG1P, "expm1": EXPM1, "square": SQUARE,
    "reciprocal": RECIPROCAL,
}  # fmt: skip

ADD, SUB, MUL, DIV, POW, EQ, NE, LT, LE, GT, GE, SAME = range(12)  # SAME: equal, or both NaN
MAXIMUM, MINIMUM = range(12, 14)
BINARY_CODES = {
    "add": ADD, "sub": SUB, "mul": MUL, "div": DIV, "pow": POW,
    "maximum": MAXIMUM, "minimum": MINIMUM,
}  # fmt: skip
COMPARE_CODES = {"eq": EQ, "ne": NE, "lt": LT, "le": LE, "gt": GT, "ge": GE}

# Which input a derivative is written with: relu, leaky_relu and clip with the saved input x,
# sigmoid and tanh with the saved output y (their derivatives are y (1 - y) and 1 - y^2).
RELU_GRAD, LEAKY_RELU_GRAD, CLIP_GRAD, SIGMOID_GRAD, TANH_GRAD, IDENTITY_GRAD = range(6)
BACKWARD_CODES = {
    "relu": RELU_GRAD, "leaky_relu": LEAKY_RELU_GRAD, "clip": CLIP_GRAD,
    "sigmoid": SIGMOID_GRAD, "tanh": TANH_GRAD,
}  # fmt: skip
SAVES_OUTPUT = ("sigmoid", "tanh")

# The activations a linear layer fuses (each derivative written with the output y alone), as
# (forward code, backward code).
FUSED_ACTIVATIONS = {
    None: (IDENTITY, IDENTITY_GRAD),
    "relu": (RELU, RELU_GRAD),
    "sigmoid": (SIGMOID, SIGMOID_GRAD),
    "tanh": (TANH, TANH_GRAD),
}


# ----- per-element rules -----


@rule
def unary_rule(code, v, a, b):
    """op(v). ``a`` is leaky_relu's slope; ``a`` and ``b`` are clip's bounds (-inf and inf for
    a side without one). NaN propagates through every op."""
    if code == NEG:
        return -v
    if code == EXP:
        return exp(v)
    if code == LOG:
        return log(v)
    if code == SQRT:
        return sqrt(v)
    if code == ABS:
        return abs(v)
    if code == SIGN:
        return 1 if v > 0 else (-1 if v < 0 else v)  # 0 stays 0 and NaN stays NaN
    if code == TANH:
        return tanh(v)
    if code == RELU:
        return v if v > 0 or v != v else 0  # NaN stays NaN, as np.maximum(x, 0)
    if code == SIGMOID:
        # 1 / (1 + e^-v) without overflow, and without cancellation in the negative tail.
        if v >= 0:
            return 1 / (1 + exp(-v))
        e = exp(v)
        return e / (1 + e)
    if code == LEAKY_RELU:
        return v if v > 0 else v * a
    if code == CLIP:
        v = a if v < a else v  # NaN fails every comparison and passes through, as in numpy
        return b if v > b else v
    if code == SIN:
        return sin(v)
    if code == COS:
        return cos(v)
    if code == LOG1P:
        return log1p(v)  # log(1 + v), accurate for tiny v (1 + v would round to 1)
    if code == EXPM1:
        return expm1(v)  # e^v - 1, accurate for tiny v
    if code == SQUARE:
        return v * v
    if code == RECIPROCAL:
        return 1 / v  # 1/0 is inf (error_model="numpy")
    return v  # IDENTITY


@rule
def binary_rule(code, u, v):
    """u op v; the comparisons give 1.0 or 0.0 (SAME: 1.0 when u == v or both are NaN);
    maximum and minimum give the larger / smaller (NaN if either is NaN)."""
    if code == ADD:
        return u + v
    if code == SUB:
        return u - v
    if code == MUL:
        return u * v
    if code == DIV:
        return u / v
    if code == POW:
        return u**v
    if code == EQ:
        return 1.0 if u == v else 0.0
    if code == NE:
        return 1.0 if u != v else 0.0
    if code == LT:
        return 1.0 if u < v else 0.0
    if code == LE:
        return 1.0 if u <= v else 0.0
    if code == GT:
        return 1.0 if u > v else 0.0
    if code == GE:
        return 1.0 if u >= v else 0.0
    if code == MAXIMUM:  # a NaN on either side wins, as np.maximum
        return u if (u > v or u != u) else v
    if code == MINIMUM:
        return u if (u < v or u != u) else v
    return 1.0 if (u == v or (u != u and v != v)) else 0.0


@rule
def backward_rule(code, g, s, a, b):
    """g times the derivative, written with the saved value s: the input x for relu,
    leaky_relu (slope ``a``) and clip (bounds ``a``, ``b``), the output y for sigmoid and tanh.

    relu'(x) = [x > 0] (0 at 0, as PyTorch);  leaky_relu'(x) = 1 if x > 0 else slope;
    clip'(x) = [lo <= x <= hi];  sigmoid' = y (1 - y);  tanh' = 1 - y^2.
    """
    if code == RELU_GRAD:
        return g if s > 0 else 0.0
    if code == LEAKY_RELU_GRAD:
        return g if s > 0 else g * a
    if code == CLIP_GRAD:
        return g if a <= s <= b else 0.0
    if code == SIGMOID_GRAD:
        return g * s * (1 - s)
    if code == TANH_GRAD:
        return g * (1 - s * s)
    return g  # IDENTITY_GRAD


@rule
def cross_entropy_grad_rule(p, is_label, g):
    """d loss_i / d z_ij = (softmax(z_i)_j - [j == label_i]) * g_i."""
    return (p - 1 if is_label else p) * g


# ----- per-row rules: a row is x[start], x[start + stride], ... (``length`` entries) -----


@rule
def softmax_row(log_softmax, x, out, start, stride, length):
    """out = softmax(row), or log-softmax: x - m - log(sum(exp(x - m))) with m the row's max
    (subtracting it keeps exp from overflowing; a NaN anywhere makes the max NaN)."""
    m = x[start]
    for j in range(1, length):
        v = x[start + j * stride]
        m = v if (v > m or v != v) else m
    s = 0.0
    for j in range(length):
        s += exp(x[start + j * stride] - m)
    lse = m + log(s)
    for j in range(length):
        k = start + j * stride
        out[k] = x[k] - lse if log_softmax else exp(x[k] - lse)


@rule
def softmax_backward_row(log_softmax, g, y, out, start, stride, length):
    """softmax: dx = y * (g - sum(g * y));  log-softmax: dx = g - exp(y) * sum(g)."""
    s = 0.0
    for j in range(length):
        k = start + j * stride
        s += g[k] if log_softmax else g[k] * y[k]
    for j in range(length):
        k = start + j * stride
        out[k] = g[k] - exp(y[k]) * s if log_softmax else y[k] * (g[k] - s)


@rule
def cross_entropy_row(z, probs, start, length, label):
    """loss = logsumexp(z_row) - z_row[label]; writes softmax(z_row) into probs (saved for the
    backward pass). The caller checks that 0 <= label < length."""
    m = z[start]
    for j in range(1, length):
        v = z[start + j]
        m = v if (v > m or v != v) else m
    s = 0.0
    for j in range(length):
        e = exp(z[start + j] - m)  # one exp per entry: kept, then normalised
        probs[start + j] = e
        s += e
    for j in range(length):
        probs[start + j] /= s
    return m + log(s) - z[start + label]


RULES = (
    unary_rule,
    binary_rule,
    backward_rule,
    cross_entropy_grad_rule,
    softmax_row,
    softmax_backward_row,
    cross_entropy_row,
)


# ----- the CPU loops -----
# Arrays arrive flat and C-contiguous; iteration i writes only out[i] (or only row i): no races.


@Kernel
def unary_loop(code, x, a, b, out):
    for i in prange(out.size):
        out[i] = unary_rule(code, x[i], a, b)


@Kernel
def binary_loop(code, x, y, out):
    for i in prange(out.size):
        out[i] = binary_rule(code, x[i], y[i])


@Kernel
def binary_scalar_loop(code, x, s, scalar_first, out):
    for i in prange(out.size):
        out[i] = binary_rule(code, s, x[i]) if scalar_first else binary_rule(code, x[i], s)


@Kernel
def binary_broadcast_loop(code, x, x_strides, y, y_strides, shape, out):
    """Element i of ``out`` is unravelled to a multi-index, and each input is read through its
    element strides, which are 0 along the axes it is broadcast over."""
    ndim = shape.size
    for i in prange(out.size):
        rest = np.int64(i)  # a copy: Numba forbids writing to the prange index
        xi = 0
        yi = 0
        for d in range(ndim - 1, -1, -1):
            k = rest % shape[d]
            rest //= shape[d]
            xi += k * x_strides[d]
            yi += k * y_strides[d]
        out[i] = binary_rule(code, x[xi], y[yi])


@Kernel
def backward_loop(code, g, s, a, b, out):
    for i in prange(out.size):
        out[i] = backward_rule(code, g[i], s[i], a, b)


@Kernel
def softmax_rows_loop(log_softmax, x, out, length):
    """Rows of ``length`` contiguous entries; iteration i owns row i."""
    for i in prange(out.size // length):
        softmax_row(log_softmax, x, out, i * length, 1, length)


@Kernel
def softmax_backward_rows_loop(log_softmax, g, y, out, length):
    for i in prange(out.size // length):
        softmax_backward_row(log_softmax, g, y, out, i * length, 1, length)


@Kernel
def cross_entropy_rows_loop(logits, labels, losses, probs):
    """losses[i] for each row of the flat (n, c) logits, probs = their softmax. Returns the
    number of labels outside [0, c) (their rows are skipped) and the sum of the losses."""
    n = losses.size
    c = logits.size // n
    bad = 0
    total = 0.0
    for i in prange(n):
        if labels[i] < 0 or labels[i] >= c:
            bad += 1  # a prange reduction: Numba gives each thread its own counter
            continue
        losses[i] = cross_entropy_row(logits, probs, i * c, c, labels[i])
        total += losses[i]  # a prange reduction too
    return bad, total


@Kernel
def cross_entropy_backward_loop(g_rows, scale, probs, labels, out):
    """out = d loss / d logits for flat (n, c) probs; a g_rows of length 1 is shared by every
    row (a reduced loss)."""
    n = labels.size
    c = probs.size // n
    shared = g_rows.size != n
    for i in prange(n):
        g = (g_rows[0] if shared else g_rows[i]) * scale
        for j in range(c):  # (the label's entry is written again below: no test per entry)
            out[i * c + j] = cross_entropy_grad_rule(probs[i * c + j], False, g)
        k = i * c + labels[i]
        out[k] = cross_entropy_grad_rule(probs[k], True, g)


# ----- a linear layer's elementwise passes (CPU only: CUDA fuses the bias into its matmul) -----


@jit(inline="always")
def bias_activation_row(y, i, b, has_bias, code):
    """In place: y[i, j] = act(y[i, j] + b[j]) along row i of a 2-D y (the rows kernel's body,
    and the second pass of linear_small)."""
    if has_bias:
        for j in range(y.shape[1]):
            y[i, j] += b[j]
    # NOTE: ReLU, the commonest hidden activation, gets a loop of its own: with a constant code,
    # unary_rule's chain of tests folds away and LLVM vectorises the loop (12x faster at
    # 128 x 256, the same values). With the chain inside, the loop stays scalar.
    if code == RELU:
        for j in range(y.shape[1]):
            y[i, j] = unary_rule(RELU, y[i, j], 0.0, 0.0)
    elif code != IDENTITY:
        for j in range(y.shape[1]):
            y[i, j] = unary_rule(code, y[i, j], 0.0, 0.0)


@Kernel
def bias_activation_rows(y, b, has_bias, code):
    """In place: y[i, j] = act(y[i, j] + b[j]) for 2-D y; each iteration owns one row."""
    for i in prange(y.shape[0]):
        bias_activation_row(y, i, b, has_bias, code)


# "reassoc" lets LLVM split each dot product into several SIMD partial sums (BLAS sums in its own
# order too); "contract" allows fused multiply-adds. NaN and inf keep their meaning.
@jit(fastmath={"reassoc", "contract"})
def linear_small(x, w, b, has_bias, code, y):
    """y = act(x W^T + b) for small layers (see ``cpu.linear_forward``).

    Each product y[i, j] is the dot product of row i of x and row j of W, both contiguous. They
    are computed in blocks of 4 rows x 2 columns: each step of k loads 4 + 2 numbers for 8
    multiply-adds, and the 8 sums stay in registers (AVX2 has 16; 4 x 3 would spill). The last
    block of a row or column may overlap the one before it and compute some sums twice, which
    is cheaper than remainder loops and writes the same values. Each sum starts from its first
    term, which gives it the arrays' float type. Bias and activation follow in a second pass
    (measured faster than inside the first).
    """
    n, k_dim = x.shape
    m = w.shape[0]
    if n < 4 or m < 2:  # too small for one block: one dot product at a time
        for i in range(n):
            for j in range(m):
                s = x[i, 0] * w[j, 0]
                for k in range(1, k_dim):
                    s += x[i, k] * w[j, k]
                y[i, j] = s
    else:
        for i_block in range(0, n, 4):
            i = i_block if i_block + 4 <= n else n - 4
            for j_block in range(0, m, 2):
                j = j_block if j_block + 2 <= m else m - 2
                u, v = w[j, 0], w[j + 1, 0]
                x0, x1, x2, x3 = x[i, 0], x[i + 1, 0], x[i + 2, 0], x[i + 3, 0]
                a0, a1, a2, a3 = x0 * u, x1 * u, x2 * u, x3 * u
                b0, b1, b2, b3 = x0 * v, x1 * v, x2 * v, x3 * v
                for k in range(1, k_dim):
                    u, v = w[j, k], w[j + 1, k]
                    x0, x1, x2, x3 = x[i, k], x[i + 1, k], x[i + 2, k], x[i + 3, k]
                    a0 += x0 * u
                    a1 += x1 * u
                    a2 += x2 * u
                    a3 += x3 * u
                    b0 += x0 * v
                    b1 += x1 * v
                    b2 += x2 * v
                    b3 += x3 * v
                y[i, j], y[i + 1, j], y[i + 2, j], y[i + 3, j] = a0, a1, a2, a3
                y[i, j + 1], y[i + 1, j + 1], y[i + 2, j + 1], y[i + 3, j + 1] = b0, b1, b2, b3
    for i in range(n):
        bias_activation_row(y, i, b, has_bias, code)


@jit()
def dz_and_db(g, y, code, dz, db):
    """dZ = G act'(Z), written with the layer's output Y = act(Z), and db = the column sums of
    dZ, in one call (for IDENTITY_GRAD, dZ is G itself and only db is written).

    NOTE: two loops, not one: with the column sums in the same loop as dZ, LLVM vectorised
    neither, and the fused loop measured 15x slower at 128 x 256 (150 us against 10 us)."""
    if code != IDENTITY_GRAD:
        for i in range(g.shape[0]):
            for j in range(g.shape[1]):
                dz[i, j] = backward_rule(code, g[i, j], y[i, j], 0.0, 0.0)
    db[:] = 0.0
    for i in range(dz.shape[0]):
        for j in range(dz.shape[1]):
            db[j] += dz[i, j]
