"""Fuzz the public API with hypothesis: bad arguments raise a clean error naming the op, valid ones
give numpy's answer.

Clean means ValueError, TypeError, RuntimeError, IndexError or OverflowError, never a Numba typing
error, and the message names the op. Excluded here (being fixed elsewhere): int64 overflow and
byte order in the constructor, max/min over empty tensors, in-place ops, Pow backward, tg.load.
"""

from __future__ import annotations

import warnings

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

import tinygrad_edu as tg
from tinygrad_edu import Tensor
from tinygrad_edu.nn import functional as NF

CLEAN = (ValueError, TypeError, RuntimeError, IndexError, OverflowError)
FUZZ = settings(
    max_examples=150,
    deadline=None,
    database=None,
    derandomize=True,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
MARKERS = ("nopython", "TypingError", "Failed in", "Untyped global", "parfors", "numba")

# ----- strategies -----

DTYPES = st.sampled_from([np.float32, np.float64, np.int64])
SHAPES = hnp.array_shapes(min_dims=0, max_dims=3, min_side=0, max_side=4)


@st.composite
def arrays(draw, dtype=None, shape=None):
    dtype = draw(DTYPES if dtype is None else dtype) if not isinstance(dtype, type) else dtype
    shape = draw(SHAPES) if shape is None else shape
    if np.dtype(dtype).kind == "i":
        elements = st.integers(-20, 20)
    else:
        elements = st.floats(-50, 50, width=32, allow_nan=False)
    return draw(hnp.arrays(dtype, shape, elements=elements))


def _nested(leaf):
    return st.recursive(leaf, lambda c: st.lists(c, max_size=3) | st.tuples(c, c), max_leaves=8)


SCALARS = st.one_of(
    st.integers(-(2**31), 2**31),
    st.floats(allow_nan=True, allow_infinity=True, width=32),
    st.booleans(),
)
GARBAGE = st.one_of(
    st.none(),
    st.text(max_size=3),
    st.binary(max_size=3),
    st.complex_numbers(max_magnitude=10, allow_nan=False),
    st.dictionaries(st.text(max_size=2), st.integers(0, 3), max_size=2),
    st.builds(object),
    st.just(Ellipsis),
    st.sets(st.integers(0, 3), max_size=2),
    _nested(st.one_of(SCALARS, st.none(), st.text(max_size=2))),
)
AXES = st.one_of(
    st.none(),
    st.integers(-4, 4),
    st.tuples(st.integers(-4, 4)),
    st.tuples(st.integers(-4, 4), st.integers(-4, 4)),
    st.lists(st.integers(-3, 3), max_size=3),
    st.floats(-2, 2),
    st.text(max_size=2),
    st.just(np.int64(0)),
)


# ----- the check -----


def _tol(*dtypes):
    if any(np.dtype(d) == np.float32 for d in dtypes):
        return {"rtol": 2e-5, "atol": 1e-5}
    return {"rtol": 1e-10, "atol": 1e-12}


def _numpy_of(x):
    return x.numpy() if isinstance(x, Tensor) else x


def check(fn, expected_fn, op, tol=None, must_fail=False):
    """``fn()`` gives numpy's ``expected_fn()`` or raises a clean error whose message names ``op``
    (a string or a tuple of accepted spellings); when numpy raises, so must we."""
    names = (op,) if isinstance(op, str) else op
    expected = None
    if not must_fail:
        try:
            with np.errstate(all="ignore"), warnings.catch_warnings():
                warnings.simplefilter("ignore")
                expected = np.asarray(expected_fn())
        except Exception:
            expected = None
    try:
        with np.errstate(all="ignore"), warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)
            got = fn()
    except CLEAN as exc:
        assert "numba" not in type(exc).__module__, type(exc)
        msg = str(exc)
        for marker in MARKERS:
            assert marker not in msg, f"numba leaks into the message: {msg}"
        assert any(n in msg for n in names), f"none of {names} named in: {type(exc)}: {msg}"
        return None
    except Exception as exc:  # anything else is a bug
        pytest.fail(f"{names[0]}: unexpected {type(exc).__module__}.{type(exc).__name__}: {exc}")
    assert expected is not None, f"{names[0]}: numpy (or the contract) refuses, we returned {got}"
    got = np.asarray(_numpy_of(got))
    assert got.shape == expected.shape, (names[0], got.shape, expected.shape)
    tol = tol or _tol(got.dtype, expected.dtype)
    if expected.dtype.kind in "biuf" and got.dtype.kind in "biuf":
        np.testing.assert_allclose(got, expected, equal_nan=True, **tol)
    else:
        pytest.fail(f"{names[0]}: numpy gives dtype {expected.dtype}, we gave {got}")
    return got


