"""register_hook, retain_grad, grad_fn, and tg.autograd.Function (custom ops on Tensors)."""

from __future__ import annotations

import gc

import numpy as np
import pytest

import tinygrad_edu as tg
from tinygrad_edu import autograd


def T(values, requires_grad=False):  # noqa: N802
    return tg.Tensor(np.asarray(values, dtype=np.float64), dtype=np.float64,
                     requires_grad=requires_grad)  # fmt: skip


# ----- hooks -----


def test_a_leaf_hook_sees_the_gradient_and_can_replace_it():
    x = T([1.0, -2.0], requires_grad=True)
    seen = []
    handle = x.register_hook(lambda g: seen.append(g.numpy().copy()) or g * 10.0)
    (x * x).sum().backward()
    np.testing.assert_allclose(seen[0], [2.0, -4.0])
    np.testing.assert_allclose(x.grad.numpy(), [20.0, -40.0])
    handle.remove()
    x.grad = None
    (x * x).sum().backward()
    np.testing.assert_allclose(x.grad.numpy(), [2.0, -4.0])  # removed: no more scaling
    assert len(seen) == 1


def test_a_hook_on_an_intermediate_tensor_changes_what_flows_on():
    x = T([3.0], requires_grad=True)
    h = x * 2.0
    h.register_hook(lambda g: g * 0.0)  # cut the gradient here
    ((h * h).sum() + (x * 5.0).sum()).backward()
    np.testing.assert_allclose(x.grad.numpy(), [5.0])  # only the path that avoids h


def test_hooks_match_pytorch():
    torch = pytest.importorskip("torch")
    v = np.array([0.5, -1.5, 2.0])
    x = T(v, requires_grad=True)
    y = x.tanh()
    y.register_hook(lambda g: g * g)
    (y * 3.0).sum().backward()
    tx = torch.tensor(v, requires_grad=True)
    ty = torch.tanh(tx)
    ty.register_hook(lambda g: g * g)
    (ty * 3.0).sum().backward()
    np.testing.assert_allclose(x.grad.numpy(), tx.grad.numpy(), rtol=1e-12)


def test_a_hook_returning_a_wrong_shape_is_an_error():
    x = T([1.0, 2.0], requires_grad=True)
    x.register_hook(lambda g: T([1.0]))
    with pytest.raises(RuntimeError, match="shape"):
        (x * 2.0).sum().backward()


def test_hooks_of_dead_tensors_are_dropped():
    x = T([1.0], requires_grad=True)
    x.register_hook(lambda g: None)
    key = id(x)
    assert key in autograd._hooks
    del x
    gc.collect()
    assert key not in autograd._hooks


def test_retain_grad_keeps_a_non_leaf_gradient():
    x = T([1.0, 2.0], requires_grad=True)
    h = x * x
    h.retain_grad()
    h.retain_grad()  # twice is once
    (h * 3.0).sum().backward(retain_graph=True)
    np.testing.assert_allclose(h.grad.numpy(), [3.0, 3.0])
    (h * 3.0).sum().backward()
    np.testing.assert_allclose(h.grad.numpy(), [6.0, 6.0])  # accumulates, as PyTorch
    np.testing.assert_allclose(x.grad.numpy(), [12.0, 24.0])
    assert (x * 1.0).grad is None


def test_grad_fn_and_is_leaf():
    x = T([1.0], requires_grad=True)
    y = (x * 2.0).sigmoid()
    assert x.grad_fn is None and x.is_leaf
    assert y.grad_fn.name() == "Sigmoid" and not y.is_leaf
    with tg.no_grad():
        assert (x * 2.0).grad_fn is None


# ----- custom ops -----


class Cube(tg.autograd.Function):
    @staticmethod
    def forward(ctx, x):
        ctx.save_for_backward(x)
        return x * x * x

    @staticmethod
    def backward(ctx, grad):
        (x,) = ctx.saved_tensors
        return grad * 3.0 * x * x


