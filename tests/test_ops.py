"""Every differentiable op: forward against numpy, backward against central finite differences.

Forward results are compared with plain numpy in float32 and float64; gradients with
``tg.gradcheck`` (float64 central differences) over shapes drawn by hypothesis: broadcasting
pairs, size-1 dims, negative axes, keepdims, tuple axes. Float32 backprop is compared with
float64 backprop, and torch (when importable) is a third reference for a handful of ops.
"""

from __future__ import annotations

import contextlib

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

import tinygrad_edu as tg
from tinygrad_edu import Tensor, config
from tinygrad_edu import ops as F

# NOTE: 0-d leaves need Tensor(np.array(x)) to keep shape (); until the constructor does (see
# test_tensor.py::test_zero_dim_data_keeps_its_shape), the drawn shapes start at one dimension.
ZERO_D_OK = Tensor(np.array(1.0)).shape == ()
MIN_DIMS = 0 if ZERO_D_OK else 1

# ----- helpers -----


def leaf(a, dtype=np.float64) -> Tensor:
    return Tensor(np.asarray(a, dtype=dtype), requires_grad=True)


def const(a, dtype=np.float64) -> Tensor:
    return Tensor(np.asarray(a, dtype=dtype))


def check_grads(fn, *arrays, atol=1e-6, rtol=1e-4):
    """gradcheck of sum(fn(*leaves) * W) in float64, W fixed and random, so that each output
    entry's gradient enters with its own weight (a plain sum would hide, e.g., a wrong sign
    that cancels)."""
    tensors = [leaf(a) for a in arrays]
    out = fn(*tensors)
    weights = const(np.random.default_rng(out.size).uniform(0.5, 1.5, out.shape))
    assert tg.gradcheck(lambda: (fn(*tensors) * weights).sum(), tensors, atol=atol, rtol=rtol)
    return tensors


def assert_forward(got: Tensor, expected, dtype):
    """Compare with a float64 numpy result; tolerances fit ``dtype``."""
    assert got.dtype == dtype, (got.dtype, dtype)
    expected = np.asarray(expected)
    assert got.shape == expected.shape, (got.shape, expected.shape)
    if np.dtype(dtype) == np.float32:
        np.testing.assert_allclose(got.numpy(), expected, rtol=2e-5, atol=2e-6)
    else:
        np.testing.assert_allclose(got.numpy(), expected, rtol=1e-12, atol=1e-13)


@contextlib.contextmanager
def numba_everywhere():
    """Route every call to the Numba kernels, even on the small arrays hypothesis draws."""
    saved = config.PARALLEL_MIN
    config.PARALLEL_MIN = 1
    try:
        yield
    finally:
        config.PARALLEL_MIN = saved


# ----- value strategies: each op's domain, kept away from its kinks -----

ANY = st.floats(-2.5, 2.5)
POSITIVE = st.floats(0.2, 3.0)
AWAY_FROM_0 = st.one_of(st.floats(0.05, 2.5), st.floats(-2.5, -0.05))
AWAY_FROM_CLIP_BOUNDS = st.one_of(
    st.floats(-2.0, -0.55), st.floats(-0.45, 0.65), st.floats(0.75, 2.0)
)
DISTINCT = st.integers(-80, 80).map(lambda i: i / 8)  # with unique=True: no ties, 1/8 apart


def shapes(min_dims=MIN_DIMS, max_dims=3, min_side=1, max_side=3):
    return hnp.array_shapes(
        min_dims=min_dims, max_dims=max_dims, min_side=min_side, max_side=max_side
    )


def arrays(shape, elements=ANY, unique=False):
    return hnp.arrays(np.float64, shape, elements=elements, unique=unique)


@st.composite
def axis_args(draw, ndim):
    """None, an int (maybe negative) or a tuple of distinct axes (some negative)."""
    kind = draw(st.sampled_from(["none", "int", "tuple"]))
    if ndim == 0 or kind == "none":
        return None
    if kind == "int":
        return draw(st.integers(-ndim, ndim - 1))
    picked = draw(st.lists(st.integers(0, ndim - 1), unique=True, min_size=1, max_size=ndim))
    return tuple(a - ndim if draw(st.booleans()) else a for a in picked)


# ----- the op tables -----

UNARY = {
    "neg": (lambda t: -t, np.negative, ANY),
    "exp": (lambda t: t.exp(), np.exp, ANY),
    "log": (lambda t: t.log(), np.log, POSITIVE),
    "sqrt": (lambda t: t.sqrt(), np.sqrt, POSITIVE),
    "abs": (lambda t: t.abs(), np.abs, AWAY_FROM_0),
    "relu": (lambda t: t.relu(), lambda a: np.maximum(a, 0.0), AWAY_FROM_0),
    "sigmoid": (lambda t: t.sigmoid(), lambda a: 1.0 / (1.0 + np.exp(-a)), ANY),
    "tanh": (lambda t: t.tanh(), np.tanh, ANY),
    "leaky_relu": (lambda t: t.leaky_relu(), lambda a: np.where(a > 0, a, 0.01 * a), AWAY_FROM_0),
    "leaky_relu_0.2": (
        lambda t: t.leaky_relu(0.2),
        lambda a: np.where(a > 0, a, 0.2 * a),
        AWAY_FROM_0,
    ),
    "clip": (lambda t: t.clip(-0.5, 0.7), lambda a: np.clip(a, -0.5, 0.7), AWAY_FROM_CLIP_BOUNDS),
    "clip_lo": (lambda t: t.clip(lo=-0.5), lambda a: np.maximum(a, -0.5), AWAY_FROM_CLIP_BOUNDS),
    "clip_hi": (lambda t: t.clip(hi=0.7), lambda a: np.minimum(a, 0.7), AWAY_FROM_CLIP_BOUNDS),
    "pow_2": (lambda t: t**2, np.square, ANY),
    "pow_3_int": (lambda t: t**3, lambda a: a**3, ANY),
    "pow_neg_half": (lambda t: t**-0.5, lambda a: a**-0.5, POSITIVE),
    "pow_2.7": (lambda t: t**2.7, lambda a: a**2.7, POSITIVE),
    "rpow": (lambda t: 2.0**t, lambda a: 2.0**a, ANY),
}

