"""The image kernels on Tensors: the differentiable twin of ``backend/conv_cpu.py``.

With ``backward(create_graph=True)`` the backward rules of ``ops_conv.py`` run against a
``DifferentiableBackend`` (``differentiable.py``), and ``ops_conv._image_kernels`` hands them
``ImageKernels`` below: the same backward functions as ``conv_cpu``, with the same arguments,
but computed with recorded ops (gather, scatter, reshape, transpose, matmul, sum), so the
gradient is a graph that can be differentiated again (Hessian-vector products, gradient
penalties). The first-order pass never comes here: it keeps the fused array kernels.

The one idea is that im2col and col2im are *indexing*. Number the entries of the padded input
xp (N, C, Hp, Wp) in order; window entry (n, c, oh, ow, i, j) reads xp at the flat position

    index[n, c, oh, ow, i, j] = ((n C + c) Hp + oh s + i) Wp + ow s + j

so im2col is a gather, ``xp.reshape(-1)[index]`` (``ops.GetItem``), and col2im, its adjoint, is
the scatter-add of the same index (``ops.Scatter``: zeros with each value added at its position,
overlapping windows adding up). Each is the other's backward, so both differentiate forever.
Zero padding is the same pair with a slice: pad = scatter x into the interior of zeros,
crop = read the interior back.

    conv2d:      cols = gather(pad(x)) (C kh kw, N OH OW);  dW = G cols^T,  db = sum of G,
                 dx = crop(scatter(W^T G)),   G = g arranged as (O, N OH OW)
    max_pool2d:  dx = crop(scatter g[n, c, oh, ow] to the saved argmax of its window)
    avg_pool2d:  dx = crop(scatter g / (kh kw) to every entry of its window)

NOTE: conv2d's saved ``cols`` is an array copied from x, so as a constant it would cut the
path from dW back to x (d^2 L / dx dW). The twin gathers the columns again from the node's
input Tensor x instead; only when x needs no gradient is the saved array used as it is.
The pooling backwards are linear in g with constant indices, so they are exact as well: max
pooling's second derivative in x is zero wherever it exists (away from ties).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from tinygrad_edu import ops
from tinygrad_edu.tensor import Tensor

Pair = tuple[int, int]


# ----- the index arrays (numpy integers: constants of the graph) -----


def window_index(padded_shape: tuple[int, ...], kernel: Pair, stride: Pair) -> np.ndarray:
    """index[n, c, oh, ow, i, j]: the flat position in xp (padded_shape) of window (oh, ow)'s
    entry (i, j), i.e. the ``_windows`` view of ``conv_cpu`` as integers."""
    n, c, hp, wp = padded_shape
    (kh, kw), (sh, sw) = kernel, stride
    oh, ow = (hp - kh) // sh + 1, (wp - kw) // sw + 1
    images = np.arange(n * c, dtype=np.int64).reshape(n, c, 1, 1, 1, 1) * (hp * wp)
    rows = (np.arange(oh) * sh).reshape(oh, 1, 1, 1) + np.arange(kh).reshape(1, 1, kh, 1)
    cols = (np.arange(ow) * sw).reshape(1, ow, 1, 1) + np.arange(kw).reshape(1, 1, 1, kw)
    return images + rows * wp + cols  # (N, C, OH, OW, kh, kw)


def _padded(x_shape: tuple[int, ...], padding: Pair) -> tuple[int, int, int, int]:
    n, c, h, w = x_shape
    return (n, c, h + 2 * padding[0], w + 2 * padding[1])


def _interior(x_shape: tuple[int, ...], padding: Pair) -> tuple:
    """The index of x inside its padded copy."""
    (ph, pw), (h, w) = padding, x_shape[2:]
    return (slice(None), slice(None), slice(ph, ph + h), slice(pw, pw + w))


# ----- the kernels -----


class ImageKernels:
    """``conv_cpu``'s backward functions on Tensors, for one node's ``DifferentiableBackend``
    ``b`` (which knows the node's inputs: ``b.ctx.parents``)."""

    def __init__(self, b: Any) -> None:
        self.b = b

    # pad and crop are adjoint: each one's backward is the other
    def _pad(self, x: Tensor, padding: Pair) -> Tensor:
        if padding == (0, 0):
            return x
        return ops.Scatter.apply(x, _padded(x.shape, padding), _interior(x.shape, padding))

    def _crop(self, xp: Tensor, x_shape: tuple[int, ...], padding: Pair) -> Tensor:
        return xp if padding == (0, 0) else ops.GetItem.apply(xp, _interior(x_shape, padding))

    def _col2im(self, values: Tensor, index: np.ndarray, x_shape: tuple, padding: Pair) -> Tensor:
        """Add values[k] onto xp.reshape(-1)[index[k]] (index of values' shape), then crop."""
        padded = _padded(x_shape, padding)
        flat = ops.Scatter.apply(
            ops.Reshape.apply(values, (values.size,)), (int(np.prod(padded)),), index.reshape(-1)
        )
        return self._crop(ops.Reshape.apply(flat, padded), x_shape, padding)

    # ----- convolution -----

    def conv2d_backward(self, g, cols, x_shape, w, stride, padding, need_x, need_w, need_b):
        """dW = G cols^T,  db = sum of G over its columns,  dx = col2im(W^T G)  (G: g as
        (O, N OH OW)); cols gathered from the input Tensor x (see the module docstring)."""
        b, ctx = self.b, self.b.ctx
        g, w = b.tensor(g), b.tensor(w)
        n, c = x_shape[:2]
        o, _, kh, kw = w.shape
        oh, ow = g.shape[2], g.shape[3]
        gt = ops.Reshape.apply(ops.Transpose.apply(g, (1, 0, 2, 3)), (o, n * oh * ow))
        # rows (c, i, j), columns (n, oh, ow): conv_cpu's im2col order
        index = window_index(_padded(x_shape, padding), (kh, kw), stride)
        index = index.transpose(1, 4, 5, 0, 2, 3).reshape(c * kh * kw, n * oh * ow)
        dx = dw = db = None
        if need_w:
            if ctx.needs_input_grad[0]:  # a path from dW back to x: gather from x
                xp = self._pad(ctx.parents[0], padding)
                cols = ops.GetItem.apply(ops.Reshape.apply(xp, (xp.size,)), index)
            else:  # x is a constant: the saved columns are exactly right
                cols = b.tensor(cols)
            dw = ops.Reshape.apply(
                ops.MatMul.apply(gt, ops.Transpose.apply(cols, (1, 0))), tuple(w.shape)
            )
        if need_b:
            db = ops.Sum.apply(gt, (1,), False)
        if need_x:
            wt = ops.Transpose.apply(ops.Reshape.apply(w, (o, c * kh * kw)), (1, 0))
            dx = self._col2im(ops.MatMul.apply(wt, gt), index, x_shape, padding)
        return dx, dw, db

    # ----- pooling -----

    def max_pool2d_backward(self, g, arg, x_shape, kernel, stride, padding):
        """dx: g[n, c, oh, ow] added at its window's argmax (a constant index, so linear in g)."""
        g = self.b.tensor(g)
        index = window_index(_padded(x_shape, padding), kernel, stride)
        index = index.reshape(*index.shape[:4], -1)  # (N, C, OH, OW, kh kw)
        arg = np.asarray(self.b.arrays.to_numpy(self.b.array(arg)))
        at_max = np.take_along_axis(index, arg[..., None], axis=-1)[..., 0]
        return self._col2im(g, at_max, x_shape, padding)

    def avg_pool2d_backward(self, g, x_shape, kernel, stride, padding):
        """dx: each window spreads g / (kh kw) evenly over its entries."""
        g = self.b.tensor(g)
        kh, kw = kernel
        share = ops.Reshape.apply(g * (1.0 / (kh * kw)), (*g.shape, 1, 1))
        dwin = self.b.broadcast_to(share, (*g.shape, kh, kw))
        index = window_index(_padded(x_shape, padding), kernel, stride)
        return self._col2im(dwin, index, x_shape, padding)
