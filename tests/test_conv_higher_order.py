"""Second (and third) derivatives through Conv2d, MaxPool2d and AvgPool2d: ``create_graph=True``
runs their backward rules on ``conv_differentiable.ImageKernels``. Checked against central
differences of the first derivative (gradcheck's check_grad_grad, float64), against PyTorch's
double backward when it is installed, and against the first-order kernels they twin."""

from __future__ import annotations

import numpy as np
import pytest

import tinygrad_edu as tg
import tinygrad_edu.nn.functional as F
from tinygrad_edu import conv_differentiable

# (input shape, weight shape, stride, padding, bias)
CONV_CASES = [
    ((2, 3, 5, 4), (4, 3, 3, 3), 1, 0, True),
    ((2, 3, 5, 4), (4, 3, 3, 3), 1, 0, False),
    ((1, 2, 7, 7), (3, 2, 3, 3), 2, 0, True),  # stride 2
    ((1, 2, 5, 5), (3, 2, 3, 3), 1, 1, True),  # padding 1
    ((2, 1, 6, 5), (2, 1, 3, 2), (2, 1), (1, 2), False),  # non-square kernel, mixed stride/pad
    ((1, 2, 4, 4), (2, 2, 1, 1), 1, 0, True),  # 1x1 kernel
]
# (kernel, stride, padding): plain, overlapping windows, padding, non-square windows
POOL_CASES = [(2, None, 0), (2, 1, 0), (3, 2, 1), ((3, 2), 1, (1, 0))]


def _t(a, dtype="float64"):
    return tg.Tensor(np.asarray(a), dtype=dtype, requires_grad=True)


def _data(shape, seed):
    return np.random.default_rng(seed).standard_normal(shape)


def _distinct(shape, seed):
    """Values 0.1 apart in random order: no ties in a window, and far from a tie for finite
    differences (max pooling is not differentiable at a tie)."""
    n = int(np.prod(shape))
    return np.random.default_rng(seed).permutation(n).reshape(shape) * 0.1 - 0.05 * n


def _conv_case(xs, ws, bias, seed=0):
    x, w = _t(_data(xs, seed + 1)), _t(_data(ws, seed + 2))
    b = _t(_data(ws[0], seed + 3)) if bias else None
    return x, w, b


def _pool(kind):
    return F.max_pool2d if kind == "max" else F.avg_pool2d


# ----- gradcheck: second derivatives against finite differences -----


@pytest.mark.parametrize("xs,ws,stride,padding,bias", CONV_CASES)
def test_conv2d_gradgradcheck(xs, ws, stride, padding, bias):
    """J = sum(tanh(conv) * r) has every second derivative (x-x, x-w, w-w, b) nonzero."""
    x, w, b = _conv_case(xs, ws, bias)
    r = tg.Tensor(_data(F.conv2d(x, w, b, stride, padding).shape, 9))

    def f():
        return (F.conv2d(x, w, b, stride, padding).tanh() * r).sum()

    assert tg.gradcheck(f, [x, w] + ([b] if bias else []), check_grad_grad=True)


@pytest.mark.parametrize("xs,ws,stride,padding,bias", CONV_CASES[:3])
def test_conv2d_bilinear_cross_derivative(xs, ws, stride, padding, bias):
    """sum(conv(x, w) * r) is linear in x and in w: only d^2/dx dw is nonzero, and it runs
    entirely through dW's columns being rebuilt from x (the saved cols would give zero)."""
    x, w, b = _conv_case(xs, ws, bias)
    r = tg.Tensor(_data(F.conv2d(x, w, b, stride, padding).shape, 9))
    assert tg.gradcheck(
        lambda: (F.conv2d(x, w, b, stride, padding) * r).sum(), [x, w], check_grad_grad=True
    )


