"""Every CPU kernel against the numpy reference backend (its executable specification).

Each kernel runs on a small input (numpy or the serial Numba build) and on one just above
``config.PARALLEL_MIN`` elements (the parallel Numba build), in float32 and float64, with NaN
and inf among the values where the kernel is elementwise.
"""

from __future__ import annotations

import numpy as np
import pytest

from tinygrad_edu import config
from tinygrad_edu.backend import KERNELS, cpu
from tinygrad_edu.backend import reference as ref

DTYPES = [np.float32, np.float64]
# (rows, cols): "big" is the smallest 64-column matrix at or above PARALLEL_MIN elements.
ROWS_BIG = -(-config.PARALLEL_MIN // 64) + 1
SHAPES = {"small": (3, 5), "big": (ROWS_BIG, 64)}
SIZES = list(SHAPES)


def test_big_is_just_above_parallel_min():
    n = SHAPES["big"][0] * SHAPES["big"][1]
    assert config.PARALLEL_MIN <= n < config.PARALLEL_MIN + 200


# ----- helpers -----


def assert_same(got, expected, dtype=None, rtol=None, atol=None):
    """Same type, shape and dtype as the reference, values equal within the dtype's rounding."""
    assert type(got) is np.ndarray, type(got)
    expected = np.asarray(expected)
    assert got.shape == expected.shape, (got.shape, expected.shape)
    assert got.dtype == expected.dtype, (got.dtype, expected.dtype)
    f32 = got.dtype == np.float32
    rtol = rtol if rtol is not None else (2e-6 if f32 else 1e-13)
    atol = atol if atol is not None else (1e-6 if f32 else 1e-13)
    np.testing.assert_allclose(got, expected, rtol=rtol, atol=atol, equal_nan=True)


class Unchanged:
    """Context manager: the arrays given are not modified (kernels never write their inputs)."""

    def __init__(self, *arrays):
        self.arrays = [a for a in arrays if isinstance(a, np.ndarray)]
        self.copies = [a.copy() for a in self.arrays]

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        if exc[0] is None:
            for a, c in zip(self.arrays, self.copies):
                np.testing.assert_array_equal(a, c, err_msg="a kernel modified its input")


def data(rng, shape, dtype, specials=True, lo=-3.0, hi=3.0):
    """Random values with NaN, +-inf, 0 and -0 sprinkled in (first entries, so small arrays get
    them too)."""
    a = rng.uniform(lo, hi, shape)
    if specials:
        flat = a.reshape(-1)
        special = [np.nan, np.inf, -np.inf, 0.0, -0.0, 1e-30, -50.0, 50.0]
        k = min(len(special), flat.size)
        flat[:k] = special[:k]
        idx = rng.choice(flat.size, size=min(20, flat.size), replace=False)
        flat[idx] = rng.choice(special, size=idx.size)
    return a.astype(dtype)


@pytest.fixture(autouse=True)
def _quiet_numpy():
    with np.errstate(all="ignore"):
        yield


# ----- the interface -----


def test_every_kernel_exists_in_reference_and_cpu():
    missing = [
        (backend.__name__, name)
        for backend in (ref, cpu)
        for name in KERNELS
        if not callable(getattr(backend, name, None))
    ]
    assert not missing, missing


def test_kernel_names_are_unique():
    assert len(set(KERNELS)) == len(KERNELS)


# ----- storage -----


@pytest.mark.parametrize("dtype", DTYPES)
def test_storage_kernels(rng, dtype):
    a = rng.standard_normal((3, 4)).astype(dtype)
    for backend in (ref, cpu):
        assert backend.to_numpy(backend.asarray(a)) is not None
        np.testing.assert_array_equal(backend.to_numpy(backend.asarray(a)), a)
        z = backend.zeros((2, 3), dtype)
        assert z.dtype == dtype and z.shape == (2, 3) and not z.any()
        f = backend.full((2,), 1.5, dtype)
        assert f.dtype == dtype and f.tolist() == [1.5, 1.5]
        zl = backend.zeros_like(a)
        assert zl.dtype == dtype and zl.shape == a.shape and not zl.any()
        c = backend.copy(a.T)
        np.testing.assert_array_equal(c, a.T)
        assert c.flags.c_contiguous and not np.shares_memory(c, a)
        other = np.float64 if dtype == np.float32 else np.float32
        assert backend.astype(a, other).dtype == other
        assert backend.is_view(a[1:]) and backend.is_view(np.broadcast_to(a[0], (3, 4)))
        assert not backend.is_view(np.zeros(3))


# ----- elementwise -----

UNARY_OPS = ["neg", "exp", "log", "sqrt", "abs", "relu", "sigmoid", "tanh", "sign"]


@pytest.mark.parametrize("size", SIZES)
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("op", UNARY_OPS)
def test_unary(rng, op, dtype, size):
    x = data(rng, SHAPES[size], dtype)
    with Unchanged(x):
        assert_same(cpu.unary(op, x), ref.unary(op, x), atol=1e-12 if dtype == np.float64 else None)


@pytest.mark.parametrize("op", UNARY_OPS)
def test_unary_matches_plain_numpy_formulas(rng, op):
    x = data(rng, SHAPES["big"], np.float64, lo=-5, hi=5)
    formulas = {
        "neg": np.negative,
        "exp": np.exp,
        "log": np.log,
        "sqrt": np.sqrt,
        "abs": np.abs,
        "relu": lambda a: np.maximum(a, 0.0),
        "sigmoid": lambda a: np.exp(-np.logaddexp(0.0, -a)),
        "tanh": np.tanh,
        "sign": np.sign,
    }
    assert_same(cpu.unary(op, x), formulas[op](x), atol=1e-15)


@pytest.mark.parametrize("size", SIZES)
@pytest.mark.parametrize("dtype", DTYPES)
def test_unary_on_non_contiguous_input(rng, dtype, size):
    x = data(rng, SHAPES[size], dtype).T  # a transposed view
    for op in ("exp", "relu", "sigmoid"):
        assert_same(cpu.unary(op, x), ref.unary(op, x))


BINARY_OPS = ["add", "sub", "mul", "div", "pow"]


@pytest.mark.parametrize("size", SIZES)
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("op", BINARY_OPS)
def test_binary_same_shape(rng, op, dtype, size):
    x, y = data(rng, SHAPES[size], dtype), data(rng, SHAPES[size], dtype)
    y.reshape(-1)[-3:] = 0.0  # x / 0
    x.reshape(-1)[-2:] = [0.0, -2.0]
    with Unchanged(x, y):
        assert_same(cpu.binary(op, x, y), ref.binary(op, x, y))


@pytest.mark.parametrize("size", SIZES)
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("op", BINARY_OPS)
@pytest.mark.parametrize("scalar", [2.0, -0.5, 0.0, np.nan, np.inf, 3])
def test_binary_with_a_scalar_on_either_side(rng, op, dtype, size, scalar):
    x = data(rng, SHAPES[size], dtype)
    with Unchanged(x):
        assert_same(cpu.binary(op, x, scalar), ref.binary(op, x, scalar))
        assert_same(cpu.binary(op, scalar, x), ref.binary(op, scalar, x))


NUMPY_SCALARS = {
    "np.float64": np.float64(1.5),
    "np.float32": np.float32(1.5),
    "0-d float64": np.array(1.5),
    "0-d float32": np.array(2.0, np.float32),
    "(1,) float32": np.array([1.5], np.float32),
    "(1, 1) float64": np.array([[1.5]]),
}


@pytest.mark.parametrize(
    "size, scalar",
    [(size, name) for size in SIZES for name in NUMPY_SCALARS],
)
@pytest.mark.parametrize("op", ["add", "mul", "div", "pow"])
def test_binary_with_numpy_scalars_and_size_one_arrays(rng, op, size, scalar):
    """numpy scalars and 1-element arrays promote as numpy says, whatever the array's size."""
    x = data(rng, SHAPES[size], np.float32, specials=False, lo=0.5, hi=2.0)
    s = NUMPY_SCALARS[scalar]
    assert_same(cpu.binary(op, x, s), ref.binary(op, x, s))
    assert_same(cpu.binary(op, s, x), ref.binary(op, s, x))


def _broadcast_patterns(size):
    r, c = SHAPES[size]
    a, b = (3, 4) if size == "small" else (9, 65)
    return [
        ((r, c), (c,)),
        ((c,), (r, c)),
        ((r, c), (r, 1)),
        ((r, 1), (r, c)),
        ((r, 1), (1, c)),
        ((1, c), (r, 1)),
        ((a, 1, c), (b, 1)),
        ((b, 1), (a, 1, c)),
        ((a, b, c), (1, b, 1)),
        ((a, b, 1), (c,)),
        ((r, c), (1, 1)),
        ((1, 1), (r, c)),
    ]


@pytest.mark.parametrize("size", SIZES)
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("op", BINARY_OPS)
def test_binary_general_broadcasting(rng, op, dtype, size):
    for sx, sy in _broadcast_patterns(size):
        x, y = data(rng, sx, dtype), data(rng, sy, dtype)
        with Unchanged(x, y):
            assert_same(cpu.binary(op, x, y), ref.binary(op, x, y))


@pytest.mark.parametrize("size", SIZES)
def test_binary_broadcasting_non_contiguous_inputs(rng, size):
    r, c = SHAPES[size]
    x = rng.standard_normal((c, r)).T  # (r, c), Fortran order
    y = rng.standard_normal((c, 2))[:, 0]  # (c,), strided
    z = rng.standard_normal((r, 2))[:, :1]  # (r, 1), strided
    for op in BINARY_OPS[:4]:
        assert_same(cpu.binary(op, x, y), ref.binary(op, x, y))
        assert_same(cpu.binary(op, z, x), ref.binary(op, z, x))
        assert_same(cpu.binary(op, x, x), ref.binary(op, x, x))


@pytest.mark.parametrize("size", SIZES)
def test_binary_mixed_dtypes_follow_numpy(rng, size):
    x32 = rng.standard_normal(SHAPES[size]).astype(np.float32)
    x64 = rng.standard_normal(SHAPES[size])
    i64 = rng.integers(-3, 3, SHAPES[size])
    for x, y in [(x32, x64), (x64, x32), (x32, i64), (i64, x64), (x32, x64[0]), (i64, i64)]:
        for op in ("add", "mul", "div"):
            assert_same(cpu.binary(op, x, y), ref.binary(op, x, y))


@pytest.mark.parametrize("size", SIZES)
@pytest.mark.parametrize("dtype", DTYPES)
def test_compare(rng, dtype, size):
    x = data(rng, SHAPES[size], dtype).round()
    y = data(rng, SHAPES[size][1:], dtype).round()
    for op in ("eq", "ne", "lt", "le", "gt", "ge"):
        got = cpu.compare(op, x, y)
        assert got.dtype == np.float32
        assert_same(got, ref.compare(op, x, y))
        assert_same(cpu.compare(op, x, 0.0), ref.compare(op, x, 0.0))


# ----- fused activation kernels -----


@pytest.mark.parametrize("size", SIZES)
@pytest.mark.parametrize("dtype", DTYPES)
def test_activation_backward_kernels(rng, dtype, size):
    shape = SHAPES[size]
    g, x = data(rng, shape, dtype), data(rng, shape, dtype)
    y_sig = ref.unary("sigmoid", data(rng, shape, dtype, specials=False))
    y_tanh = ref.unary("tanh", data(rng, shape, dtype, specials=False))
    with Unchanged(g, x, y_sig, y_tanh):
        assert_same(cpu.relu_backward(g, x), ref.relu_backward(g, x))
        assert_same(cpu.sigmoid_backward(g, y_sig), ref.sigmoid_backward(g, y_sig))
        assert_same(cpu.tanh_backward(g, y_tanh), ref.tanh_backward(g, y_tanh))
        for slope in (0.01, 0.2, 0.0):
            assert_same(cpu.leaky_relu(x, slope), ref.leaky_relu(x, slope))
            assert_same(cpu.leaky_relu_backward(g, x, slope), ref.leaky_relu_backward(g, x, slope))


@pytest.mark.parametrize("size", SIZES)
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize(
    "lo, hi", [(-1.0, 1.0), (None, 0.5), (-0.5, None), (None, None), (0.0, 0.0)]
)
def test_clip_kernels(rng, dtype, size, lo, hi):
    g, x = data(rng, SHAPES[size], dtype), data(rng, SHAPES[size], dtype)
    x.reshape(-1)[-4:] = [-1.0, 1.0, 0.5, -0.5]  # exactly on the bounds
    with Unchanged(g, x):
        assert_same(cpu.clip(x, lo, hi), ref.clip(x, lo, hi))
        assert_same(cpu.clip_backward(g, x, lo, hi), ref.clip_backward(g, x, lo, hi))


def test_activation_backward_kinks_and_nan():
    x = np.array([0.0, -0.0, np.nan, 1.0, -1.0])
    g = np.ones(5)
    for backend in (ref, cpu):
        np.testing.assert_array_equal(backend.relu_backward(g, x)[:2], [0.0, 0.0])
        np.testing.assert_array_equal(
            backend.leaky_relu_backward(g, x, 0.1)[[0, 3, 4]], [0.1, 1.0, 0.1]
        )
        np.testing.assert_array_equal(
            backend.clip_backward(g[:3], np.array([-1.0, 1.0, 1.5]), -1.0, 1.0), [1.0, 1.0, 0.0]
        )


# ----- reductions -----

AXES_3D = [None, (0,), (2,), (1,), (0, 1), (1, 2), (0, 2), (0, 1, 2)]


@pytest.mark.parametrize("size", SIZES)
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("keepdims", [False, True])
def test_sum_over_leading_trailing_and_middle_axes(rng, dtype, size, keepdims):
    r, c = SHAPES[size]
    x = rng.standard_normal((r, 4, c // 4 if size == "big" else c)).astype(dtype)
    with Unchanged(x):
        for axis in AXES_3D:
            rtol = 1e-5 if dtype == np.float32 else 1e-12
            assert_same(
                cpu.sum(x, axis, keepdims), ref.sum(x, axis, keepdims), rtol=rtol, atol=rtol
            )


@pytest.mark.parametrize("size", SIZES)
@pytest.mark.parametrize("dtype", DTYPES)
def test_sum_2d_rows_and_columns(rng, dtype, size):
    x = rng.standard_normal(SHAPES[size]).astype(dtype)
    rtol = 1e-5 if dtype == np.float32 else 1e-12
    for axis in [(0,), (1,), None]:
        for keepdims in (False, True):
            assert_same(
                cpu.sum(x, axis, keepdims), ref.sum(x, axis, keepdims), rtol=rtol, atol=rtol
            )
    assert_same(cpu.sum(x.T, (0,), False), ref.sum(x.T, (0,), False), rtol=rtol, atol=rtol)


def test_sum_with_nan_and_inf():
    x = np.ones(SHAPES["big"])
    x[3, 5], x[7, 1] = np.nan, np.inf
    for axis in [(0,), (1,), None]:
        assert_same(cpu.sum(x, axis, False), ref.sum(x, axis, False))


@pytest.mark.parametrize("size", SIZES)
@pytest.mark.parametrize("dtype", DTYPES)
def test_max_min_argmax_and_max_backward(rng, dtype, size):
    x = rng.integers(-5, 5, SHAPES[size]).astype(dtype)  # many ties
    x[1, 2] = np.nan
    for axis in [None, (0,), (1,), (0, 1)]:
        for name in ("max", "min"):
            out = getattr(cpu, name)(x, axis, True)
            assert_same(out, getattr(ref, name)(x, axis, True))
            g = rng.standard_normal(out.shape).astype(dtype)
            assert_same(cpu.max_backward(g, x, out, axis), ref.max_backward(g, x, out, axis))
    for axis in [None, 0, 1]:
        assert_same(cpu.argmax(x, axis), ref.argmax(x, axis))


@pytest.mark.parametrize("size", SIZES)
def test_sum_to_and_broadcast_to(rng, size):
    r, c = SHAPES[size]
    g = rng.standard_normal((2, r, c))
    for shape in [(r, c), (c,), (1, c), (r, 1), (1, 1), (), (2, 1, c), (2, r, c)]:
        assert_same(cpu.sum_to(g, shape), ref.sum_to(g, shape), rtol=1e-12, atol=1e-12)
        lead = g.sum(axis=tuple(range(3 - len(shape))))
        ones = tuple(i for i, n in enumerate(shape) if n == 1)
        expected = lead.sum(axis=ones, keepdims=True).reshape(shape)
        np.testing.assert_allclose(cpu.sum_to(g, shape), expected, rtol=1e-12)
    b = cpu.broadcast_to(np.arange(3.0), (2, 3))
    np.testing.assert_array_equal(b, [[0, 1, 2], [0, 1, 2]])


# ----- movement -----


def test_movement_kernels(rng):
    x = rng.standard_normal((4, 5, 3))
    for backend in (ref, cpu):
        np.testing.assert_array_equal(backend.reshape(x, (20, 3)), x.reshape(20, 3))
        np.testing.assert_array_equal(backend.transpose(x, (2, 0, 1)), x.transpose(2, 0, 1))
        for index in [1, (slice(None, None, -1), 2), (np.array([0, 0, 3]),), (Ellipsis, [1, 1])]:
            np.testing.assert_array_equal(backend.getitem(x, index), x[index])
            g = rng.standard_normal(x[index].shape)
            expected = np.zeros_like(x)
            np.add.at(expected, index, g)
            np.testing.assert_array_equal(backend.getitem_backward(g, x.shape, index), expected)
        parts = [x, x[:, :2], x[:, :1]]
        np.testing.assert_array_equal(backend.concatenate(parts, 1), np.concatenate(parts, 1))
    assert isinstance(cpu.getitem(x, (0, 0, 0)), np.ndarray)  # 0-d results are arrays


# ----- softmax family and cross-entropy, row by row -----


@pytest.mark.parametrize("size", SIZES)
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("scale", [1.0, 1e4])
def test_softmax_family_rows(rng, dtype, size, scale):
    x = (rng.standard_normal(SHAPES[size]) * scale).astype(dtype)
    x[0, :] = np.nan  # a NaN row stays NaN
    x[1, 0] = -np.inf  # -inf gets probability 0
    g = rng.standard_normal(SHAPES[size]).astype(dtype)
    # inputs of magnitude 1e4 carry an absolute rounding error of about 1e4 ulp (x - logsumexp
    # and x - max - log(sum) round differently), and exp() turns it into a relative one
    eps = np.finfo(dtype).eps
    tol = {"rtol": 1e-5 if dtype == np.float32 else 1e-12, "atol": 1e-13 + 8 * eps * scale}
    for axis in (-1 % x.ndim, 0):
        with Unchanged(x, g):
            sm, lsm = cpu.softmax(x, axis), cpu.log_softmax(x, axis)
            assert_same(sm, ref.softmax(x, axis), **tol)
            assert_same(lsm, ref.log_softmax(x, axis), **tol)
            assert_same(cpu.softmax_backward(g, sm, axis), ref.softmax_backward(g, sm, axis), **tol)
            assert_same(
                cpu.log_softmax_backward(g, lsm, axis),
                ref.log_softmax_backward(g, lsm, axis),
                **tol,
            )
    assert np.all(np.isfinite(cpu.log_softmax(x[1:], 1)[:, 1:]))


@pytest.mark.parametrize("size", SIZES)
def test_softmax_family_on_3d_and_non_contiguous(rng, size):
    r, c = SHAPES[size]
    x = rng.standard_normal((2, r // 2 + 1, c))
    for axis in (2, 1, 0):
        assert_same(cpu.softmax(x, axis), ref.softmax(x, axis))
        assert_same(cpu.log_softmax(x, axis), ref.log_softmax(x, axis))
    xt = rng.standard_normal((c, r)).T
    assert_same(cpu.log_softmax(xt, 1), ref.log_softmax(xt, 1))


@pytest.mark.parametrize("size", SIZES)
@pytest.mark.parametrize("dtype", DTYPES)
def test_cross_entropy_rows(rng, dtype, size):
    n, c = SHAPES[size]
    z = (rng.standard_normal((n, c)) * 3).astype(dtype)
    z[0, 0] = 1e4
    labels = rng.integers(0, c, n)
    with Unchanged(z, labels):
        losses, probs = cpu.cross_entropy_forward(z, labels)
        ref_losses, ref_probs = ref.cross_entropy_forward(z, labels)
        assert_same(losses, ref_losses, rtol=1e-5 if dtype == np.float32 else None)
        assert_same(probs, ref_probs)
        g_rows = rng.standard_normal(n).astype(dtype)
        assert_same(
            cpu.cross_entropy_backward(g_rows, probs, labels),
            ref.cross_entropy_backward(g_rows, ref_probs, labels),
        )
        # "sum" and "mean": the kernel reduces the losses; float64 accumulation vs numpy's sum
        for reduction, divide in (("sum", 1), ("mean", n)):
            loss, probs_r = cpu.cross_entropy_forward(z, labels, reduction)
            ref_loss, _ = ref.cross_entropy_forward(z, labels, reduction)
            assert loss.shape == () and loss.dtype == dtype and probs_r.shape == (n, c)
            expected = ref_losses.astype(np.float64).sum() / divide
            np.testing.assert_allclose(loss, expected, rtol=1e-5 if dtype == np.float32 else 1e-12)
            assert_same(loss, ref_loss, rtol=1e-5 if dtype == np.float32 else 1e-12)
            # one upstream value shared by every row (divided by n for the mean) == broadcasting
            shared = g_rows[0].reshape(())
            assert_same(
                cpu.cross_entropy_backward(shared, probs, labels, reduction),
                ref.cross_entropy_backward(np.repeat(shared / divide, n), ref_probs, labels),
            )
            assert_same(
                ref.cross_entropy_backward(shared, ref_probs, labels, reduction),
                ref.cross_entropy_backward(np.repeat(shared / divide, n), ref_probs, labels),
            )
    # probabilities sum to one; the loss is -log of the label's probability
    np.testing.assert_allclose(probs.sum(axis=1), 1.0, rtol=1e-5)
    np.testing.assert_allclose(
        losses[1:],
        -np.log(probs[np.arange(1, n), labels[1:]]),
        rtol=1e-4 if dtype == np.float32 else 1e-10,
    )


# ----- matrix products -----


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("ta, tb", [(False, False), (True, False), (False, True), (True, True)])
def test_matmul_with_transpose_flags(rng, dtype, ta, tb):
    for sa, sb in [((3, 4), (4, 2)), ((2, 1, 3, 4), (5, 4, 2)), ((1, 1), (1, 1))]:
        a = rng.standard_normal(sa).astype(dtype)
        b = rng.standard_normal(sb).astype(dtype)
        a_in = np.swapaxes(a, -1, -2).copy() if ta else a
        b_in = np.swapaxes(b, -1, -2).copy() if tb else b
        with Unchanged(a_in, b_in):
            got = cpu.matmul(a_in, b_in, transpose_a=ta, transpose_b=tb)
        assert_same(got, np.matmul(a, b), rtol=1e-5 if dtype == np.float32 else 1e-12)


@pytest.mark.parametrize("size", SIZES)
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("activation", [None, "relu", "sigmoid", "tanh"])
def test_linear_forward_and_backward(rng, dtype, size, activation):
    n, out_features = SHAPES[size]
    x = rng.standard_normal((n, 7)).astype(dtype)
    w = rng.standard_normal((out_features, 7)).astype(dtype)
    b = rng.standard_normal(out_features).astype(dtype)
    g = rng.standard_normal((n, out_features)).astype(dtype)
    # db sums n rows: float32 accumulation order (numpy pairwise, the kernel sequential) shows
    tol = {"rtol": 1e-5, "atol": 2e-4} if dtype == np.float32 else {"rtol": 1e-12, "atol": 1e-11}
    for bias in (b, None):
        with Unchanged(x, w, b):
            y = _linear_forward(cpu, x, w, bias, activation)
            y_ref = _linear_forward(ref, x, w, bias, activation)
        assert_same(y, y_ref, **tol)
        z = x.astype(np.float64) @ w.T.astype(np.float64) + (0 if bias is None else bias)
        expected = {
            None: z,
            "relu": np.maximum(z, 0),
            "sigmoid": 1 / (1 + np.exp(-z)),
            "tanh": np.tanh(z),
        }
        np.testing.assert_allclose(y, expected[activation], rtol=1e-4, atol=1e-4)
        for need in [
            (True, True, True),
            (True, False, False),
            (False, True, True),
            (False, False, True),
        ]:
            with Unchanged(g, x, w, y):
                got = _linear_backward(cpu, g, x, w, need, activation, y)
            want = _linear_backward(ref, g, x, w, need, activation, y_ref)
            for a, e, needed in zip(got, want, need):
                assert (a is None) == (not needed)
                if needed:
                    assert_same(a, e, **tol)


# (rows, in_features, out_features): fewer than one 4 x 2 block, exact blocks, overlapping last
# blocks, one feature, and the chapter's 784-15 layer at batch 32 (which linear_forward sends here)
SMALL_LINEAR_SHAPES = [(1, 1, 1), (3, 7, 1), (4, 1, 2), (5, 3, 3), (9, 2, 5), (8, 300, 4)]
SMALL_LINEAR_SHAPES += [(32, 784, 15)]


@pytest.mark.parametrize("shape", SMALL_LINEAR_SHAPES)
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("activation", [None, "relu", "sigmoid", "tanh"])
def test_small_linear_kernel(rng, dtype, shape, activation):
    n, k, m = shape
    x = rng.standard_normal((n, k)).astype(dtype)
    w = rng.standard_normal((m, k)).astype(dtype)
    b = rng.standard_normal(m).astype(dtype)
    act = {
        None: lambda z: z,
        "relu": lambda z: np.maximum(z, 0),
        "sigmoid": lambda z: 1 / (1 + np.exp(-z)),
        "tanh": np.tanh,
    }[activation]
    # The kernel sums in another order than numpy: bound the difference by k roundings of the
    # sum of |terms| (activations are 1-Lipschitz).
    eps = np.finfo(dtype).eps
    bound = (k + 2) * eps * (np.abs(x).astype(np.float64) @ np.abs(w.T) + np.abs(b)) + 4 * eps
    for bias, has_bias in ((b, True), (w[0], False)):
        z = x.astype(np.float64) @ w.T.astype(np.float64) + (b if has_bias else 0)
        y = np.full((n, m), np.nan, dtype=dtype)
        with Unchanged(x, w, b):
            cpu._linear_small(x, w, bias, has_bias, cpu._ACTIVATION_CODES[activation], y)
        assert np.all(np.abs(y - act(z)) <= bound), np.max(np.abs(y - act(z)) - bound)
        if n * m <= config.SMALL_LINEAR_MAX and (k >= 256 or n * m <= 256):  # the path taken
            got = cpu.linear_forward(x, w, b if has_bias else None, activation)
            np.testing.assert_array_equal(got, y)


def test_small_linear_kernel_nan_inf_and_strided_input(rng):
    x = rng.standard_normal((6, 5))
    w = rng.standard_normal((3, 5))
    x[1, 2], x[4, 0] = np.nan, np.inf
    w[2, 0] = 0.0  # inf * 0 = nan, as in numpy's product
    with np.errstate(invalid="ignore"):
        expected = x @ w.T
    got = cpu.linear_forward(x, w, None)
    np.testing.assert_array_equal(np.isnan(got), np.isnan(expected))
    np.testing.assert_allclose(got, expected, rtol=1e-13, equal_nan=True)
    wide = rng.standard_normal((6, 10))
    strided = wide[:, ::2]  # not contiguous: the kernel reads it through its strides
    assert_same(cpu.linear_forward(strided, w, None), strided @ w.T)
    assert_same(cpu.linear_forward(strided, w[:, ::-1], None), strided @ w[:, ::-1].T)


def _linear_forward(backend, x, w, b, activation):
    if activation is None:
        return backend.linear_forward(x, w, b)
    return backend.linear_forward(x, w, b, activation)


def _linear_backward(backend, g, x, w, need, activation, y):
    if activation is None:
        return backend.linear_backward(g, x, w, *need)
    return backend.linear_backward(g, x, w, *need, activation, y)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize(
    "sa, sb",
    [
        ((1, 1), (1, 1)),
        ((65, 130), (130, 67)),
        ((64, 64), (64, 64)),
        ((3, 1), (1, 129)),
        ((129, 2), (2, 1)),
    ],
)
def test_matmul_blocked_against_numpy(rng, dtype, sa, sb):
    a = rng.standard_normal(sa).astype(dtype)
    b = rng.standard_normal(sb).astype(dtype)
    got = cpu.matmul_blocked(a, b)
    assert got.dtype == dtype and got.shape == (sa[0], sb[1])
    np.testing.assert_allclose(
        got,
        a.astype(np.float64) @ b.astype(np.float64),
        rtol=1e-4 if dtype == np.float32 else 1e-11,
        atol=1e-4 if dtype == np.float32 else 1e-11,
    )


def test_matmul_blocked_odd_inputs(rng):
    a, b = rng.standard_normal((5, 3)), rng.standard_normal((3, 4))
    np.testing.assert_allclose(
        cpu.matmul_blocked(np.asfortranarray(a), b[:, ::1]), a @ b, rtol=1e-12
    )
    np.testing.assert_allclose(
        cpu.matmul_blocked(a.T.copy().T, b.astype(np.float32)), a @ b, rtol=1e-6
    )
    assert cpu.matmul_blocked(np.ones((0, 3)), np.ones((3, 2))).shape == (0, 2)
    np.testing.assert_array_equal(
        cpu.matmul_blocked(np.ones((2, 0)), np.ones((0, 2))), np.zeros((2, 2))
    )
    with pytest.raises(ValueError, match="matmul_blocked"):
        cpu.matmul_blocked(a, a)
    with pytest.raises(ValueError, match="matmul_blocked"):
        cpu.matmul_blocked(np.ones(3), np.ones(3))