BINARY = {
    "add": (lambda a, b: a + b, ANY, ANY),
    "sub": (lambda a, b: a - b, ANY, ANY),
    "mul": (lambda a, b: a * b, ANY, ANY),
    "div": (lambda a, b: a / b, ANY, st.one_of(st.floats(0.5, 3.0), st.floats(-3.0, -0.5))),
    "pow": (lambda a, b: a**b, POSITIVE, ANY),
}

SCALAR_SIDES = {
    "add": (lambda t, s: t + s, lambda s, t: s + t),
    "sub": (lambda t, s: t - s, lambda s, t: s - t),
    "mul": (lambda t, s: t * s, lambda s, t: s * t),
    "div": (lambda t, s: t / s, lambda s, t: s / t),
    "pow": (lambda t, s: t**s, lambda s, t: s**t),
}

# ----- unary ops -----


@pytest.mark.parametrize("name", list(UNARY))
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_unary_forward_matches_numpy(rng, name, dtype):
    fn, ref, _ = UNARY[name]
    a = rng.uniform(0.2, 2.0, (4, 5)) * rng.choice([-1, 1], (4, 5))
    if name in ("log", "sqrt", "pow_neg_half", "pow_2.7"):
        a = np.abs(a)
    a = a.astype(dtype)
    assert_forward(fn(const(a, dtype)), ref(a.astype(np.float64)), dtype)


@pytest.mark.parametrize("name", list(UNARY))
@given(data=st.data())
def test_unary_backward_matches_finite_differences(name, data):
    fn, _, elements = UNARY[name]
    a = data.draw(arrays(shapes(), elements))
    check_grads(fn, a)


@pytest.mark.parametrize("name", ["relu", "sigmoid", "tanh", "leaky_relu", "clip", "exp", "log"])
@given(data=st.data())
def test_unary_backward_through_numba_kernels(name, data):
    fn, _, elements = UNARY[name]
    a = data.draw(arrays(shapes(), elements))
    with numba_everywhere():
        check_grads(fn, a)


def test_kinks_follow_pytorch():
    """relu'(0) = 0, abs'(0) = 0, leaky_relu'(0) = slope, clip passes the gradient at its bounds."""
    cases = [
        (lambda t: t.relu(), [0.0, -1.0, 2.0], [0.0, 0.0, 1.0]),
        (lambda t: t.abs(), [0.0, -1.0, 2.0], [0.0, -1.0, 1.0]),
        (lambda t: t.leaky_relu(0.1), [0.0, -1.0, 2.0], [0.1, 0.1, 1.0]),
        (lambda t: t.clip(-1.0, 1.0), [-1.0, 1.0, 0.0, -1.5, 1.5], [1.0, 1.0, 1.0, 0.0, 0.0]),
        (lambda t: t.clip(lo=0.0), [0.0, -0.1, 0.1], [1.0, 0.0, 1.0]),
        (lambda t: t.clip(hi=0.0), [0.0, -0.1, 0.1], [1.0, 1.0, 0.0]),
    ]
    for dtype in (np.float32, np.float64):
        for fn, x, expected in cases:
            t = leaf(x, dtype)
            fn(t).sum().backward()
            assert t.grad.dtype == dtype
            np.testing.assert_array_equal(t.grad.numpy(), np.asarray(expected, dtype=dtype))


def test_clip_without_bounds_is_identity():
    t = leaf([1.0, -2.0])
    y = t.clip()
    np.testing.assert_array_equal(y.numpy(), [1.0, -2.0])
    y.sum().backward()
    np.testing.assert_array_equal(t.grad.numpy(), [1.0, 1.0])


def test_sigmoid_and_tanh_saturate_without_nan():
    x = leaf([-800.0, -30.0, 0.0, 30.0, 800.0])
    s = x.sigmoid()
    expected = [0.0, 1 / (1 + np.exp(30.0)), 0.5, 1 / (1 + np.exp(-30.0)), 1.0]
    np.testing.assert_allclose(s.numpy(), expected, rtol=1e-12, atol=1e-15)
    s.sum().backward()
    assert np.all(np.isfinite(x.grad.numpy()))
    np.testing.assert_allclose(x.grad.numpy()[[0, 2, 4]], [0.0, 0.25, 0.0])
    y = leaf([-800.0, 800.0])
    y.tanh().sum().backward()
    np.testing.assert_array_equal(y.grad.numpy(), [0.0, 0.0])


@pytest.mark.parametrize("size", [5, config.PARALLEL_MIN + 5])
def test_sigmoid_is_accurate_in_the_negative_tail(size):
    a = np.resize(np.array([-20.0, -30.0, -40.0, -100.0, -700.0]), size)
    got = Tensor(a).sigmoid().numpy()
    expected = np.exp(-np.logaddexp(0.0, -a))  # 1 / (1 + e^-x) without cancellation
    np.testing.assert_allclose(got, expected, rtol=1e-12)


# ----- binary ops with broadcasting -----


