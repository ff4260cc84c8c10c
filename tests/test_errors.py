"""Bad input raises ValueError/TypeError/RuntimeError naming the op and what was expected; odd
but valid input gives numpy's answer. No Numba typing error ever reaches the user."""

from __future__ import annotations

import re
import warnings

import numpy as np
import pytest

import tinygrad_edu as tg
from tinygrad_edu import Tensor, config
from tinygrad_edu import ops as F

CLEAN = (ValueError, TypeError, RuntimeError)
BIG = config.PARALLEL_MIN + 64  # elements: the parallel kernels' side of the threshold


def _no_numba_in(exc: BaseException) -> None:
    """The exception is not numba's, and its message is not a typing traceback."""
    assert "numba" not in type(exc).__module__, type(exc)
    msg = str(exc)
    for marker in ("nopython", "TypingError", "Failed in", "Untyped global", "parfors"):
        assert marker not in msg, msg


def _same_or_clean_error(fn, expected_fn, op: str):
    """Either numpy's answer (values, shape) or a clean error whose message names ``op``."""
    try:
        with np.errstate(all="ignore"):
            expected = expected_fn()
    except Exception:  # numpy refuses: we must refuse cleanly
        expected = None
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)
            got = fn()
    except CLEAN as exc:
        _no_numba_in(exc)
        assert op in str(exc), f"{op!r} not named in: {exc}"
        return
    except Exception as exc:  # anything else is a bug
        pytest.fail(f"{op}: unexpected {type(exc).__module__}.{type(exc).__name__}: {exc}")
    assert expected is not None, f"{op}: numpy raises, but a result came back: {got}"
    got = got.numpy() if isinstance(got, Tensor) else got
    assert got.shape == np.shape(expected), (got.shape, np.shape(expected))
    np.testing.assert_allclose(got, expected, rtol=1e-6, atol=1e-6, equal_nan=True)


# ----- shapes -----


def test_matmul_shape_mismatch_message():
    with pytest.raises(ValueError) as info:
        Tensor(np.ones((2, 3))) @ Tensor(np.ones((4, 5)))
    assert str(info.value) == "matmul: shapes (2, 3) and (4, 5) do not align: 3 != 4"


@pytest.mark.parametrize(
    "sa, sb",
    [((3,), (4,)), ((2, 3), (2,)), ((5,), (4, 2)), ((2, 2, 3), (2, 4, 3)), ((3, 2, 3), (2, 3, 1))],
)
def test_matmul_mismatches(sa, sb):
    with pytest.raises(ValueError, match=r"matmul: .*" + re.escape(str(sa))):
        Tensor(np.ones(sa)) @ Tensor(np.ones(sb))


def test_matmul_of_zero_dim():
    with pytest.raises(ValueError, match="matmul"):
        Tensor(np.ones((2, 2))).sum() @ Tensor(np.ones((2, 2)))


@pytest.mark.parametrize(
    "name, fn",
    [
        ("add", lambda a, b: a + b),
        ("sub", lambda a, b: a - b),
        ("mul", lambda a, b: a * b),
        ("div", lambda a, b: a / b),
        ("pow", lambda a, b: a**b),
        ("eq", lambda a, b: a == b),
        ("lt", lambda a, b: a < b),
        ("ge", lambda a, b: a >= b),
    ],
)
@pytest.mark.parametrize("sa, sb", [((2, 3), (4,)), ((3, 1), (2, 4, 5)), ((5,), (2, 4))])
def test_broadcast_mismatch_names_the_op_and_shapes(name, fn, sa, sb):
    a, b = Tensor(np.ones(sa)), Tensor(np.ones(sb))
    with pytest.raises(ValueError) as info:
        fn(a, b)
    msg = str(info.value)
    assert msg.startswith(name), msg
    assert str(sa) in msg and str(sb) in msg, msg
    with pytest.raises(ValueError, match=name):  # an ndarray operand too
        fn(a, np.ones(sb))


