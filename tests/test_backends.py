"""One kernel suite for every backend: ``reference`` (numpy, the specification), ``cpu`` (Numba) and
``cuda`` (numba.cuda; in CI numba's simulator, through tests/test_cuda_sim.py).

Each test runs a kernel on a backend with inputs from ``tests/kernel_inputs.py`` (NaN, +-inf,
-0.0, denormals, 0-d and empty arrays, float32 and float64, sizes on both sides of every dispatch
threshold, which are lowered for the tests) and compares the result with the reference backend:
same type (a numpy array once back on the host), shape and dtype, values equal up to the usual
rounding, NaN where the reference has NaN, and the inputs unchanged. The ``test_reference_*``
tests check the reference itself against closed forms and independent numpy.

``cuda`` is a parameter only where CUDA kernels can run (a GPU, or ``NUMBA_ENABLE_CUDASIM=1``).
``TINYGRAD_EDU_TEST_BACKENDS=cuda`` restricts the run to some backends (the simulator run does,
since reference and cpu already ran in the main process).
"""

from __future__ import annotations

import math
import os

import numpy as np
import pytest
from kernel_inputs import (
    CLIP_BOUNDS,
    CPU_ONLY,
    CUDA_REDUCE_THRESHOLDS,
    DTYPES,
    ELEMENTWISE_SHAPES,
    LEAKY_SLOPE,
    ROW_SHAPES,
    for_backend,
    labels,
    lower_thresholds,
    moderate,
    saved_output,
    special_values,
    values,
)

from tinygrad_edu.backend import KERNELS, cuda_support, get_backend
from tinygrad_edu.errors import InputError

R = get_backend("reference")


def _backends() -> list[str]:
    names = ["reference", "cpu"]
    if cuda_support.cuda_unavailable_reason() is None:
        names.append("cuda")
    wanted = os.environ.get("TINYGRAD_EDU_TEST_BACKENDS")
    return [n for n in names if n in wanted.split(",")] if wanted else names


BACKENDS = _backends()


class On:
    """Kernels of one backend called with host numpy arrays: the arrays go to the backend
    (``asarray``), the results come back (``to_numpy``), and the inputs must be unchanged."""

    def __init__(self, name: str) -> None:
        self.name = name
        self.module = get_backend(name)

    def _dev(self, a):
        if isinstance(a, np.ndarray):
            return self.module.asarray(a)
        if isinstance(a, list):
            return [self._dev(v) for v in a]
        return a

    def _host(self, out):
        if isinstance(out, tuple):
            return tuple(self._host(v) for v in out)
        return None if out is None else self.module.to_numpy(out)

    def __call__(self, kernel: str, *args):
        dev_args = [self._dev(a) for a in args]
        pairs = list(_array_pairs(args, dev_args))
        snapshots = [a.copy() for a, _ in pairs]
        out = getattr(self.module, kernel)(*dev_args)
        for before, (_, dev) in zip(snapshots, pairs):
            after = self.module.to_numpy(dev)
            np.testing.assert_array_equal(after, before, err_msg=f"{kernel} modified its input")
        return self._host(out)


def _array_pairs(args, dev_args):
    """(host array, its backend array) for every array argument (also inside lists)."""
    for a, d in zip(args, dev_args):
        if isinstance(a, list):
            yield from _array_pairs(a, d)
        elif isinstance(a, np.ndarray):
            yield a, d


@pytest.fixture(params=BACKENDS)
def on(request, monkeypatch) -> On:
    K = None
    if request.param == "cuda":
        from tinygrad_edu.backend import cuda_kernels as K
    lower_thresholds(monkeypatch, K)
    return On(request.param)


@pytest.fixture(autouse=True)
def _quiet_numpy():
    with np.errstate(all="ignore"):
        yield


def assert_close(got, want, rtol=None, atol=0.0, err=""):
    """``got`` is a numpy array like ``want`` (shape, dtype); NaN where ``want`` has NaN, the same
    infinities, and |got - want| <= atol + rtol |want| elsewhere (rtol: 8 ulp unless given;
    ``atol`` may be an array). -0.0 == 0.0 here."""
    assert type(got) is np.ndarray, f"{err}: {type(got)}"
    want = np.asarray(want)
    assert got.shape == want.shape, f"{err}: shape {got.shape} != {want.shape}"
    assert got.dtype == want.dtype, f"{err}: dtype {got.dtype} != {want.dtype}"
    if want.dtype.kind not in "fc":
        np.testing.assert_array_equal(got, want, err_msg=err)
        return
    rtol = 8 * np.finfo(want.dtype).eps if rtol is None else rtol
    g, w = got.astype(np.float64), want.astype(np.float64)
    finite = np.isfinite(w)
    bad = np.isnan(g) != np.isnan(w)
    bad |= ~finite & ~np.isnan(w) & (g != w)  # the same infinity
    tol = np.broadcast_to(atol + rtol * np.abs(w), w.shape)
    with np.errstate(invalid="ignore"):
        bad |= finite & ~(np.abs(g - w) <= tol)
    if bad.any():
        where = np.argwhere(bad)[:6] if bad.ndim else [()]
        lines = [f"  at {tuple(i)}: got {g[tuple(i)]!r}, want {w[tuple(i)]!r}" for i in where]
        pytest.fail(f"{err}: {int(bad.sum())} of {bad.size} differ\n" + "\n".join(lines))


def eps(dtype) -> float:
    return float(np.finfo(dtype).eps)


# ----- the interface -----


def test_every_backend_defines_every_kernel(on):
    missing = [name for name in KERNELS if not callable(getattr(on.module, name, None))]
    assert missing == []


