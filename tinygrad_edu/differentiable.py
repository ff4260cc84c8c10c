"""The backend interface on Tensors: how the backward pass becomes a graph (``create_graph``).

Every backward rule in ``ops.py`` computes with ``ctx.backend``: ``b.binary("mul", g, y)``. In a
first-order pass that is an array backend (numpy, Numba, CUDA) and nothing is recorded. With
``backward(create_graph=True)`` the engine hands the same rule a ``DifferentiableBackend``
instead: the same names, but each one applies a recorded op of ``ops.py`` to Tensors. So the
rule, written once, builds the graph of the gradient, and that graph can be differentiated again.

Two things make that work:

- *Saved values become Tensors again.* A rule reads what its forward saved (``ctx.saved``,
  ``ctx.z``): arrays. The namespace knows the node's inputs and output as Tensors, and an array
  that *is* one of their arrays stands for that Tensor (``y = sigmoid(x)`` saved: the output
  Tensor, so ``g * y * (1 - y)`` depends on x through y). Any other array is a constant (a mask).
- *Fused kernels get a composed twin.* A fused kernel (``activation_backward``,
  ``softmax_backward``, ``linear_backward``, ``cross_entropy_backward``) is one array pass; here
  it is written out with the ops it fuses, as its docstring in ``backend/reference.py`` states.
  The image ops' kernels (im2col convolution, pooling) have theirs in ``conv_differentiable.py``.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from tinygrad_edu import ops
from tinygrad_edu.autograd import Op
from tinygrad_edu.tensor import Tensor

_UNARY_OPS = {
    "neg": ops.Neg,
    "exp": ops.Exp,
    "log": ops.Log,
    "sqrt": ops.Sqrt,
    "abs": ops.Abs,
    "relu": ops.ReLU,
    "sigmoid": ops.Sigmoid,
    "tanh": ops.Tanh,
    # contract v2's elementwise ops
    "sin": ops.Sin,
    "cos": ops.Cos,
    "log1p": ops.Log1p,
    "expm1": ops.Expm1,
    "square": ops.Square,
    "reciprocal": ops.Reciprocal,
}
_BINARY_OPS = {
    "add": ops.Add,
    "sub": ops.Sub,
    "mul": ops.Mul,
    "div": ops.Div,
    "pow": ops.Pow,
    "maximum": ops.Maximum,
    "minimum": ops.Minimum,
}


class DifferentiableBackend:
    """The backward rules' kernel namespace for one node, on Tensors (see the module docstring).

    ``arrays`` is the node's array backend, ``ctx`` the node, ``output`` the Tensor it made.
    """

    def __init__(self, arrays: Any, ctx: Op, output: Tensor) -> None:
        self.arrays, self.ctx, self.device = arrays, ctx, output.device
        self._tensors = {id(t._data): t for t in ctx.parents if isinstance(t, Tensor)}
        self._tensors[id(output._data)] = output

    # ----- arrays, Tensors and numbers -----

    def tensor(self, x: Any) -> Any:
        """A Tensor for ``x``: itself, the node's input or output whose array it is, or a
        constant. Python numbers stay numbers (the ops take them as they are)."""
        if isinstance(x, Tensor) or isinstance(x, (int, float)):
            return x
        known = self._tensors.get(id(x))
        return known if known is not None else Tensor._wrap(x, self.device, self.arrays)

    def array(self, x: Any) -> Any:
        return x._data if isinstance(x, Tensor) else x

    def _constant(self, array: Any) -> Tensor:
        return Tensor._wrap(array, self.device, self.arrays)

    def move_back(self, g: Any) -> Tensor:
        """ToDevice's backward: the gradient moved back to the input's device, recorded."""
        return ops.ToDevice.apply(self.tensor(g), self.ctx.parents[0].device)

    # ----- elementwise -----

    def unary(self, op: str, x: Any, a: Any = 0.0, b: Any = 0.0) -> Tensor:
        if op == "leaky_relu":
            return ops.LeakyReLU.apply(self.tensor(x), a)
        if op == "clip":
            return ops.Clip.apply(self.tensor(x), a, b)
        if op == "sign":  # piecewise constant: its derivative is 0 wherever it exists
            return self._constant(self.arrays.unary("sign", self.array(x)))
        return _UNARY_OPS[op].apply(self.tensor(x))

    def binary(self, op: str, x: Any, y: Any) -> Tensor:
        x, y = self.tensor(x), self.tensor(y)
        if not isinstance(x, Tensor) and not isinstance(y, Tensor):  # two numbers
            return self._constant(self.arrays.binary(op, x, y))
        return _BINARY_OPS[op].apply(x, y)

    def where(self, cond: Any, x: Any, y: Any) -> Tensor:
        return ops.Where.apply(self.tensor(cond), self.tensor(x), self.tensor(y))

    def zeros_like(self, x: Any) -> Tensor:
        """A constant: nothing depends on the zeros (Sign's gradient)."""
        return self._constant(self.arrays.zeros_like(self.array(x)))

    def compare(self, op: str, x: Any, y: Any) -> Tensor:
        return self._constant(self.arrays.compare(op, self.array(x), self.array(y)))

    def activation_backward(self, op: str, g: Any, saved: Any, a: Any = 0.0, b: Any = 0.0):
        """g * f'(.), composed: a constant mask for the piecewise-linear activations, and the
        saved output y as a Tensor for sigmoid (y (1 - y)) and tanh (1 - y^2)."""
        g = self.tensor(g)
        if op in ("relu", "leaky_relu", "clip"):
            ones = self.arrays.full(tuple(g.shape), 1.0, g.dtype)
            slope = self.arrays.activation_backward(op, ones, self.array(saved), a, b)
            return g * self._constant(slope)
        y = self.tensor(saved)
        return g * y * (1.0 - y) if op == "sigmoid" else g * (1.0 - y * y)

    # ----- reductions and movement -----

    def sum(self, x: Any, axis: Any, keepdims: bool) -> Tensor:
        return ops.Sum.apply(self.tensor(x), axis, keepdims)

    def sum_to(self, g: Any, shape: tuple[int, ...]) -> Tensor:
        """Undo broadcasting: sum over the leading axes and the axes of size 1 in ``shape``."""
        g = self.tensor(g)
        if tuple(g.shape) == tuple(shape):
            return g
        lead = g.ndim - len(shape)
        axes = tuple(range(lead)) + tuple(
            i + lead for i, n in enumerate(shape) if n == 1 and g.shape[i + lead] != 1
        )
        total = ops.Sum.apply(g, axes, True) if axes else g
        return ops.Reshape.apply(total, tuple(shape))

    def broadcast_to(self, x: Any, shape: tuple[int, ...]) -> Tensor:
        """x + zeros(shape): a broadcast whose backward (Add's sum_to) is the right one."""
        return ops.Add.apply(self.tensor(x), self._constant(self.arrays.zeros(shape, x.dtype)))

    def max_backward(self, g: Any, x: Any, out: Any, axis: Any) -> Tensor:
        """g times the tie-sharing mask of max/min, a constant where the derivative exists."""
        g = self.tensor(g)
        ones = self.arrays.full(tuple(g.shape), 1.0, g.dtype)
        share = self.arrays.max_backward(ones, self.array(x), self.array(out), axis)
        return g * self._constant(share)

    def reshape(self, x: Any, shape: tuple[int, ...]) -> Tensor:
        return ops.Reshape.apply(self.tensor(x), tuple(shape))

    def transpose(self, x: Any, axes: tuple[int, ...]) -> Tensor:
        return ops.Transpose.apply(self.tensor(x), tuple(axes))

    def getitem(self, x: Any, index: Any) -> Tensor:
        return ops.GetItem.apply(self.tensor(x), index)

    def getitem_backward(self, g: Any, shape: tuple[int, ...], index: Any) -> Tensor:
        return ops.Scatter.apply(self.tensor(g), tuple(shape), index)

    def astype(self, x: Any, dtype: Any) -> Tensor:
        return ops.Cast.apply(self.tensor(x), np.dtype(dtype))

    # ----- linear algebra and the fused network ops -----

    def _swap_last(self, t: Tensor) -> Tensor:
        axes = tuple(range(t.ndim - 2)) + (t.ndim - 1, t.ndim - 2)
        return ops.Transpose.apply(t, axes)

    def matmul(self, a: Any, b: Any, transpose_a: bool = False, transpose_b: bool = False):
        a, b = self.tensor(a), self.tensor(b)
        a = self._swap_last(a) if transpose_a else a
        b = self._swap_last(b) if transpose_b else b
        return ops.MatMul.apply(a, b)

    def linear_backward(self, g, x, w, need_x, need_w, need_b, activation=None, y=None):
        """dZ = G act'(Z);  dX = dZ W,  dW = dZ^T X,  db = sum of dZ over rows."""
        g, x, w = self.tensor(g), self.tensor(x), self.tensor(w)
        dz = g if activation is None else self.activation_backward(activation, g, y)
        dx = ops.MatMul.apply(dz, w) if need_x else None
        dw = ops.MatMul.apply(self._swap_last(dz), x) if need_w else None
        db = ops.Sum.apply(dz, (0,), False) if need_b else None
        return dx, dw, db

    def softmax_backward(self, g: Any, y: Any, axis: int, log: bool = False) -> Tensor:
        """softmax: y (g - sum(g y));  log-softmax: g - exp(y) sum(g)  (y the saved output)."""
        g, y = self.tensor(g), self.tensor(y)
        if log:
            return g - ops.Exp.apply(y) * ops.Sum.apply(g, (axis,), True)
        return y * (g - ops.Sum.apply(g * y, (axis,), True))

    def cross_entropy_backward(self, g: Any, probs: Any, labels: Any, reduction: str = "none"):
        """(softmax(z) - onehot(label)) * g_i, with softmax(z) recomputed from the logits Tensor
        (the saved probabilities depend on the logits, so they must be part of the graph)."""
        logits = self.ctx.parents[0]
        labels = self.array(labels)
        onehot = self.arrays.asarray(_onehot(self.arrays.to_numpy(labels), logits.shape))
        onehot = self.arrays.astype(onehot, logits.dtype)
        g = self.tensor(g)
        n = logits.shape[0]
        g_rows = ops.Reshape.apply(g, (n, 1) if reduction == "none" else (1, 1))
        if reduction == "mean":
            g_rows = g_rows * (1.0 / max(n, 1))
        return (ops.Softmax.apply(logits, 1) - self._constant(onehot)) * g_rows


def _onehot(labels: np.ndarray, shape: tuple[int, ...]) -> np.ndarray:
    out = np.zeros(shape)
    out[np.arange(len(labels)), labels] = 1.0
    return out


class _NoTwin:
    """What a kernel without a differentiable twin resolves to: an error naming the op."""

    def __init__(self, op: str, kernel: str) -> None:
        self.op, self.kernel = op, kernel

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        raise NotImplementedError(
            f"create_graph: the backward rule of {self.op} uses the kernel {self.kernel!r}, which "
            "has no differentiable version, so its gradient cannot be differentiated again; "
            "use create_graph=False, or write the op's backward with differentiable kernels"
        )


def _missing(self: DifferentiableBackend, name: str) -> Any:
    if name.startswith("__"):
        raise AttributeError(name)
    return _NoTwin(type(self.ctx).__name__, name)


DifferentiableBackend.__getattr__ = _missing  # only for names the class does not define


def recorded_backward(ctx: Op, output: Tensor, g: Tensor) -> tuple:
    """Run ``ctx``'s backward rule on Tensors, recording it (``backward(create_graph=True)``)."""
    arrays = ctx.backend
    ctx.backend = DifferentiableBackend(arrays, ctx, output)
    try:
        grads = ctx.backward(g)
    finally:
        ctx.backend = arrays
    if type(grads) is not tuple:
        grads = (grads,)
    device = output.device
    return tuple(
        pg if pg is None or isinstance(pg, Tensor) else Tensor._wrap(pg, device, arrays)
        for pg in grads
    )


def cast(g: Tensor, dtype: Any) -> Tensor:
    """A recorded dtype conversion of a gradient (a float32 input, a float64 expression)."""
    return ops.Cast.apply(g, np.dtype(dtype))