@pytest.mark.parametrize("kind", ["max", "avg"])
@pytest.mark.parametrize("kernel,stride,padding", POOL_CASES)
def test_pool2d_gradgradcheck(kind, kernel, stride, padding):
    x = _t(_distinct((2, 2, 6, 5), 4))
    r = tg.Tensor(_data(_pool(kind)(x, kernel, stride, padding).shape, 5))

    def f():
        y = _pool(kind)(x, kernel, stride, padding)
        return (y * y * r).sum()

    assert tg.gradcheck(f, [x], check_grad_grad=True)


@pytest.mark.parametrize("kind", ["max", "avg"])
def test_conv_then_pool_gradgradcheck(kind):
    x, w, b = _conv_case((1, 2, 6, 6), (3, 2, 3, 3), True, seed=20)

    def f():
        y = _pool(kind)(F.conv2d(x, w, b, padding=1).tanh(), 2)
        return (y * y).sum()

    assert tg.gradcheck(f, [x, w, b], check_grad_grad=True)


# ----- the twin against the first-order kernels -----


@pytest.mark.parametrize("xs,ws,stride,padding,bias", CONV_CASES)
def test_create_graph_gradients_equal_the_first_order_ones(xs, ws, stride, padding, bias):
    x, w, b = _conv_case(xs, ws, bias)
    params = [x, w] + ([b] if bias else [])

    def loss():
        y = F.conv2d(x, w, b, stride, padding)
        return (_pool("max")(y, 2, 1) + _pool("avg")(y, 2, 1, 1)[:, :, 1:-1, 1:-1]).tanh().sum()

    first = tg.grad(loss(), params)
    recorded = tg.grad(loss(), params, create_graph=True)
    for a, g in zip(first, recorded):
        assert g.requires_grad and g.dtype == a.dtype
        np.testing.assert_allclose(g.numpy(), a.numpy(), rtol=1e-12, atol=1e-12)


def test_first_order_backward_never_uses_the_twin(monkeypatch):
    """create_graph=False keeps the fused array kernels: no recorded op, no extra work."""

    def refuse(*args):
        raise AssertionError("the differentiable image kernels ran in a first-order backward")

    monkeypatch.setattr(conv_differentiable, "ImageKernels", refuse)
    x, w, b = _conv_case((1, 2, 5, 5), (2, 2, 3, 3), True)
    loss = F.avg_pool2d(F.max_pool2d(F.conv2d(x, w, b, padding=1), 2, 1), 2).sum()
    loss.backward()
    assert x.grad is not None and not x.grad.requires_grad
    with pytest.raises(AssertionError, match="differentiable image kernels"):
        tg.grad(F.conv2d(x, w, b).sum(), [x], create_graph=True)


def test_float32_stays_float32():
    x, w, b = (_t(_data(s, k), "float32") for k, s in enumerate([(1, 2, 5, 5), (2, 2, 3, 3), 2]))
    (gx,) = tg.grad(
        F.max_pool2d(F.conv2d(x, w, b, padding=1), 2).sum() ** 2, [x], create_graph=True
    )
    (gw,) = tg.grad((gx * gx).sum(), [w])
    assert gx.dtype == np.float32 and gw.dtype == np.float32 and gw.shape == w.shape


# ----- against PyTorch's double backward -----


def _torch(*arrays):
    torch = pytest.importorskip("torch")
    return [None if a is None else torch.tensor(a, requires_grad=True) for a in arrays]