# ----- constructor -----


def _expected_tensor(data, dtype):
    if isinstance(data, (str, bytes)) or data is None:
        raise TypeError
    array = np.array(data)
    if array.dtype.kind not in "biuf":
        raise TypeError
    target = np.float32 if dtype is None else np.dtype(dtype)
    if target == np.int64 and array.dtype.kind == "f":
        if not (np.all(np.isfinite(array)) and np.array_equal(array, np.trunc(array))):
            raise ValueError
    return array.astype(target)


@FUZZ
@given(
    data=st.one_of(GARBAGE, SCALARS, _nested(SCALARS), arrays()),
    dtype=st.one_of(
        st.none(), st.sampled_from(["float32", "float64", "int64", "int32", "x", np.float16, 3])
    ),
)
def test_constructor(data, dtype):
    check(lambda: Tensor(data, dtype=dtype), lambda: _expected_tensor(data, dtype), "Tensor")


# ----- binary ops and comparisons -----

BINARY = {
    "add": (lambda a, b: a + b, np.add),
    "sub": (lambda a, b: a - b, np.subtract),
    "mul": (lambda a, b: a * b, np.multiply),
    "div": (lambda a, b: a / b, np.true_divide),
    "pow": (lambda a, b: a**b, np.power),
    "matmul": (lambda a, b: a @ b, np.matmul),
    "eq": (lambda a, b: a == b, np.equal),
    "ne": (lambda a, b: a != b, np.not_equal),
    "lt": (lambda a, b: a < b, np.less),
    "le": (lambda a, b: a <= b, np.less_equal),
    "gt": (lambda a, b: a > b, np.greater),
    "ge": (lambda a, b: a >= b, np.greater_equal),
}
OPERANDS = st.one_of(
    arrays().map(Tensor),
    arrays(dtype=np.float64),
    st.integers(-5, 5),
    st.floats(-5, 5),
    GARBAGE,
)


def _np_binary(npfn, a, b, name):
    x = a.numpy()
    if isinstance(b, Tensor):
        y = b.numpy()
    elif isinstance(b, (bool, int, float, np.integer, np.floating)):
        y = float(b)
    else:
        y = _np_operand(b)
    if name == "matmul" and (np.ndim(x) == 0 or np.ndim(y) == 0):
        raise ValueError
    integer_exponent = (
        isinstance(b, (bool, int, np.integer))
        or np.asarray(b.numpy() if isinstance(b, Tensor) else b).dtype.kind in "biu"
    )
    if x.dtype == np.int64 and name == "pow" and x.size and integer_exponent:
        if np.any(np.asarray(y) < 0):
            raise ValueError  # integers to negative integer powers (a float power gives float32)
    out = npfn(x, y)
    return out


@FUZZ
@given(name=st.sampled_from(sorted(BINARY)), a=arrays(), b=OPERANDS, flip=st.booleans())
def test_binary(name, a, b, flip):
    fn, npfn = BINARY[name]
    ta = Tensor(a, dtype=a.dtype)
    if flip and not isinstance(b, Tensor):
        names = (name, MIRROR.get(name, name))
        check(lambda: fn(b, ta), lambda: _np_flipped(npfn, b, ta, name), names, tol=_loose(a))
    else:
        check(lambda: fn(ta, b), lambda: _np_binary(npfn, ta, b, name), name, tol=_loose(a))


