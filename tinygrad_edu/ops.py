"""Every differentiable primitive: forward and backward side by side.

Read this file as the table of derivatives. Each ``forward`` receives backend arrays (and Python
scalars) and returns an array; each ``backward`` receives g = dL/d(output) and returns
dL/d(input) for every input, or None where ``ctx.needs_input_grad`` says nobody needs it.
No op computes anything itself: the numbers come from ``ctx.backend`` (numpy, Numba or CUDA).

Broadcasting: when an input was broadcast in the forward pass, its gradient is the sum of g over
the broadcast axes; ``backend.sum_to(g, shape)`` undoes broadcasting in one place.
"""

from __future__ import annotations

import math

from tinygrad_edu.autograd import Op
from tinygrad_edu.errors import InputError


def _shape(x) -> tuple[int, ...]:
    return getattr(x, "shape", ())


# ----- binary elementwise -----


class Add(Op):
    """z = x + y;   dz/dx = 1,   dz/dy = 1"""

    def forward(ctx, x, y):
        ctx.shapes = (_shape(x), _shape(y))
        return ctx.backend.binary("add", x, y)

    def backward(ctx, g):
        b, (sx, sy) = ctx.backend, ctx.shapes
        need_x, need_y = ctx.needs_input_grad
        return (b.sum_to(g, sx) if need_x else None, b.sum_to(g, sy) if need_y else None)


class Sub(Op):
    """z = x - y;   dz/dx = 1,   dz/dy = -1"""

    def forward(ctx, x, y):
        ctx.shapes = (_shape(x), _shape(y))
        return ctx.backend.binary("sub", x, y)

    def backward(ctx, g):
        b, (sx, sy) = ctx.backend, ctx.shapes
        need_x, need_y = ctx.needs_input_grad
        dx = b.sum_to(g, sx) if need_x else None
        dy = b.unary("neg", b.sum_to(g, sy)) if need_y else None
        return dx, dy


class Mul(Op):
    """z = x * y;   dz/dx = y,   dz/dy = x"""

    def forward(ctx, x, y):
        ctx.save_for_backward(x, y)
        return ctx.backend.binary("mul", x, y)

    def backward(ctx, g):
        b, (x, y) = ctx.backend, ctx.saved
        need_x, need_y = ctx.needs_input_grad
        dx = b.sum_to(b.binary("mul", g, y), _shape(x)) if need_x else None
        dy = b.sum_to(b.binary("mul", g, x), _shape(y)) if need_y else None
        return dx, dy


class Div(Op):
    """z = x / y;   dz/dx = 1 / y,   dz/dy = -x / y^2 = -z / y"""

    def forward(ctx, x, y):
        z = ctx.backend.binary("div", x, y)
        ctx.save_for_backward(x, y, z)
        return z

    def backward(ctx, g):
        b, (x, y, z) = ctx.backend, ctx.saved
        need_x, need_y = ctx.needs_input_grad
        g_over_y = b.binary("div", g, y)
        dx = b.sum_to(g_over_y, _shape(x)) if need_x else None
        dy = b.sum_to(b.unary("neg", b.binary("mul", g_over_y, z)), _shape(y)) if need_y else None
        return dx, dy


class Pow(Op):
    """z = x ** p;   dz/dx = p * x^(p-1),   dz/dp = z * log(x)"""

    def forward(ctx, x, p):
        z = ctx.backend.binary("pow", x, p)
        ctx.save_for_backward(x, p, z)
        return z

    def backward(ctx, g):
        b, (x, p, z) = ctx.backend, ctx.saved
        need_x, need_p = ctx.needs_input_grad
        dx = dp = None
        if need_x:
            p_minus_1 = p - 1 if isinstance(p, (int, float)) else b.binary("sub", p, 1.0)
            slope = b.binary("mul", p, b.binary("pow", x, p_minus_1))
            dx = b.sum_to(b.binary("mul", g, slope), _shape(x))
        if need_p:
            log_x = _log_of_base(x) if isinstance(x, (int, float)) else b.unary("log", x)
            dp = b.sum_to(b.binary("mul", g, b.binary("mul", z, log_x)), _shape(p))
        return dx, dp