@pytest.mark.parametrize("xs,ws,stride,padding,bias", CONV_CASES)
def test_gradient_penalty_of_a_conv_matches_torch(xs, ws, stride, padding, bias):
    """The gradient of |dL/dx|^2 (L = sum(tanh(conv))) w.r.t. x, w and b."""
    torch = pytest.importorskip("torch")
    x, w, b = _conv_case(xs, ws, bias)
    params = [x, w] + ([b] if bias else [])
    (gx,) = tg.grad(F.conv2d(x, w, b, stride, padding).tanh().sum(), [x], create_graph=True)
    ours = tg.grad((gx * gx).sum(), params)

    tx, tw, tb = _torch(x.numpy(), w.numpy(), b.numpy() if bias else None)
    tparams = [tx, tw] + ([tb] if bias else [])
    out = torch.nn.functional.conv2d(tx, tw, tb, stride, padding).tanh().sum()
    (tgx,) = torch.autograd.grad(out, [tx], create_graph=True)
    theirs = torch.autograd.grad(tgx.pow(2).sum(), tparams)
    np.testing.assert_allclose(gx.numpy(), tgx.detach().numpy(), rtol=1e-12, atol=1e-12)
    for name, a, t in zip("xwb", ours, theirs):
        np.testing.assert_allclose(a.numpy(), t.numpy(), rtol=1e-10, atol=1e-12, err_msg=name)


def _cnn_params(seed=30):
    rng = np.random.default_rng(seed)
    return [
        rng.standard_normal((3, 2, 3, 3)) * 0.5,  # conv weight
        rng.standard_normal(3) * 0.1,  # conv bias
        rng.standard_normal((4, 3 * 3 * 3)) * 0.3,  # linear weight (after a 6x6 -> 3x3 pool)
        rng.standard_normal(4) * 0.1,  # linear bias
    ]


def _cnn_tg(x, params, labels):
    cw, cb, lw, lb = params
    h = F.max_pool2d(F.conv2d(x, cw, cb, padding=1).tanh(), 2)
    return F.cross_entropy(h.reshape(x.shape[0], -1) @ lw.transpose() + lb, labels)


def _cnn_torch(torch, x, params, labels):
    cw, cb, lw, lb = params
    h = torch.nn.functional.max_pool2d(torch.nn.functional.conv2d(x, cw, cb, padding=1).tanh(), 2)
    return torch.nn.functional.cross_entropy(h.reshape(x.shape[0], -1) @ lw.T + lb, labels)


def test_double_backward_of_a_small_cnn_matches_torch():
    """conv -> tanh -> maxpool -> linear -> cross-entropy: backward(create_graph=True), then the
    gradient of the squared gradient norm (plus the loss) w.r.t. every parameter and the input."""
    torch = pytest.importorskip("torch")
    x_np = np.random.default_rng(31).standard_normal((3, 2, 6, 6))
    labels_np = np.array([0, 3, 1])
    params_np = _cnn_params()

    x, params = _t(x_np), [_t(p) for p in params_np]
    loss = _cnn_tg(x, params, tg.Tensor(labels_np, dtype=np.int64))
    loss.backward(create_graph=True)
    penalty = loss + sum(((p.grad * p.grad).sum() for p in params[1:]), (params[0].grad ** 2).sum())
    ours = tg.grad(penalty, [x] + params)

    tx, *tparams = _torch(x_np, *params_np)
    tloss = _cnn_torch(torch, tx, tparams, torch.tensor(labels_np))
    tgrads = torch.autograd.grad(tloss, tparams, create_graph=True)
    tpenalty = tloss + sum(g.pow(2).sum() for g in tgrads)
    theirs = torch.autograd.grad(tpenalty, [tx] + tparams)
    for p, g in zip(params, tgrads):
        np.testing.assert_allclose(p.grad.numpy(), g.detach().numpy(), rtol=1e-10, atol=1e-12)
    for k, (a, t) in enumerate(zip(ours, theirs)):
        np.testing.assert_allclose(a.numpy(), t.numpy(), rtol=1e-9, atol=1e-12, err_msg=str(k))


def _hvp_net(nnf, x, w1, w2):
    """conv (padding 1) -> tanh -> avgpool (stride 1) -> maxpool -> conv (stride 2) -> sum of
    squares, written once for both libraries (``nnf``: their functional module)."""
    h = nnf.max_pool2d(nnf.avg_pool2d(nnf.conv2d(x, w1, None, 1, 1).tanh(), 2, 1), 2)
    return (nnf.conv2d(h, w2, None, 2, 0).tanh() ** 2).sum()