def _np_operand(b):
    if not isinstance(b, (np.ndarray, list, tuple)):
        raise TypeError
    y = np.asarray(b)
    if y.dtype.kind not in "biuf":
        raise TypeError
    return y


MIRROR = {"lt": "gt", "gt": "lt", "le": "ge", "ge": "le", "eq": "eq", "ne": "ne"}


def _np_flipped(npfn, b, ta, name):
    if isinstance(b, (bool, int, float, np.integer, np.floating)):
        y = float(b)
    else:
        y = _np_operand(b)
    if name == "matmul" and (np.ndim(y) == 0 or ta.ndim == 0):
        raise ValueError
    return npfn(y, ta.numpy())


def _loose(a):
    return {"rtol": 1e-4, "atol": 1e-4} if a.dtype == np.float32 else {"rtol": 1e-6, "atol": 1e-6}


def test_regression_bad_list_operand_names_the_op():
    """A non-numeric or ragged list operand used to raise 'Tensor: ...', not naming the op."""
    x = Tensor(np.ones((2, 2)))
    with pytest.raises(TypeError, match="matmul"):
        x @ [[0.0, ""], [1.0, 2.0]]
    with pytest.raises(ValueError, match="add"):
        x + [[1.0], [1.0, 2.0]]


# ----- unary ops -----

UNARY = {
    "exp": (lambda t: t.exp(), np.exp),
    "log": (lambda t: t.log(), np.log),
    "sqrt": (lambda t: t.sqrt(), np.sqrt),
    "abs": (lambda t: t.abs(), np.abs),
    "relu": (lambda t: t.relu(), lambda x: np.maximum(x, 0)),
    "sigmoid": (lambda t: t.sigmoid(), lambda x: 1 / (1 + np.exp(-x.astype(np.float64)))),
    "tanh": (lambda t: t.tanh(), np.tanh),
    "neg": (lambda t: -t, np.negative),
}


@FUZZ
@given(name=st.sampled_from(sorted(UNARY)), a=arrays())
def test_unary(name, a):
    fn, npfn = UNARY[name]
    check(lambda: fn(Tensor(a, dtype=a.dtype)), lambda: npfn(a), name, tol=_loose(a))


@FUZZ
@given(a=arrays(), slope=st.one_of(st.floats(-2, 2), GARBAGE))
def test_leaky_relu(a, slope):
    def expected():
        s = float(slope) if isinstance(slope, (int, float)) else None
        if s is None:
            raise TypeError
        return np.where(a > 0, a, s * a)

    check(lambda: Tensor(a, dtype=a.dtype).leaky_relu(slope), expected, "leaky_relu", _loose(a))


@FUZZ
@given(
    a=arrays(), lo=st.one_of(st.floats(-30, 30), GARBAGE), hi=st.one_of(st.floats(-30, 30), GARBAGE)
)
def test_clip(a, lo, hi):
    def expected():
        for v in (lo, hi):
            if v is not None and not isinstance(v, (int, float)):
                raise TypeError
        return np.clip(a, lo, hi)  # lo > hi gives hi everywhere, as PyTorch's clamp

    check(lambda: Tensor(a, dtype=a.dtype).clip(lo, hi), expected, "clip", _loose(a))


# ----- reductions, argmax, softmax -----


def _np_axis(axis, ndim):
    """The library's axis contract: None, an int or a tuple/list of distinct in-range ints."""
    if axis is None:
        return None
    if isinstance(axis, (int, np.integer)) and not isinstance(axis, bool):
        axes = (axis,)
    elif isinstance(axis, (tuple, list)):
        axes = tuple(axis)
    else:
        raise TypeError
    n = max(ndim, 1)
    if not all(isinstance(x, (int, np.integer)) and -n <= x < n for x in axes):
        raise ValueError
    norm = [int(x) % n for x in axes]
    if len(set(norm)) != len(norm):
        raise ValueError
    return tuple(norm) if ndim else None


REDUCE = {"sum": np.sum, "mean": np.mean, "max": np.max, "min": np.min}


