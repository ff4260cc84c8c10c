"""tg.numerical_gradient and tg.gradcheck (API.md, section Finite differences)."""

from __future__ import annotations

import re
import warnings

import numpy as np
import pytest

import tinygrad_edu as tg
from tinygrad_edu import Tensor
from tinygrad_edu.autograd import Op


def leaf(a, dtype=np.float64) -> Tensor:
    return Tensor(np.asarray(a, dtype=dtype), requires_grad=True)


# ----- numerical_gradient -----


def test_central_and_forward_differences_match_closed_forms(rng):
    a = rng.uniform(-1, 1, (2, 3))
    b = rng.uniform(0.5, 2, (3,))
    x, y = leaf(a), leaf(b)
    f = lambda: (x.exp() * y).sum() + (y * y).sum()  # noqa: E731
    for method in ("central", "forward"):
        gx, gy = tg.numerical_gradient(f, [x, y], eps=1e-6, method=method)
        assert gx.dtype == np.float64 and gx.shape == (2, 3) and gy.shape == (3,)
        tol = 1e-8 if method == "central" else 1e-5
        np.testing.assert_allclose(gx, np.exp(a) * b, atol=tol)
        np.testing.assert_allclose(gy, np.exp(a).sum(axis=0) + 2 * b, atol=tol)


def test_error_orders_forward_first_central_second(rng):
    """For f = sum(exp(x)): forward error ~ eps/2 f'' = eps/2 e^x, central ~ eps^2/6 e^x."""
    a = rng.uniform(-1, 1, 5)
    x = leaf(a)
    f = lambda: x.exp().sum()  # noqa: E731
    exact = np.exp(a)
    for eps in (1e-2, 5e-3):
        (fwd,) = tg.numerical_gradient(f, [x], eps=eps, method="forward")
        (cen,) = tg.numerical_gradient(f, [x], eps=eps, method="central")
        np.testing.assert_allclose(fwd - exact, eps / 2 * exact, rtol=0.02)
        np.testing.assert_allclose(cen - exact, eps**2 / 6 * exact, rtol=0.02)


def test_default_method_is_central():
    x = leaf([0.7])
    f = lambda: (x * x * x).sum()  # noqa: E731
    (default,) = tg.numerical_gradient(f, [x], eps=1e-3)
    (central,) = tg.numerical_gradient(f, [x], eps=1e-3, method="central")
    np.testing.assert_array_equal(default, central)
    np.testing.assert_allclose(default, 3 * 0.7**2 + 1e-6, rtol=1e-9)  # central error: eps^2 f'''/6


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_values_restored_afterwards(rng, dtype):
    a = rng.standard_normal((3, 2)).astype(dtype)
    x = leaf(a, dtype)
    storage = x._data
    tg.numerical_gradient(lambda: (x * x).sum(), [x], eps=1e-3)
    assert x.dtype == dtype
    np.testing.assert_array_equal(x.numpy(), a)
    assert x._data is storage
    assert x.grad is None  # nothing was backpropagated


def test_values_restored_when_f_raises(rng):
    a = rng.standard_normal(4)
    x = leaf(a)
    calls = []

    def f():
        calls.append(1)
        if len(calls) == 3:
            raise ArithmeticError("boom")
        return (x * 2.0).sum()

    with pytest.raises(ArithmeticError, match="boom"):
        tg.numerical_gradient(f, [x])
    np.testing.assert_array_equal(x.numpy(), a)


def test_numerical_gradient_records_no_graph():
    x = leaf([1.0, 2.0])
    seen = []

    def f():
        out = (x * x).sum()
        seen.append(out.requires_grad)
        return out

    tg.numerical_gradient(f, [x])
    assert seen and not any(seen)
    assert tg.is_grad_enabled()


@pytest.mark.parametrize("eps", [0.0, -1e-6, float("nan")])
def test_eps_must_be_positive(eps):
    x = leaf([1.0])
    with pytest.raises(ValueError, match="numerical_gradient.*eps"):
        tg.numerical_gradient(lambda: x.sum(), [x], eps=eps)