def test_kernel_names_are_unique():
    assert len(set(KERNELS)) == len(KERNELS)


# ----- storage -----


@pytest.mark.parametrize("dtype", DTYPES)
def test_storage(on, rng, dtype):
    x = values(rng, (3, 4), dtype)
    assert_close(on("copy", x), x, rtol=0)
    for shape in [(), (0,), (2, 3)]:
        assert_close(on.module.to_numpy(on.module.zeros(shape, dtype)), np.zeros(shape, dtype))
        assert_close(
            on.module.to_numpy(on.module.full(shape, -1.5, dtype)), np.full(shape, -1.5, dtype)
        )
    assert_close(on("zeros_like", x), np.zeros_like(x))
    for to in (np.float32, np.float64, np.int64):
        finite = np.where(np.isfinite(x), x, 1.0).clip(-1e6, 1e6)
        assert_close(on("astype", finite, to), R.astype(finite, to), rtol=0)
    dst = on.module.asarray(np.zeros((3, 4), np.float32))
    on.module.copy_into(dst, on.module.asarray(x))
    expected = np.zeros((3, 4), np.float32)
    R.copy_into(expected, x)
    assert_close(on.module.to_numpy(dst), expected, rtol=0)


# ----- unary ops and activations -----

UNARY = ["neg", "exp", "log", "sqrt", "abs", "sign", "tanh", "relu", "sigmoid"]
UNARY += ["sin", "cos", "log1p", "expm1", "square", "reciprocal"]  # contract v2
EXACT_UNARY = ("neg", "abs", "sign", "relu", "leaky_relu", "clip", "square", "reciprocal")
CLIPS = [CLIP_BOUNDS, (None, CLIP_BOUNDS[1]), (CLIP_BOUNDS[0], None), (None, None), (0.0, 0.0)]


def _unary_cases():
    yield from ((op, 0.0, 0.0) for op in UNARY)
    yield ("leaky_relu", LEAKY_SLOPE, 0.0)
    yield ("leaky_relu", 0.0, 0.0)
    yield from (("clip", lo, hi) for lo, hi in CLIPS)


UNARY_CASES = list(_unary_cases())


def _tolerance(op, dtype):
    if op in EXACT_UNARY:
        return {"rtol": 0.0}
    return {"rtol": 8 * eps(dtype), "atol": 8 * float(np.finfo(dtype).smallest_subnormal)}


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("op, a, b", UNARY_CASES, ids=[f"{c[0]}{c[1:]}" for c in UNARY_CASES])
def test_unary(on, rng, op, a, b, dtype):
    for name, shape in for_backend(on.name, ELEMENTWISE_SHAPES):
        x = values(rng, shape, dtype)
        assert_close(
            on("unary", op, x, a, b), R.unary(op, x, a, b), err=name, **_tolerance(op, dtype)
        )


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("op", ["neg", "abs"])
def test_unary_keeps_the_sign_of_zero_and_denormals(on, op, dtype):
    x = special_values(dtype)
    got, want = on("unary", op, x), R.unary(op, x)
    np.testing.assert_array_equal(np.signbit(got), np.signbit(want))
    np.testing.assert_array_equal(got, want)


@pytest.mark.parametrize("dtype", DTYPES)
def test_unary_on_a_non_contiguous_input(on, rng, dtype):
    if on.name == "cuda":
        pytest.skip("cuda arrays are always C-contiguous")
    x = values(rng, (13, 8), dtype).T
    for op, a, b in UNARY_CASES:
        assert_close(on("unary", op, x, a, b), R.unary(op, x, a, b), **_tolerance(op, dtype))


def test_unary_of_integers_follows_numpy(on):
    x = np.array([-3, -1, 0, 2, 5], dtype=np.int64)
    for op in ("neg", "abs", "sign", "relu", "exp", "sigmoid", "tanh", "sqrt"):
        assert_close(on("unary", op, x), R.unary(op, x), err=op)


def test_reference_unary_against_closed_forms():
    for dtype in DTYPES:
        x = special_values(dtype)
        wide = x.astype(np.float64)
        nan = np.isnan(wide)
        relu = np.where(nan, np.nan, np.where(wide > 0, wide, 0.0))
        assert_close(R.unary("relu", x), relu.astype(dtype), rtol=0)
        leaky = np.where(nan, np.nan, np.where(wide > 0, wide, wide * LEAKY_SLOPE))
        assert_close(R.unary("leaky_relu", x, LEAKY_SLOPE), leaky.astype(dtype), rtol=eps(dtype))
        lo, hi = CLIP_BOUNDS
        clip = np.where(nan, np.nan, np.minimum(np.maximum(wide, lo), hi))
        assert_close(R.unary("clip", x, lo, hi), clip.astype(dtype), rtol=0)
        assert_close(R.unary("clip", x, None, None), x, rtol=0)
        # sigmoid(x) = exp(-log(1 + exp(-x))), computed in float64 by logaddexp
        sigmoid = np.exp(-np.logaddexp(0.0, -wide))
        tiny = 2 * float(np.finfo(dtype).smallest_subnormal)  # one rounding of a denormal result
        assert_close(R.unary("sigmoid", x), sigmoid.astype(dtype), rtol=4 * eps(dtype), atol=tiny)
        tanh = [math.tanh(v) if not math.isnan(v) else math.nan for v in wide]
        assert_close(R.unary("tanh", x), np.array(tanh, dtype), rtol=4 * eps(dtype))
        assert np.all(np.isnan(R.unary("relu", np.array([np.nan], dtype))))


# ----- activation backward -----

