"""The CUDA backend: the kernel interface of ``backend/__init__.py`` on an NVIDIA GPU.

Every public function here has the name and meaning of its twin in ``reference.py``; its arrays
are numba ``DeviceNDArray``s that live in GPU memory. This module is imported only when a tensor
is put on ``device="cuda"`` (``backend.get_backend``), after ``cuda_support`` has checked that a
GPU, or the simulator, is there.

How it is organised: the public functions below check their arguments, work out output shapes,
dtypes and strides on the host (metadata only: tensor data never leaves the GPU), allocate the
output and launch a kernel from ``cuda_kernels.py`` (the optimizer steps live in
``cuda_optim.py``). The data crosses between host and device only in ``asarray`` / ``to_numpy``
(the user's ``Tensor(..., device="cuda")``, ``.numpy()``, ``.item()``), and in two documented
places where the index data is host data anyway: advanced indexing sends its flat indices, and
cross-entropy sends the labels when they come as a host array.

Layout: every array this backend makes is C-contiguous. ``reshape`` returns a view (marked, so
``is_view`` can tell the engine); ``transpose``, ``broadcast_to`` and slicing return copies made
by one strided-copy kernel, so every other kernel can index its inputs as flat arrays.

Numerics: results match the reference backend to rounding. Float32 sums accumulate in float64,
and a few float32 elementwise functions (sigmoid) compute in float64 before rounding.

In CI this runs in numba's simulator (``NUMBA_ENABLE_CUDASIM=1``), which executes the same
kernels, thread by thread, on the CPU; see docs/gpu.md.
"""

from __future__ import annotations

import builtins
import functools
import math
import warnings
from typing import Any

import numpy as np
from numba import config as numba_config
from numba import cuda

from tinygrad_edu.backend import cuda_kernels as K
from tinygrad_edu.backend import reference, rules
from tinygrad_edu.backend.cuda_optim import (  # noqa: F401  (part of the interface)
    adadelta_step,
    adagrad_step,
    adam_step,
    rmsprop_step,
    sgd_step,
)
from tinygrad_edu.errors import InputError
from tinygrad_edu.random import get_rng

# NOTE: this module defines sum, max and min (kernel names); Python's are builtins.sum etc.
Shape = tuple[int, ...]
DeviceArray = (
    Any  # a numba DeviceNDArray (the simulator's FakeCUDAArray under NUMBA_ENABLE_CUDASIM)
)
_FLOATS = (np.dtype(np.float32), np.dtype(np.float64))

if numba_config.ENABLE_CUDASIM:
    # NOTE: a real DeviceNDArray's shape is a plain tuple; the simulator's is a tuple subclass
    # that refuses negative indices. Code above the backend writes t.shape[-1], so in the
    # simulator the shape is made a plain tuple, as on the hardware.
    from numba.cuda.simulator.cudadrv.devicearray import FakeCUDAArray

    FakeCUDAArray.shape = property(lambda self: self._ary.shape)


# ----- launching -----