def _log_of_base(x: float) -> float:
    """log(x) for a Python-number base (2.0 ** t): the exponent's gradient needs it.

    NOTE: log(0) is -inf by numpy's rules; a negative base has no real logarithm, so the
    gradient z * log(x) does not exist (an array base gets numpy's NaN there, as PyTorch).
    """
    if x < 0:
        raise InputError(
            f"pow backward: the gradient with respect to the exponent of {x!r} ** t needs "
            f"log({x!r}), which is not a real number for a negative base; use a positive base "
            "or detach the exponent"
        )
    return math.log(x) if x > 0 else -math.inf


class AddScalar(Op):
    """z = x + c, c a Python number;   dz/dx = 1   (no broadcasting: z has x's shape)"""

    def forward(ctx, x, c):
        return ctx.backend.binary("add", x, c)

    def backward(ctx, g):
        return g, None


class MulScalar(Op):
    """z = c x, c a Python number;   dz/dx = c"""

    def forward(ctx, x, c):
        ctx.c = c
        return ctx.backend.binary("mul", x, c)

    def backward(ctx, g):
        return ctx.backend.binary("mul", g, ctx.c), None


class Maximum(Op):
    """z = max(x, y) elementwise (broadcasting);   dz/dx = [x > y] + [x = y] / 2,
    dz/dy = [y > x] + [x = y] / 2: tied entries split the gradient equally, as PyTorch.

    NOTE: a binary kernel, not composed: any composition from add/mul (x w + y (1 - w)) rounds,
    loses subnormals when halving, and turns inf * 0 into NaN. ``Minimum`` swaps the comparisons.
    """

    op, wins, loses = "maximum", "gt", "lt"

    def forward(ctx, x, y):
        ctx.save_for_backward(x, y)
        return ctx.backend.binary(ctx.op, x, y)

    def backward(ctx, g):
        b, (x, y) = ctx.backend, ctx.saved
        need_x, need_y = ctx.needs_input_grad
        half_tie = b.binary("mul", b.compare("eq", x, y), 0.5)
        dx = dy = None
        if need_x:
            share = b.binary("add", b.compare(ctx.wins, x, y), half_tie)
            dx = b.sum_to(b.binary("mul", g, share), _shape(x))
        if need_y:
            share = b.binary("add", b.compare(ctx.loses, x, y), half_tie)
            dy = b.sum_to(b.binary("mul", g, share), _shape(y))
        return dx, dy


class Minimum(Maximum):
    """z = min(x, y) elementwise;  dz/dx = [x < y] + [x = y] / 2,  dz/dy = [x > y] + [x = y] / 2"""

    op, wins, loses = "minimum", "lt", "gt"


class Where(Op):
    """z = x where cond else y (broadcasting; cond a 0/1 Tensor, x and y Tensors or numbers);
    dz/dx = [cond],   dz/dy = [not cond]: the gradient flows to the chosen side only.

    The backward selects too (where(cond, g, 0)) rather than multiplying by the mask, so an
    inf or NaN in g never leaks into the side that was not chosen (inf * 0 = NaN).
    """

    def forward(ctx, cond, x, y):
        ctx.cond, ctx.shapes = cond, (_shape(x), _shape(y))
        return ctx.backend.where(cond, x, y)

    def backward(ctx, g):
        b, (sx, sy) = ctx.backend, ctx.shapes
        _, need_x, need_y = ctx.needs_input_grad
        dx = b.sum_to(b.where(ctx.cond, g, 0.0), sx) if need_x else None
        dy = b.sum_to(b.where(ctx.cond, 0.0, g), sy) if need_y else None
        return None, dx, dy


# ----- unary elementwise -----


class Neg(Op):
    """z = -x;   dz/dx = -1"""

    def forward(ctx, x):
        return ctx.backend.unary("neg", x)

    def backward(ctx, g):
        return ctx.backend.unary("neg", g)


class Exp(Op):
    """z = e^x;   dz/dx = e^x = z"""

    def forward(ctx, x):
        ctx.z = ctx.backend.unary("exp", x)
        return ctx.z

    def backward(ctx, g):
        return ctx.backend.binary("mul", g, ctx.z)


