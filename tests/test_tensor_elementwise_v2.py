"""Contract v2, elementwise: sin cos log1p expm1 square reciprocal sign, clamp, maximum/minimum,
where/masked_fill, hardtanh relu6 softplus gelu as Tensor methods, and int64 promotion.

References: numpy for forward values, central differences in float64 (``tg.gradcheck``, with
second derivatives through ``create_graph``) and PyTorch for gradients and dtypes.
"""

from __future__ import annotations

import numpy as np
import pytest

import tinygrad_edu as tg
from tinygrad_edu import Tensor

UNARY = {
    "sin": np.sin,
    "cos": np.cos,
    "log1p": np.log1p,
    "expm1": np.expm1,
    "square": np.square,
    "reciprocal": np.reciprocal,
    "sign": np.sign,
}
# closed-form derivatives, independent of ops.py
DERIVATIVE = {
    "sin": np.cos,
    "cos": lambda x: -np.sin(x),
    "log1p": lambda x: 1 / (1 + x),
    "expm1": np.exp,
    "square": lambda x: 2 * x,
    "reciprocal": lambda x: -1 / x**2,
    "sign": np.zeros_like,
}


def _inputs(rng, op, shape=(3, 4)):
    """Values inside each function's domain, away from its singular points."""
    x = rng.uniform(0.3, 2.0, shape) * rng.choice([-1.0, 1.0], shape)
    return np.abs(x) - 0.2 if op == "log1p" else x  # log1p needs x > -1


def _f64(a, grad=True):
    return Tensor(a, dtype="float64", requires_grad=grad)


@pytest.fixture
def torch():
    return pytest.importorskip("torch")


# ----- unary -----


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("op", sorted(UNARY))
def test_unary_forward_matches_numpy(rng, op, dtype):
    x = _inputs(rng, op).astype(dtype)
    got = getattr(Tensor(x), op)()
    assert got.dtype == dtype and got.shape == x.shape
    np.testing.assert_allclose(got.numpy(), UNARY[op](x), rtol=4 * np.finfo(dtype).eps)


def test_unary_special_values():
    with np.errstate(all="ignore"):
        x = np.array([np.nan, np.inf, -np.inf, 0.0, -0.0, -1.0, 1e-300])
        for op, fn in UNARY.items():
            got = getattr(Tensor(x, dtype="float64"), op)().numpy()
            np.testing.assert_array_equal(got, fn(x), err_msg=op)
    # accuracy where 1 + x rounds: log1p and expm1 keep the tiny value
    tiny = Tensor([1e-20], dtype="float64")
    assert tiny.log1p().item() == 1e-20 and tiny.expm1().item() == 1e-20


@pytest.mark.parametrize("op", sorted(UNARY))
def test_unary_gradient_matches_closed_form_and_finite_differences(rng, op):
    x = _inputs(rng, op)
    t = _f64(x)
    getattr(t, op)().sum().backward()
    np.testing.assert_allclose(t.grad.numpy(), DERIVATIVE[op](x), rtol=1e-12)
    if op != "sign":  # sign: piecewise constant, finite differences are 0 too away from 0
        assert tg.gradcheck(lambda: (getattr(t, op)() * t).sum(), [t])
    else:
        g = tg.numerical_gradient(lambda: t.sign().sum(), t)
        np.testing.assert_array_equal(np.asarray(g), np.zeros_like(x))


@pytest.mark.parametrize("op", sorted(set(UNARY) - {"sign"}))
def test_unary_second_derivatives(rng, op):
    t = _f64(_inputs(rng, op, (5,)))
    assert tg.gradcheck(lambda: getattr(t, op)().sum(), [t], check_grad_grad=True)


def test_unary_second_derivative_closed_forms(rng):
    """d2/dx2 of each, by tg.grad with create_graph, against the closed forms."""
    x = rng.uniform(0.3, 1.5, 6)
    second = {
        "sin": -np.sin(x),
        "cos": -np.cos(x),
        "log1p": -1 / (1 + x) ** 2,
        "expm1": np.exp(x),
        "square": 2 + 0 * x,
        "reciprocal": 2 / x**3,
    }
    for op, want in second.items():
        t = _f64(x)
        (g,) = tg.grad(getattr(t, op)().sum(), [t], create_graph=True)
        (h,) = tg.grad(g.sum(), [t])
        np.testing.assert_allclose(h.numpy(), want, rtol=1e-12, err_msg=op)


def test_sign_gradient_is_zero_under_create_graph():
    t = _f64([-2.0, 0.0, 3.0])
    (g,) = tg.grad((t.sign() * t * t).sum(), [t], create_graph=True)
    # d/dx (sign(x) x^2) = 2 x sign(x) (sign's own derivative counts as 0)
    np.testing.assert_allclose(g.numpy(), [4.0, 0.0, 6.0])
    (h,) = tg.grad(g.sum(), [t])
    np.testing.assert_allclose(h.numpy(), [-2.0, 0.0, 2.0])


