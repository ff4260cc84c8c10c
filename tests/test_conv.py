"""Conv2d, MaxPool2d, AvgPool2d: forward and gradients against finite differences and PyTorch,
the layers' initialisation, and the errors for bad input."""

from __future__ import annotations

import math

import numpy as np
import pytest

import tinygrad_edu as tg
import tinygrad_edu.nn.functional as F
from tinygrad_edu import nn
from tinygrad_edu.errors import InputError

# (input shape, weight shape, stride, padding)
CONV_CASES = [
    ((2, 3, 6, 5), (4, 3, 3, 3), 1, 0),
    ((1, 2, 7, 7), (3, 2, 3, 3), 2, 1),
    ((2, 1, 6, 8), (2, 1, 3, 2), (2, 1), (1, 2)),
    ((1, 2, 5, 5), (2, 2, 1, 1), 1, 0),
    ((1, 1, 4, 4), (1, 1, 4, 4), 1, 0),  # kernel == input: a 1x1 output
]
# (kernel, stride, padding)
POOL_CASES = [(2, None, 0), (3, 2, 1), ((3, 2), 1, (1, 0)), (2, 1, 0)]


def _t(a, dtype="float64"):
    return tg.Tensor(a, dtype=dtype, requires_grad=True)


def _z(shape, dtype="float32"):
    return tg.Tensor(np.zeros(shape), dtype=dtype)


def _data(shape, seed=0):
    return np.random.default_rng(seed).standard_normal(shape)


@pytest.mark.parametrize("xs,ws,stride,padding", CONV_CASES)
def test_conv2d_gradcheck(xs, ws, stride, padding):
    x, w, b = _t(_data(xs, 1)), _t(_data(ws, 2)), _t(_data(ws[0], 3))

    def f():
        y = F.conv2d(x, w, b, stride, padding)
        return (y * y).sum() * 0.5

    assert tg.gradcheck(f, [x, w, b])


@pytest.mark.parametrize("xs,ws,stride,padding", CONV_CASES)
@pytest.mark.parametrize("dtype,tol", [("float64", 1e-10), ("float32", 1e-4)])
def test_conv2d_matches_torch(xs, ws, stride, padding, dtype, tol):
    torch = pytest.importorskip("torch")
    xa, wa, ba = _data(xs, 1), _data(ws, 2), _data(ws[0], 3)
    x, w, b = _t(xa, dtype), _t(wa, dtype), _t(ba, dtype)
    y = F.conv2d(x, w, b, stride, padding)
    tdt = torch.float64 if dtype == "float64" else torch.float32
    tx, tw, tb = (torch.tensor(a, dtype=tdt, requires_grad=True) for a in (xa, wa, ba))
    ty = torch.nn.functional.conv2d(tx, tw, tb, stride, padding)
    assert y.shape == tuple(ty.shape) and y.dtype == np.dtype(dtype)
    np.testing.assert_allclose(y.numpy(), ty.detach().numpy(), rtol=tol, atol=tol)
    gy = _data(tuple(ty.shape), 6)
    y.backward(tg.Tensor(gy, dtype=dtype))
    ty.backward(torch.tensor(gy, dtype=tdt))
    for mine, theirs in ((x, tx), (w, tw), (b, tb)):
        assert mine.grad.dtype == np.dtype(dtype)
        np.testing.assert_allclose(mine.grad.numpy(), theirs.grad.numpy(), rtol=tol, atol=tol)


def test_conv2d_without_bias_and_input_only_grad():
    torch = pytest.importorskip("torch")
    xa, wa = _data((2, 2, 5, 5), 1), _data((3, 2, 3, 3), 2)
    x, w = _t(xa), tg.Tensor(wa, dtype="float64")  # the weight needs no gradient
    y = F.conv2d(x, w, None, 1, 1)
    y.sum().backward()
    tx = torch.tensor(xa, requires_grad=True)
    torch.nn.functional.conv2d(tx, torch.tensor(wa), None, 1, 1).sum().backward()
    np.testing.assert_allclose(x.grad.numpy(), tx.grad.numpy(), rtol=1e-12, atol=1e-12)
    assert w.grad is None