@pytest.mark.parametrize("method", ["backward", "Central", "", None])
def test_method_must_be_known(method):
    x = leaf([1.0])
    with pytest.raises(ValueError, match="numerical_gradient.*method"):
        tg.numerical_gradient(lambda: x.sum(), [x], method=method)


def test_f_must_return_a_single_element_tensor():
    x = leaf([1.0, 2.0])
    with pytest.raises(ValueError, match="single-element"):
        tg.numerical_gradient(lambda: x * 2.0, [x])
    with pytest.raises(ValueError, match="single-element"):
        tg.numerical_gradient(lambda: 3.0, [x])
    np.testing.assert_array_equal(x.numpy(), [1.0, 2.0])


def test_tensors_must_be_float_tensors():
    with pytest.raises(TypeError, match="numerical_gradient"):
        tg.numerical_gradient(lambda: Tensor([1.0]).sum(), [np.ones(2)])
    labels = Tensor([1, 2], dtype="int64")
    with pytest.raises(TypeError, match="int64"):
        tg.numerical_gradient(lambda: Tensor([1.0]).sum(), [labels])


# ----- gradcheck -----


def test_gradcheck_passes_on_correct_ops(rng):
    x = leaf(rng.uniform(0.5, 1.5, (3, 4)))
    w = leaf(rng.standard_normal((4, 2)))
    assert (
        tg.gradcheck(lambda: ((x @ w).tanh() * x.sum(axis=1, keepdims=True)).sum(), [x, w]) is True
    )


class SquareWithBug(Op):
    """z = x^2, whose backward is right everywhere except one entry (flat index ``bad``)."""

    bad = 4

    def forward(ctx, x):
        ctx.save_for_backward(x)
        return x * x

    def backward(ctx, g):
        (x,) = ctx.saved
        dx = 2.0 * x * g
        dx.reshape(-1)[SquareWithBug.bad] += 0.5
        return dx


def test_gradcheck_names_tensor_index_and_both_values(rng):
    a = rng.uniform(-1, 1, (2, 3))
    b = rng.uniform(-1, 1, (2, 3))
    x, y = leaf(a), leaf(b)
    with pytest.raises(tg.GradcheckError) as info:
        tg.gradcheck(lambda: (x * 3.0).sum() + SquareWithBug.apply(y).sum(), [x, y])
    assert isinstance(info.value, AssertionError)
    msg = str(info.value)
    assert "gradcheck" in msg
    assert re.search(r"tensor\s*\[?1\]?", msg), msg  # the second tensor
    assert "(1, 1)" in msg, msg  # flat index 4 of shape (2, 3)
    numbers = [float(v) for v in re.findall(r"-?\d+\.\d+(?:e[-+]?\d+)?", msg)]
    analytic, numeric = 2 * b[1, 1] + 0.5, 2 * b[1, 1]
    assert any(abs(v - analytic) < 1e-6 for v in numbers), msg
    assert any(abs(v - numeric) < 1e-6 for v in numbers), msg


def test_gradcheck_error_is_an_assertion_error():
    assert issubclass(tg.GradcheckError, AssertionError)


def test_gradcheck_tolerance_rule(rng):
    """|a - n| <= atol + rtol |n|, with a wrong by exactly 0.5 at one entry."""
    b = rng.uniform(1.0, 2.0, (2, 3))  # |n| = 2 b in [2, 4] at the bad entry
    y = leaf(b)
    f = lambda: SquareWithBug.apply(y).sum()  # noqa: E731
    n = 2 * b.reshape(-1)[SquareWithBug.bad]
    assert tg.gradcheck(f, [y], atol=0.5 + 1e-6, rtol=0.0)
    assert tg.gradcheck(f, [y], atol=0.0, rtol=0.5 / n + 1e-6)
    with pytest.raises(tg.GradcheckError):
        tg.gradcheck(f, [y], atol=0.49, rtol=0.0)
    with pytest.raises(tg.GradcheckError):
        tg.gradcheck(f, [y], atol=0.0, rtol=0.49 / n)