@pytest.mark.parametrize("op", sorted(UNARY))
def test_unary_against_torch(torch, rng, op):
    x = _inputs(rng, op)
    t = _f64(x)
    getattr(t, op)().sum().backward()
    tt = torch.tensor(x, requires_grad=True)
    getattr(tt, op)().sum().backward()
    np.testing.assert_allclose(t.grad.numpy(), tt.grad.numpy(), rtol=1e-12)


def test_module_free_functions_are_methods():
    x = Tensor([0.5, -1.0])
    for op in ("sin", "cos", "square"):
        assert getattr(x, op)().tolist() == getattr(Tensor(x.numpy()), op)().tolist()


# ----- clamp -----


def test_clamp_is_clip_and_lo_above_hi_gives_hi(torch, rng):
    x = rng.standard_normal(12)
    np.testing.assert_array_equal(Tensor(x).clamp(-0.5, 0.5).numpy(), Tensor(x).clip(-0.5, 0.5))
    np.testing.assert_array_equal(Tensor(x).clamp(min=0.1).numpy(), np.clip(x, 0.1, None))
    np.testing.assert_array_equal(Tensor(x).clamp(max=0.1).numpy(), np.clip(x, None, 0.1))
    t = _f64(x)
    out = t.clamp(1.0, -1.0)  # PyTorch: max wins, gradient 0 everywhere
    np.testing.assert_array_equal(out.numpy(), np.full(12, -1.0))
    out.sum().backward()
    tt = torch.tensor(x, requires_grad=True)
    torch.clamp(tt, 1.0, -1.0).sum().backward()
    np.testing.assert_array_equal(out.numpy(), torch.clamp(torch.tensor(x), 1.0, -1.0).numpy())
    np.testing.assert_array_equal(t.grad.numpy(), tt.grad.numpy())


def test_clamp_gradient_matches_torch_on_the_bounds(torch):
    x = np.array([-2.0, -1.0, 0.0, 1.0, 2.0])
    t = _f64(x)
    t.clamp(-1.0, 1.0).sum().backward()
    tt = torch.tensor(x, requires_grad=True)
    tt.clamp(-1.0, 1.0).sum().backward()
    np.testing.assert_array_equal(t.grad.numpy(), tt.grad.numpy())


def test_clamp_bad_bound_names_the_op():
    with pytest.raises(TypeError, match="clip"):
        Tensor([1.0]).clamp("0")


# ----- maximum / minimum -----


@pytest.mark.parametrize("name", ["maximum", "minimum"])
def test_maximum_minimum_forward_broadcasts(rng, name):
    a, b = rng.standard_normal((3, 4)), rng.standard_normal((4,))
    got = getattr(tg, name)(Tensor(a, dtype="float64"), Tensor(b, dtype="float64"))
    np.testing.assert_array_equal(got.numpy(), getattr(np, name)(a, b))
    assert got.dtype == np.float64
    nan = getattr(tg, name)(Tensor([np.nan, 1.0]), Tensor([0.0, np.nan])).numpy()
    assert np.isnan(nan).all()  # NaN on either side wins, as PyTorch
    # a Python number on either side
    a32 = a.astype(np.float32)
    for got in (getattr(tg, name)(Tensor(a32), 0.0), getattr(tg, name)(0.0, Tensor(a32))):
        assert got.dtype == np.float32  # a Python number never widens
        np.testing.assert_array_equal(got.numpy(), getattr(np, name)(a32, 0.0))


@pytest.mark.parametrize("name", ["maximum", "minimum"])
def test_maximum_minimum_gradients(torch, rng, name):
    a = rng.integers(-2, 3, (3, 4)).astype(np.float64)  # many ties
    b = rng.integers(-2, 3, (1, 4)).astype(np.float64)
    ta, tb = _f64(a), _f64(b)
    w = rng.standard_normal((3, 4))
    (getattr(tg, name)(ta, tb) * Tensor(w, dtype="float64")).sum().backward()
    xa = torch.tensor(a, requires_grad=True)
    xb = torch.tensor(b, requires_grad=True)
    (getattr(torch, name)(xa, xb) * torch.tensor(w)).sum().backward()
    np.testing.assert_allclose(ta.grad.numpy(), xa.grad.numpy(), rtol=1e-12)
    np.testing.assert_allclose(tb.grad.numpy(), xb.grad.numpy(), rtol=1e-12)
    # ties: each side gets half
    t, u = _f64([1.0, 2.0]), _f64([1.0, 0.0])
    getattr(tg, name)(t, u).sum().backward()
    assert t.grad.tolist()[0] == 0.5 and u.grad.tolist()[0] == 0.5