class Log(Op):
    """z = ln x;   dz/dx = 1 / x"""

    def forward(ctx, x):
        ctx.x = x
        return ctx.backend.unary("log", x)

    def backward(ctx, g):
        return ctx.backend.binary("div", g, ctx.x)


class Sqrt(Op):
    """z = sqrt(x);   dz/dx = 1 / (2 sqrt(x)) = 0.5 / z"""

    def forward(ctx, x):
        ctx.z = ctx.backend.unary("sqrt", x)
        return ctx.z

    def backward(ctx, g):
        b = ctx.backend
        return b.binary("mul", b.binary("div", g, ctx.z), 0.5)


class Abs(Op):
    """z = |x|;   dz/dx = sign(x)   (0 at x = 0, as PyTorch)"""

    def forward(ctx, x):
        ctx.x = x
        return ctx.backend.unary("abs", x)

    def backward(ctx, g):
        b = ctx.backend
        return b.binary("mul", g, b.unary("sign", ctx.x))


class Sign(Op):
    """z = sign(x) in {-1, 0, 1};   dz/dx = 0 (piecewise constant; PyTorch's rule at 0 too)"""

    def forward(ctx, x):
        return ctx.backend.unary("sign", x)

    def backward(ctx, g):
        return ctx.backend.zeros_like(g)


class Sin(Op):
    """z = sin x;   dz/dx = cos x"""

    def forward(ctx, x):
        ctx.x = x
        return ctx.backend.unary("sin", x)

    def backward(ctx, g):
        b = ctx.backend
        return b.binary("mul", g, b.unary("cos", ctx.x))


class Cos(Op):
    """z = cos x;   dz/dx = -sin x"""

    def forward(ctx, x):
        ctx.x = x
        return ctx.backend.unary("cos", x)

    def backward(ctx, g):
        b = ctx.backend
        return b.unary("neg", b.binary("mul", g, b.unary("sin", ctx.x)))


class Log1p(Op):
    """z = ln(1 + x);   dz/dx = 1 / (1 + x)"""

    def forward(ctx, x):
        ctx.x = x
        return ctx.backend.unary("log1p", x)

    def backward(ctx, g):
        b = ctx.backend
        return b.binary("div", g, b.binary("add", ctx.x, 1.0))


class Expm1(Op):
    """z = e^x - 1;   dz/dx = e^x = z + 1"""

    def forward(ctx, x):
        ctx.z = ctx.backend.unary("expm1", x)
        return ctx.z

    def backward(ctx, g):
        b = ctx.backend
        return b.binary("mul", g, b.binary("add", ctx.z, 1.0))


class Square(Op):
    """z = x^2;   dz/dx = 2x"""

    def forward(ctx, x):
        ctx.x = x
        return ctx.backend.unary("square", x)

    def backward(ctx, g):
        b = ctx.backend
        return b.binary("mul", g, b.binary("mul", ctx.x, 2.0))


class Reciprocal(Op):
    """z = 1 / x;   dz/dx = -1 / x^2 = -z^2"""

    def forward(ctx, x):
        ctx.z = ctx.backend.unary("reciprocal", x)
        return ctx.z

    def backward(ctx, g):
        b = ctx.backend
        return b.unary("neg", b.binary("mul", g, b.binary("mul", ctx.z, ctx.z)))


class ReLU(Op):
    """z = max(x, 0);   dz/dx = 1 if x > 0 else 0   (0 at x = 0, as PyTorch)"""

    def forward(ctx, x):
        ctx.x = x
        return ctx.backend.unary("relu", x)

    def backward(ctx, g):
        return ctx.backend.activation_backward("relu", g, ctx.x)


class LeakyReLU(Op):
    """z = x if x > 0 else slope * x;   dz/dx = 1 if x > 0 else slope"""

    def forward(ctx, x, slope):
        ctx.x, ctx.slope = x, slope
        return ctx.backend.unary("leaky_relu", x, slope)

    def backward(ctx, g):
        return ctx.backend.activation_backward("leaky_relu", g, ctx.x, ctx.slope), None


