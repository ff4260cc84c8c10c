"""No silent conversions in Tensor(...) and numpy's rules for reductions of empty tensors
(API.md, "Reliability rules (v2)"). Every expectation comes from numpy."""

import itertools
import warnings

import numpy as np
import pytest

from tinygrad_edu import Tensor
from tinygrad_edu.errors import InputError

I64_RANGE = "[-9223372036854775808, 9223372036854775807]"
NUMERIC = [
    "bool", "int8", "int16", "int32", "int64", "uint8", "uint16", "uint32", "uint64",
    "float16", "float32", "float64",
]  # fmt: skip


def _values(name: str) -> np.ndarray:
    """Values that test a dtype's edges, in native byte order."""
    dt = np.dtype(name)
    if dt.kind == "b":
        return np.array([[True, False], [False, True]])
    if dt.kind in "iu":
        info = np.iinfo(dt)
        return np.array([[info.min, 0], [1, info.max]], dtype=dt)
    info = np.finfo(dt)
    values = [[info.min, -0.5, 1 + info.eps, info.max], [np.inf, -np.inf, np.nan, info.tiny]]
    return np.array(values, dtype=dt)


def _orders(name: str) -> list[np.ndarray]:
    """The values in both byte orders (a 1-byte dtype has only one)."""
    native = _values(name)
    swapped = native.astype(native.dtype.newbyteorder("S"))
    return [native, swapped]


@pytest.mark.parametrize("order", [0, 1], ids=["native", "swapped"])
@pytest.mark.parametrize("name", NUMERIC)
def test_every_numeric_dtype_in_both_byte_orders(name, order):
    a = _orders(name)[order]
    native = _values(name)
    expected = native.dtype if name in ("float32", "float64") else np.dtype(np.float32)
    with warnings.catch_warnings():  # float64's max as float32 is inf, in numpy too
        warnings.simplefilter("ignore", RuntimeWarning)
        want = np.asarray(native).astype(expected)
        t = Tensor(a)
    assert t.dtype == expected and t.dtype.isnative
    np.testing.assert_array_equal(t.numpy(), want)
    t64 = Tensor(a, dtype="float64")
    assert t64.dtype == np.float64
    np.testing.assert_array_equal(t64.numpy(), np.asarray(native).astype(np.float64))


@pytest.mark.parametrize("order", [0, 1], ids=["native", "swapped"])
@pytest.mark.parametrize("name", NUMERIC)
def test_every_numeric_dtype_as_int64_labels(name, order):
    a = _orders(name)[order]
    native = _values(name)
    if native.dtype.kind == "f":  # integral floats convert; NaN, inf and fractions raise
        native = np.array([[-3, 0], [7, 2048]], dtype=native.dtype)
        a = native.astype(a.dtype)
    if name == "uint64":
        with pytest.raises(OverflowError, match=str(np.iinfo(np.uint64).max)):
            Tensor(a, dtype="int64")
        native, a = native[:, :1], a[:, :1]  # 0 and 1 fit
    t = Tensor(a, dtype="int64")
    assert t.dtype == np.int64
    np.testing.assert_array_equal(t.numpy(), native.astype(np.int64))


def test_big_endian_float64_keeps_its_precision():
    a = np.array([1 + 1e-12, -2.5], dtype=">f8")
    t = Tensor(a)
    assert t.dtype == np.float64
    assert t.numpy()[0] == 1 + 1e-12 and t.numpy()[0] != 1.0
    assert Tensor([0.0], dtype=np.dtype(">f8")).dtype == np.float64  # a dtype spec in '>' order
    y = Tensor(np.zeros(2, dtype=np.float32)) + a  # an operand array keeps float64 too
    assert y.dtype == np.float64
    np.testing.assert_array_equal(y.numpy(), a.astype(np.float64))
    t.data = np.array([3 + 1e-12, 1.0], dtype=">f8")  # the .data setter takes the same path
    assert t.dtype == np.float64 and t.numpy()[0] == 3 + 1e-12


@pytest.mark.parametrize(
    "dtype", ["complex64", "complex128", "datetime64[s]", "timedelta64[s]", "U3", "S3"]
)
@pytest.mark.parametrize("swap", [False, True])
def test_non_numeric_dtypes_raise_type_error_naming_the_dtype(dtype, swap):
    a = np.zeros(2, dtype=dtype)
    if swap:
        a = a.astype(a.dtype.newbyteorder("S"))
    with pytest.raises(TypeError, match="Tensor") as info:
        Tensor(a)
    assert str(a.dtype) in str(info.value)


@pytest.mark.parametrize("data", [[None, 1.0], [{"a": 1}], [1j, 2**70]])
def test_object_arrays_of_non_numbers_raise_type_error(data):
    a = np.empty(len(data), dtype=object)
    a[:] = data
    with pytest.raises(TypeError, match="object"):
        Tensor(a)


@pytest.mark.parametrize(
    "data, dtype",
    [
        ([2**64 - 1], "int64"),
        ([2**63], "int64"),
        ([-(2**63) - 1], "int64"),
        (2**70, "int64"),
        ([2**70, 1], "int64"),
        ([2**64 - 1, -1], "int64"),
        (np.array([2**63], dtype=np.uint64), "int64"),
        (np.array([2**64 - 1], dtype=">u8"), "int64"),
        (np.uint64(2**63), "int64"),
    ],
)
def test_integers_beyond_int64_raise(data, dtype):
    with pytest.raises(OverflowError) as info:
        Tensor(data, dtype=dtype)
    message = str(info.value)
    value = max(np.asarray(data, dtype=object).ravel().tolist(), key=abs)
    assert message.startswith("Tensor") and I64_RANGE in message
    assert str(int(value)) in message
    assert isinstance(info.value, InputError)  # a ValueError and a RuntimeError as well