@pytest.mark.parametrize("name", ["maximum", "minimum"])
def test_maximum_minimum_finite_differences_and_second_order(rng, name):
    a = _f64(rng.standard_normal((2, 3)))
    b = _f64(rng.standard_normal((3,)))
    fn = getattr(tg, name)
    assert tg.gradcheck(lambda: (fn(a, b) * fn(a, b)).sum(), [a, b], check_grad_grad=True)


def test_maximum_errors_name_the_op():
    with pytest.raises(ValueError, match="maximum") as info:
        tg.maximum(Tensor(np.ones((2, 3))), Tensor(np.ones((4,))))
    assert isinstance(info.value, RuntimeError)
    with pytest.raises(TypeError, match="minimum"):
        tg.minimum(1.0, 2.0)


# ----- where / masked_fill -----


def test_where_forward_broadcasts_and_takes_scalars(rng):
    cond = rng.random((3, 1)) < 0.5
    a, b = rng.standard_normal((3, 4)), rng.standard_normal((4,))
    ta, tb = Tensor(a, dtype="float64"), Tensor(b, dtype="float64")
    for c in (cond, Tensor(cond.astype(np.float32)), Tensor(cond.astype(np.int64), dtype="int64")):
        np.testing.assert_array_equal(tg.where(c, ta, tb).numpy(), np.where(cond, a, b))
    np.testing.assert_array_equal(tg.where(cond, ta, 0.0).numpy(), np.where(cond, a, 0.0))
    np.testing.assert_array_equal(tg.where(cond, -1.0, tb).numpy(), np.where(cond, -1.0, b))
    assert tg.where(cond, ta, 0.0).dtype == np.float64
    assert (
        tg.where(cond, Tensor(a, dtype="float32"), 0.0).dtype == np.float32
    )  # a Python number never widens
    # NaN and inf on the side not chosen stay out
    got = tg.where(Tensor([1.0, 0.0]), Tensor([1.0, np.nan]), Tensor([np.inf, 2.0]))
    assert got.tolist() == [1.0, 2.0]


def test_where_gradient_flows_to_the_chosen_side(torch, rng):
    cond = rng.random((3, 4)) < 0.5
    a, b = rng.standard_normal((3, 4)), rng.standard_normal((1, 4))
    ta, tb = _f64(a), _f64(b)
    (tg.where(cond, ta, tb) ** 2).sum().backward()
    xa, xb = torch.tensor(a, requires_grad=True), torch.tensor(b, requires_grad=True)
    (torch.where(torch.tensor(cond), xa, xb) ** 2).sum().backward()
    np.testing.assert_allclose(ta.grad.numpy(), xa.grad.numpy(), rtol=1e-12)
    np.testing.assert_allclose(tb.grad.numpy(), xb.grad.numpy(), rtol=1e-12)
    # an inf gradient on one side never makes NaN on the other (a select, not a mask product)
    t = _f64([0.0, 1.0])
    with np.errstate(divide="ignore"):  # log(0) = -inf and its gradient 1/0 = inf, on purpose
        tg.where(np.array([True, False]), t.log(), t).sum().backward()
    assert t.grad.tolist() == [np.inf, 1.0]


def test_where_finite_differences_and_second_order(rng):
    cond = rng.random((2, 3)) < 0.5
    a, b = _f64(rng.standard_normal((2, 3))), _f64(rng.standard_normal(3))
    assert tg.gradcheck(
        lambda: (tg.where(cond, a.sin(), b * b) * a).sum(), [a, b], check_grad_grad=True
    )


def test_where_errors_name_the_op():
    with pytest.raises(ValueError, match=r"where: shapes .*\(2, 3\).*\(4,\)") as info:
        tg.where(np.ones((2, 3), bool), Tensor(np.ones((2, 3))), Tensor(np.ones(4)))
    assert isinstance(info.value, RuntimeError)
    with pytest.raises(TypeError, match="where"):
        tg.where(np.array(["a"]), Tensor([1.0]), 0.0)
    with pytest.raises(TypeError, match="where"):
        tg.where(np.array([True]), "x", Tensor([1.0]))
    with pytest.raises(TypeError, match="where"):
        tg.where(np.array([True]), 1.0, 2.0)  # no Tensor at all
    with pytest.raises(ValueError, match="masked_fill"):
        Tensor(np.ones((2, 3))).masked_fill(np.ones((4,), bool), 0.0)