class Sigmoid(Op):
    """z = 1 / (1 + e^-x);   dz/dx = z (1 - z)"""

    def forward(ctx, x):
        ctx.z = ctx.backend.unary("sigmoid", x)
        return ctx.z

    def backward(ctx, g):
        return ctx.backend.activation_backward("sigmoid", g, ctx.z)


class Tanh(Op):
    """z = tanh x;   dz/dx = 1 - z^2"""

    def forward(ctx, x):
        ctx.z = ctx.backend.unary("tanh", x)
        return ctx.z

    def backward(ctx, g):
        return ctx.backend.activation_backward("tanh", g, ctx.z)


class Clip(Op):
    """z = min(max(x, lo), hi);   dz/dx = 1 where lo <= x <= hi, else 0"""

    def forward(ctx, x, lo, hi):
        ctx.x, ctx.lo, ctx.hi = x, lo, hi
        return ctx.backend.unary("clip", x, lo, hi)

    def backward(ctx, g):
        return ctx.backend.activation_backward("clip", g, ctx.x, ctx.lo, ctx.hi), None, None


# ----- reductions -----
# `axis` arrives normalised: None or a sorted tuple of non-negative axes.


def _kept_shape(shape: tuple[int, ...], axis) -> tuple[int, ...]:
    """The shape with the reduced axes kept as size 1."""
    if axis is None:
        return (1,) * len(shape)
    return tuple(1 if d in axis else n for d, n in enumerate(shape))


class Sum(Op):
    """z = sum of x over ``axis``;   dz/dx = 1 for every summed entry (g is broadcast back)"""

    def forward(ctx, x, axis, keepdims):
        ctx.shape, ctx.axis = x.shape, axis
        return ctx.backend.sum(x, axis, keepdims)

    def backward(ctx, g):
        b = ctx.backend
        g = b.reshape(g, _kept_shape(ctx.shape, ctx.axis))
        return b.broadcast_to(g, ctx.shape), None, None


class Max(Op):
    """z = max of x over ``axis``;   dz/dx = 1/k at the k entries equal to the max, else 0.

    NOTE: entries tied for the max share its gradient equally (PyTorch's rule for full reductions).
    ``Min`` is the same with the other comparison.
    """

    reduce = "max"

    def forward(ctx, x, axis, keepdims):
        # As numpy: the max of no entries is undefined, but an empty result (a non-empty axis of
        # a 0-size tensor) is fine. Checked here, before any backend runs.
        reduced = x.shape if axis is None else [x.shape[a] for a in axis]
        if 0 in reduced:
            raise InputError(
                f"{ctx.reduce}: cannot reduce over an empty axis (shape {tuple(x.shape)}, "
                f"axis {axis}); expected every reduced axis to have at least one entry"
            )
        b = ctx.backend
        out = getattr(b, ctx.reduce)(x, axis, True)
        ctx.x, ctx.out, ctx.axis = x, out, axis
        return out if keepdims else b.reshape(out, _drop_axes(x.shape, axis))

    def backward(ctx, g):
        b = ctx.backend
        g = b.reshape(g, ctx.out.shape)
        return b.max_backward(g, ctx.x, ctx.out, ctx.axis), None, None


class Min(Max):
    """z = min of x over ``axis``;   dz/dx = 1/k at the k entries equal to the min, else 0"""

    reduce = "min"


def _drop_axes(shape: tuple[int, ...], axis) -> tuple[int, ...]:
    if axis is None:
        return ()
    return tuple(n for d, n in enumerate(shape) if d not in axis)


# ----- movement: no arithmetic, the gradient is moved back the same way -----


class Reshape(Op):
    """z = x viewed with another shape;   dx = g viewed with x's shape"""

    def forward(ctx, x, shape):
        ctx.shape = x.shape
        return ctx.backend.reshape(x, shape)

    def backward(ctx, g):
        return ctx.backend.reshape(g, ctx.shape), None


class Transpose(Op):
    """z = x with its axes permuted;   dx = g permuted back (the inverse permutation)"""

    def forward(ctx, x, axes):
        ctx.inverse = tuple(sorted(range(len(axes)), key=axes.__getitem__))
        return ctx.backend.transpose(x, axes)

    def backward(ctx, g):
        return ctx.backend.transpose(g, ctx.inverse), None