class ScaledProduct(tg.autograd.Function):
    """z = s * x * y with a Python number s: plain methods (no @staticmethod) work too."""

    def forward(ctx, x, y, s):
        ctx.save_for_backward(x, y)
        ctx.s = s
        return x * y * s

    def backward(ctx, grad):
        x, y = ctx.saved_tensors
        gx = grad * y * ctx.s if ctx.needs_input_grad[0] else None
        gy = grad * x * ctx.s if ctx.needs_input_grad[1] else None
        return gx, gy, None


def test_a_custom_op_passes_gradcheck():
    x = T([0.5, -1.0, 2.0], requires_grad=True)
    y = T([1.5, 0.25, -3.0], requires_grad=True)
    assert tg.gradcheck(lambda: Cube.apply(x).sum(), [x])
    assert tg.gradcheck(lambda: (ScaledProduct.apply(x, y, 0.5) * x).sum(), [x, y])


def test_a_custom_op_can_be_differentiated_twice():
    x = T([0.5, -1.0, 2.0], requires_grad=True)
    (g,) = tg.grad(Cube.apply(x).sum(), x, create_graph=True)
    (h,) = tg.grad(g.sum(), x)
    np.testing.assert_allclose(g.numpy(), 3 * x.numpy() ** 2)
    np.testing.assert_allclose(h.numpy(), 6 * x.numpy())


def test_needs_input_grad_and_forward_inputs_are_detached():
    x = T([1.0, 2.0], requires_grad=True)
    y = T([3.0, 4.0])  # does not require grad
    seen = {}

    class Probe(tg.autograd.Function):
        @staticmethod
        def forward(ctx, a, b):
            seen["needs"] = ctx.needs_input_grad
            seen["detached"] = (a.requires_grad, b.requires_grad)
            return a * b

        @staticmethod
        def backward(ctx, grad):
            return grad * 2.0, grad * 7.0

    out = Probe.apply(x, y)
    assert out.requires_grad and out.grad_fn.name() == "Probe"
    out.sum().backward()
    assert seen == {"needs": (True, False), "detached": (False, False)}
    np.testing.assert_allclose(x.grad.numpy(), [2.0, 2.0])
    assert y.grad is None


def test_a_custom_op_matches_pytorchs():
    torch = pytest.importorskip("torch")

    class TorchCube(torch.autograd.Function):
        @staticmethod
        def forward(ctx, x):
            ctx.save_for_backward(x)
            return x * x * x

        @staticmethod
        def backward(ctx, grad):
            (x,) = ctx.saved_tensors
            return grad * 3.0 * x * x

    v = np.array([0.3, -0.7, 1.1])
    x = T(v, requires_grad=True)
    (Cube.apply(x).tanh()).sum().backward()
    tx = torch.tensor(v, requires_grad=True)
    torch.tanh(TorchCube.apply(tx)).sum().backward()
    np.testing.assert_allclose(x.grad.numpy(), tx.grad.numpy(), rtol=1e-12)


def test_custom_op_mistakes_get_clear_errors():
    x = T([1.0, 2.0], requires_grad=True)

    class TwoGrads(tg.autograd.Function):
        @staticmethod
        def forward(ctx, a):
            return a * 2.0

        @staticmethod
        def backward(ctx, grad):
            return grad, grad

    with pytest.raises(RuntimeError, match="TwoGrads.backward returned 2 gradients for 1"):
        TwoGrads.apply(x).sum().backward()

    class WrongShape(tg.autograd.Function):
        @staticmethod
        def forward(ctx, a):
            return a.sum()

        @staticmethod
        def backward(ctx, grad):
            return grad

    with pytest.raises(RuntimeError, match="shape"):
        WrongShape.apply(x).backward()

    class NoTensor(tg.autograd.Function):
        @staticmethod
        def forward(ctx, a):
            return a.numpy()

    with pytest.raises(TypeError, match="must return one Tensor"):
        NoTensor.apply(x)