def test_conv2d_closed_form():
    # a 1x1 kernel is a per-pixel linear map of the channels: y = W x + b
    xa, wa, ba = _data((2, 3, 4, 4), 1), _data((5, 3, 1, 1), 2), _data(5, 3)
    y = F.conv2d(tg.Tensor(xa), tg.Tensor(wa), tg.Tensor(ba)).numpy()
    want = np.einsum("oc,nchw->nohw", wa[:, :, 0, 0], xa) + ba[None, :, None, None]
    np.testing.assert_allclose(y, want, rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("kernel,stride,padding", POOL_CASES)
@pytest.mark.parametrize("name", ["max_pool2d", "avg_pool2d"])
def test_pool_gradcheck(name, kernel, stride, padding):
    x = _t(_data((2, 2, 6, 5), 7))  # continuous random data: no ties in the max

    def f():
        y = getattr(F, name)(x, kernel, stride, padding)
        return (y * y).sum()

    assert tg.gradcheck(f, [x])


@pytest.mark.parametrize("kernel,stride,padding", POOL_CASES)
@pytest.mark.parametrize("name", ["max_pool2d", "avg_pool2d"])
@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_pool_matches_torch(name, kernel, stride, padding, dtype):
    torch = pytest.importorskip("torch")
    xa = _data((2, 3, 7, 6), 8)
    x = _t(xa, dtype)
    y = getattr(F, name)(x, kernel, stride, padding)
    tx = torch.tensor(xa, dtype=getattr(torch, dtype), requires_grad=True)
    ty = getattr(torch.nn.functional, name)(tx, kernel, stride, padding)
    tol = 1e-5 if dtype == "float32" else 1e-12
    assert y.dtype == np.dtype(dtype)
    np.testing.assert_allclose(y.numpy(), ty.detach().numpy(), rtol=tol, atol=tol)
    gy = _data(tuple(ty.shape), 9)
    y.backward(tg.Tensor(gy, dtype=dtype))
    ty.backward(torch.tensor(gy, dtype=getattr(torch, dtype)))
    np.testing.assert_allclose(x.grad.numpy(), tx.grad.numpy(), rtol=tol, atol=tol)


def test_max_pool_ties_go_to_the_first_maximum_as_torch():
    torch = pytest.importorskip("torch")
    xa = np.ones((1, 1, 4, 4))
    x = _t(xa)
    F.max_pool2d(x, 2).sum().backward()
    tx = torch.tensor(xa, requires_grad=True)
    torch.nn.functional.max_pool2d(tx, 2).sum().backward()
    np.testing.assert_array_equal(x.grad.numpy(), tx.grad.numpy())


# ----- layers -----


def test_conv2d_layer_init_and_shapes():
    m = nn.Conv2d(4, 8, 3, stride=2, padding=1)
    assert m.weight.shape == (8, 4, 3, 3) and m.bias.shape == (8,)
    assert m.weight.dtype == np.float32
    bound = 1 / math.sqrt(4 * 9)  # kaiming_uniform(a=sqrt(5)) reduces to 1/sqrt(fan_in)
    w, b = m.weight.numpy(), m.bias.numpy()
    assert np.abs(w).max() <= bound and np.abs(b).max() <= bound
    assert abs(w.std() - bound / math.sqrt(3)) < 0.15 * bound  # U(-a, a) has std a/sqrt(3)
    assert len(list(m.parameters())) == 2
    y = m(tg.Tensor(_data((2, 4, 9, 9)), dtype="float32"))
    assert y.shape == (2, 8, 5, 5)
    assert nn.Conv2d(1, 2, (3, 1), bias=False).bias is None
    assert len(list(nn.Conv2d(1, 2, 3, bias=False).parameters())) == 1


def test_pool_layers_match_functional():
    x = tg.Tensor(_data((1, 2, 6, 6)))
    np.testing.assert_array_equal(nn.MaxPool2d(2)(x).numpy(), F.max_pool2d(x, 2, 2).numpy())
    np.testing.assert_array_equal(
        nn.AvgPool2d(3, stride=1, padding=1)(x).numpy(), F.avg_pool2d(x, 3, 1, 1).numpy()
    )


def test_small_cnn_trains_a_step_and_matches_torch_gradients():
    torch = pytest.importorskip("torch")
    model = nn.Sequential(
        nn.Conv2d(1, 4, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2), nn.Flatten(), nn.Linear(16, 3)
    )
    tm = torch.nn.Sequential(
        torch.nn.Conv2d(1, 4, 3, padding=1),
        torch.nn.ReLU(),
        torch.nn.MaxPool2d(2),
        torch.nn.Flatten(),
        torch.nn.Linear(16, 3),
    ).double()
    with torch.no_grad():
        for p, q in zip(model.parameters(), tm.parameters(), strict=True):
            q.copy_(torch.tensor(p.numpy().astype(np.float64)))
    xa, ya = _data((5, 1, 4, 4), 3), np.array([0, 1, 2, 1, 0])
    params = [tg.Tensor(p.numpy(), dtype="float64", requires_grad=True) for p in model.parameters()]
    for p, q in zip(model.parameters(), params, strict=True):
        p._data = q._data  # the same numbers in float64 (the model is float32 by default)
    loss = F.cross_entropy(model(tg.Tensor(xa, dtype="float64")), tg.Tensor(ya, dtype="int64"))
    loss.backward()
    tloss = torch.nn.functional.cross_entropy(tm(torch.tensor(xa)), torch.tensor(ya))
    tloss.backward()
    assert abs(loss.item() - tloss.item()) < 1e-10
    for p, q in zip(model.parameters(), tm.parameters(), strict=True):
        np.testing.assert_allclose(p.grad.numpy(), q.grad.numpy(), rtol=1e-9, atol=1e-10)


# ----- bad input -----


@pytest.mark.parametrize(
    "call,words",
    [
        (lambda: F.conv2d(_z((1, 2, 5, 5)), _z((3, 4, 3, 3))), ["conv2d", "2", "4"]),
        (lambda: nn.Conv2d(3, 4, 3)(_z((1, 2, 5, 5))), ["Conv2d", "(1, 2, 5, 5)"]),
        (lambda: F.conv2d(_z((1, 1, 2, 2)), _z((1, 1, 3, 3))), ["conv2d", "larger"]),
        (lambda: F.conv2d(_z((1, 1, 5, 5)), _z((1, 1, 3, 3)), padding=-1), ["padding"]),
        (lambda: F.conv2d(_z((1, 5, 5)), _z((1, 1, 3, 3))), ["conv2d", "4-d"]),
        (lambda: F.conv2d(_z((1, 1, 5, 5)), _z((2, 1, 3, 3)), _z(3)), ["bias"]),
        (lambda: F.conv2d(_z((1, 1, 5, 5)), _z((1, 1, 3, 3)), stride=0), ["stride"]),
        (lambda: F.max_pool2d(_z((1, 1, 5, 5)), 2, padding=2), ["max_pool2d", "half"]),
        (lambda: F.avg_pool2d(_z((1, 1, 2, 2)), 3), ["avg_pool2d", "larger", "(2, 2)"]),
        (lambda: nn.MaxPool2d(2)(_z((4, 4))), ["max_pool2d", "(4, 4)"]),
        (lambda: nn.Conv2d(1, 2, 3, padding=(1, 2, 3)), ["Conv2d", "padding"]),
        (lambda: nn.Conv2d(1, 2, 0), ["Conv2d", "kernel_size"]),
    ],
)
def test_bad_input_raises_a_clear_error(call, words):
    with pytest.raises(InputError) as info:
        call()
    assert isinstance(info.value, RuntimeError) and isinstance(info.value, ValueError)
    for word in words:
        assert word in str(info.value)


def test_conv2d_dtype_mismatch_is_an_error():
    x = _z((1, 1, 4, 4), dtype="float32")
    with pytest.raises(InputError, match="conv2d.*dtype"):
        F.conv2d(x, _z((1, 1, 3, 3), dtype="float64"))


@pytest.mark.parametrize("name", ["conv2d", "max_pool2d", "avg_pool2d"])
def test_create_graph_gives_a_gradient_that_differentiates_again(name):
    """create_graph=True records the image ops' backward (conv_differentiable.py): the same
    gradient as the first-order pass, now with a graph, whose own gradient matches central
    differences of the first-order one (tests/test_conv_higher_order.py checks much more)."""
    x = _t(np.random.default_rng(0).permutation(16).reshape(1, 1, 4, 4) * 0.1)
    w = _t(_data((1, 1, 3, 3)))

    def layer():
        if name == "conv2d":
            return F.conv2d(x, w, padding=1)
        return F.max_pool2d(x, 2, 1) if name == "max_pool2d" else F.avg_pool2d(x, 2, 1)

    (first,) = tg.grad((layer() ** 3).sum(), [x])
    (gx,) = tg.grad((layer() ** 3).sum(), [x], create_graph=True)
    assert gx.requires_grad
    np.testing.assert_allclose(gx.numpy(), first.numpy(), rtol=1e-12)
    (hx,) = tg.grad(gx.sum(), [x])

    def first_order_sum():
        with tg.enable_grad():
            return tg.grad((layer() ** 3).sum(), [x])[0].sum()

    (numeric,) = tg.numerical_gradient(first_order_sum, [x], eps=1e-5)
    np.testing.assert_allclose(hx.numpy(), numeric, rtol=1e-6, atol=1e-8)