class Expand(Op):
    """z = x broadcast to ``shape`` (new leading dims, size-1 dims repeated; no copy where the
    backend can view);   dx = g summed back over the broadcast dims (sum_to)"""

    def forward(ctx, x, shape):
        ctx.shape = x.shape
        return ctx.backend.broadcast_to(x, shape)

    def backward(ctx, g):
        return ctx.backend.sum_to(g, ctx.shape), None


class GetItem(Op):
    """z = x[index];   dx = zeros with g added at index (repeated indices accumulate)"""

    def forward(ctx, x, index):
        ctx.shape, ctx.index = x.shape, index
        return ctx.backend.getitem(x, index)

    def backward(ctx, g):
        return ctx.backend.getitem_backward(g, ctx.shape, ctx.index), None


class Scatter(Op):
    """z = zeros of ``shape`` with x added at ``index``: GetItem's backward as an op, so that a
    gradient can be differentiated again;   dx = g[index]"""

    def forward(ctx, x, shape, index):
        ctx.index = index
        return ctx.backend.getitem_backward(x, shape, index)

    def backward(ctx, g):
        return ctx.backend.getitem(g, ctx.index), None, None


class Cat(Op):
    """z = the inputs joined along ``axis``;   dx_i = the slice of g where x_i sits"""

    def forward(ctx, *xs, axis):
        ctx.axis, ctx.sizes = axis, [x.shape[axis] for x in xs]
        return ctx.backend.concatenate(list(xs), axis)

    def backward(ctx, g):
        grads, start = [], 0
        for size, needed in zip(ctx.sizes, ctx.needs_input_grad):
            index = (slice(None),) * ctx.axis + (slice(start, start + size),)
            grads.append(ctx.backend.getitem(g, index) if needed else None)
            start += size
        return tuple(grads)


class Cast(Op):
    """z = x converted to another float dtype;   dx = g converted back"""

    def forward(ctx, x, dtype):
        ctx.dtype = x.dtype
        return ctx.backend.astype(x, dtype)

    def backward(ctx, g):
        return ctx.backend.astype(g, ctx.dtype), None


class ToDevice(Op):
    """z = x copied to another device;   dx = g copied back"""

    def forward(ctx, x, target):
        from tinygrad_edu.backend import get_backend

        ctx.source = ctx.backend
        ctx.device, ctx.backend = target, get_backend(target)  # where the output will live
        return ctx.backend.asarray(ctx.source.to_numpy(x))

    def backward(ctx, g):
        move_back = getattr(ctx.backend, "move_back", None)
        if move_back is not None:  # create_graph: the differentiable namespace moves a Tensor
            return move_back(g), None
        return ctx.source.asarray(ctx.backend.to_numpy(g)), None


# ----- linear algebra -----


class MatMul(Op):
    """Z = A B (batch dims broadcast);   dA = G B^T,   dB = A^T G.

    The transposes are flags to the kernel, never copies.
    """

    def forward(ctx, a, b):
        ctx.save_for_backward(a, b)
        return ctx.backend.matmul(a, b)

    def backward(ctx, g):
        k, (a, b) = ctx.backend, ctx.saved
        need_a, need_b = ctx.needs_input_grad
        da = k.sum_to(k.matmul(g, b, transpose_b=True), a.shape) if need_a else None
        db = k.sum_to(k.matmul(a, g, transpose_a=True), b.shape) if need_b else None
        return da, db


class Linear(Op):
    """Y = act(X W^T + b), one node for a whole layer (matmul, bias and activation fused);
    with Z = X W^T + b:   dZ = G act'(Z),   dX = dZ W,   dW = dZ^T X,   db = sum of dZ over rows.

    ``activation`` is None, "relu", "sigmoid" or "tanh": each derivative can be written with the
    output Y alone, so only X, W and Y are saved.
    """

    def forward(ctx, x, w, bias=None, activation=None):
        y = ctx.backend.linear_forward(x, w, bias, activation)
        ctx.save_for_backward(x, w, y)
        ctx.activation = activation
        return y

    def backward(ctx, g):
        x, w, y = ctx.saved
        need = ctx.needs_input_grad
        dx, dw, db = ctx.backend.linear_backward(
            g, x, w, need[0], need[1], len(need) > 2 and need[2], ctx.activation, y
        )
        return dx, dw, db