@pytest.mark.parametrize("name", list(BINARY))
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@given(data=st.data())
def test_binary_forward_broadcasts_like_numpy(name, dtype, data):
    fn, ex, ey = BINARY[name]
    sx, sy = data.draw(
        hnp.mutually_broadcastable_shapes(num_shapes=2, min_dims=MIN_DIMS, max_dims=3, max_side=3)
    ).input_shapes
    a = data.draw(arrays(sx, ex)).astype(dtype)
    b = data.draw(arrays(sy, ey)).astype(dtype)
    assert_forward(
        fn(const(a, dtype), const(b, dtype)), fn(a.astype(np.float64), b.astype(np.float64)), dtype
    )


@pytest.mark.parametrize("name", list(BINARY))
@given(data=st.data())
def test_binary_backward_with_broadcasting(name, data):
    fn, ex, ey = BINARY[name]
    sx, sy = data.draw(
        hnp.mutually_broadcastable_shapes(num_shapes=2, min_dims=MIN_DIMS, max_dims=3, max_side=3)
    ).input_shapes
    check_grads(fn, data.draw(arrays(sx, ex)), data.draw(arrays(sy, ey)))


@pytest.mark.parametrize("name", list(BINARY))
@given(data=st.data())
def test_binary_backward_through_numba_kernels(name, data):
    fn, ex, ey = BINARY[name]
    sx, sy = data.draw(
        hnp.mutually_broadcastable_shapes(num_shapes=2, min_dims=1, max_dims=3, max_side=3)
    ).input_shapes
    a, b = data.draw(arrays(sx, ex)), data.draw(arrays(sy, ey))
    with numba_everywhere():
        check_grads(fn, a, b)


@pytest.mark.parametrize("name", list(SCALAR_SIDES))
@pytest.mark.parametrize("side", ["tensor_first", "scalar_first"])
@given(data=st.data())
def test_scalar_on_either_side(name, side, data):
    right, left = SCALAR_SIDES[name]
    if side == "tensor_first":
        elements = POSITIVE if name == "pow" else (AWAY_FROM_0 if name == "div" else ANY)
        scalar = data.draw(st.sampled_from([2, -1.5, 0.5, 3]))
        fn = lambda t: right(t, scalar)  # noqa: E731
        np_fn = lambda a: right(a, float(scalar))  # noqa: E731
    else:
        elements = AWAY_FROM_0 if name == "div" else ANY
        scalar = data.draw(st.sampled_from([2, 1.5, 0.5] if name == "pow" else [2, -1.5, 0.5]))
        fn = lambda t: left(scalar, t)  # noqa: E731
        np_fn = lambda a: left(float(scalar), a)  # noqa: E731
    a = data.draw(arrays(shapes(), elements))
    assert_forward(fn(const(a)), np_fn(a), np.float64)
    check_grads(fn, a)


@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_scalar_add_sub_mul_are_numpys_numbers(rng, dtype):
    """x + c, c + x, x - c, x * c, c * x run as AddScalar / MulScalar (x - c as x + (-c)): the
    values must be numpy's, bit for bit, special values included, and the dtype x's."""
    a = rng.standard_normal(8).astype(dtype)
    a[:4] = [0.0, -0.0, np.inf, np.nan]
    t = Tensor(a, dtype=dtype)
    for c in (0.0, -0.0, 2.5, -3, 1e-3):
        with np.errstate(invalid="ignore"):  # inf * 0
            pairs = [(t + c, a + c), (c + t, c + a), (t - c, a - c), (t * c, a * c), (c * t, c * a)]
        for got, want in pairs:
            assert got.dtype == np.dtype(dtype)
            np.testing.assert_array_equal(got.numpy(), want)
            np.testing.assert_array_equal(np.signbit(got.numpy()), np.signbit(want))
    x = leaf(a[4:])
    ((x - 1.5) * 3.0 + 2 * x).sum().backward()
    np.testing.assert_array_equal(x.grad.numpy(), np.full(4, 5.0))


def test_pow_with_tensor_exponent_both_need_grad(rng):
    x, p = rng.uniform(0.5, 2.0, (3, 4)), rng.uniform(-1.5, 2.5, (4,))
    check_grads(lambda a, b: a**b, x, p)
    check_grads(lambda a, b: a**b, x, p[0:1])


def test_pow_integer_exponent_on_negative_base():
    x = leaf([-2.0, -0.5, 3.0])
    y = x**2
    np.testing.assert_array_equal(y.numpy(), [4.0, 0.25, 9.0])
    y.sum().backward()
    np.testing.assert_array_equal(x.grad.numpy(), [-4.0, -1.0, 6.0])


def test_same_tensor_on_both_sides(rng):
    a = rng.uniform(0.5, 2.0, (3,))
    check_grads(lambda t: t * t + t / t - t**t, a)


# ----- reductions -----

REDUCTIONS = {"sum": np.sum, "mean": np.mean, "max": np.max, "min": np.min}


@pytest.mark.parametrize("name", list(REDUCTIONS))
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@given(data=st.data())
def test_reduction_forward_matches_numpy(name, dtype, data):
    shape = data.draw(shapes(max_dims=4))
    a = data.draw(arrays(shape, DISTINCT, unique=True)).astype(dtype)
    axis = data.draw(axis_args(len(shape)))
    keepdims = data.draw(st.booleans())
    got = getattr(const(a, dtype), name)(axis=axis, keepdims=keepdims)
    assert_forward(got, REDUCTIONS[name](a.astype(np.float64), axis=axis, keepdims=keepdims), dtype)


@pytest.mark.parametrize("name", list(REDUCTIONS))
@given(data=st.data())
def test_reduction_backward(name, data):
    shape = data.draw(shapes(max_dims=4))
    a = data.draw(arrays(shape, DISTINCT, unique=True))  # distinct: max/min are differentiable
    axis = data.draw(axis_args(len(shape)))
    keepdims = data.draw(st.booleans())
    check_grads(lambda t: getattr(t, name)(axis=axis, keepdims=keepdims), a)