ACTIVATIONS = [
    ("relu", 0.0, 0.0),
    ("leaky_relu", LEAKY_SLOPE, 0.0),
    ("sigmoid", 0.0, 0.0),
    ("tanh", 0.0, 0.0),
] + [("clip", lo, hi) for lo, hi in CLIPS]


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("op, a, b", ACTIVATIONS, ids=[f"{c[0]}{c[1:]}" for c in ACTIVATIONS])
def test_activation_backward(on, rng, op, a, b, dtype):
    for name, shape in for_backend(on.name, ELEMENTWISE_SHAPES):
        g = values(rng, shape, dtype)
        saved = saved_output(op, values(rng, shape, dtype))
        want = R.activation_backward(op, g, saved, a, b)
        # 1 - y^2 cancels near |y| = 1: an error of eps |g| whichever way it is rounded
        atol = 4 * eps(dtype) * np.abs(g.astype(np.float64)) if op == "tanh" else 0.0
        rtol = 0.0 if op in EXACT_UNARY else 4 * eps(dtype)
        assert_close(on("activation_backward", op, g, saved, a, b), want, rtol, atol, err=name)


@pytest.mark.parametrize("op, a, b", ACTIVATIONS, ids=[f"{c[0]}{c[1:]}" for c in ACTIVATIONS])
def test_activation_backward_at_the_kinks(on, op, a, b):
    """relu'(0) = 0, leaky_relu'(0) = slope, clip' = 1 on the bounds (PyTorch's rules)."""
    x = np.array([0.0, -0.0, 1.0, -1.0, *CLIP_BOUNDS, 0.8, -0.6])
    g = np.full(x.shape, 2.0)
    saved = saved_output(op, x)
    got = on("activation_backward", op, g, saved, a, b)
    assert_close(got, R.activation_backward(op, g, saved, a, b), rtol=eps(np.float64))
    if op == "relu":
        np.testing.assert_array_equal(got, [0, 0, 2, 0, 0, 2, 2, 0])
    if op == "leaky_relu":
        np.testing.assert_array_equal(got, [0.2, 0.2, 2, 0.2, 0.2, 2, 2, 0.2])
    if (op, a, b) == ("clip", *CLIP_BOUNDS):
        np.testing.assert_array_equal(got, [2, 2, 0, 0, 2, 2, 0, 0])


@pytest.mark.parametrize("op, a, b", ACTIVATIONS, ids=[f"{c[0]}{c[1:]}" for c in ACTIVATIONS])
def test_reference_activation_backward_against_finite_differences(rng, op, a, b):
    x = rng.uniform(-3, 3, 50)
    x = x[np.min(np.abs(x[:, None] - np.array([0.0, *CLIP_BOUNDS])), axis=1) > 1e-3]  # no kinks
    h = 1e-6
    numeric = (R.unary(op, x + h, a, b) - R.unary(op, x - h, a, b)) / (2 * h)
    g = rng.standard_normal(x.shape)
    got = R.activation_backward(op, g, saved_output(op, x), a, b)
    np.testing.assert_allclose(got, g * numeric, rtol=1e-6, atol=1e-8)


# ----- binary ops and comparisons -----

BINARY = ["add", "sub", "mul", "div", "pow", "maximum", "minimum"]


def _binary_shapes():
    """(name, x shape, y shape): same shapes (every elementwise size), then broadcasting."""
    for name, shape in for_backend(on.name, ELEMENTWISE_SHAPES):
        yield name, (shape, shape)
    for sx, sy in [
        ((5, 8), (8,)), ((8,), (5, 8)), ((5, 8), (5, 1)), ((5, 1), (1, 8)), ((1, 8), (5, 1)),
        ((2, 1, 4), (3, 1)), ((2, 3, 4), (1, 3, 1)), ((), (2, 3)), ((1,), ()), ((0, 3), (3,)),
        ((8, 12), (12,)), ((8, 12), (8, 1)), ((5, 19), (19,)), ((4, 1, 24), (1, 3, 1)),
    ]:  # fmt: skip
        yield f"{sx} with {sy}", (sx, sy)


BINARY_SHAPES = dict(_binary_shapes())
CPU_ONLY.update(k for k in BINARY_SHAPES if "(8, 12)" in k or "19)" in k or "24)" in k)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("op", BINARY)
def test_binary(on, rng, op, dtype):
    rtol = 4 * eps(dtype) if op == "pow" else 0.0
    for name, (sx, sy) in for_backend(on.name, BINARY_SHAPES):
        x, y = values(rng, sx, dtype), values(rng, sy, dtype)
        assert_close(on("binary", op, x, y), R.binary(op, x, y), rtol, err=name)


SCALAR_SHAPES = {k: ELEMENTWISE_SHAPES[k] for k in ("0-d", "small", "n=95", "n=96")}


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("op", BINARY)
def test_binary_with_a_python_scalar_on_either_side(on, rng, op, dtype):
    rtol = 4 * eps(dtype) if op == "pow" else 0.0
    for scalar in (2.0, -0.5, 0.0, -0.0, math.nan, math.inf, -math.inf, 3, 0):
        for name, shape in for_backend(on.name, SCALAR_SHAPES):
            x = values(rng, shape, dtype)
            err = f"{name} {op} {scalar!r}"
            assert_close(on("binary", op, x, scalar), R.binary(op, x, scalar), rtol, err=err)
            assert_close(on("binary", op, scalar, x), R.binary(op, scalar, x), rtol, err=err)


def test_binary_mixed_dtypes_promote_like_numpy(on, rng):
    x32 = rng.standard_normal((8, 12)).astype(np.float32)
    x64 = rng.standard_normal((8, 12))
    i64 = rng.integers(-3, 4, (8, 12))
    for x, y in [(x32, x64), (x64, x32), (x32, i64), (i64, x64), (x32, x64[0]), (i64, i64)]:
        for op in ("add", "mul", "div"):
            err = f"{x.dtype} {op} {y.dtype}"
            assert_close(on("binary", op, x, y), R.binary(op, x, y), rtol=0, err=err)
        assert_close(on("binary", "add", i64, 0.5), R.binary("add", i64, 0.5), rtol=0)