@FUZZ
@given(name=st.sampled_from(sorted(REDUCE)), a=arrays(), axis=AXES, keepdims=st.booleans())
def test_reduction(name, a, axis, keepdims):
    t = Tensor(a, dtype=a.dtype)
    ax = None
    try:
        ax = _np_axis(axis, a.ndim)
    except (TypeError, ValueError):
        pass
    reduced = a.shape if ax is None else [a.shape[i] for i in ax]
    if name in ("max", "min") and 0 in reduced:
        return  # (b) max/min over empty tensors: being fixed elsewhere

    def expected():
        ax = _np_axis(axis, a.ndim)
        if ax is None and a.ndim == 0 and axis is not None:
            return REDUCE[name](a, keepdims=keepdims)
        return REDUCE[name](a, axis=ax, keepdims=keepdims)

    check(lambda: getattr(t, name)(axis, keepdims), expected, name, _loose(a))


@FUZZ
@given(a=arrays(), axis=AXES)
def test_argmax(a, axis):
    def expected():
        if axis is None:
            return np.argmax(a)
        if not isinstance(axis, (int, np.integer)):
            raise TypeError
        (ax,) = _np_axis(axis, a.ndim) or (None,)
        return np.argmax(a, axis=ax)

    check(lambda: Tensor(a, dtype=a.dtype).argmax(axis), expected, "argmax")


def _np_softmax(a, axis, log):
    if not isinstance(axis, (int, np.integer)):
        raise TypeError
    (ax,) = _np_axis(axis, a.ndim) or (None,)
    x = a.astype(np.float64)
    m = np.max(x, axis=ax, keepdims=True)
    lse = m + np.log(np.sum(np.exp(x - m), axis=ax, keepdims=True))
    return x - lse if log else np.exp(x - lse)


@FUZZ
@given(
    a=arrays(
        dtype=st.sampled_from([np.float32, np.float64]), shape=SHAPES.filter(lambda s: 0 not in s)
    ),
    axis=AXES,
    log=st.booleans(),
)
def test_softmax(a, axis, log):
    name = "log_softmax" if log else "softmax"
    check(
        lambda: getattr(Tensor(a), name)(axis), lambda: _np_softmax(a, axis, log), name, _loose(a)
    )


# ----- shape ops and indexing -----

SHAPE_ARGS = st.one_of(
    st.tuples(),
    st.lists(st.integers(-2, 5), max_size=4).map(tuple),
    st.lists(st.integers(-2, 5), max_size=3).map(lambda x: (tuple(x),)),
    st.lists(st.integers(-2, 5), max_size=3).map(lambda x: (list(x),)),
    st.tuples(GARBAGE),
    st.tuples(st.integers(0, 3), st.floats(0, 3)),
)


def _np_reshape(a, args):
    shape = tuple(args[0]) if len(args) == 1 and isinstance(args[0], (tuple, list)) else args
    if not all(isinstance(n, int) and not isinstance(n, bool) for n in shape):
        raise TypeError
    if shape.count(-1) > 1 or any(n < -1 for n in shape):
        raise ValueError
    return a.reshape(shape)


def _np_transpose(a, args):
    if not args:
        return a.T
    axes = tuple(args[0]) if len(args) == 1 and isinstance(args[0], (tuple, list)) else args
    if not all(isinstance(n, int) and not isinstance(n, bool) for n in axes):
        raise TypeError
    if len(args) == 2 and a.ndim not in (0, 2):  # contract v2: PyTorch's transpose(dim0, dim1)
        return np.swapaxes(a, *args)
    return np.transpose(a, axes)


@FUZZ
@given(a=arrays(), args=SHAPE_ARGS, op=st.sampled_from(["reshape", "transpose", "flatten"]))
def test_shape_ops(a, args, op):
    t = Tensor(a, dtype=a.dtype)
    if op == "reshape":
        check(lambda: t.reshape(*args), lambda: _np_reshape(a, args), "reshape")
    elif op == "transpose":
        check(lambda: t.transpose(*args), lambda: _np_transpose(a, args), "transpose")
    else:
        check(lambda: t.flatten(), lambda: a.reshape(-1), "flatten")