@pytest.mark.parametrize("name", ["sum", "mean"])
@given(data=st.data())
def test_sum_mean_backward_through_numba_kernels(name, data):
    shape = data.draw(shapes(min_dims=1, max_dims=3))
    a = data.draw(arrays(shape))
    axis = data.draw(axis_args(len(shape)))
    with numba_everywhere():
        check_grads(lambda t: getattr(t, name)(axis=axis, keepdims=True), a)


@pytest.mark.parametrize("name", ["max", "min"])
def test_ties_share_the_gradient_equally(name):
    best = 3.0 if name == "max" else -3.0
    x = leaf([1.0, best, best, 0.0, best])
    getattr(x, name)().backward()
    np.testing.assert_allclose(x.grad.numpy(), [0, 1 / 3, 1 / 3, 0, 1 / 3])

    x = leaf([[best, best, 1.0], [0.0, best, 1.0]])
    getattr(x, name)(axis=1, keepdims=True).sum().backward()
    np.testing.assert_allclose(x.grad.numpy(), [[0.5, 0.5, 0], [0, 1, 0]])

    x = leaf([[best, best], [best, 0.0]])
    getattr(x, name)(axis=0).backward(np.array([2.0, 4.0]))
    np.testing.assert_allclose(x.grad.numpy(), [[1.0, 4.0], [1.0, 0.0]])


@pytest.mark.parametrize("name", ["max", "min", "sum", "mean"])
def test_nan_propagates_through_reductions(name):
    a = np.array([[1.0, np.nan, 2.0], [3.0, 4.0, 5.0]])
    full = getattr(Tensor(a), name)()
    assert np.isnan(full.item())
    rows = getattr(Tensor(a), name)(axis=1)
    assert np.isnan(rows.numpy()[0]) and not np.isnan(rows.numpy()[1])
    np.testing.assert_array_equal(rows.numpy()[1], REDUCTIONS[name](a[1]))
    x = leaf(a)
    getattr(x, name)(axis=1).sum().backward()  # no exception; the clean row gets clean gradients
    assert np.all(np.isfinite(x.grad.numpy()[1]))


@pytest.mark.parametrize("name", ["max", "min"])
def test_max_min_gradient_goes_to_the_nan_entry_like_pytorch(name):
    x = leaf([1.0, np.nan, 2.0])
    getattr(x, name)().backward()
    np.testing.assert_array_equal(x.grad.numpy(), [0.0, 1.0, 0.0])
    x = leaf([[1.0, np.nan, 2.0], [3.0, 3.0, 0.0]])
    getattr(x, name)(axis=1).sum().backward()
    expected = [[0.0, 1.0, 0.0], [0.5, 0.5, 0.0] if name == "max" else [0.0, 0.0, 1.0]]
    np.testing.assert_array_equal(x.grad.numpy(), expected)


def test_mean_of_each_axis_and_all():
    a = np.arange(24.0).reshape(2, 3, 4)
    for axis in [None, 0, 1, 2, -1, (0, 2), (-1, -3), (0, 1, 2)]:
        np.testing.assert_allclose(Tensor(a).mean(axis=axis).numpy(), a.mean(axis=axis))


# ----- movement -----