# ----- softmax family -----
# Fused rather than composed from exp/sum/div: composition overflows for inputs near 1e3 and
# takes five graph nodes where one will do.


class Softmax(Op):
    """z_i = e^(x_i - max) / sum_j e^(x_j - max);   dx = z * (g - sum(g * z))"""

    def forward(ctx, x, axis):
        ctx.z, ctx.axis = ctx.backend.softmax(x, axis), axis
        return ctx.z

    def backward(ctx, g):
        return ctx.backend.softmax_backward(g, ctx.z, ctx.axis), None


class LogSoftmax(Op):
    """z_i = x_i - logsumexp(x);   dx = g - softmax(x) * sum(g)"""

    def forward(ctx, x, axis):
        ctx.z, ctx.axis = ctx.backend.softmax(x, axis, log=True), axis
        return ctx.z

    def backward(ctx, g):
        return ctx.backend.softmax_backward(g, ctx.z, ctx.axis, log=True), None


class CrossEntropy(Op):
    """L_i = -log softmax(z_i)[y_i] = logsumexp(z_i) - z_i[y_i]  (logits z, integer labels y);
    dL_i/dz_i = softmax(z_i) - onehot(y_i).  ``reduction`` is "mean", "sum" or "none"."""

    def forward(ctx, logits, labels, reduction):
        # The kernel reduces the losses too: one call for the whole loss.
        loss, ctx.probs = ctx.backend.cross_entropy_forward(logits, labels, reduction)
        ctx.labels, ctx.reduction = labels, reduction
        return loss

    def backward(ctx, g):
        # With "sum" or "mean" every row shares the one upstream gradient (divided by N for
        # "mean"): the kernel takes it as it is, with no array of N copies.
        return (
            ctx.backend.cross_entropy_backward(g, ctx.probs, ctx.labels, ctx.reduction),
            None,
            None,
        )


# ----- binary cross-entropy -----
# Fused rather than composed from log/clip/mul: composed, the clamp's zero gradient meets log's
# 1/p = inf at p = 0 and makes NaN.


def _clamped_log(b, x):
    """max(log x, -100). The argument is first raised to 1e-45 (log = -103.6; in float32 the
    smallest subnormal, log = -103.3) so that x = 0 gives -100 without a log(0) warning."""
    return b.unary("clip", b.unary("log", b.unary("clip", x, 1e-45, None)), -100.0, None)


class BinaryCrossEntropy(Op):
    """L = -(t log p + (1 - t) log(1 - p)), each log clamped at -100 as PyTorch does, so that
    p = 0 or 1 gives a large finite loss rather than inf (probabilities p, targets t, one loss
    per entry; the caller reduces).

    dL/dp = (p - t) / max(p (1 - p), 1e-12)      (PyTorch's formula, finite at p = 0 and 1)
    dL/dt = log(1 - p) - log(p)                   (clamped logs)
    """

    def forward(ctx, p, t):
        b = ctx.backend
        log_p = _clamped_log(b, p)
        log_q = _clamped_log(b, b.binary("sub", 1.0, p))
        ctx.save_for_backward(p, t, log_p, log_q)
        # -(t log p + (1 - t) log q) = -(log q + t (log p - log q))
        return b.unary(
            "neg", b.binary("add", log_q, b.binary("mul", t, b.binary("sub", log_p, log_q)))
        )

    def backward(ctx, g):
        b, (p, t, log_p, log_q) = ctx.backend, ctx.saved
        need_p, need_t = ctx.needs_input_grad
        dp = dt = None
        if need_p:
            denom = b.unary("clip", b.binary("mul", p, b.binary("sub", 1.0, p)), 1e-12, None)
            dp = b.binary("mul", g, b.binary("div", b.binary("sub", p, t), denom))
        if need_t:
            dt = b.binary("mul", g, b.binary("sub", log_q, log_p))
        return dp, dt