def test_masked_fill(torch, rng):
    x = rng.standard_normal((3, 4))
    mask = rng.random((4,)) < 0.5
    t = _f64(x)
    out = t.masked_fill(mask, -1e9)
    np.testing.assert_array_equal(out.numpy(), np.where(mask, -1e9, x))
    out.sum().backward()
    xt = torch.tensor(x, requires_grad=True)
    xt.masked_fill(torch.tensor(mask), -1e9).sum().backward()
    np.testing.assert_array_equal(t.grad.numpy(), xt.grad.numpy())
    ints = Tensor([1, 2, 3], dtype="int64").masked_fill(np.array([True, False, True]), 0)
    assert ints.dtype == np.int64 and ints.tolist() == [0, 2, 0]


# ----- activations as methods -----


@pytest.mark.parametrize(
    "method, torch_fn, kwargs",
    [
        ("hardtanh", "hardtanh", {}),
        ("hardtanh", "hardtanh", {"min_val": -0.5, "max_val": 2.0}),
        ("relu6", "relu6", {}),
        ("softplus", "softplus", {}),
        ("softplus", "softplus", {"beta": 2.0, "threshold": 5.0}),
        ("gelu", "gelu", {}),
        ("gelu", "gelu", {"approximate": "tanh"}),
    ],
)
def test_activation_methods_match_torch(torch, rng, method, torch_fn, kwargs):
    x = np.concatenate([rng.standard_normal(10) * 4, [-1.0, 1.0, 0.0, 6.0, -0.5, 2.0, 3.0]])
    t = _f64(x)
    out = getattr(t, method)(**kwargs)
    out.sum().backward()
    xt = torch.tensor(x, requires_grad=True)
    want = getattr(torch.nn.functional, torch_fn)(xt, **kwargs)
    want.sum().backward()
    np.testing.assert_allclose(out.numpy(), want.detach().numpy(), rtol=1e-12, atol=1e-14)
    np.testing.assert_allclose(t.grad.numpy(), xt.grad.numpy(), rtol=1e-10, atol=1e-14)


def test_activation_methods_reuse_nn_functional(rng):
    from tinygrad_edu.nn import functional as NF

    x = Tensor(rng.standard_normal(8), dtype="float64")
    np.testing.assert_array_equal(x.softplus().numpy(), NF.softplus(x).numpy())
    np.testing.assert_array_equal(x.gelu("tanh").numpy(), NF.gelu(x, "tanh").numpy())


def test_activation_methods_second_order(rng):
    x = _f64(rng.standard_normal(6) * 2 + 0.1)
    assert tg.gradcheck(lambda: (x.hardtanh(-0.7, 0.9) * x).sum(), [x], check_grad_grad=True)
    assert tg.gradcheck(lambda: x.softplus().sum(), [x], check_grad_grad=True)


# ----- int64 in float ops (PyTorch's promotion) -----


def test_int64_promotion_matches_torch(torch):
    values = [1, -2, 3]
    t = Tensor(values, dtype="int64")
    tt = torch.tensor(values)
    cases = {
        "t + 1": (lambda x: x + 1),
        "t - 2": (lambda x: x - 2),
        "3 - t": (lambda x: 3 - x),
        "t * 2": (lambda x: x * 2),
        "t ** 2": (lambda x: x**2),
        "t + t": (lambda x: x + x),
        "t * t": (lambda x: x * x),
        "t + 2.5": (lambda x: x + 2.5),
        "t * 0.5": (lambda x: x * 0.5),
        "t / 2": (lambda x: x / 2),
        "t / t": (lambda x: x / x),
        "2.0 - t": (lambda x: 2.0 - x),
        "square": (lambda x: x.square()),
    }
    for name in ("exp", "log", "sqrt", "sigmoid", "tanh", "sin", "cos", "log1p", "expm1"):
        cases[name] = lambda x, name=name: getattr(x, name)()
    cases["reciprocal"] = lambda x: x.reciprocal()
    for name, fn in cases.items():
        with np.errstate(all="ignore"):
            got = fn(t)
        want = fn(tt)
        assert str(got.dtype) == str(want.dtype).replace("torch.", ""), name
        np.testing.assert_allclose(got.numpy(), want.numpy(), rtol=1e-6, equal_nan=True)


def test_int64_with_a_float_tensor_takes_the_float_dtype():
    i = Tensor([1, 2], dtype="int64")
    assert (i + Tensor([0.5, 0.5])).dtype == np.float32
    assert (Tensor([0.5, 0.5], dtype="float64") * i).dtype == np.float64
    assert tg.maximum(i, Tensor([1.5, 1.5])).tolist() == [1.5, 2.0]
    assert tg.where(np.array([True, False]), i, 0.5).dtype == np.float32


def test_int64_to_a_negative_power_raises_naming_pow():
    with pytest.raises(ValueError, match="pow"):
        Tensor([2], dtype="int64") ** -1