def test_gradcheck_leaves_existing_grad_alone(rng):
    x = leaf(rng.standard_normal(3))
    y = leaf(rng.standard_normal(3))
    previous = Tensor(np.array([7.0, 8.0, 9.0]))
    x.grad = previous
    assert tg.gradcheck(lambda: (x * y).sum(), [x, y])
    assert x.grad is previous
    np.testing.assert_array_equal(x.grad.numpy(), [7.0, 8.0, 9.0])
    assert y.grad is None
    # also when it fails
    with pytest.raises(tg.GradcheckError):
        tg.gradcheck(lambda: SquareWithBug.apply(Tensor.cat([x, y])).sum(), [x, y])
    assert x.grad is previous and y.grad is None
    np.testing.assert_array_equal(x.grad.numpy(), [7.0, 8.0, 9.0])


def test_gradcheck_restores_values(rng):
    a = rng.standard_normal((2, 2))
    x = leaf(a)
    tg.gradcheck(lambda: (x * x).sum(), [x])
    np.testing.assert_array_equal(x.numpy(), a)


def test_gradcheck_warns_on_float32(rng):
    x = leaf(rng.uniform(0.5, 1.5, 3), np.float32)
    with pytest.warns(UserWarning, match="float32"):
        tg.gradcheck(lambda: (x * 2.0).sum(), [x], eps=1e-2, atol=1e-2, rtol=1e-2)


def test_gradcheck_does_not_warn_on_float64():
    x = leaf([1.0, 2.0])
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        tg.gradcheck(lambda: (x * x).sum(), [x])


def test_gradcheck_rejects_tensors_without_requires_grad():
    x = Tensor(np.array([1.0, 2.0]))
    with pytest.raises(ValueError, match="gradcheck.*requires? grad"):
        tg.gradcheck(lambda: (x * x).sum(), [x])


def test_gradcheck_rejects_non_scalar_f():
    x = leaf([1.0, 2.0])
    with pytest.raises(ValueError, match="single-element"):
        tg.gradcheck(lambda: x * x, [x])


def test_gradcheck_on_a_tensor_f_does_not_use():
    x, unused = leaf([1.0, 2.0]), leaf([3.0])
    assert tg.gradcheck(lambda: (x * x).sum(), [x, unused])


# ----- gradcheck(check_grad_grad=True) -----


class SquareFirstOrderOnly(Op):
    """z = x^2 with a backward that is right to first order only: g * (2x computed in numpy) is
    a constant to the recorded graph, so d(dz/dx)/dx comes out 0 instead of 2."""

    def forward(ctx, x):
        ctx.x = x
        return x * x

    def backward(ctx, g):
        return g * (2 * ctx.x)


def test_grad_grad_passes_on_tanh_and_mul_networks(rng):
    x, w = leaf(rng.standard_normal((3, 4))), leaf(rng.standard_normal((4, 2)))
    b = leaf(rng.standard_normal(2))

    def f():
        h = (x @ w + b).tanh()
        return (h * h * x.sum()).sum()

    assert tg.gradcheck(f, [x, w, b], check_grad_grad=True)


def test_grad_grad_passes_when_f_is_linear(rng):
    x = leaf(rng.standard_normal(3))
    assert tg.gradcheck(lambda: (x * 3.0).sum(), [x], check_grad_grad=True)


def test_grad_grad_catches_a_backward_that_is_right_to_first_order_only(rng):
    x = leaf(rng.standard_normal(4))
    assert tg.gradcheck(lambda: SquareFirstOrderOnly.apply(x).sum(), [x])  # first order: fine
    with pytest.raises(tg.GradcheckError, match="second derivatives"):
        tg.gradcheck(lambda: SquareFirstOrderOnly.apply(x).sum(), [x], check_grad_grad=True)


def test_grad_grad_leaves_grad_and_values_alone(rng):
    x = leaf(rng.standard_normal(3))
    before = x.numpy().copy()
    tg.gradcheck(lambda: (x.tanh() * x).sum(), [x], check_grad_grad=True)
    assert x.grad is None
    np.testing.assert_array_equal(x.numpy(), before)