@pytest.mark.parametrize("dtype", DTYPES)
def test_where(on, rng, dtype):
    """x where cond != 0 else y, broadcast (cond 0/1 float32, as the Tensor layer passes it),
    with a Python scalar on either side; selection is exact (NaN, inf and -0.0 kept)."""
    for name, (sx, sy) in for_backend(on.name, BINARY_SHAPES):
        x, y = values(rng, sx, dtype), values(rng, sy, dtype)
        shape = np.broadcast_shapes(sx, sy)
        cond = np.asarray(rng.random(shape[-1:]) < 0.5, dtype=np.float32)  # 0-d: an array too
        assert_close(on("where", cond, x, y), R.where(cond, x, y), rtol=0, err=name)
        assert_close(on("where", cond, x, 0.0), R.where(cond, x, 0.0), rtol=0, err=name)
        assert_close(on("where", cond, -1.5, y), R.where(cond, -1.5, y), rtol=0, err=name)


COMPARE = ["eq", "ne", "lt", "le", "gt", "ge"]


@pytest.mark.parametrize("dtype", DTYPES)
def test_compare(on, rng, dtype):
    for name, (sx, sy) in for_backend(on.name, BINARY_SHAPES):
        x = values(rng, sx, dtype)
        y = x.copy() if sx == sy else values(rng, sy, dtype)  # same shapes: ties and NaN == NaN
        if sx == sy:
            y.reshape(-1)[::3] = values(rng, y.reshape(-1)[::3].shape, dtype)
        for op in COMPARE:
            got = on("compare", op, x, y)
            assert_close(got, R.compare(op, x, y), err=f"{op} {name}")
            assert_close(on("compare", op, x, 0.0), R.compare(op, x, 0.0), err=f"{op} {name}")


# ----- reductions -----

AXES = [None, (0,), (1,), (2,), (0, 1), (1, 2), (0, 2), (0, 1, 2)]
REDUCE_SHAPES = {
    "small 3-d": (2, 3, 4),
    "96 elements": (4, 3, 8),  # the CPU's parallel sum over leading or trailing axes
    "with an empty axis": (2, 0, 3),
}


def _sum_bound(x, axis, dtype):
    """Two sums of the same numbers in another order (or accumulator) differ by at most about
    n eps sum |x_i|."""
    n = x.size if axis is None else math.prod(x.shape[d] for d in axis)
    return (n + 2) * eps(dtype) * np.sum(np.abs(x.astype(np.float64)), axis=axis, keepdims=True)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("keepdims", [False, True])
def test_sum_max_min(on, rng, dtype, keepdims):
    for name, shape in for_backend(on.name, REDUCE_SHAPES):
        x = moderate(rng, shape, dtype)
        for axis in AXES:
            err = f"{name} axis={axis}"
            want = R.sum(x, axis, keepdims)
            bound = _sum_bound(x, axis, dtype)
            bound = bound if keepdims else bound.reshape(want.shape)
            assert_close(on("sum", x, axis, keepdims), want, 0.0, bound, err="sum " + err)
            empty = 0 in [shape[d] for d in (range(3) if axis is None else axis)]
            for kernel in ("max", "min"):
                if empty:
                    with pytest.raises(ValueError):
                        on(kernel, x, axis, keepdims)
                    continue
                want = getattr(R, kernel)(x, axis, keepdims)
                assert_close(on(kernel, x, axis, keepdims), want, rtol=0, err=f"{kernel} {err}")


# (shape, axis): with CUDA_REDUCE_THRESHOLDS, rows of 9 >= REDUCE_BLOCK_MIN get a block each;
# strided reads (axis 0) too with 3 outputs (< REDUCE_MANY_OUTPUTS), but not with 5; 7 < 8 never.
LONG_REDUCTIONS = [((3, 9), (1,)), ((3, 7), (1,)), ((9, 3), (0,)), ((9, 5), (0,)), ((9,), None)]


@pytest.mark.parametrize("dtype", DTYPES)
def test_long_reductions(on, rng, monkeypatch, dtype):
    if on.name == "cuda":
        from tinygrad_edu.backend import cuda_kernels

        for name, value in CUDA_REDUCE_THRESHOLDS.items():
            monkeypatch.setattr(cuda_kernels, name, value)
    for shape, axis in LONG_REDUCTIONS:
        x = moderate(rng, shape, dtype)
        want = R.sum(x, axis, False)
        bound = _sum_bound(x, axis, dtype).reshape(want.shape)
        assert_close(on("sum", x, axis, False), want, 0.0, bound, err=f"sum {shape} {axis}")
        for kernel in ("max", "min"):
            want = getattr(R, kernel)(x, axis, True)
            assert_close(on(kernel, x, axis, True), want, rtol=0, err=f"{kernel} {shape}")


def test_sum_of_0d_and_empty_arrays(on):
    arrays = (np.array(2.5), np.zeros(0), np.zeros((0, 3), np.float32))
    for x in arrays:
        assert_close(on("sum", x, None, False), R.sum(x, None, False), err=str(x.shape))
        assert_close(on("sum", x, None, True), R.sum(x, None, True), err=str(x.shape))