INDEX_ATOM = st.one_of(
    st.integers(-6, 6),
    st.slices(5),
    st.none(),
    st.just(Ellipsis),
    st.lists(st.integers(-5, 5), max_size=3),
    st.floats(-2, 2),
    st.text(max_size=2),
    st.lists(st.booleans(), min_size=1, max_size=4),
)
INDICES = st.one_of(
    INDEX_ATOM, st.tuples(INDEX_ATOM, INDEX_ATOM), st.tuples(INDEX_ATOM, INDEX_ATOM, INDEX_ATOM)
)


def _np_getitem(a, index):
    def norm(i):
        if isinstance(i, tuple):
            return tuple(norm(j) for j in i)
        if isinstance(i, list):
            return np.asarray(i)
        return i

    return a[norm(index)]


@FUZZ
@given(a=arrays(), index=INDICES)
def test_getitem(a, index):
    check(lambda: Tensor(a, dtype=a.dtype)[index], lambda: _np_getitem(a, index), "getitem")


# ----- cat / stack -----


@FUZZ
@given(
    items=st.lists(
        st.one_of(arrays(shape=st.sampled_from([(2,), (2, 3), (3, 3), (2, 3, 1), ()]))), max_size=3
    ),
    junk=st.one_of(st.none(), GARBAGE),
    axis=AXES,
    stack=st.booleans(),
)
def test_cat_stack(items, junk, axis, stack):
    tensors = [Tensor(x, dtype=x.dtype) for x in items]
    if junk is not None and tensors:
        tensors.append(junk)
    name = "stack" if stack else "cat"

    def expected():
        if not tensors or not all(isinstance(t, Tensor) for t in tensors):
            raise TypeError
        if not isinstance(axis, (int, np.integer)):
            raise TypeError
        dtypes = {x.dtype for x in items}
        if len(dtypes) > 1 and np.dtype(np.int64) in dtypes:
            raise TypeError
        return (np.stack if stack else np.concatenate)(items, axis=axis)

    check(lambda: getattr(Tensor, name)(tensors, axis), expected, name)


# ----- losses -----

LABELS = st.one_of(
    st.lists(st.integers(-2, 5), max_size=5),
    st.lists(st.integers(0, 3), max_size=5).map(
        lambda x: Tensor(np.array(x, dtype=np.int64), dtype="int64")
    ),
    st.lists(st.integers(0, 3), max_size=5).map(lambda x: np.array(x)),
    st.lists(st.floats(0, 3), max_size=4),
    st.lists(st.integers(0, 3), max_size=4).map(lambda x: Tensor(x)),
    GARBAGE,
    st.integers(0, 3),
)


def _np_cross_entropy(z, labels, reduction):
    if reduction not in ("mean", "sum", "none"):
        raise ValueError
    if z.ndim != 2 or z.shape[1] == 0 or z.dtype.kind != "f":
        raise ValueError
    y = labels.numpy() if isinstance(labels, Tensor) else labels
    if np.isscalar(y) or y is None:
        raise ValueError
    y = np.asarray(y)
    if y.dtype.kind not in "iu" or y.shape != (z.shape[0],):
        raise ValueError
    if y.size and (y.min() < 0 or y.max() >= z.shape[1]):
        raise ValueError
    x = z.astype(np.float64)
    m = x.max(axis=1, keepdims=True)
    lse = (m + np.log(np.exp(x - m).sum(axis=1, keepdims=True)))[:, 0]
    losses = lse - x[np.arange(len(y)), y]
    return {"mean": np.mean, "sum": np.sum, "none": lambda v: v}[reduction](losses)


@FUZZ
@given(
    z=arrays(shape=st.sampled_from([(3, 4), (4, 3), (0, 3), (3,), (2, 2, 2), (4, 0)])),
    labels=LABELS,
    reduction=st.sampled_from(["mean", "sum", "none", "avg", None]),
)
def test_cross_entropy(z, labels, reduction):
    check(
        lambda: NF.cross_entropy(Tensor(z, dtype=z.dtype), labels, reduction),
        lambda: _np_cross_entropy(z, labels, reduction),
        "cross_entropy",
        _loose(z),
    )