def _grid(n: int, threads: int = K.THREADS) -> tuple[int, int]:
    """(blocks, threads per block) for a grid-stride loop over n > 0 items.

    Small jobs get one small block (whole warps of 32): a 10-element op does not start 256
    threads, which matters little on a GPU and a lot in the simulator.
    """
    threads = builtins.min(threads, 32 * -(-n // 32))
    return builtins.min(K.MAX_BLOCKS, -(-n // threads)), threads


def _flat(x) -> DeviceArray:
    """A 1-D view of a C-contiguous device array (kernels index flat memory)."""
    return x if x.ndim == 1 else x.reshape(x.size)


def _empty(shape: Shape, dtype) -> DeviceArray:
    return cuda.device_array(tuple(shape), dtype=np.dtype(dtype))


def _c_strides(shape: Shape) -> tuple[int, ...]:
    """Element strides of a C-contiguous array of ``shape``."""
    strides, step = [], 1
    for n in reversed(shape):
        strides.append(step)
        step *= n
    return tuple(reversed(strides))


def _walk(shape: Shape, strides: tuple[int, ...]) -> tuple[tuple[int, ...], tuple[int, ...]]:
    """Kernels take at least one axis: a 0-d walk is one item with stride 0."""
    return (tuple(shape), tuple(strides)) if shape else ((1,), (0,))


def _scalar(value, dtype: np.dtype):
    """A Python scalar as a numpy scalar of ``dtype``: the kernel then computes in that dtype
    (float32 stays float32), and the simulator gets numpy's 1/0 = inf instead of an error."""
    return dtype.type(value)


def _is_device(x) -> bool:
    """A numba device array (the simulator's too, which lacks ``cuda.is_cuda_array``)."""
    return getattr(x, "__cuda_ndarray__", False)


# ----- storage -----


def asarray(data) -> DeviceArray:
    """Host numpy array -> a new device array (one host-to-device copy)."""
    if _is_device(data):
        return data
    # NOTE: np.require keeps a 0-d array 0-d (np.ascontiguousarray would make it 1-d).
    return cuda.to_device(np.require(data, requirements="C"))


def to_numpy(x) -> np.ndarray:
    """Device array -> a new host numpy array (one device-to-host copy; waits for the GPU)."""
    if isinstance(x, np.ndarray):
        return x
    return x.copy_to_host()


def full(shape: Shape, value: float, dtype) -> DeviceArray:
    out = _empty(shape, dtype)
    if out.size:
        K.fill_kernel[_grid(out.size)](_flat(out), _scalar(value, out.dtype))
    return out


def zeros(shape: Shape, dtype) -> DeviceArray:
    return full(shape, 0, dtype)


def zeros_like(x) -> DeviceArray:
    return zeros(x.shape, x.dtype)


def copy(x) -> DeviceArray:
    """A new array with x's values (a device-to-device copy)."""
    out = _empty(x.shape, x.dtype)
    if out.size:
        out.copy_to_device(x)
    return out


def copy_into(dst, src) -> None:
    """Write ``src``'s values into ``dst``'s device memory (same shape), in ``dst``'s dtype."""
    if src.dtype != dst.dtype:
        src = astype(src, dst.dtype)
    if dst.size:
        dst.copy_to_device(src)


def astype(x, dtype) -> DeviceArray:
    dtype = np.dtype(dtype)
    if dtype == x.dtype:
        return copy(x)
    out = _empty(x.shape, dtype)
    if out.size:
        K.cast_kernel[_grid(out.size)](_flat(x), _flat(out))
    return out


def is_view(x) -> bool:
    """True when ``x`` may share memory with another array: only ``reshape`` makes such arrays.

    NOTE: numba device arrays do not record whether they share memory, so ``reshape`` marks the
    views it returns with an attribute.
    """
    return getattr(x, "_tinygrad_view", False)


# ----- elementwise -----
# Output dtypes follow numpy exactly: they are read off numpy applied to one-element arrays.


def _dummy(operand):
    """A stand-in with the same dtype behaviour: a 1-element array, or the Python scalar."""
    return np.ones(1, operand) if isinstance(operand, np.dtype) else operand(1)


@functools.cache
def _result_dtype(kind: str, op: str, *operands) -> np.dtype:
    """numpy's result dtype of ``reference.<kind>(op, ...)`` for operands given as a dtype or a
    Python scalar type."""
    with warnings.catch_warnings(), np.errstate(all="ignore"):
        warnings.simplefilter("ignore")
        return getattr(reference, kind)(op, *map(_dummy, operands)).dtype


def _kind(x):
    return x.dtype if _is_device(x) else type(x)


def _unary(code: int, x, dtype: np.dtype, a: float = 0.0, b: float = 0.0):
    out = _empty(x.shape, dtype)
    if out.size:
        work = x.dtype if x.dtype in _FLOATS else np.dtype(np.float64)
        a, b = _scalar(a, work), _scalar(b, work)
        K.unary_kernel[_grid(out.size)](code, _flat(x), a, b, _flat(out))
    return out


def unary(op: str, x, a: float | None = 0.0, b: float | None = 0.0):
    """See ``reference.unary``: one thread per element, ``rules.unary_rule``."""
    if op not in rules.UNARY_CODES:
        raise InputError(
            f"unary: unknown op {op!r}; expected one of {', '.join(rules.UNARY_CODES)}"
        )
    if op == "clip":
        if a is None and b is None:
            return copy(x)
        bounds = tuple(v for v in (a, b) if v is not None)
        dtype = np.result_type(x.dtype, *bounds)  # as np.clip (Python floats are weak scalars)
        return _unary(rules.CLIP, x, dtype, *reference.clip_bounds(a, b))
    if op == "leaky_relu":
        return _unary(rules.LEAKY_RELU, x, x.dtype, a)
    return _unary(rules.UNARY_CODES[op], x, _result_dtype("unary", op, x.dtype))


_BINARY_CODES = rules.BINARY_CODES
_COMPARE_CODES = rules.COMPARE_CODES


def _broadcast_strides(shape_x: Shape, shape: Shape) -> tuple[int, ...]:
    """Element strides of a C-contiguous array of ``shape_x`` read as if broadcast to ``shape``."""
    strides = [0] * len(shape)
    step, lead = 1, len(shape) - len(shape_x)
    for d in range(len(shape_x) - 1, -1, -1):
        if shape_x[d] != 1:
            strides[d + lead] = step
        step *= shape_x[d]
    return tuple(strides)


def _check_operands(op: str, x, y) -> None:
    """Device arrays or Python scalars. NOTE: numba would silently copy a host array to the GPU
    and back at every launch, hiding a tensor on the wrong device; refuse it instead."""
    for v in (x, y):
        if not (_is_device(v) or isinstance(v, (int, float, np.number))):
            raise TypeError(
                f"{op}: expected CUDA device arrays or Python scalars, got {type(v).__name__}"
            )


def _elementwise(code: int, x, y, out_dtype: np.dtype, work_dtype: np.dtype):
    """x op y with numpy broadcasting; either side may be a Python scalar (cast to work_dtype)."""
    if not _is_device(x):  # scalar op array
        out = _empty(y.shape, out_dtype)
        if out.size:
            s = _scalar(x, work_dtype)
            K.binary_scalar_kernel[_grid(out.size)](code, _flat(y), s, True, _flat(out))
        return out
    if not _is_device(y):  # array op scalar
        out = _empty(x.shape, out_dtype)
        if out.size:
            s = _scalar(y, work_dtype)
            K.binary_scalar_kernel[_grid(out.size)](code, _flat(x), s, False, _flat(out))
        return out
    shape = np.broadcast_shapes(x.shape, y.shape)  # ValueError when they do not broadcast
    out = _empty(shape, out_dtype)
    if out.size == 0:
        return out
    if x.shape == y.shape:
        K.binary_kernel[_grid(out.size)](code, _flat(x), _flat(y), _flat(out))
        return out
    walk, x_strides = _walk(shape, _broadcast_strides(x.shape, shape))
    _, y_strides = _walk(shape, _broadcast_strides(y.shape, shape))
    K.binary_broadcast_kernel[_grid(out.size)](
        code, _flat(x), x_strides, _flat(y), y_strides, walk, _flat(out)
    )
    return out


def binary(op: str, x, y):
    """Broadcasting ``op`` in add sub mul div pow; either side may be a Python scalar."""
    if op not in _BINARY_CODES:
        raise InputError(f"binary: unknown op {op!r}; expected one of {sorted(_BINARY_CODES)}")
    _check_operands(op, x, y)
    dtype = _result_dtype("binary", op, _kind(x), _kind(y))
    return _elementwise(_BINARY_CODES[op], x, y, dtype, dtype)


def where(cond, x, y):
    """See ``reference.where``: the three operands broadcast to the result's shape (a Python
    scalar filled in), then one thread per element."""
    _check_operands("where", x, y)
    if not _is_device(cond):
        raise TypeError(f"where: expected a CUDA device array as cond, got {type(cond).__name__}")
    shape = np.broadcast_shapes(*(v.shape for v in (cond, x, y) if _is_device(v)))
    # as np.where: Python scalars are weak (a float32 array with 2.0 stays float32)
    dtype = np.result_type(*(v.dtype if _is_device(v) else v for v in (x, y)))
    out = _empty(shape, dtype)
    if out.size == 0:
        return out

    def spread(v, v_dtype):
        if not _is_device(v):
            return full(shape, v, v_dtype)
        v = v if v.dtype == v_dtype else astype(v, v_dtype)
        return v if v.shape == shape else broadcast_to(v, shape)

    c, xs, ys = spread(cond, cond.dtype), spread(x, dtype), spread(y, dtype)
    K.where_kernel[_grid(out.size)](_flat(c), _flat(xs), _flat(ys), _flat(out))
    return out


def compare(op: str, x, y):
    """Broadcasting comparison as float32 0.0/1.0 (compared in the operands' common dtype)."""
    if op not in _COMPARE_CODES:
        raise InputError(f"compare: unknown op {op!r}; expected one of {sorted(_COMPARE_CODES)}")
    _check_operands(op, x, y)
    work = _result_dtype("binary", "add", _kind(x), _kind(y))
    return _elementwise(_COMPARE_CODES[op], x, y, np.dtype(np.float32), work)


def activation_backward(op: str, g, saved, a=0.0, b=0.0):
    """See ``reference.activation_backward``: out = g * f'(.) in one kernel, one thread per
    element (``rules.backward_rule``); shapes that differ are broadcast first."""
    if op not in rules.BACKWARD_CODES:
        raise InputError(
            f"activation_backward: unknown activation {op!r}; expected one of "
            f"{', '.join(rules.BACKWARD_CODES)}"
        )
    if g.shape != saved.shape:
        shape = np.broadcast_shapes(g.shape, saved.shape)
        g, saved = broadcast_to(g, shape), broadcast_to(saved, shape)
    if op == "clip":
        if a is None and b is None:  # no bounds: the gradient passes everywhere, NaN included
            return copy(g)
        a, b = reference.clip_bounds(a, b)
    out = _empty(g.shape, g.dtype)
    if out.size:
        a, b = _scalar(a, g.dtype), _scalar(b, g.dtype)
        code = rules.BACKWARD_CODES[op]
        K.backward_kernel[_grid(out.size)](code, _flat(g), _flat(saved), a, b, _flat(out))
    return out


# ----- reductions -----


def _reduction_walks(shape: Shape, axes: tuple[int, ...]):
    """Split the axes of a C-contiguous ``shape`` into the kept and the reduced ones, each with
    its element strides: the walks of the reduction kernels."""
    strides = _c_strides(shape)
    kept = [(n, s) for d, (n, s) in enumerate(zip(shape, strides)) if d not in axes]
    reduced = [(n, s) for d, (n, s) in enumerate(zip(shape, strides)) if d in axes]
    out_walk = _walk(tuple(n for n, _ in kept), tuple(s for _, s in kept))
    red_walk = _walk(tuple(n for n, _ in reduced), tuple(s for _, s in reduced))
    return out_walk, red_walk


def _axes(x, axis) -> tuple[int, ...]:
    """None | a tuple of axes -> the sorted non-negative axes to reduce."""
    if axis is None:
        return tuple(range(x.ndim))
    return tuple(sorted(a % builtins.max(x.ndim, 1) for a in axis))


def _reduced_shape(shape: Shape, axes: tuple[int, ...], keepdims: bool) -> Shape:
    if keepdims:
        return tuple(1 if d in axes else n for d, n in enumerate(shape))
    return tuple(n for d, n in enumerate(shape) if d not in axes)


def _reduce(code: int, name: str, x, axis, keepdims: bool):
    axes = _axes(x, axis)
    red_size = math.prod(x.shape[d] for d in axes)
    if red_size == 0 and code != K.SUM:
        raise InputError(f"{name}: zero-size reduction over shape {x.shape}, axes {axes}")
    out = _empty(_reduced_shape(x.shape, axes, keepdims), x.dtype)
    if out.size == 0:
        return out
    (out_shape, out_strides), (red_shape, red_strides) = _reduction_walks(x.shape, axes)
    walks = (out_shape, out_strides, red_shape, red_strides)
    # A block per output for long reductions, unless there are many outputs and the reduced
    # axes are not the last ones: then one thread per output reads memory in step with its
    # neighbours (a sum over rows), which beats a block's strided reads.
    contiguous = red_strides[len(red_strides) - 1] == 1
    long = red_size >= K.REDUCE_BLOCK_MIN and (contiguous or out.size < K.REDUCE_MANY_OUTPUTS)
    if long and x.dtype in _FLOATS:
        blocks = builtins.min(K.MAX_BLOCKS, out.size)
        K.reduce_block_kernel[blocks, K.REDUCE_THREADS](code, _flat(x), _flat(out), *walks)
    else:
        init = _scalar(0, np.dtype(np.float64) if x.dtype in _FLOATS else x.dtype)
        K.reduce_thread_kernel[_grid(out.size)](code, _flat(x), _flat(out), *walks, init)
    return out


def sum(x, axis, keepdims: bool):  # noqa: A001
    return _reduce(K.SUM, "sum", x, axis, keepdims)


def max(x, axis, keepdims: bool):  # noqa: A001
    return _reduce(K.MAX, "max", x, axis, keepdims)


def min(x, axis, keepdims: bool):  # noqa: A001
    return _reduce(K.MIN, "min", x, axis, keepdims)


def max_backward(g, x, out, axis):
    """Gradient of max/min: the entries equal to the result share ``g`` equally.

    Composed from four kernels (mask, count, divide, multiply): it runs once per max node.
    """
    work = _result_dtype("binary", "add", x.dtype, out.dtype)
    mask = _elementwise(
        rules.SAME, x, out, np.dtype(np.float32), work
    )  # a NaN max: the NaN entries
    count = sum(mask, axis, True)
    return binary("mul", mask, binary("div", g, count))


def sum_to(g, shape: Shape):
    """Undo broadcasting: sum ``g`` down to ``shape`` (leading axes, then axes of size 1)."""
    shape = tuple(shape)
    if tuple(g.shape) == shape:
        return g
    lead = g.ndim - len(shape)
    axes = tuple(range(lead)) + tuple(
        i + lead for i, n in enumerate(shape) if n == 1 and g.shape[i + lead] != 1
    )
    return reshape(sum(g, axes, True), shape) if axes else reshape(g, shape)


def broadcast_to(x, shape: Shape):
    """x repeated along broadcast axes, as a new array (numpy returns a read-only view)."""
    shape = tuple(shape)
    np.broadcast_shapes(x.shape, shape)  # ValueError when x does not broadcast to shape
    if len(shape) < x.ndim or np.broadcast_shapes(x.shape, shape) != shape:
        raise InputError(f"broadcast_to: cannot broadcast shape {x.shape} to {shape}")
    return _gather_strided(x, 0, _broadcast_strides(x.shape, shape), shape)


def argmax(x, axis: int | None):
    """Index of the first largest entry (flattened when axis is None), as int64."""
    axes = _axes(x, None if axis is None else (axis,))
    if math.prod(x.shape[d] for d in axes) == 0:
        raise InputError(f"argmax: attempt to get argmax of an empty sequence (shape {x.shape})")
    out = _empty(_reduced_shape(x.shape, axes, False), np.int64)
    if out.size:
        (out_shape, out_strides), (red_shape, red_strides) = _reduction_walks(x.shape, axes)
        K.argmax_kernel[_grid(out.size)](
            _flat(x), _flat(out), out_shape, out_strides, red_shape, red_strides
        )
    return out


# ----- movement -----


def reshape(x, shape: Shape):
    """A view with another shape (every array here is C-contiguous, so this never copies)."""
    view = x.reshape(tuple(shape))
    view._tinygrad_view = True
    return view


def _gather_strided(x, offset: int, strides: tuple[int, ...], shape: Shape):
    """A new C-contiguous array of ``shape`` whose item i is x.flat[offset + index(i) . strides]."""
    out = _empty(shape, x.dtype)
    if out.size:
        walk, strides = _walk(shape, strides)
        K.gather_strided_kernel[_grid(out.size)](_flat(x), offset, strides, walk, _flat(out))
    return out


def transpose(x, axes: Shape):
    """The axes permuted, as a new array (a strided copy)."""
    strides = _c_strides(x.shape)
    return _gather_strided(x, 0, tuple(strides[a] for a in axes), tuple(x.shape[a] for a in axes))


def _is_basic_index(index) -> bool:
    """ints, slices, None and Ellipsis only: numpy's basic indexing, which makes a strided view."""
    parts = index if isinstance(index, tuple) else (index,)
    return all(
        part is None
        or part is Ellipsis
        or isinstance(part, slice)
        or (isinstance(part, (int, np.integer)) and not isinstance(part, (bool, np.bool_)))
        for part in parts
    )


def _basic_view(shape: Shape, index):
    """(offset, strides, shape) of x[index] for a basic index, in elements of a C-contiguous x.

    numpy does the work: a probe with x's shape and element strides over a 1-byte buffer (so
    byte offsets are element offsets) is indexed; the view's address and strides are read off.
    The probe's memory is never read.
    """
    base = np.zeros(1, dtype=np.uint8)
    probe = np.lib.stride_tricks.as_strided(base, shape=shape, strides=_c_strides(shape))
    parts = index if isinstance(index, tuple) else (index,)
    if not any(part is Ellipsis for part in parts):
        parts = parts + (Ellipsis,)  # so that a full integer index gives a 0-d view, not a scalar
    view = probe[parts]
    offset = view.__array_interface__["data"][0] - base.__array_interface__["data"][0]
    return offset, view.strides, view.shape


def _flat_indices(shape: Shape, index) -> np.ndarray:
    """The flat positions in a C-contiguous x of ``shape`` of the elements of x[index] (advanced
    indexing), computed on the host from the index alone: one broadcast (never materialised)
    array per axis holds that axis's part of the position, and numpy indexes each of them."""
    strides = _c_strides(shape)
    positions = np.broadcast_to(np.int64(0), shape)[index]
    for d, n in enumerate(shape):
        along = np.arange(n, dtype=np.int64).reshape((1,) * d + (n,) + (1,) * (len(shape) - d - 1))
        positions = positions + np.broadcast_to(along * strides[d], shape)[index]
    return np.ascontiguousarray(positions, dtype=np.int64)


def getitem(x, index):
    """numpy indexing. Basic indices (ints, slices, None, ...) run as one strided copy on the
    device. Advanced ones (integer or boolean arrays) send their flat positions (computed on the
    host from the index, which is host data) and gather."""
    if isinstance(x, np.ndarray):  # NOTE: Tensor.__getitem__ validates indices on a numpy probe
        return reference.getitem(x, index)
    if _is_basic_index(index):
        offset, strides, shape = _basic_view(x.shape, index)
        return _gather_strided(x, offset, strides, shape)
    positions = _flat_indices(x.shape, index)
    out = _empty(positions.shape, x.dtype)
    if out.size:
        K.gather_kernel[_grid(out.size)](
            _flat(x), cuda.to_device(positions.reshape(-1)), _flat(out)
        )
    return out


def getitem_backward(g, shape: Shape, index):
    """Scatter ``g`` back into zeros of ``shape``; repeated indices accumulate (atomic adds)."""
    out = zeros(shape, g.dtype)
    if g.size == 0:
        return out
    if _is_basic_index(index):
        offset, strides, view_shape = _basic_view(tuple(shape), index)
        walk, strides = _walk(view_shape, strides)
        K.scatter_strided_kernel[_grid(g.size)](_flat(g), _flat(out), offset, strides, walk)
        return out
    positions = _flat_indices(tuple(shape), index).reshape(-1)
    K.scatter_add_kernel[_grid(g.size)](_flat(g), cuda.to_device(positions), _flat(out))
    return out


def concatenate(xs: list, axis: int):
    """Join along ``axis``: each input is copied into its block of the output."""
    first = xs[0]
    axis = axis % first.ndim
    size = 0
    for x in xs:
        if x.ndim != first.ndim or any(
            x.shape[d] != first.shape[d] for d in range(first.ndim) if d != axis
        ):
            shapes = [tuple(x.shape) for x in xs]
            raise InputError(f"concatenate: shapes {shapes} differ outside axis {axis}")
        size += x.shape[axis]
    shape = tuple(first.shape[:axis]) + (size,) + tuple(first.shape[axis + 1 :])
    out = _empty(shape, np.result_type(*[x.dtype for x in xs]))
    strides = _c_strides(shape)
    start = 0
    for x in xs:
        if x.dtype != out.dtype:
            x = astype(x, out.dtype)
        if x.size:
            walk, x_strides = _walk(tuple(x.shape), strides)
            offset = start * strides[axis]
            K.scatter_strided_kernel[_grid(x.size)](_flat(x), _flat(out), offset, x_strides, walk)
        start += x.shape[axis]
    return out


# ----- linear algebra -----


def _matmul_into(a, b, transpose_a: bool, transpose_b: bool, bias=None):
    """The shared matmul launch: op(a) @ op(b) (+ bias) for arrays of 2 or more dims."""
    if a.ndim < 2 or b.ndim < 2:
        raise InputError(f"matmul: expected arrays of 2 or more dims, got {a.shape} and {b.shape}")
    dtype = np.result_type(a.dtype, b.dtype)
    if dtype not in _FLOATS:
        raise TypeError(f"matmul: the cuda backend multiplies float32/float64, got {dtype}")
    a = a if a.dtype == dtype else astype(a, dtype)
    b = b if b.dtype == dtype else astype(b, dtype)
    rows_a, cols_a = a.shape[-2:]
    rows_b, cols_b = b.shape[-2:]
    m, k = (cols_a, rows_a) if transpose_a else (rows_a, cols_a)
    k_b, n = (cols_b, rows_b) if transpose_b else (rows_b, cols_b)
    if k != k_b:
        raise InputError(f"matmul: shapes {a.shape} and {b.shape} do not align: {k} != {k_b}")
    batch = np.broadcast_shapes(a.shape[:-2], b.shape[:-2])
    out = _empty(tuple(batch) + (m, n), dtype)
    if out.size == 0:
        return out
    if bias is not None and bias.dtype != dtype:
        bias = astype(bias, dtype)
    # Element strides of op(A)[i, kk] and op(B)[kk, j]: a transpose swaps them, nothing moves.
    sa_m, sa_k = (1, cols_a) if transpose_a else (cols_a, 1)
    sb_k, sb_n = (1, cols_b) if transpose_b else (cols_b, 1)
    batch_walk, a_batch = _walk(batch, _matrix_batch_strides(a.shape, batch))
    _, b_batch = _walk(batch, _matrix_batch_strides(b.shape, batch))
    batches = math.prod(batch)
    grid = (-(-n // K.MATMUL_BN), -(-m // K.MATMUL_BM), builtins.min(batches, 65535))
    block = (K.MATMUL_BN // K.MATMUL_TN, K.MATMUL_BM // K.MATMUL_TM)
    has_bias = bias is not None
    K.matmul_kernel[grid, block](
        _flat(a), _flat(b), _flat(out), _flat(bias) if has_bias else _flat(out), has_bias,
        m, n, k, sa_m, sa_k, sb_k, sb_n, batch_walk, a_batch, b_batch,
    )  # fmt: skip
    return out


def _matrix_batch_strides(shape: Shape, batch: Shape) -> tuple[int, ...]:
    """Element strides between the matrices of an array of ``shape`` along the broadcast batch
    axes ``batch`` (0 where the array has size 1 or lacks the axis)."""
    matrix = shape[len(shape) - 2] * shape[len(shape) - 1]
    return tuple(s * matrix for s in _broadcast_strides(tuple(shape[:-2]), tuple(batch)))


def matmul(a, b, transpose_a: bool = False, transpose_b: bool = False):
    """``op(a) @ op(b)`` for arrays of 2 or more dims, batch dims broadcast; the transposes are
    read through swapped strides, never copied."""
    return _matmul_into(a, b, transpose_a, transpose_b)


def _check_activation(name: str, activation) -> None:
    if activation not in rules.FUSED_ACTIVATIONS:
        raise InputError(
            f"{name}: activation must be one of {list(rules.FUSED_ACTIVATIONS)}, got {activation!r}"
        )


def _rows_of(x):
    """(..., features) -> a 2-D view (rows, features)."""
    return x if x.ndim == 2 else reshape(x, (math.prod(x.shape[:-1]), x.shape[x.ndim - 1]))


def linear_forward(x, w, b, activation=None):
    """y = act(x W^T + b) for x (..., in), W (out, in), b (out,): one matmul kernel that adds
    the bias as it writes y, then the activation in place (see matmul_kernel's NOTE)."""
    _check_activation("linear_forward", activation)
    y = _matmul_into(_rows_of(x), w, False, True, bias=b)
    if activation is not None and y.size:
        flat, zero = _flat(y), _scalar(0, y.dtype)
        code = rules.FUSED_ACTIVATIONS[activation][0]
        K.unary_kernel[_grid(y.size)](code, flat, zero, zero, flat)
    return y if x.ndim == 2 else reshape(y, tuple(x.shape[:-1]) + (w.shape[0],))


def linear_backward(g, x, w, need_x: bool, need_w: bool, need_b: bool, activation=None, y=None):
    """dZ = G act'(Z) (one fused pass, from the saved output y);  dX = dZ W,  dW = dZ^T X,
    db = sum of dZ over rows; each only when needed."""
    _check_activation("linear_backward", activation)
    dz = g if activation is None else activation_backward(activation, g, y)
    dz2, x2 = _rows_of(dz), _rows_of(x)
    dx = matmul(dz2, w) if need_x else None
    if dx is not None and g.ndim != 2:
        dx = reshape(dx, tuple(g.shape[:-1]) + (w.shape[1],))
    dw = matmul(dz2, x2, transpose_a=True) if need_w else None
    db = sum(dz2, (0,), False) if need_b else None
    return dx, dw, db


# ----- softmax family -----


def _rows(x, axis: int) -> tuple[int, int]:
    """(length, inner) of the rows along ``axis`` (see cuda_kernels' softmax banner)."""
    if not -x.ndim <= axis < x.ndim:
        raise InputError(f"softmax: axis {axis} is out of range for an array of {x.ndim} dims")
    axis = axis % x.ndim
    return x.shape[axis], math.prod(x.shape[axis + 1 :])


def softmax(x, axis: int, log: bool = False):
    """See ``reference.softmax``: one thread per row, ``rules.softmax_row``."""
    out = _empty(x.shape, np.result_type(x.dtype, np.float32))
    length, inner = _rows(x, axis)
    if out.size:
        rows = out.size // length
        K.softmax_rows_kernel[_grid(rows)](log, _flat(x), _flat(out), length, inner)
    return out


def softmax_backward(g, y, axis: int, log: bool = False):
    """See ``reference.softmax_backward``: one thread per row, ``rules.softmax_backward_row``."""
    out = _empty(y.shape, y.dtype)
    length, inner = _rows(y, axis)
    if out.size:
        rows = out.size // length
        K.softmax_backward_rows_kernel[_grid(rows)](
            log, _flat(g), _flat(y), _flat(out), length, inner
        )
    return out


def _labels_on_device(logits, labels):
    """Labels as an int64 device array.

    Labels are checked (``reference.check_labels``: one int in [0, C) per row) on the host.
    NOTE: device labels are copied to the host for the check (n * 8 bytes and a wait for the
    GPU): an unchecked label out of range would give a silent NaN loss, which costs more.
    """
    n = logits.shape[0]
    host = labels.copy_to_host() if _is_device(labels) else np.asarray(labels)
    reference.check_labels(logits, host)
    if not _is_device(labels):
        labels = cuda.to_device(np.ascontiguousarray(host, dtype=np.int64))
    elif labels.dtype != np.int64:
        labels = astype(labels, np.int64)
    if labels.size != n:
        raise InputError(f"cross_entropy: {labels.size} labels for {n} rows of logits")
    return _flat(labels)


def cross_entropy_forward(logits, labels, reduction="none"):
    """(loss, probs): per-row losses -log softmax(z)[label] (one thread per row of the (n, c)
    logits), reduced by ``reduction`` ("none", "sum", "mean"), and the softmax probabilities
    (saved for backward)."""
    if logits.ndim != 2:
        raise InputError(f"cross_entropy: expected (n, classes) logits, got shape {logits.shape}")
    n, c = logits.shape
    labels = _labels_on_device(logits, labels)
    losses = _empty((n,), logits.dtype)
    probs = _empty((n, c), logits.dtype)
    if n and c:
        K.cross_entropy_rows_kernel[_grid(n)](_flat(logits), labels, _flat(losses), _flat(probs))
    if reduction == "none":
        return losses, probs
    total = sum(losses, None, False)
    return (binary("div", total, float(n)) if reduction == "mean" else total), probs


def cross_entropy_backward(g, probs, labels, reduction="none"):
    """dz = (softmax(z) - onehot(label)) * g_i, one thread per element; with "sum" and "mean"
    the one gradient of the reduced loss is shared by every row (divided by n for "mean")."""
    n, c = probs.shape
    labels = _labels_on_device(probs, labels)
    out = _empty((n, c), probs.dtype)
    if out.size:
        if g.dtype != probs.dtype:
            g = astype(g, probs.dtype)
        scale = 1.0 / n if reduction == "mean" else 1.0
        K.cross_entropy_backward_kernel[_grid(out.size)](
            _flat(g), scale, _flat(probs), labels, _flat(out)
        )
    return out


# ----- random numbers -----
# One xoroshiro128+ state per thread of the random kernels, kept on the GPU between calls and
# re-created from the library's generator when ``tg.manual_seed`` replaces it.

RNG_STATES = K.MAX_BLOCKS * K.THREADS // 16  # 65,536 generators: enough threads for any GPU

_rng_states = None
_rng_owner = None


def _states():
    """The device generator states, seeded from ``tinygrad_edu.random.get_rng()``.

    NOTE: numba's ``create_xoroshiro128p_states`` spaces the generators 2^64 draws apart with
    jump-ahead, which takes many seconds for 65,536 states in the simulator. Instead, each state
    is 128 random bits from the seeded numpy generator; two of them overlap within the next
    2^64 draws with probability about 2^-32 (xoroshiro128+ has period 2^128 - 1).
    """
    global _rng_states, _rng_owner
    rng = get_rng()
    if _rng_states is None or rng is not _rng_owner:
        from numba.cuda.random import xoroshiro128p_dtype

        host = np.empty(RNG_STATES, dtype=xoroshiro128p_dtype)
        bits = rng.integers(1, 2**63, size=(RNG_STATES, 2), dtype=np.int64, endpoint=False)
        host["s0"] = bits[:, 0].astype(np.uint64) * 2 + 1  # odd: a state is never all zeros
        host["s1"] = bits[:, 1].astype(np.uint64)
        _rng_states, _rng_owner = cuda.to_device(host), rng
    return _rng_states


def _random_grid(n: int) -> tuple[int, int]:
    blocks, threads = _grid(n)
    return builtins.min(blocks, RNG_STATES // threads), threads


def bernoulli_mask(shape: Shape, p: float, dtype):
    """An array of ``shape`` with each entry 1 with probability ``p`` and 0 otherwise, drawn on
    the GPU (dropout keeps an entry where the mask is 1: pass p = 1 - drop probability)."""
    if not 0.0 <= p <= 1.0:
        raise InputError(f"bernoulli_mask: p must be in [0, 1], got {p}")
    out = _empty(shape, dtype)
    if out.size:
        K.bernoulli_kernel[_random_grid(out.size)](_states(), np.float64(p), _flat(out))
    return out


def normal(shape: Shape, std: float, dtype):
    """An array of ``shape`` with entries drawn from N(0, std^2) on the GPU."""
    if not std >= 0:
        raise InputError(f"normal: std must be >= 0, got {std}")
    out = _empty(shape, dtype)
    if out.size:
        K.normal_kernel[_random_grid(out.size)](_states(), np.float64(std), _flat(out))
    return out