def test_reference_reductions_against_python(rng):
    x = rng.standard_normal((4, 6)) * 1e3
    x[1, 2] = np.nan
    for i, row in enumerate(x):
        want = math.fsum(row) if i != 1 else math.nan
        assert_close(R.sum(x, (1,), False)[i : i + 1], np.array([want]), rtol=1e-13)
        assert_close(R.max(x, (1,), False)[i : i + 1], np.array([max(row) if i != 1 else np.nan]))
        assert_close(R.min(x, (1,), False)[i : i + 1], np.array([min(row) if i != 1 else np.nan]))
    np.testing.assert_array_equal(R.argmax(x, 1), [int(np.argmax(r)) for r in x])
    assert R.argmax(x, None).item() == 1 * 6 + 2  # a NaN counts as the largest


@pytest.mark.parametrize("dtype", DTYPES)
def test_argmax(on, rng, dtype):
    for name, shape in for_backend(on.name, REDUCE_SHAPES):
        x = np.round(moderate(rng, shape, dtype))  # rounded: ties
        for axis in (None, 0, 1, 2):
            if 0 in (shape if axis is None else (shape[axis],)):
                with pytest.raises(ValueError):
                    on("argmax", x, axis)
                continue
            assert_close(on("argmax", x, axis), R.argmax(x, axis), err=f"{name} axis={axis}")


@pytest.mark.parametrize("dtype", DTYPES)
def test_max_backward_shares_ties(on, rng, dtype):
    x = np.round(moderate(rng, (4, 3, 8), dtype))
    x[0, 0, :2] = np.nan
    for axis in AXES if on.name != "cuda" else AXES[:4]:
        for kernel in ("max", "min"):
            out = getattr(R, kernel)(x, axis, True)
            g = values(rng, out.shape, dtype, specials=False)
            want = R.max_backward(g, x, out, axis)
            got = on("max_backward", g, x, out, axis)
            assert_close(got, want, rtol=eps(dtype), err=f"{kernel} axis={axis}")


@pytest.mark.parametrize("dtype", DTYPES)
def test_sum_to_and_broadcast_to(on, rng, dtype):
    for shape, target in [
        ((2, 3, 4), (3, 4)), ((2, 3, 4), (3, 1)), ((2, 3, 4), (1, 1, 4)), ((2, 3), (1, 1)),
        ((2, 3), ()), ((8, 12), (12,)), ((8, 12), (8, 1)), ((2, 3), (2, 3)), ((0, 3), (3,)),
        ((3, 4), (4,)), ((13,), ()),  # 12 and 13 elements: BROADCAST_COPY_MAX
    ]:  # fmt: skip
        g = moderate(rng, shape, dtype)
        axes = tuple(range(len(shape) - len(target))) + tuple(
            i + len(shape) - len(target) for i, n in enumerate(target) if n == 1
        )
        bound = _sum_bound(g, axes or None, dtype) if axes else 0.0
        want = R.sum_to(g, target)
        bound = np.reshape(bound, want.shape) if axes else 0.0
        assert_close(on("sum_to", g, target), want, 0.0, bound, err=f"{shape} -> {target}")
        small = values(rng, target, dtype)
        assert_close(on("broadcast_to", small, shape), R.broadcast_to(small, shape), rtol=0)


# ----- movement -----

INDICES = [
    1, -1, (1, 2), (slice(None), 1), (slice(1, None), slice(None, None, 2)),
    (slice(None, None, -1), Ellipsis, None), (None, 0, slice(3, 0, -2)), (Ellipsis, 2),
    (slice(5, 9),), np.array([0, 2, 0]), (np.array([1, 0]), np.array([3, 3])),
    (slice(None), np.array([[0, 1], [3, 3]])), np.array([True, False, True]),
    (np.array([2, 2]), slice(1, 3)),
]  # fmt: skip


@pytest.mark.parametrize("dtype", DTYPES)
def test_movement(on, rng, dtype):
    x = values(rng, (2, 3, 4), dtype)
    for shape in [(6, 4), (24,), (4, -1), (2, 3, 4, 1)]:
        assert_close(on("reshape", x, shape), R.reshape(x, shape), rtol=0)
    for axes in [(1, 0, 2), (2, 0, 1), (0, 2, 1), (2, 1, 0)]:
        assert_close(on("transpose", x, axes), R.transpose(x, axes), rtol=0)
    m = values(rng, (3, 4), dtype)
    for index in INDICES:
        out = R.getitem(m, index)
        assert_close(on("getitem", m, index), out, rtol=0, err=repr(index))
        g = values(rng, out.shape, dtype, specials=False)
        want = R.getitem_backward(g, m.shape, index)
        assert_close(on("getitem_backward", g, m.shape, index), want, rtol=eps(dtype))
    parts = [values(rng, (2, n), dtype) for n in (3, 0, 1)]
    assert_close(on("concatenate", parts, 1), R.concatenate(parts, 1), rtol=0)
    assert_close(on("concatenate", parts[:1] * 3, 0), R.concatenate(parts[:1] * 3, 0), rtol=0)


# ----- softmax and log-softmax -----

SOFTMAX_SHAPES = {**{k: v for k, v in ROW_SHAPES.items()}, "3-d": (2, 3, 4), "rows of 0": (3, 0)}


def _softmax_atol(x, axis, log, want):
    """exp(x - logsumexp) carries the absolute error of x - logsumexp, about eps max|x| (the
    rows' largest finite entry), as a relative error; log-softmax carries it as it is."""
    finite = np.where(np.isfinite(x), np.abs(x.astype(np.float64)), 0.0)
    scale = 8 * eps(x.dtype) * (1 + np.max(finite, axis=axis, keepdims=True, initial=0.0))
    # a denormal probability has fewer digits: allow an error of the smallest normal's order
    return scale if log else scale * (np.abs(want.astype(np.float64)) + np.finfo(x.dtype).tiny)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("log", [False, True], ids=["softmax", "log_softmax"])
