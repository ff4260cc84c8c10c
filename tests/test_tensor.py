"""Tensor construction, dtype rules and attributes (API.md, section Tensor)."""

from __future__ import annotations

import numpy as np
import pytest

import tinygrad_edu as tg
from tinygrad_edu import Tensor

F32, F64, I64 = np.dtype(np.float32), np.dtype(np.float64), np.dtype(np.int64)

# ----- construction and the default dtype -----


@pytest.mark.parametrize(
    "data, shape",
    [
        (1.5, ()),
        (3, ()),
        (True, ()),
        ([1, 2, 3], (3,)),
        ([[1.0, 2.0], [3.0, 4.0]], (2, 2)),
        ([[True, False]], (1, 2)),
        (np.arange(6, dtype=np.int64).reshape(2, 3), (2, 3)),
        (np.arange(6, dtype=np.int32).reshape(3, 2), (3, 2)),
        (np.array([True, False, True]), (3,)),
        (np.ones((2, 1), dtype=np.float16), (2, 1)),
        ([], (0,)),
    ],
)
def test_non_float_data_becomes_float32(data, shape):
    t = Tensor(data)
    assert t.dtype == np.float32
    np.testing.assert_array_equal(t.numpy(), np.asarray(data, dtype=np.float32).reshape(t.shape))
    if shape != ():  # 0-d shapes: see test_zero_dim_data_keeps_its_shape
        assert t.shape == shape


@pytest.mark.parametrize(
    "data", [1.5, 3, np.float64(2.0), np.array(2.0), np.array(2.0, np.float32)]
)
def test_zero_dim_data_keeps_its_shape(data):
    t = Tensor(data)
    assert t.shape == () and t.ndim == 0 and t.size == 1
    assert t.item() == float(np.asarray(data))


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_float_arrays_keep_their_dtype(rng, dtype):
    a = rng.standard_normal((3, 4)).astype(dtype)
    t = Tensor(a)
    assert t.dtype == dtype
    np.testing.assert_array_equal(t.numpy(), a)


@pytest.mark.parametrize(
    "spec, expected",
    [
        ("float32", F32),
        ("float64", F64),
        ("int64", I64),
        (np.float32, F32),
        (np.float64, F64),
        (np.int64, I64),
        (np.dtype("float64"), F64),
    ],
)
def test_dtype_argument_accepts_strings_and_numpy_dtypes(spec, expected):
    t = Tensor([[1, 2], [3, 4]], dtype=spec)
    assert t.dtype == expected
    np.testing.assert_array_equal(t.numpy(), [[1, 2], [3, 4]])


def test_dtype_argument_converts_float_arrays():
    a = np.linspace(0, 1, 5)
    assert Tensor(a, dtype="float32").dtype == np.float32
    np.testing.assert_allclose(Tensor(a, dtype="float32").numpy(), a.astype(np.float32))


def test_int64_labels():
    y = Tensor([0, 2, 1], dtype="int64")
    assert y.dtype == np.int64 and y.tolist() == [0, 2, 1]
    assert Tensor(np.array([3.0, 4.0]), dtype="int64").tolist() == [3, 4]  # integral floats


def test_tensor_from_tensor_copies_and_keeps_dtype():
    a = Tensor(np.arange(3.0))
    b = Tensor(a)
    assert b.dtype == np.float64
    b.data[0] = 100.0
    assert a.tolist() == [0.0, 1.0, 2.0]


def test_constructor_copies_user_data():
    a = np.arange(4.0)
    t = Tensor(a)
    a[0] = 100.0
    assert t.tolist() == [0.0, 1.0, 2.0, 3.0]
    lst = [1.0, 2.0]
    t = Tensor(lst)
    lst[0] = 9.0
    assert t.tolist() == [1.0, 2.0]


def test_non_contiguous_input_is_copied_correctly(rng):
    a = rng.standard_normal((4, 6))[:, ::2].T
    t = Tensor(a)
    np.testing.assert_array_equal(t.numpy(), a)
    assert t.numpy().flags.c_contiguous


# ----- constructors -----


@pytest.mark.parametrize("name, fill", [("zeros", 0.0), ("ones", 1.0)])
def test_zeros_ones_shapes_and_values(name, fill):
    make = getattr(Tensor, name)
    for args in [(2, 3), ((2, 3),), ([4],)]:
        t = make(*args)
        assert t.shape == ((4,) if args == ([4],) else (2, 3))
        assert np.all(t.numpy() == fill)
    assert make(2, dtype="float64").dtype == np.float64
    assert make(2, requires_grad=True).requires_grad


@pytest.mark.parametrize(
    "make",
    [
        lambda: Tensor.zeros(2, 3),
        lambda: Tensor.ones(2),
        lambda: Tensor.full((2, 2), 3.0),
        lambda: Tensor.eye(3),
    ],
    ids=["zeros", "ones", "full", "eye"],
)
def test_constructors_default_to_float32(make):
    assert make().dtype == np.float32