def _np_regression(kind, p, target, reduction):
    if reduction not in ("mean", "sum", "none") or p.dtype.kind != "f":
        raise ValueError
    t = target.numpy() if isinstance(target, Tensor) else np.asarray(target)
    if t.dtype.kind not in "biuf" or t.shape != p.shape:
        raise ValueError
    x, t = p.astype(np.float64), t.astype(np.float64)
    if kind == "mse_loss":
        losses = (x - t) ** 2
    elif kind == "l1_loss":
        losses = np.abs(x - t)
    else:
        if x.size and not (x.min() >= 0 and x.max() <= 1):
            raise ValueError
        lp = np.maximum(np.log(np.maximum(x, 1e-45)), -100)
        lq = np.maximum(np.log(np.maximum(1 - x, 1e-45)), -100)
        losses = -(t * lp + (1 - t) * lq)
    return {"mean": np.mean, "sum": np.sum, "none": lambda v: v}[reduction](losses)


@FUZZ
@given(
    kind=st.sampled_from(["mse_loss", "l1_loss", "binary_cross_entropy"]),
    p=arrays(shape=st.sampled_from([(3,), (2, 2), (3, 1)])),
    target=st.one_of(arrays(shape=st.sampled_from([(3,), (2, 2), (3, 1), (1, 3)])), GARBAGE),
    scale=st.booleans(),
    reduction=st.sampled_from(["mean", "sum", "none", "bad"]),
)
def test_regression_losses(kind, p, target, scale, reduction):
    if scale and p.dtype.kind == "f":
        p = np.abs(p) / 50  # probabilities, for binary_cross_entropy
    check(
        lambda: getattr(NF, kind)(Tensor(p, dtype=p.dtype), target, reduction),
        lambda: _np_regression(kind, p, target, reduction),
        kind,
        _loose(p),
    )


def test_module_namespace():
    assert tg.Tensor is Tensor


# ----- regression tests for what the fuzzing found -----


@pytest.mark.parametrize(
    "op, fn",
    [
        ("leaky_relu", lambda t: t.leaky_relu((1.0, 2.0))),
        ("clip", lambda t: t.clip({"a": 1}, None)),
        ("clip", lambda t: t.clip(None, "1")),
        ("argmax", lambda t: t.argmax((0, 1))),
        ("softmax", lambda t: t.softmax(None)),
        ("log_softmax", lambda t: t.log_softmax((0,))),
        ("cat", lambda t: Tensor.cat([t, t], axis=None)),
        ("stack", lambda t: Tensor.stack([t, t], axis=(0,))),
    ],
)
def test_regression_bad_scalar_args_name_the_op(op, fn):
    """These used to raise bare 'float() argument ...' or 'cannot unpack ...' errors."""
    with pytest.raises(TypeError, match=op):
        fn(Tensor(np.ones((2, 3))))


@pytest.mark.parametrize("loss", ["mse_loss", "l1_loss", "binary_cross_entropy"])
@pytest.mark.parametrize("target, kind", [(None, TypeError), ([[0.5], [0.5, 0.5]], ValueError)])
def test_regression_bad_target_names_the_loss(loss, target, kind):
    """A None or ragged target used to raise 'Tensor: ...', not naming the loss."""
    with pytest.raises(kind, match=loss):
        getattr(NF, loss)(Tensor([0.5, 0.5]), target)


def test_regression_int_leaky_relu_is_not_truncated():
    """int64 leaky_relu with slope 0.5 used to give -1 for -3 (int64 kept), not -1.5."""
    out = Tensor([3, -3], dtype="int64").leaky_relu(0.5)
    np.testing.assert_array_equal(out.numpy(), [3.0, -1.5])


@pytest.mark.parametrize("scalar", [2.5, 3, True, np.float64(1.0)])
def test_regression_scalar_rmatmul_names_matmul(scalar):
    """`2.5 @ t` used to raise AttributeError: 'float' object has no attribute 'matmul'."""
    with pytest.raises(ValueError, match="matmul"):
        scalar @ Tensor(np.ones(3))