def test_softmax(on, rng, dtype, log):
    for name, shape in for_backend(on.name, SOFTMAX_SHAPES):
        for axis in range(-1, len(shape)):
            x = moderate(rng, shape, dtype)
            want = R.softmax(x, axis, log)
            atol = _softmax_atol(x, axis, log, want)
            got = on("softmax", x, axis, log)
            assert_close(got, want, 8 * eps(dtype), atol, err=f"{name} axis={axis}")


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("log", [False, True], ids=["softmax", "log_softmax"])
def test_softmax_backward(on, rng, dtype, log):
    for name, shape in for_backend(on.name, SOFTMAX_SHAPES):
        for axis in range(-1, len(shape)):
            y = R.softmax(moderate(rng, shape, dtype), axis, log)
            g = values(rng, shape, dtype, specials=False)
            want = R.softmax_backward(g, y, axis, log)
            length = shape[axis]
            g64, y64 = np.abs(g.astype(np.float64)), y.astype(np.float64)
            with np.errstate(all="ignore"):
                p = np.exp(y64) if log else np.abs(y64)
                total = np.sum(g64 * (1 if log else p), axis=axis, keepdims=True)
                atol = 8 * (length + 2) * eps(dtype) * (g64 + p * (1 + np.abs(y64)) * total)
            atol = np.where(np.isfinite(atol), atol, 0.0)
            got = on("softmax_backward", g, y, axis, log)
            assert_close(got, want, 8 * eps(dtype), atol, err=f"{name} axis={axis}")


def test_softmax_of_extreme_rows(on):
    x = np.array(
        [
            [1000.0, 0.0, -1000.0],  # no overflow
            [-np.inf, 0.0, 1.0],  # -inf gets probability 0
            [np.nan, 0.0, 1.0],  # a NaN row stays NaN
            [np.inf, 0.0, 1.0],  # inf - inf: NaN
            [-np.inf, -np.inf, -np.inf],  # nothing to normalise: NaN
        ]
    )
    for log in (False, True):
        assert_close(on("softmax", x, 1, log), R.softmax(x, 1, log), err=f"log={log}")
        assert_close(on("softmax", x.T.copy(), 0, log), R.softmax(x.T.copy(), 0, log))
    assert_close(on("softmax", x[:2], 1, False)[1], [0.0, 1 / (1 + np.e), np.e / (1 + np.e)])


def test_reference_softmax_against_closed_forms(rng):
    x = rng.standard_normal((6, 5)) * 4
    y, ly = R.softmax(x, 1), R.softmax(x, 1, log=True)
    np.testing.assert_allclose(y.sum(axis=1), 1.0, rtol=1e-14)
    np.testing.assert_allclose(ly, np.log(y), rtol=1e-13, atol=1e-13)
    np.testing.assert_allclose(ly, x - np.logaddexp.reduce(x, axis=1, keepdims=True), atol=1e-13)
    pair = x[:, :2]  # two classes: softmax is the sigmoid of the difference
    np.testing.assert_allclose(
        R.softmax(pair, 1)[:, 0], R.unary("sigmoid", pair[:, 0] - pair[:, 1])
    )
    g = rng.standard_normal(x.shape)
    for i in range(len(x)):  # backward = g times the Jacobian diag(y) - y y^T
        jac = np.diag(y[i]) - np.outer(y[i], y[i])
        np.testing.assert_allclose(R.softmax_backward(g, y, 1)[i], jac.T @ g[i], atol=1e-14)
        jac_log = np.eye(5) - y[i][None, :]  # d log y_j / d x_k = [j == k] - y_k
        got = R.softmax_backward(g, ly, 1, log=True)[i]
        np.testing.assert_allclose(got, jac_log.T @ g[i], atol=1e-13)


# ----- cross-entropy -----


def _ce_atol(z, dtype):
    finite = np.where(np.isfinite(z), np.abs(z.astype(np.float64)), 0.0)
    return 8 * (z.shape[1] + 2) * eps(dtype) * (1 + np.max(finite, axis=1, initial=0.0))


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("reduction", ["none", "sum", "mean"])
def test_cross_entropy(on, rng, dtype, reduction):
    for name, (n, c) in for_backend(on.name, ROW_SHAPES):
        z = moderate(rng, (n, c), dtype)
        lab = labels(rng, n, c)
        loss, probs = on("cross_entropy_forward", z, lab, reduction)
        want_loss, want_probs = R.cross_entropy_forward(z, lab, reduction)
        atol = _ce_atol(z, dtype)
        if reduction != "none":
            atol = np.sum(atol) + (n + 2) * eps(dtype) * np.nansum(np.abs(want_loss))
            atol = atol / (n if reduction == "mean" and n else 1)
        assert_close(loss, want_loss, 8 * eps(dtype), atol, err=f"loss {name}")
        p_atol = _ce_atol(z, dtype)[:, None] * np.abs(want_probs.astype(np.float64))
        assert_close(probs, want_probs, 8 * eps(dtype), p_atol, err=f"probs {name}")
        g = values(rng, (n,) if reduction == "none" else (), dtype, specials=False)
        got = on("cross_entropy_backward", g, want_probs, lab, reduction)
        want = R.cross_entropy_backward(g, want_probs, lab, reduction)
        g_atol = 4 * eps(dtype) * np.abs(g.astype(np.float64)).reshape(-1, 1)
        assert_close(got, want, 4 * eps(dtype), g_atol, err=f"backward {name}")