@pytest.mark.parametrize("wrt", [1, 0], ids=["weight", "input"])
def test_hessian_vector_products_of_a_cnn_match_torch(wrt):
    """tg.autograd.functional.hvp in the first conv's weight and in the input, against
    torch.autograd.functional.hvp."""
    torch = pytest.importorskip("torch")
    rng = np.random.default_rng(40)
    args = [rng.standard_normal((2, 2, 8, 8)), rng.standard_normal((3, 2, 3, 3)) * 0.5,
            rng.standard_normal((2, 3, 2, 2)) * 0.5]  # fmt: skip
    v = rng.standard_normal(args[wrt].shape)

    def ours(a):
        return _hvp_net(F, *[a if k == wrt else tg.Tensor(b) for k, b in enumerate(args)])

    def theirs(a):
        return _hvp_net(
            torch.nn.functional, *[a if k == wrt else torch.tensor(b) for k, b in enumerate(args)]
        )

    value, hv = tg.autograd.functional.hvp(ours, tg.Tensor(args[wrt]), tg.Tensor(v))
    tvalue, thv = torch.autograd.functional.hvp(theirs, torch.tensor(args[wrt]), torch.tensor(v))
    np.testing.assert_allclose(value.item(), tvalue.item(), rtol=1e-12)
    np.testing.assert_allclose(hv.numpy(), thv.numpy(), rtol=1e-9, atol=1e-11)


def test_hessian_of_a_tiny_conv_matches_torch():
    """The full Hessian in the weight (each row one more backward through the recorded pass)."""
    torch = pytest.importorskip("torch")
    rng = np.random.default_rng(50)
    x_np, w_np = rng.standard_normal((2, 1, 4, 4)), rng.standard_normal((2, 1, 2, 2))

    def f(w):
        return (F.avg_pool2d(F.conv2d(tg.Tensor(x_np), w, None, 1, 1), 2).sigmoid()).sum()

    def tfn(w):
        out = torch.nn.functional.conv2d(torch.tensor(x_np), w, None, 1, 1)
        return torch.nn.functional.avg_pool2d(out, 2).sigmoid().sum()

    ours = tg.autograd.functional.hessian(f, tg.Tensor(w_np)).numpy()
    theirs = torch.autograd.functional.hessian(tfn, torch.tensor(w_np)).numpy()
    np.testing.assert_allclose(ours, theirs, rtol=1e-10, atol=1e-12)


def test_third_derivative_through_a_conv_matches_torch():
    """Gradients of gradients of gradients: the recorded backward is itself differentiable."""
    torch = pytest.importorskip("torch")
    rng = np.random.default_rng(60)
    x_np, w_np = rng.standard_normal((1, 2, 5, 5)), rng.standard_normal((2, 2, 3, 3))
    x, w = _t(x_np), _t(w_np)
    (gw,) = tg.grad((F.conv2d(x, w, None, 2, 1) ** 3).sum(), [w], create_graph=True)
    (gx,) = tg.grad((gw * gw).sum(), [x], create_graph=True)
    ours = tg.grad((gx**2).sum(), [x, w])

    tx, tw = _torch(x_np, w_np)
    (tgw,) = torch.autograd.grad((torch.nn.functional.conv2d(tx, tw, None, 2, 1) ** 3).sum(), [tw],
                                 create_graph=True)  # fmt: skip
    (tgx,) = torch.autograd.grad(tgw.pow(2).sum(), [tx], create_graph=True)
    theirs = torch.autograd.grad(tgx.pow(2).sum(), [tx, tw])
    for a, t in zip(ours, theirs):
        np.testing.assert_allclose(a.numpy(), t.numpy(), rtol=1e-9, atol=1e-10)