def test_full_and_eye():
    np.testing.assert_array_equal(Tensor.full((2, 3), 2.5).numpy(), np.full((2, 3), 2.5))
    np.testing.assert_array_equal(Tensor.full(4, -1.0).numpy(), np.full(4, -1.0))
    np.testing.assert_array_equal(Tensor.eye(3).numpy(), np.eye(3))
    assert Tensor.eye(2, dtype="float64").dtype == np.float64


def test_random_constructors_float32_and_seeded():
    tg.manual_seed(123)
    a, u = Tensor.randn(50, 4), Tensor.rand(100)
    tg.manual_seed(123)
    b, v = Tensor.randn(50, 4), Tensor.rand(100)
    assert a.dtype == np.float32 and u.dtype == np.float32
    np.testing.assert_array_equal(a.numpy(), b.numpy())
    np.testing.assert_array_equal(u.numpy(), v.numpy())
    assert np.all((u.numpy() >= 0) & (u.numpy() < 1))
    assert abs(float(a.numpy().mean())) < 0.5 and 0.5 < float(a.numpy().std()) < 1.5
    assert Tensor.randn(2, dtype="float64").dtype == np.float64
    tg.manual_seed(124)
    assert not np.array_equal(Tensor.randn(50, 4).numpy(), a.numpy())


# ----- mixed dtypes -----

_BINARY = {
    "add": lambda a, b: a + b,
    "sub": lambda a, b: a - b,
    "mul": lambda a, b: a * b,
    "div": lambda a, b: a / b,
    "pow": lambda a, b: a**b,
    "matmul": lambda a, b: a @ b,
}


@pytest.mark.parametrize("op", list(_BINARY))
@pytest.mark.parametrize("order", ["f32_f64", "f64_f32"])
def test_mixed_float32_float64_gives_float64(rng, op, order):
    a = rng.uniform(0.5, 2.0, (3, 3))
    b = rng.uniform(0.5, 2.0, (3, 3))
    da, db = (np.float32, np.float64) if order == "f32_f64" else (np.float64, np.float32)
    x = Tensor(a.astype(da), requires_grad=True)
    y = Tensor(b.astype(db), requires_grad=True)
    out = _BINARY[op](x, y)
    assert out.dtype == np.float64
    expected = _BINARY[op](a.astype(da).astype(np.float64), b.astype(db).astype(np.float64))
    np.testing.assert_allclose(out.numpy(), expected, rtol=1e-12)
    out.sum().backward()
    assert x.grad.dtype == da and y.grad.dtype == db  # each leaf's grad has the leaf's dtype


def test_mixed_dtypes_in_cat_and_stack():
    a, b = Tensor(np.ones(2, np.float32)), Tensor(np.zeros(2))
    assert Tensor.cat([a, b]).dtype == np.float64
    assert Tensor.stack([a, b]).dtype == np.float64


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("scalar", [2, 2.5, True, np.float64(1.5), np.int64(3), np.float32(0.5)])
@pytest.mark.parametrize("op", ["add", "sub", "mul", "div", "pow"])
def test_python_scalar_never_changes_dtype(dtype, scalar, op):
    x = Tensor(np.array([1.0, 2.0, 3.0], dtype=dtype))
    fn = _BINARY[op]
    assert fn(x, scalar).dtype == dtype
    assert fn(scalar, x).dtype == dtype
    np.testing.assert_allclose(
        fn(x, scalar).numpy(), fn(x.numpy().astype(np.float64), float(scalar)), rtol=1e-6
    )


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_comparisons_give_float32_zeros_and_ones(rng, dtype):
    a = rng.integers(0, 3, (4, 3)).astype(dtype)
    b = rng.integers(0, 3, (3,)).astype(dtype)
    x, y = Tensor(a), Tensor(b)
    cases = {
        "==": (x == y, a == b),
        "!=": (x != y, a != b),
        "<": (x < y, a < b),
        "<=": (x <= y, a <= b),
        ">": (x > y, a > b),
        ">=": (x >= y, a >= b),
        "scalar": (x > 1, a > 1),
        "reflected": (1 < x, 1 < a),
    }
    for name, (got, expected) in cases.items():
        assert got.dtype == np.float32, name
        assert not got.requires_grad
        np.testing.assert_array_equal(got.numpy(), expected.astype(np.float32), err_msg=name)


def test_comparison_with_nan_is_false():
    x = Tensor([np.nan, 1.0])
    np.testing.assert_array_equal((x == x).numpy(), [0.0, 1.0])
    np.testing.assert_array_equal((x != x).numpy(), [1.0, 0.0])


def test_comparison_result_does_not_require_grad():
    x = Tensor([1.0, 2.0], requires_grad=True)
    assert not (x > 1.5).requires_grad