def test_reference_cross_entropy_against_closed_forms(rng):
    z = rng.standard_normal((6, 4)) * 3
    lab = rng.integers(0, 4, 6)
    losses, probs = R.cross_entropy_forward(z, lab)
    want = np.logaddexp.reduce(z, axis=1) - z[np.arange(6), lab]
    np.testing.assert_allclose(losses, want, rtol=1e-13)
    np.testing.assert_allclose(probs, np.exp(z) / np.exp(z).sum(axis=1, keepdims=True))
    for reduction, scale in (("sum", 1.0), ("mean", 1 / 6)):
        total, _ = R.cross_entropy_forward(z, lab, reduction)
        np.testing.assert_allclose(total, want.sum() * scale, rtol=1e-13)
        got = R.cross_entropy_backward(np.array(2.0), probs, lab, reduction)
        np.testing.assert_allclose(got, (probs - np.eye(4)[lab]) * 2.0 * scale, atol=1e-15)
    g = rng.standard_normal(6)
    got = R.cross_entropy_backward(g, probs, lab)
    np.testing.assert_allclose(got, (probs - np.eye(4)[lab]) * g[:, None], atol=1e-15)


# NOTE: an out-of-range label used to give a silent NaN loss (CUDA) instead of an error.
@pytest.mark.parametrize("reduction", ["none", "sum", "mean"])
@pytest.mark.parametrize("shape", [(5, 7), (8, 12)], ids=["serial", "parallel"])
def test_out_of_range_labels_raise_naming_the_label(on, rng, shape, reduction):
    """Also as device arrays on CUDA (``on`` sends every array to the backend)."""
    n, c = shape
    z = values(rng, shape, np.float64, specials=False)
    for bad in (c, -1, c + 5, 2**40, -(2**40)):
        lab = labels(rng, n, c)
        lab[n // 2] = bad
        with pytest.raises(InputError, match=rf"label {bad} is out of range"):
            on("cross_entropy_forward", z, lab, reduction)


# ----- matrix products and linear layers -----


def _product_bound(a, b, k, dtype):
    """|op(a) @ op(b) - exact| <= (k + 2) eps (|a| @ |b|) (any order of summation)."""
    return (k + 2) * eps(dtype) * (np.abs(a.astype(np.float64)) @ np.abs(b.astype(np.float64)))


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("ta, tb", [(False, False), (True, False), (False, True), (True, True)])
def test_matmul(on, rng, dtype, ta, tb):
    shapes = [
        ((3, 4), (4, 2)), ((1, 1), (1, 1)), ((9, 17), (17, 10)), ((0, 3), (3, 2)),
        ((2, 0), (0, 3)), ((2, 1, 3, 4), (5, 4, 2)), ((3, 5), (2, 5, 4)),
    ]  # fmt: skip
    if on.name == "cuda":  # a tile of 256 threads per launch: few launches in the simulator
        shapes = shapes[:4] if (ta, tb) == (False, False) else shapes[2:3]
    for sa, sb in shapes:
        a = values(rng, sa, dtype, specials=False)
        b = values(rng, sb, dtype, specials=False)
        a_in = np.swapaxes(a, -1, -2).copy() if ta else a
        b_in = np.swapaxes(b, -1, -2).copy() if tb else b
        want = R.matmul(a_in, b_in, ta, tb)
        bound = _product_bound(a, b, sa[-1], dtype)
        got = on("matmul", a_in, b_in, ta, tb)
        assert_close(got, want, 0.0, bound, err=f"{sa} @ {sb}")


# (n, in, out): the small kernel (n * out <= SMALL_LINEAR_MAX = 24), BLAS and the serial
# bias-activation loop (25), its parallel build (96 = PARALLEL_MIN), numpy's exp for sigmoid and
# tanh (130 > SCALAR_EXP_MAX), an empty batch and no input features.
LINEAR_SHAPES = [(4, 5, 6), (5, 3, 5), (8, 3, 12), (10, 2, 13), (1, 7, 1), (0, 5, 3), (3, 0, 2)]
LINEAR_ACTIVATIONS = [None, "relu", "sigmoid", "tanh"]


def linear_shapes(on, extra=()):
    """The CPU's thresholds mean nothing to CUDA: it runs one small and the degenerate shapes."""
    shapes = LINEAR_SHAPES + list(extra)
    return (
        [s for s in shapes if s in [(4, 5, 6), (0, 5, 3), (3, 0, 2)]]
        if on.name == "cuda"
        else shapes
    )


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("activation", LINEAR_ACTIVATIONS)
def test_linear_forward(on, rng, dtype, activation):
    for n, k, m in linear_shapes(on):
        x = values(rng, (n, k), dtype, specials=False)
        w = values(rng, (m, k), dtype, specials=False)
        b = values(rng, (m,), dtype, specials=False)
        for bias in (b, None):
            want = R.linear_forward(x, w, bias, activation)
            bound = _product_bound(x, w.T, k, dtype) + (0 if bias is None else eps(dtype) * 4)
            got = on("linear_forward", x, w, bias, activation)
            err = f"{(n, k, m)} bias={bias is not None}"
            assert_close(got, want, 4 * eps(dtype), bound + 4 * eps(dtype), err=err)
    x3 = values(rng, (2, 3, 5), dtype, specials=False)
    w3 = values(rng, (4, 5), dtype, specials=False)
    got = on("linear_forward", x3, w3, None, activation)
    bound = 7 * eps(dtype) * (np.abs(x3.astype(np.float64)) @ np.abs(w3.T)) + 4 * eps(dtype)
    assert_close(got, R.linear_forward(x3, w3, None, activation), 4 * eps(dtype), bound)


NEEDS = [(True, True, True), (True, False, False), (False, True, True), (False, False, True)]


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("activation", LINEAR_ACTIVATIONS)
def test_linear_backward(on, rng, dtype, activation):
    for n, k, m in linear_shapes(on, [(8, 2, 6)]):  # (8, 2, 6): 48 = DB_ONLY_MAX
        x = values(rng, (n, k), dtype, specials=False)
        w = values(rng, (m, k), dtype, specials=False)
        b = values(rng, (m,), dtype, specials=False)
        g = values(rng, (n, m), dtype, specials=False)
        y = R.linear_forward(x, w, b, activation)
        # |act'| <= 1 for these activations: bound dZ's products with |G|
        g64 = np.abs(g.astype(np.float64))
        bounds = (
            (m + 4) * eps(dtype) * (g64 @ np.abs(w.astype(np.float64))),
            (n + 4) * eps(dtype) * (g64.T @ np.abs(x.astype(np.float64))),
            (n + 4) * eps(dtype) * g64.sum(axis=0),
        )
        for need in NEEDS if on.name != "cuda" else NEEDS[::3]:
            got = on("linear_backward", g, x, w, *need, activation, y)
            want = R.linear_backward(g, x, w, *need, activation, y)
            for part, a, e, bound in zip("xwb", got, want, bounds):
                err = f"d{part} {(n, k, m)} need={need}"
                if e is None:
                    assert a is None, err
                else:
                    assert_close(a, e, 4 * eps(dtype), bound + 4 * eps(dtype), err=err)


def test_reference_linear_against_einsum(rng):
    x, w, b = rng.standard_normal((5, 3)), rng.standard_normal((4, 3)), rng.standard_normal(4)
    z = np.einsum("ik,jk->ij", x, w) + b
    np.testing.assert_allclose(R.linear_forward(x, w, b), z, rtol=1e-13)
    np.testing.assert_allclose(R.linear_forward(x, w, b, "tanh"), np.tanh(z), rtol=1e-13)
    np.testing.assert_allclose(R.linear_forward(x, w, b, "relu"), np.maximum(z, 0), rtol=1e-13)
    g = rng.standard_normal((5, 4))
    y = np.tanh(z)
    dz = g * (1 - y**2)
    dx, dw, db = R.linear_backward(g, x, w, True, True, True, "tanh", y)
    np.testing.assert_allclose(dx, np.einsum("ij,jk->ik", dz, w), rtol=1e-12)
    np.testing.assert_allclose(dw, np.einsum("ij,ik->jk", dz, x), rtol=1e-12)
    np.testing.assert_allclose(db, dz.sum(axis=0), rtol=1e-12)
    np.testing.assert_allclose(R.matmul(x, w, False, True), z - b, rtol=1e-13)


# ----- NaN must propagate through relu -----
# NOTE: relu(NaN) was 0 on CUDA (and in a fused linear layer) and NaN on the CPU.


@pytest.mark.parametrize("dtype", DTYPES)
def test_relu_of_nan_is_nan(on, rng, dtype):
    relu_shapes = {k: ELEMENTWISE_SHAPES[k] for k in ("0-d", "small", "n=95", "n=96", "n=300")}
    for name, shape in for_backend(on.name, relu_shapes):
        x = values(rng, shape, dtype, specials=False)
        x.reshape(-1)[::3] = np.nan
        got = on("unary", "relu", x)
        np.testing.assert_array_equal(np.isnan(got), np.isnan(x), err_msg=name)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("shape", LINEAR_SHAPES[:4], ids=str)
def test_fused_linear_relu_of_a_nan_row_is_nan(on, rng, dtype, shape):
    n, k, m = shape
    if on.name == "cuda" and shape != LINEAR_SHAPES[0]:
        pytest.skip("the CPU's linear paths")
    x = values(rng, (n, k), dtype, specials=False)
    x[1, 0] = np.nan  # row 1 of the output is NaN, whatever the signs
    w = values(rng, (m, k), dtype, specials=False)
    b = np.full(m, -100.0, dtype)  # every other output is negative: relu gives 0
    got = on("linear_forward", x, w, b, "relu")
    expected = np.zeros((n, m), bool)
    expected[1] = True
    np.testing.assert_array_equal(np.isnan(got), expected)


# ----- 0-d arrays -----


def test_0d_arrays_keep_their_shape(on):
    """(A regression test: cuda.asarray once made a 0-d array 1-d.)"""
    x = np.array(-1.5)
    assert on("copy", x).shape == ()
    for op in ("neg", "exp", "relu", "sigmoid"):
        assert_close(on("unary", op, x), R.unary(op, x), err=op)
    assert_close(on("binary", "mul", x, 2.0), R.binary("mul", x, 2.0))
    assert_close(on("binary", "add", x, np.ones((2, 3))), R.binary("add", x, np.ones((2, 3))))
    assert_close(on("sum", x, None, True), R.sum(x, None, True))
    g = np.array(2.0)
    want = R.activation_backward("tanh", g, np.tanh(x))
    assert_close(on("activation_backward", "tanh", g, np.tanh(x)), want)


# ----- one real-size case -----


def test_parallel_builds_at_the_real_threshold(monkeypatch, rng):
    """The CPU backend at its default PARALLEL_MIN (4M elements), just above it."""
    from tinygrad_edu import config

    monkeypatch.setattr(config, "PARALLEL_MIN", 1 << 22)
    cpu = On("cpu")
    x = values(rng, (1 << 22) + 1, np.float32)
    for op, a in (("relu", 0.0), ("leaky_relu", LEAKY_SLOPE)):
        assert_close(cpu("unary", op, x, a), R.unary(op, x, a), rtol=0, err=op)
    assert_close(cpu("binary", "mul", x, 2.0), R.binary("mul", x, 2.0), rtol=0)