@st.composite
def reshape_targets(draw, size):
    divisors = [d for d in range(1, size + 1) if size % d == 0]
    d = draw(st.sampled_from(divisors))
    return draw(st.sampled_from([(-1,), (d, -1), (-1, d), (1, d, -1), (d, size // d), (size,)]))


@given(data=st.data())
def test_reshape_with_minus_one(data):
    shape = data.draw(shapes(max_dims=4))
    a = data.draw(arrays(shape))
    target = data.draw(reshape_targets(a.size))
    got = const(a).reshape(*target)
    np.testing.assert_array_equal(got.numpy(), a.reshape(target))
    np.testing.assert_array_equal(const(a).reshape(target).numpy(), a.reshape(target))
    check_grads(lambda t: t.reshape(target), a)


@given(data=st.data())
def test_transpose_is_numpys(data):
    shape = data.draw(shapes(min_dims=1, max_dims=4))
    a = data.draw(arrays(shape))
    perm = data.draw(st.permutations(range(a.ndim)))
    perm = tuple(p - a.ndim if data.draw(st.booleans()) else p for p in perm)
    np.testing.assert_array_equal(const(a).transpose(*perm).numpy(), a.transpose(perm))
    np.testing.assert_array_equal(const(a).transpose(perm).numpy(), a.transpose(perm))
    np.testing.assert_array_equal(const(a).transpose().numpy(), a.transpose())
    np.testing.assert_array_equal(const(a).T.numpy(), a.T)
    check_grads(lambda t: t.transpose(*perm), a)
    check_grads(lambda t: t.T, a)


@given(data=st.data())
def test_flatten(data):
    a = data.draw(arrays(shapes(max_dims=4)))
    np.testing.assert_array_equal(const(a).flatten().numpy(), a.flatten())
    check_grads(lambda t: t.flatten(), a)


@given(data=st.data())
def test_getitem_basic_indices(data):
    shape = data.draw(shapes(min_dims=1, max_dims=3, max_side=4))
    a = data.draw(arrays(shape))
    index = data.draw(hnp.basic_indices(shape, allow_newaxis=True, allow_ellipsis=True))
    got = const(a)[index]
    np.testing.assert_array_equal(got.numpy(), a[index])
    check_grads(lambda t: t[index], a)


@given(data=st.data())
def test_getitem_integer_arrays_accumulate_repeats(data):
    shape = data.draw(shapes(min_dims=1, max_dims=3, max_side=4))
    a = data.draw(arrays(shape))
    index = data.draw(
        hnp.integer_array_indices(
            shape, result_shape=hnp.array_shapes(min_dims=1, max_dims=2, max_side=5)
        )
    )
    np.testing.assert_array_equal(const(a)[index].numpy(), a[index])
    check_grads(lambda t: t[index], a)
    # the gradient of sum(x[index]) counts how often each entry is picked
    x = leaf(a)
    x[index].sum().backward()
    counts = np.zeros(shape)
    np.add.at(counts, index, 1.0)
    np.testing.assert_array_equal(x.grad.numpy(), counts)


def test_getitem_fixed_cases(rng):
    a = rng.standard_normal((4, 5, 3))
    cases = [
        2,
        -1,
        (1, -2),
        slice(None, None, -1),
        (slice(None), slice(4, 0, -2)),
        (Ellipsis, 1),
        [0, 0, 3, 1],
        ([0, 0, 2], [1, 1, 4]),
        (slice(1, 3), [2, 2, 0]),
        (np.array([[0, 1], [1, 0]]), slice(None), 0),
        (None, 1, slice(None, None, 2)),
    ]
    for index in cases:
        np_index = (
            tuple(np.asarray(i) if isinstance(i, list) else i for i in index)
            if isinstance(index, tuple)
            else index
        )
        np.testing.assert_array_equal(const(a)[index].numpy(), a[np_index], err_msg=str(index))
        check_grads(lambda t, i=index: t[i], a)
    # a list index repeats: x[[0, 0]] picks row 0 twice
    x = leaf([1.0, 2.0, 3.0])
    x[[0, 0, 2]].sum().backward()
    np.testing.assert_array_equal(x.grad.numpy(), [2.0, 0.0, 1.0])
    # an int64 Tensor works as an index too
    y = leaf([1.0, 2.0, 3.0])
    y[Tensor([2, 2], dtype="int64")].sum().backward()
    np.testing.assert_array_equal(y.grad.numpy(), [0.0, 0.0, 2.0])


@given(data=st.data())
def test_cat_and_stack(data):
    shape = data.draw(shapes(min_dims=1, max_dims=3))
    ndim = len(shape)
    axis = data.draw(st.integers(-ndim, ndim - 1))
    k = data.draw(st.integers(1, 3))
    cat_shapes = []
    for _ in range(k):
        s = list(shape)
        s[axis] = data.draw(st.integers(1, 3))
        cat_shapes.append(tuple(s))
    parts = [data.draw(arrays(s)) for s in cat_shapes]
    np.testing.assert_array_equal(
        Tensor.cat([const(p) for p in parts], axis=axis).numpy(), np.concatenate(parts, axis=axis)
    )
    check_grads(lambda *ts: Tensor.cat(list(ts), axis=axis), *parts)

    same = [data.draw(arrays(shape)) for _ in range(k)]
    stack_axis = data.draw(st.integers(-ndim - 1, ndim))
    np.testing.assert_array_equal(
        Tensor.stack([const(p) for p in same], axis=stack_axis).numpy(),
        np.stack(same, axis=stack_axis),
    )
    check_grads(lambda *ts: Tensor.stack(list(ts), axis=stack_axis), *same)


def test_cat_with_a_tensor_that_needs_no_grad(rng):
    a, b = leaf(rng.standard_normal((2, 3))), const(rng.standard_normal((1, 3)))
    Tensor.cat([a, b]).sum().backward()
    np.testing.assert_array_equal(a.grad.numpy(), np.ones((2, 3)))
    assert b.grad is None


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_movement_ops_keep_dtype_and_values(rng, dtype):
    a = rng.standard_normal((3, 4, 2)).astype(dtype)
    t = const(a, dtype)
    cases = [
        (t.reshape(4, -1), a.reshape(4, -1)),
        (t.transpose(2, 0, 1), a.transpose(2, 0, 1)),
        (t.T, a.T),
        (t.flatten(), a.flatten()),
        (t[1:, ::-2, [1, 1, 0]], a[1:, ::-2, [1, 1, 0]]),
        (Tensor.cat([t, t[:1]], axis=0), np.concatenate([a, a[:1]], axis=0)),
        (Tensor.stack([t, t], axis=-1), np.stack([a, a], axis=-1)),
    ]
    for got, expected in cases:
        assert got.dtype == dtype
        np.testing.assert_array_equal(got.numpy(), expected)


# ----- matmul -----


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@given(data=st.data())
def test_matmul_forward_like_numpy(dtype, data):
    sa, sb = data.draw(
        hnp.mutually_broadcastable_shapes(signature=np.matmul.signature, max_dims=2, max_side=4)
    ).input_shapes
    a = data.draw(arrays(sa)).astype(dtype)
    b = data.draw(arrays(sb)).astype(dtype)
    assert_forward(
        const(a, dtype) @ const(b, dtype),
        np.matmul(a.astype(np.float64), b.astype(np.float64)),
        dtype,
    )
    assert_forward(
        const(a, dtype).matmul(const(b, dtype)),
        np.matmul(a.astype(np.float64), b.astype(np.float64)),
        dtype,
    )


@given(data=st.data())
def test_matmul_backward_with_broadcast_batch_dims(data):
    """1-D @ 1-D, 1-D @ N-D, N-D @ 1-D, 2-D @ 2-D and batched with broadcast batch dims."""
    sa, sb = data.draw(
        hnp.mutually_broadcastable_shapes(signature=np.matmul.signature, max_dims=2, max_side=4)
    ).input_shapes
    check_grads(lambda x, y: x @ y, data.draw(arrays(sa)), data.draw(arrays(sb)))


@pytest.mark.parametrize(
    "sa, sb",
    [((3,), (3,)), ((3,), (3, 2)), ((2, 3), (3,)), ((2, 3), (3, 4)), ((5, 2, 3), (3, 4)),
     ((2, 1, 2, 3), (4, 3, 2)), ((4,), (2, 4, 3)), ((2, 2, 4), (4,)), ((1, 1), (1, 1))],
)  # fmt: skip
def test_matmul_fixed_shapes(rng, sa, sb):
    a, b = rng.standard_normal(sa), rng.standard_normal(sb)
    np.testing.assert_allclose((const(a) @ const(b)).numpy(), a @ b, rtol=1e-12)
    check_grads(lambda x, y: x @ y, a, b)


# ----- softmax family and the fused network ops -----


def _np_log_softmax(a, axis):
    m = np.max(a, axis=axis, keepdims=True)
    return a - m - np.log(np.sum(np.exp(a - m), axis=axis, keepdims=True))


@pytest.mark.parametrize("name", ["softmax", "log_softmax"])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@given(data=st.data())
def test_softmax_family_forward(name, dtype, data):
    shape = data.draw(shapes(min_dims=1, max_dims=3, max_side=4))
    a = data.draw(arrays(shape, st.floats(-5, 5))).astype(dtype)
    axis = data.draw(st.integers(-len(shape), len(shape) - 1))
    expected = _np_log_softmax(a.astype(np.float64), axis)
    expected = np.exp(expected) if name == "softmax" else expected
    assert_forward(getattr(const(a, dtype), name)(axis=axis), expected, dtype)


@pytest.mark.parametrize("name", ["softmax", "log_softmax"])
@given(data=st.data())
def test_softmax_family_backward(name, data):
    shape = data.draw(shapes(min_dims=1, max_dims=3, max_side=4))
    a = data.draw(arrays(shape, st.floats(-5, 5)))
    axis = data.draw(st.integers(-len(shape), len(shape) - 1))
    check_grads(lambda t: getattr(t, name)(axis=axis), a)
    with numba_everywhere():
        check_grads(lambda t: getattr(t, name)(axis=axis), a)


def test_softmax_default_axis_is_last(rng):
    a = rng.standard_normal((3, 4))
    np.testing.assert_allclose(Tensor(a).softmax().numpy(), np.exp(_np_log_softmax(a, -1)))
    np.testing.assert_allclose(Tensor(a).log_softmax().numpy(), _np_log_softmax(a, -1))


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("scale", [1e4, -1e4])
def test_softmax_family_stable_at_1e4(dtype, scale):
    a = np.array([[1.0, 0.5, -1.0], [0.0, 1.0, 2.0]])
    shift = np.array([[scale], [-scale]])
    big = (a * abs(scale) + shift).astype(dtype)  # entries of magnitude 1e4 and spread 1e4
    for name in ("softmax", "log_softmax"):
        x = leaf(big, dtype)
        y = getattr(x, name)(axis=-1)
        expected = _np_log_softmax(big.astype(np.float64), -1)
        expected = np.exp(expected) if name == "softmax" else expected
        assert np.all(np.isfinite(y.numpy()))
        np.testing.assert_allclose(y.numpy(), expected, rtol=1e-5, atol=1e-6)
        (y * const(np.arange(6.0).reshape(2, 3), dtype)).sum().backward()
        assert np.all(np.isfinite(x.grad.numpy()))
    # same values shifted by 1e4: softmax does not change, and neither does its gradient
    small = leaf(a)
    shifted = leaf(a + 1e4)
    for t in (small, shifted):
        (t.softmax() * const([[1.0, 2.0, 3.0]])).sum().backward()
    np.testing.assert_allclose(shifted.grad.numpy(), small.grad.numpy(), atol=1e-9)


def _np_cross_entropy(z, y, reduction):
    losses = -_np_log_softmax(z, 1)[np.arange(len(y)), y]
    return {"none": losses, "sum": losses.sum(), "mean": losses.mean()}[reduction]


@pytest.mark.parametrize("reduction", ["mean", "sum", "none"])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@given(data=st.data())
def test_cross_entropy(reduction, dtype, data):
    n, c = data.draw(st.integers(1, 5)), data.draw(st.integers(1, 5))
    z = data.draw(arrays((n, c), st.floats(-5, 5)))
    y = np.array(data.draw(st.lists(st.integers(0, c - 1), min_size=n, max_size=n)), dtype=np.int64)
    got = F.CrossEntropy.apply(const(z.astype(dtype), dtype), y, reduction)
    assert_forward(got, _np_cross_entropy(z.astype(dtype).astype(np.float64), y, reduction), dtype)
    if dtype == np.float64:
        check_grads(lambda t: F.CrossEntropy.apply(t, y, reduction), z)


def test_cross_entropy_large_logits_are_finite():
    z = leaf([[1e4, 0.0, -1e4], [0.0, 1e4, 1e4]])
    y = np.array([1, 2])
    loss = F.CrossEntropy.apply(z, y, "sum")
    np.testing.assert_allclose(loss.item(), 1e4 + np.log(2.0))
    loss.backward()
    np.testing.assert_allclose(z.grad.numpy(), [[1.0, -1.0, 0.0], [0.0, 0.5, -0.5]], atol=1e-12)


@pytest.mark.parametrize("bias", [True, False])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@given(data=st.data())
def test_fused_linear(bias, dtype, data):
    n, k, m = (data.draw(st.integers(1, 4)) for _ in range(3))
    x, w, b = data.draw(arrays((n, k))), data.draw(arrays((m, k))), data.draw(arrays((m,)))
    args = (x, w, b) if bias else (x, w)
    expected = x.astype(dtype) @ w.astype(dtype).T.astype(np.float64)
    if bias:
        expected = expected + b.astype(dtype)
    got = F.Linear.apply(*[const(a.astype(dtype), dtype) for a in args])
    assert_forward(got, expected, dtype)
    if dtype == np.float64:
        check_grads(lambda *ts: F.Linear.apply(*ts), *args)
        with numba_everywhere():
            check_grads(lambda *ts: F.Linear.apply(*ts), *args)


@pytest.mark.parametrize("activation", ["relu", "sigmoid", "tanh"])
@pytest.mark.parametrize("bias", [True, False])
def test_fused_linear_with_activation(rng, activation, bias):
    x, w, b = rng.standard_normal((5, 3)), rng.standard_normal((4, 3)), rng.standard_normal(4)
    z = x @ w.T + (b if bias else 0.0)
    expected = {"relu": np.maximum(z, 0), "sigmoid": 1 / (1 + np.exp(-z)), "tanh": np.tanh(z)}
    args = (x, w, b) if bias else (x, w, None)
    for dtype in (np.float32, np.float64):
        ts = [None if a is None else const(a.astype(dtype), dtype) for a in args]
        got = F.Linear.apply(*ts, activation=activation)
        assert_forward(got, expected[activation].astype(dtype).astype(np.float64), dtype)
    used = [a for a in args if a is not None]

    def fn(*ts):
        if not bias:
            ts = (*ts, None)
        return F.Linear.apply(*ts, activation=activation)

    check_grads(fn, *used)


def test_fused_linear_with_inputs_that_need_no_grad(rng):
    x, w, b = rng.standard_normal((3, 2)), rng.standard_normal((4, 2)), rng.standard_normal(4)
    X, W, B = const(x), leaf(w), const(b)
    F.Linear.apply(X, W, B).sum().backward()
    np.testing.assert_allclose(W.grad.numpy(), np.ones((3, 4)).T @ x)
    assert X.grad is None and B.grad is None


# ----- float32: backprop in float32 agrees with backprop in float64 -----

F32_CASES = {
    "mlp": (
        lambda x, w, b: (F.Linear.apply(x, w, b).tanh() * 0.5).sigmoid().sum(),
        [(6, 5), (4, 5), (4,)],
    ),
    "elementwise": (
        lambda x, y, z: ((x * y - z / (y * y + 1.0)).exp() ** 1.5).mean(),
        [(3, 4), (4,), (3, 1)],
    ),
    "reductions": (
        lambda x, y, z: (x.max(axis=1) * y.min(axis=0) + z.sum(axis=(0, 2)).mean()).sum(),
        [(3, 4), (4, 3), (3, 2, 3)],
    ),
    "softmax": (
        lambda x, y, z: (x.softmax(axis=0) @ y).log_softmax().sum() + z.abs().sum(),
        [(3, 4), (4, 2), (2,)],
    ),
    "movement": (
        lambda x, y, z: (
            Tensor.cat([x.T, y[::-1]], axis=0).reshape(-1)[[0, 3, 3, 5]] * z.flatten()
        ).sum(),
        [(2, 3), (2, 2), (2, 2)],
    ),
    "matmul": (lambda x, y, z: ((x @ y) @ z).relu().sum(), [(2, 3, 4), (4, 5), (5,)]),
}


@pytest.mark.parametrize("name", list(F32_CASES))
def test_float32_backprop_matches_float64_backprop(rng, name):
    fn, shapes_ = F32_CASES[name]
    arrays64 = [rng.uniform(-1.5, 1.5, s) for s in shapes_]
    grads = {}
    for dtype in (np.float32, np.float64):
        tensors = [leaf(a.astype(dtype), dtype) for a in arrays64]
        out = fn(*tensors)
        assert out.dtype == dtype
        out.backward()
        for t in tensors:
            assert t.grad.dtype == dtype
        grads[dtype] = [t.grad.numpy() for t in tensors]
    for g32, g64 in zip(grads[np.float32], grads[np.float64]):
        scale = max(1.0, float(np.abs(g64).max()))
        np.testing.assert_allclose(g32, g64, rtol=1e-4, atol=1e-5 * scale)


def test_float64_backprop_of_the_same_cases_matches_finite_differences(rng):
    for fn, shapes_ in F32_CASES.values():
        tensors = [leaf(rng.uniform(-1.5, 1.5, s)) for s in shapes_]
        assert tg.gradcheck(lambda fn=fn, ts=tensors: fn(*ts), tensors, atol=1e-6, rtol=1e-4)


# ----- a larger input: one random direction instead of every coordinate -----


def test_random_direction_derivative_on_a_large_input(rng):
    """u . grad f(x) = (f(x + eps u) - f(x - eps u)) / (2 eps), with x big enough for the parallel
    kernels (rows of 160 over 256 rows > PARALLEL_MIN elements)."""
    n, m = 256, 160
    assert n * m >= config.PARALLEL_MIN
    c = const(rng.uniform(-1, 1, (n, m)))
    d = const(rng.uniform(-1, 1, (n, m)))
    labels = rng.integers(0, m, n)

    def f(x):
        h = (x * c).tanh() + x.sigmoid() * d - (x * 0.5).relu()
        return (
            (h * h).sum(axis=1).mean()
            + (x.log_softmax(axis=-1) * d).sum() / n
            + F.CrossEntropy.apply(x * 2.0, labels, "mean")
            + x.max(axis=0).sum() * 0.01
            + (x.exp() * 0.001).sum(axis=0).sum()
        )

    x0 = rng.uniform(-1, 1, (n, m))
    x = leaf(x0)
    f(x).backward()
    for _ in range(2):
        u = rng.standard_normal((n, m))
        u /= np.linalg.norm(u)
        eps = 1e-5
        with tg.no_grad():
            plus = f(const(x0 + eps * u)).item()
            minus = f(const(x0 - eps * u)).item()
        numeric = (plus - minus) / (2 * eps)
        analytic = float(np.sum(u * x.grad.numpy()))
        assert abs(analytic - numeric) <= 1e-6 + 1e-5 * abs(numeric), (analytic, numeric)


# ----- torch as a third reference -----


def _torch_grads(torch, fn, arrays):
    ts = [torch.tensor(a, dtype=torch.float64, requires_grad=True) for a in arrays]
    out = fn(*ts)
    out.backward()
    return out.detach().numpy(), [t.grad.numpy() for t in ts]


def _our_grads(fn, arrays):
    ts = [leaf(a) for a in arrays]
    out = fn(*ts)
    out.backward()
    return out.numpy(), [t.grad.numpy() for t in ts]


TORCH_CASES = {
    "softmax_log_softmax": (
        lambda x: (x.softmax(axis=0) * x.log_softmax(axis=-1)).sum(),
        lambda torch, x: (torch.softmax(x, 0) * torch.log_softmax(x, -1)).sum(),
        [(4, 5)],
    ),
    "batched_matmul_broadcast": (
        lambda a, b: ((a @ b) ** 2).sum(),
        lambda torch, a, b: ((a @ b) ** 2).sum(),
        [(2, 1, 3, 4), (5, 4, 2)],
    ),
    "max_min_with_ties": (
        lambda x: x.max() + x.min(axis=1).sum(),
        lambda torch, x: torch.amax(x) + torch.amin(x, dim=1).sum(),
        "ties",
    ),
    "kinks": (
        lambda x: (x.relu() + x.abs() + x.leaky_relu(0.1) + x.clip(-1.0, 1.0)).sum(),
        lambda torch, x: (
            torch.relu(x) + x.abs() + torch.nn.functional.leaky_relu(x, 0.1) + x.clamp(-1.0, 1.0)
        ).sum(),
        "kinks",
    ),
    "pow_tensor_exponent": (
        lambda x, p: (x.abs() ** p + 2.0**p).sum(),
        lambda torch, x, p: (x.abs() ** p + 2.0**p).sum(),
        [(3, 4), (4,)],
    ),
    "getitem_repeats": (
        lambda x: (x[[0, 0, 2], ::-1] * x[1]).sum(),
        lambda torch, x: (x[[0, 0, 2]].flip(-1) * x[1]).sum(),
        [(3, 4)],
    ),
    "sigmoid_tanh_exp_log_sqrt": (
        lambda x: (
            x.sigmoid() * x.tanh() + (x * x + 1.0).log() * (x * x + 1.0).sqrt() - (-x).exp()
        ).sum(),
        lambda torch, x: (
            torch.sigmoid(x) * torch.tanh(x) + (x * x + 1).log() * (x * x + 1).sqrt() - (-x).exp()
        ).sum(),
        [(3, 3)],
    ),
}


@pytest.mark.parametrize("name", list(TORCH_CASES))
def test_against_torch(rng, name):
    torch = pytest.importorskip("torch")
    ours, theirs, spec = TORCH_CASES[name]
    if spec == "ties":
        arrays_ = [np.array([[3.0, 1.0, 3.0], [0.0, 0.0, 2.0]])]
    elif spec == "kinks":
        arrays_ = [np.array([-2.0, -1.0, -0.5, 0.0, 0.5, 1.0, 2.0])]
    else:
        arrays_ = [rng.uniform(-1.5, 1.5, s) for s in spec]
    out_a, grads_a = _our_grads(ours, arrays_)
    out_b, grads_b = _torch_grads(torch, lambda *ts: theirs(torch, *ts), arrays_)
    np.testing.assert_allclose(out_a, out_b, rtol=1e-10)
    for ga, gb in zip(grads_a, grads_b):
        np.testing.assert_allclose(ga, gb, rtol=1e-10, atol=1e-12)


@pytest.mark.parametrize("reduction", ["mean", "sum", "none"])
def test_cross_entropy_against_torch(rng, reduction):
    torch = pytest.importorskip("torch")
    z = rng.standard_normal((6, 4)) * 3
    y = rng.integers(0, 4, 6)
    w = rng.uniform(0.5, 1.5, 6)
    ours = leaf(z)
    loss = F.CrossEntropy.apply(ours, y, reduction)
    (loss * const(w) if reduction == "none" else loss).sum().backward()
    theirs = torch.tensor(z, requires_grad=True)
    tloss = torch.nn.functional.cross_entropy(theirs, torch.tensor(y), reduction=reduction)
    (tloss * torch.tensor(w) if reduction == "none" else tloss).sum().backward()
    np.testing.assert_allclose(loss.numpy(), tloss.detach().numpy(), rtol=1e-12)
    np.testing.assert_allclose(ours.grad.numpy(), theirs.grad.numpy(), rtol=1e-10, atol=1e-14)


def test_linear_against_torch(rng):
    torch = pytest.importorskip("torch")
    x, w, b = rng.standard_normal((5, 3)), rng.standard_normal((4, 3)), rng.standard_normal(4)
    out_a, grads_a = _our_grads(lambda *ts: (F.Linear.apply(*ts) ** 2).sum(), [x, w, b])
    out_b, grads_b = _torch_grads(
        torch, lambda *ts: (torch.nn.functional.linear(*ts) ** 2).sum(), [x, w, b]
    )
    np.testing.assert_allclose(out_a, out_b, rtol=1e-12)
    for ga, gb in zip(grads_a, grads_b):
        np.testing.assert_allclose(ga, gb, rtol=1e-10)