@pytest.mark.parametrize("axis", [None, 0, 1, -1, -2])
def test_argmax_int64_matches_numpy(rng, axis):
    a = rng.standard_normal((4, 5))
    got = Tensor(a).argmax(axis=axis)
    assert got.dtype == np.int64
    np.testing.assert_array_equal(got.numpy(), np.argmax(a, axis=axis))
    assert not got.requires_grad


def test_argmax_ties_take_first_like_numpy():
    assert Tensor([1.0, 3.0, 3.0]).argmax().item() == 1


# ----- numpy interop -----


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_ndarray_on_the_left_gives_a_tensor(rng, dtype):
    a = rng.standard_normal((2, 3))
    t = Tensor(rng.standard_normal((2, 3)).astype(dtype), requires_grad=True)
    for got, expected in [
        (a + t, a + t.numpy()),
        (a - t, a - t.numpy()),
        (a * t, a * t.numpy()),
        (a / t, a / t.numpy()),
        (a @ t.T, a @ t.numpy().T),
    ]:
        assert isinstance(got, Tensor)
        assert got.requires_grad
        np.testing.assert_allclose(got.numpy(), expected, rtol=1e-6)
    got = a < t
    assert isinstance(got, Tensor)
    np.testing.assert_array_equal(got.numpy(), (a < t.numpy()).astype(np.float32))


def test_float64_ndarray_operand_promotes_like_numpy():
    t = Tensor(np.ones(3, np.float32))
    assert (t + np.ones(3)).dtype == np.float64
    assert (t + np.ones(3, np.float32)).dtype == np.float32
    assert (t + [1, 2, 3]).dtype == np.float32
    assert (t + np.arange(3)).dtype == np.float32


def test_array_protocol(rng):
    a = rng.standard_normal((2, 3)).astype(np.float32)
    t = Tensor(a)
    np.testing.assert_array_equal(np.asarray(t), a)
    assert np.asarray(t).dtype == np.float32
    assert np.asarray(t, dtype=np.float64).dtype == np.float64
    assert np.array(t).shape == (2, 3)
    np.testing.assert_array_equal(t.numpy(), a)
    np.testing.assert_array_equal(t.data, a)


# ----- attributes -----


def test_attributes():
    t = Tensor(np.zeros((3, 4, 5)))
    assert t.shape == (3, 4, 5) and isinstance(t.shape, tuple)
    assert t.ndim == 3
    assert t.size == 60 and type(t.size) is int
    assert len(t) == 3
    assert t.dtype == np.float64
    assert t.device == "cpu"
    assert t.requires_grad is False and t.grad is None
    assert Tensor([1.0], requires_grad=True).requires_grad is True


def test_len_of_zero_dim_raises():
    with pytest.raises(TypeError, match="len"):
        len(Tensor(np.ones((2, 2))).sum())


def test_item_and_tolist():
    assert Tensor([[2.5]]).item() == 2.5
    assert isinstance(Tensor([[2.5]]).item(), float)
    v = Tensor([7], dtype="int64").item()
    assert v == 7 and isinstance(v, int)
    assert Tensor(np.ones((2, 3))).sum().item() == 6.0
    assert Tensor([[1, 2], [3, 4]]).tolist() == [[1.0, 2.0], [3.0, 4.0]]
    assert Tensor([1, 2], dtype="int64").tolist() == [1, 2]


def test_iteration_and_bool():
    t = Tensor([[1.0, 2.0], [3.0, 4.0]])
    assert [row.tolist() for row in t] == [[1.0, 2.0], [3.0, 4.0]]
    assert bool(Tensor([1.0])) is True and bool(Tensor([0.0])) is False
    with pytest.raises(RuntimeError, match="ambiguous"):
        bool(t)


def test_repr_shows_values_and_flags():
    r = repr(Tensor([1.0, 2.0], requires_grad=True))
    assert "1." in r and "2." in r and "requires_grad=True" in r
    assert "float64" in repr(Tensor(np.ones(2)))


def test_data_setter_keeps_dtype_and_copies():
    t = Tensor(np.zeros(3, np.float32))
    new = np.array([1.0, 2.0, 3.0])
    t.data = new
    assert t.dtype == np.float32
    new[0] = 100.0
    assert t.tolist() == [1.0, 2.0, 3.0]


def test_detach_and_zero_grad():
    x = Tensor([1.0, 2.0], requires_grad=True)
    y = x * 2
    d = y.detach()
    assert not d.requires_grad and d.is_leaf
    np.testing.assert_array_equal(d.numpy(), [2.0, 4.0])
    (x * x).sum().backward()
    assert x.grad is not None
    x.zero_grad()
    assert x.grad is None


def test_requires_grad_flag_method():
    t = Tensor([1.0])
    assert t.requires_grad_() is t and t.requires_grad
    with pytest.raises(TypeError, match="requires_grad"):
        Tensor([1], dtype="int64").requires_grad_()


def test_to_cpu_is_identity():
    t = Tensor([1.0])
    assert t.to("cpu") is t and t.cpu() is t and t.to("CPU") is t