@pytest.mark.parametrize("value", [1e30, -1e30, 2.0**63, np.nan, np.inf, -np.inf])
@pytest.mark.parametrize("dtype", [np.float16, np.float32, np.float64, ">f8"])
def test_floats_that_int64_cannot_hold_raise(value, dtype):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        a = np.array([1.0, value]).astype(dtype)  # float16: 1e30 becomes inf
    with pytest.raises(OverflowError) as info:
        Tensor(a, dtype="int64")
    assert str(a.astype(a.dtype.newbyteorder("="))[1]) in str(info.value)
    assert I64_RANGE in str(info.value)
    with pytest.raises(ValueError, match="Tensor"):
        Tensor(a.tolist(), dtype="int64")  # the Python-list path as well


def test_fractions_as_int64_raise_naming_the_value():
    with pytest.raises(InputError, match=r"Tensor.*2\.5"):
        Tensor([1.0, 2.5], dtype="int64")


def test_int64_edges_and_big_python_ints_that_fit():
    edges = [2**63 - 1, -(2**63)]
    np.testing.assert_array_equal(Tensor(edges, dtype="int64").numpy(), np.array(edges))
    mixed = [2**53 + 1, 1.0]  # numpy reads this list as float64; int64 keeps it exact
    got = Tensor(mixed, dtype="int64").numpy()
    np.testing.assert_array_equal(got, np.array([2**53 + 1, 1], dtype=np.int64))
    for value, dtype in [(2**70, np.float32), (2**70, np.float64), (10**39, np.float64)]:
        t = Tensor(value, dtype=dtype)
        assert t.dtype == dtype and t.item() == np.array(value, dtype=dtype).item()
    np.testing.assert_array_equal(Tensor([2**70, -1]).numpy(), np.array([2**70, -1], np.float32))
    wide = np.array([2**64 - 1], dtype=np.uint64)  # fits float32, as numpy converts it
    np.testing.assert_array_equal(Tensor(wide).numpy(), wide.astype(np.float32))


@pytest.mark.parametrize(
    "value, dtype", [(10**400, None), (-(10**400), "float64"), (10**39, "float32")]
)
def test_python_ints_beyond_a_float_raise(value, dtype):
    with pytest.raises(OverflowError, match="Tensor") as info:
        Tensor([1, value], dtype=dtype)
    assert "10**" in str(info.value) or str(value) in str(info.value)
    assert "float" in str(info.value)


# ----- reductions of empty tensors, as numpy -----

SHAPES = [(0,), (0, 3), (3, 0), (2, 0, 4), (0, 0)]


def _axes(ndim: int) -> list:
    singles = list(range(-ndim, ndim))
    pairs = [p for p in itertools.combinations(range(ndim), 2)]
    return [None, *singles, *pairs, *[(a - ndim, b) for a, b in pairs]]


def _numpy(fn, *args, **kwargs):
    """numpy's answer, or the exception class it raises."""
    with warnings.catch_warnings():  # numpy warns on the mean of nothing; the value is nan
        warnings.simplefilter("ignore", RuntimeWarning)
        try:
            return fn(*args, **kwargs)
        except ValueError as exc:
            return exc


@pytest.mark.parametrize("keepdims", [False, True])
@pytest.mark.parametrize("shape", SHAPES)
@pytest.mark.parametrize("name", ["max", "min"])
def test_max_min_of_empty_tensors_follow_numpy(name, shape, keepdims):
    a = np.ones(shape)
    for axis in _axes(len(shape)):
        want = _numpy(getattr(np, name), a, axis=axis, keepdims=keepdims)
        x = Tensor(a, requires_grad=True)
        if isinstance(want, ValueError):
            with pytest.raises(InputError) as info:
                getattr(x, name)(axis=axis, keepdims=keepdims)
            message = str(info.value)
            assert message.startswith(name) and str(shape) in message and "axis" in message
            continue
        got = getattr(x, name)(axis=axis, keepdims=keepdims)
        assert got.shape == want.shape, (axis, got.shape, want.shape)
        np.testing.assert_array_equal(got.numpy(), want)
        got.sum().backward()
        assert x.grad is not None, axis
        np.testing.assert_array_equal(x.grad.numpy(), np.zeros_like(a))


@pytest.mark.parametrize("keepdims", [False, True])
@pytest.mark.parametrize("shape", SHAPES)
@pytest.mark.parametrize("name", ["sum", "mean"])
def test_sum_mean_of_empty_tensors_follow_numpy(name, shape, keepdims):
    a = np.ones(shape)
    for axis in _axes(len(shape)):
        want = _numpy(getattr(np, name), a, axis=axis, keepdims=keepdims)
        got = getattr(Tensor(a), name)(axis=axis, keepdims=keepdims)
        assert got.shape == np.shape(want) and got.dtype == a.dtype, axis
        np.testing.assert_array_equal(got.numpy(), want)  # 0 for sum, nan for mean


@pytest.mark.parametrize("shape", SHAPES)
def test_argmax_of_empty_tensors_follows_numpy(shape):
    a = np.ones(shape)
    for axis in [None, *range(-len(shape), len(shape))]:
        want = _numpy(np.argmax, a, axis=axis)
        if isinstance(want, ValueError):
            with pytest.raises(InputError, match=rf"^argmax.*{shape}"):
                Tensor(a).argmax(axis=axis)
            continue
        got = Tensor(a).argmax(axis=axis)
        assert got.dtype == np.int64 and got.shape == want.shape
        np.testing.assert_array_equal(got.numpy(), want)
