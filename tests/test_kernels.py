"""What only the CPU backend has: its dispatch on numpy scalars and strided arrays, the small-linear
kernel called directly, and the teaching ``matmul_blocked``.

Every kernel of the interface is compared with the reference on every backend in
``tests/test_backends.py`` (inputs from ``tests/kernel_inputs.py``).
"""

from __future__ import annotations

import numpy as np
import pytest

from tinygrad_edu import config
from tinygrad_edu.backend import cpu, rules
from tinygrad_edu.backend import reference as ref

DTYPES = [np.float32, np.float64]
# (rows, cols): "big" is the smallest 64-column matrix at or above PARALLEL_MIN elements.
ROWS_BIG = -(-config.PARALLEL_MIN // 64) + 1
SHAPES = {"small": (3, 5), "big": (ROWS_BIG, 64)}
SIZES = list(SHAPES)


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


def data(rng, shape, dtype, lo=-3.0, hi=3.0):
    return rng.uniform(lo, hi, shape).astype(dtype)


@pytest.fixture(autouse=True)
def _quiet_numpy():
    with np.errstate(all="ignore"):
        yield


# ----- storage: numpy's own arrays -----


def test_copy_is_contiguous_and_views_are_marked(rng):
    a = rng.standard_normal((3, 4))
    for backend in (ref, cpu):
        c = backend.copy(a.T)
        np.testing.assert_array_equal(c, a.T)
        assert c.flags.c_contiguous and not np.shares_memory(c, a)
        assert backend.is_view(a[1:]) and backend.is_view(np.broadcast_to(a[0], (3, 4)))
        assert not backend.is_view(np.zeros(3))


# ----- binary: the dispatch on numpy scalars, size-one and strided arrays -----

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
    x = data(rng, SHAPES[size], np.float32, lo=0.5, hi=2.0)
    s = NUMPY_SCALARS[scalar]
    assert_same(cpu.binary(op, x, s), ref.binary(op, x, s))
    assert_same(cpu.binary(op, s, x), ref.binary(op, s, x))


@pytest.mark.parametrize("size", SIZES)
def test_binary_broadcasting_non_contiguous_inputs(rng, size):
    r, c = SHAPES[size]
    x = rng.standard_normal((c, r)).T  # (r, c), Fortran order
    y = rng.standard_normal((c, 2))[:, 0]  # (c,), strided
    z = rng.standard_normal((r, 2))[:, :1]  # (r, 1), strided
    for op in ("add", "sub", "mul", "div"):
        assert_same(cpu.binary(op, x, y), ref.binary(op, x, y))
        assert_same(cpu.binary(op, z, x), ref.binary(op, z, x))
        assert_same(cpu.binary(op, x, x), ref.binary(op, x, x))


@pytest.mark.parametrize("size", SIZES)
def test_softmax_on_3d_and_non_contiguous_input(rng, size):
    r, c = SHAPES[size]
    x = rng.standard_normal((2, r // 2 + 1, c))
    for axis in (2, 1, 0):
        for log in (False, True):
            assert_same(cpu.softmax(x, axis, log), ref.softmax(x, axis, log))
    xt = rng.standard_normal((c, r)).T
    assert_same(cpu.softmax(xt, 1, True), ref.softmax(xt, 1, True))
    assert_same(cpu.sum(xt, (0,), False), ref.sum(xt, (0,), False))


# ----- the small linear kernel, called directly -----

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
        rules.linear_small(x, w, bias, has_bias, rules.FUSED_ACTIVATIONS[activation][0], y)
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


# ----- matmul_blocked, the teaching version -----


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