def test_broadcast_mismatch_above_parallel_min():
    a, b = Tensor(np.ones((BIG // 64, 64))), Tensor(np.ones(63))
    for name, fn in [("add", lambda: a + b), ("mul", lambda: b * a), ("pow", lambda: a**b)]:
        with pytest.raises(ValueError, match=name) as info:
            fn()
        _no_numba_in(info.value)


@pytest.mark.parametrize("shape", [(4, 2), (7,), (5, -1), (-1, -1), (2, -2), (0, -1)])
def test_reshape_to_a_wrong_size(shape):
    with pytest.raises(ValueError, match="reshape") as info:
        Tensor(np.ones((2, 3))).reshape(*shape)
    assert "(2, 3)" in str(info.value) or "-1" in str(info.value)


def test_reshape_with_non_integers():
    with pytest.raises(TypeError, match="reshape"):
        Tensor(np.ones(6)).reshape(2.0, 3)


@pytest.mark.parametrize("axes", [(0, 0), (0, 1, 2), (1,), (0, 2), (-1, 1)])
def test_bad_transpose_axes(axes):
    with pytest.raises(ValueError, match="transpose"):
        Tensor(np.ones((2, 3))).transpose(*axes)


@pytest.mark.parametrize("axes", [(0, 5), (-3, 0), (2, 1)])
def test_transpose_axis_out_of_range(axes):
    with pytest.raises(ValueError, match="transpose"):
        Tensor(np.ones((2, 3))).transpose(*axes)


def test_cat_and_stack_mismatches():
    with pytest.raises(ValueError, match="cat"):
        Tensor.cat([Tensor(np.ones((2, 3))), Tensor(np.ones((2, 4)))])
    with pytest.raises(ValueError, match="cat"):
        Tensor.cat([Tensor(np.ones((2, 3))), Tensor(np.ones(3))])
    with pytest.raises(ValueError, match="stack"):
        Tensor.stack([Tensor(np.ones(3)), Tensor(np.ones(4))])
    with pytest.raises(TypeError, match="cat"):
        Tensor.cat([])
    with pytest.raises(TypeError, match="stack"):
        Tensor.stack([np.ones(3)])
    with pytest.raises(ValueError, match="cat"):
        Tensor.cat([Tensor(np.ones((2, 3)))], axis=2)


@pytest.mark.parametrize(
    "call",
    [
        lambda t: t.sum(axis=2),
        lambda t: t.sum(axis=-3),
        lambda t: t.mean(axis=(0, 5)),
        lambda t: t.max(axis=2),
        lambda t: t.min(axis=-3),
        lambda t: t.softmax(axis=2),
        lambda t: t.log_softmax(axis=-3),
        lambda t: t.argmax(axis=2),
        lambda t: Tensor.stack([t, t], axis=4),
        lambda t: t.sum(axis=(0, 0)),
        lambda t: t.mean(axis=(0, 1.0)),
    ],
)
def test_axis_out_of_range(call):
    with pytest.raises(ValueError, match="axis") as info:
        call(Tensor(np.ones((2, 3))))
    assert re.match(r"(sum|mean|max|min|softmax|log_softmax|argmax|stack|cat)\b", str(info.value))


@pytest.mark.parametrize("name", ["sum", "mean", "max"])
def test_non_integer_axis_names_the_op(name):
    with pytest.raises((TypeError, ValueError), match=name):
        getattr(Tensor(np.ones((2, 3))), name)(axis=1.5)


@pytest.mark.parametrize("index", [5, -6, (0, 4), [0, 7], (slice(None), [4]), (0, 0, 0)])
def test_index_out_of_range(index):
    t = Tensor(np.ones((5, 4)))
    with pytest.raises(IndexError, match="getitem") as info:
        t[index]
    assert isinstance(info.value, ValueError) or isinstance(info.value, IndexError)


@pytest.mark.parametrize("index", [1.5, "a", Tensor([0.0, 1.0]), (slice(None), 2.0)])
def test_invalid_index_type(index):
    with pytest.raises((TypeError, IndexError), match="getitem"):
        Tensor(np.ones((5, 4)))[index]


def test_empty_reductions():
    with pytest.raises(ValueError, match="max"):
        Tensor(np.ones((0, 3))).max()
    with pytest.raises(ValueError, match="min"):
        Tensor(np.ones((3, 0))).min(axis=1)
    with pytest.raises(ValueError, match="argmax"):
        Tensor(np.ones(0)).argmax()


# ----- data, dtypes, devices -----


@pytest.mark.parametrize(
    "data, exc",
    [
        (None, TypeError),
        ("abc", TypeError),
        (b"abc", TypeError),
        (["a", "b"], TypeError),
        ([1, "a"], TypeError),
        ([[1, 2], [3]], ValueError),
        ([[1, 2], 3], ValueError),
        ([1j, 2], TypeError),
        ({"a": 1}, TypeError),
        ([object()], TypeError),
        ([None, 1.0], TypeError),
    ],
)
def test_bad_data(data, exc):
    with pytest.raises(exc, match="Tensor"):
        Tensor(data)


@pytest.mark.parametrize("dtype", ["float16", "int32", "floaty", "complex64", np.uint8, "bool", 3])
def test_unknown_dtype(dtype):
    with pytest.raises(TypeError, match=r"Tensor: unsupported dtype"):
        Tensor([1.0], dtype=dtype)


def test_int64_from_non_integer_floats():
    with pytest.raises(ValueError, match="int64"):
        Tensor([1.5, 2.0], dtype="int64")
    with pytest.raises(ValueError, match="int64"):
        Tensor([np.nan], dtype="int64")


def test_requires_grad_on_int64():
    with pytest.raises(TypeError, match="float"):
        Tensor([1, 2], dtype="int64", requires_grad=True)


@pytest.mark.parametrize("device", ["tpu", "cuda:1", "", None, 0, "cpu:0x"])
def test_unknown_device(device):
    with pytest.raises(ValueError, match="device"):
        Tensor([1.0], device=device)


def test_cuda_without_a_gpu_says_why():
    from tinygrad_edu.backend import cuda_support

    if cuda_support.is_available():
        pytest.skip("a CUDA device (or the simulator) is usable here")
    for make in (lambda: Tensor([1.0], device="cuda"), lambda: Tensor([1.0]).to("cuda:0"),
                 lambda: Tensor([1.0]).cuda()):  # fmt: skip
        with pytest.raises(RuntimeError) as info:
            make()
        msg = str(info.value)
        assert "cuda" in msg.lower() and "not available" in msg, msg
        assert cuda_support.cuda_unavailable_reason() in msg


def test_unsupported_operand_type():
    with pytest.raises(TypeError, match="add"):
        Tensor([1.0]) + "a"
    with pytest.raises(TypeError, match="mul"):
        Tensor([1.0]) * None
    with pytest.raises(TypeError, match="add"):
        Tensor([1.0]) + {"a": 1}


def test_clip_with_lo_above_hi_gives_hi_as_pytorch():
    # contract v2: no longer an error; min(max(x, lo), hi) is hi everywhere, as torch.clamp
    assert Tensor([1.0, 5.0, -3.0]).clip(2.0, 1.0).tolist() == [1.0, 1.0, 1.0]


# ----- backward -----


def test_backward_on_non_scalar_without_grad():
    x = Tensor(np.ones((2, 3)), requires_grad=True)
    with pytest.raises(RuntimeError, match=r"backward.*\(2, 3\)"):
        (x * 2.0).backward()


def test_backward_on_tensor_without_grad():
    with pytest.raises(RuntimeError, match="backward.*requires?.grad"):
        Tensor([1.0]).sum().backward()


@pytest.mark.parametrize("grad", [np.ones(3), np.ones((3, 2)), np.ones((1, 6))])
def test_backward_with_grad_of_wrong_shape(grad):
    x = Tensor(np.ones((2, 3)), requires_grad=True)
    with pytest.raises(ValueError, match=r"backward.*\(2, 3\)"):
        (x * 2.0).backward(grad)


def test_item_on_multi_element():
    with pytest.raises(ValueError, match=r"item.*\(2,\)"):
        Tensor([1.0, 2.0]).item()


def test_gradcheck_and_numerical_gradient_argument_errors():
    x = Tensor([1.0], requires_grad=True)
    with pytest.raises(ValueError, match="numerical_gradient"):
        tg.numerical_gradient(lambda: x.sum(), [x], method="sideways")
    with pytest.raises(TypeError, match="gradcheck"):
        tg.gradcheck(lambda: x.sum(), [np.ones(1)])


# ----- odd but valid input: numpy's answer, or a clean error; never a Numba traceback -----


def _int_tensor(shape, lo=-3, hi=4):
    return np.random.default_rng(0).integers(lo, hi, shape)


@pytest.mark.parametrize("size", [6, BIG])
@pytest.mark.parametrize(
    "name, fn, np_fn",
    [
        ("neg", lambda t: -t, np.negative),
        ("exp", lambda t: t.exp(), np.exp),
        ("log", lambda t: t.log(), np.log),
        ("sqrt", lambda t: t.sqrt(), np.sqrt),
        ("abs", lambda t: t.abs(), np.abs),
        ("relu", lambda t: t.relu(), lambda a: np.maximum(a, 0)),
        ("sigmoid", lambda t: t.sigmoid(), lambda a: 1 / (1 + np.exp(-a))),
        ("tanh", lambda t: t.tanh(), np.tanh),
        ("clip", lambda t: t.clip(-1, 2), lambda a: np.clip(a, -1, 2)),
        ("add", lambda t: t + t, lambda a: a + a),
        ("mul", lambda t: t * 2.5, lambda a: a * 2.5),
        ("div", lambda t: t / 2, lambda a: a / 2),
        ("pow", lambda t: t**2, lambda a: a**2.0),
        ("sum", lambda t: t.sum(), np.sum),
        ("mean", lambda t: t.mean(), np.mean),
        ("max", lambda t: t.max(), np.max),
        ("softmax", lambda t: t.reshape(-1, 2).softmax(), None),
        ("log_softmax", lambda t: t.reshape(-1, 2).log_softmax(), None),
    ],
)
def test_int64_tensors_in_float_ops(name, fn, np_fn, size):
    a = _int_tensor(size)
    if np_fn is None:
        b = a.reshape(-1, 2).astype(np.float64)
        m = b.max(axis=1, keepdims=True)
        lsm = b - m - np.log(np.exp(b - m).sum(axis=1, keepdims=True))
        np_fn = (lambda _: np.exp(lsm)) if name == "softmax" else (lambda _: lsm)
    _same_or_clean_error(lambda: fn(Tensor(a, dtype="int64")), lambda: np_fn(a), name)


@pytest.mark.parametrize("size", [6, BIG])
def test_int64_mixed_with_floats(size):
    i = Tensor(_int_tensor(size), dtype="int64")
    f = Tensor(np.linspace(1, 2, size))
    f32 = Tensor(np.linspace(1, 2, size).astype(np.float32))
    a, b = i.numpy(), f.numpy()
    _same_or_clean_error(lambda: i + f, lambda: a + b, "add")
    _same_or_clean_error(lambda: f32 * i, lambda: f32.numpy() * a, "mul")
    _same_or_clean_error(lambda: i / f, lambda: a / b, "div")
    _same_or_clean_error(lambda: i**f, lambda: a**b, "pow")


@pytest.mark.parametrize("name", ["matmul", "cat", "stack"])
def test_int64_mixed_with_floats_in_joining_ops(name):
    i = Tensor(_int_tensor((2, 2)), dtype="int64")
    f = Tensor(np.linspace(1, 2, 4).reshape(2, 2))
    a, b = i.numpy(), f.numpy()
    fns = {
        "matmul": (lambda: i @ f, lambda: a @ b),
        "cat": (lambda: Tensor.cat([i, f]), lambda: np.concatenate([a, b])),
        "stack": (lambda: Tensor.stack([i, f]), lambda: np.stack([a, b])),
    }
    _same_or_clean_error(*fns[name], name)


def test_int64_labels_through_cross_entropy_and_argmax():
    logits = Tensor(np.array([[1.0, 2.0, 0.5], [3.0, -1.0, 0.0]]), requires_grad=True)
    labels = Tensor([1, 0], dtype="int64")
    loss = F.CrossEntropy.apply(logits, labels.numpy(), "mean")
    loss.backward()
    assert np.isfinite(loss.item()) and logits.grad.shape == (2, 3)
    assert logits.argmax(axis=1).tolist() == [1, 0]


@pytest.mark.parametrize(
    "name, fn, np_fn",
    [
        ("exp", lambda t: t.exp(), np.exp),
        ("add", lambda t: t + t, lambda a: a + a),
        ("add", lambda t: t + Tensor(np.ones(3)), lambda a: a + 1.0),
        ("mul", lambda t: t * 2.0, lambda a: a * 2.0),
        ("sum", lambda t: t.sum(axis=0), lambda a: a.sum(axis=0)),
        ("sum", lambda t: t.sum(), lambda a: a.sum()),
        ("mean", lambda t: t.mean(axis=1), lambda a: a.mean(axis=1)),
        ("softmax", lambda t: t.softmax(axis=-1), None),
        ("log_softmax", lambda t: t.log_softmax(), None),
        ("relu", lambda t: t.relu(), lambda a: np.maximum(a, 0)),
        ("matmul", lambda t: t @ Tensor(np.ones((3, 2))), lambda a: a @ np.ones((3, 2))),
        ("transpose", lambda t: t.T, lambda a: a.T),
        ("reshape", lambda t: t.reshape(3, -1), lambda a: a.reshape(3, -1)),
        ("getitem", lambda t: t[::-1], lambda a: a[::-1]),
        ("cat", lambda t: Tensor.cat([t, t]), lambda a: np.concatenate([a, a])),
        ("max", lambda t: t.max(axis=1), lambda a: a.max(axis=1)),
        ("argmax", lambda t: t.argmax(axis=0), lambda a: a.argmax(axis=0)),
    ],
)
def test_zero_size_tensors(name, fn, np_fn):
    a = np.ones((0, 3))
    if np_fn is None:
        np_fn = lambda x: x  # noqa: E731  (softmax of nothing is nothing)
    _same_or_clean_error(lambda: fn(Tensor(a)), lambda: np_fn(a), name)


def test_zero_size_backward():
    x = Tensor(np.ones((0, 3)), requires_grad=True)
    (x * 2.0).sum().backward()
    assert x.grad is None or x.grad.shape == (0, 3)


@pytest.mark.parametrize("name", ["softmax", "log_softmax"])
@pytest.mark.parametrize("shape, axis", [((3, 0), -1), ((0, 3), 0)])
def test_softmax_over_an_empty_axis(name, shape, axis):
    try:
        out = getattr(Tensor(np.ones(shape)), name)(axis=axis)
    except CLEAN as exc:
        assert name in str(exc), str(exc)
    else:
        assert out.shape == shape


@pytest.mark.parametrize("size", [(4, 6), (BIG // 64, 64)])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_non_contiguous_tensors_in_every_kernel(size, dtype):
    """Graph values that are transposed and reversed views reach the kernels (and backward)."""
    rng = np.random.default_rng(1)
    rows, cols = size
    a = rng.uniform(0.5, 1.5, (cols, rows))
    labels = np.arange(rows) % cols

    def loss_and_grad(dtype):
        t = Tensor(a.astype(dtype), requires_grad=True)
        u = t.T[::-1]  # (rows, cols): a reversed, Fortran-ordered view
        assert not u.numpy().flags.c_contiguous
        y = (u.exp() * u).sigmoid() + u.log_softmax(axis=-1) + (u[:, ::-1] - 1.0).relu()
        y = y + u.softmax(axis=0) * u.tanh()
        loss = (y * y).sum(axis=0).mean() + F.CrossEntropy.apply(u, labels, "sum")
        loss = loss + (u * u.T.T).sum(axis=1).max()
        loss.backward()
        return loss.item(), t.grad.numpy()

    loss, grad = loss_and_grad(dtype)
    loss64, grad64 = loss_and_grad(np.float64)
    tol = 1e-4 if dtype == np.float32 else 1e-10
    np.testing.assert_allclose(loss, loss64, rtol=tol)
    np.testing.assert_allclose(grad, grad64, rtol=tol, atol=tol)


@pytest.mark.parametrize(
    "name, fn",
    [
        ("add", lambda a, b: a + b),
        ("mul", lambda a, b: a * b),
        ("div", lambda a, b: a / b),
        ("pow", lambda a, b: a**b),
        ("sub", lambda a, b: b - a),
    ],
)
@pytest.mark.parametrize("pattern", ["same", "row", "column"])
def test_mixed_float_dtypes_above_parallel_min(name, fn, pattern):
    rng = np.random.default_rng(2)
    a = rng.uniform(0.5, 1.5, (BIG // 64, 64)).astype(np.float32)
    b = {"same": rng.uniform(0.5, 1.5, a.shape), "row": rng.uniform(0.5, 1.5, 64),
         "column": rng.uniform(0.5, 1.5, (a.shape[0], 1))}[pattern]  # fmt: skip
    x, y = Tensor(a, requires_grad=True), Tensor(b, requires_grad=True)
    out = fn(x, y)
    assert out.dtype == np.float64
    np.testing.assert_allclose(out.numpy(), fn(a.astype(np.float64), b), rtol=1e-12)
    out.sum().backward()
    assert x.grad.dtype == np.float32 and y.grad.dtype == np.float64
    assert x.grad.shape == a.shape and y.grad.shape == b.shape


def test_float32_tensor_with_float64_scalar_above_parallel_min():
    x = Tensor(np.ones(BIG, np.float32))
    for s in (np.float64(0.5), 0.5, np.float32(0.5), 2, True):
        assert (x * s).dtype == np.float32
        assert (s / x).dtype == np.float32


def test_cross_entropy_op_with_bad_labels_raises_cleanly():
    z = Tensor(np.random.default_rng(3).standard_normal((4, 3)))
    with pytest.raises(ValueError, match="cross_entropy"):
        F.CrossEntropy.apply(z, np.array([0, 1, 2, 3]), "mean")
