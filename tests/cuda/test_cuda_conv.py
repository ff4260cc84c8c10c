"""The CUDA image kernels (backend/conv_cuda.py) against their CPU twins (backend/conv_cpu.py):
every output of every function, forward and backward, float32 and float64, strides 1 and 2,
padding 0 and 1, non-square kernels, max-pool ties and overlapping windows; then a small CNN
trained one step on device="cuda" against the same model on the CPU.

Shapes are tiny: in the simulator a matmul launch takes about a second, and a convolution makes
one (forward) and up to two (backward).
"""

from __future__ import annotations

import numpy as np
import pytest

import tinygrad_edu as tg
import tinygrad_edu.nn.functional as F
from tinygrad_edu import Tensor, nn, optim
from tinygrad_edu.backend import conv_cpu as P
from tinygrad_edu.backend import conv_cuda as G

F32, F64 = np.float32, np.float64

# (dtype, input shape, weight shape, stride, padding, with bias)
CONV_CASES = [
    (F64, (2, 2, 5, 4), (3, 2, 3, 2), (1, 1), (0, 0), True),  # non-square kernel
    (F32, (1, 2, 6, 5), (2, 2, 3, 3), (2, 2), (1, 1), True),
    (F64, (1, 1, 6, 5), (2, 1, 2, 3), (2, 1), (1, 0), False),  # mixed stride and padding
    (F32, (2, 1, 6, 6), (2, 1, 3, 3), (2, 2), (0, 0), True),  # the last row and column unused
]


@pytest.mark.parametrize("dtype,xs,ws,stride,padding,bias", CONV_CASES)
def test_conv2d_matches_conv_cpu(C, dev, check, rng, dtype, xs, ws, stride, padding, bias):
    x = rng.standard_normal(xs).astype(dtype)
    w = rng.standard_normal(ws).astype(dtype)
    b = rng.standard_normal(ws[0]).astype(dtype) if bias else None
    y, cols = P.conv2d_forward(x, w, b, stride, padding)
    y_gpu, cols_gpu = G.conv2d_forward(
        dev(x), dev(w), None if b is None else dev(b), stride, padding
    )
    check(y_gpu, y)
    check(cols_gpu, cols)  # the same im2col layout: (C kh kw, N OH OW)
    g = rng.standard_normal(y.shape).astype(dtype)
    expected = P.conv2d_backward(g, cols, xs, w, stride, padding, True, True, bias)
    got = G.conv2d_backward(dev(g), cols_gpu, xs, dev(w), stride, padding, True, True, bias)
    for name, actual, wanted in zip(("dx", "dw", "db"), got, expected):
        if wanted is None:
            assert actual is None, name
        else:
            check(actual, wanted)


# (dtype, kernel, stride, padding, integer data: many ties)
POOL_CASES = [
    (F64, (2, 2), (2, 2), (0, 0), False),
    (F32, (3, 2), (1, 1), (1, 1), True),  # overlapping windows, ties, padding
    (F64, (3, 3), (2, 2), (1, 1), True),  # overlapping at stride 2
    (F32, (2, 3), (1, 2), (0, 1), False),
]


@pytest.mark.parametrize("dtype,kernel,stride,padding,ties", POOL_CASES)
def test_pooling_matches_conv_cpu(C, dev, check, rng, dtype, kernel, stride, padding, ties):
    shape = (2, 2, 5, 4)
    x = (rng.integers(0, 3, shape) if ties else rng.standard_normal(shape)).astype(dtype)
    y, arg = P.max_pool2d_forward(x, kernel, stride, padding)
    y_gpu, arg_gpu = G.max_pool2d_forward(dev(x), kernel, stride, padding)
    check(y_gpu, y)
    check(arg_gpu, arg)  # exactly: the first maximum of each window
    g = rng.standard_normal(y.shape).astype(dtype)
    dx = G.max_pool2d_backward(dev(g), arg_gpu, shape, kernel, stride, padding)
    check(dx, P.max_pool2d_backward(g, arg, shape, kernel, stride, padding))
    check(G.avg_pool2d_forward(dev(x), kernel, stride, padding),
          P.avg_pool2d_forward(x, kernel, stride, padding))  # fmt: skip
    check(G.avg_pool2d_backward(dev(g), shape, kernel, stride, padding),
          P.avg_pool2d_backward(g, shape, kernel, stride, padding))  # fmt: skip


def test_max_pool_ties_go_to_the_first_entry_and_overlapping_windows_add(C, dev, check):
    x = np.ones((1, 1, 3, 3))
    y, arg = G.max_pool2d_forward(dev(x), (2, 2), (1, 1), (0, 0))
    check(arg, np.zeros((1, 1, 2, 2), dtype=np.int64))  # every window picks its top-left entry
    g = np.array([[[[1.0, 2.0], [3.0, 4.0]]]])
    dx = G.max_pool2d_backward(dev(g), arg, x.shape, (2, 2), (1, 1), (0, 0))
    check(dx, np.array([[[[1.0, 2.0, 0.0], [3.0, 4.0, 0.0], [0.0, 0.0, 0.0]]]]))
    # one window's maximum chosen by two windows: their gradients add there
    x = np.array([[[[0.0, 0.0, 0.0], [0.0, 5.0, 0.0], [0.0, 0.0, 0.0]]]])
    _, arg = G.max_pool2d_forward(dev(x), (2, 2), (1, 1), (0, 0))
    dx = G.max_pool2d_backward(dev(g), arg, x.shape, (2, 2), (1, 1), (0, 0))
    check(dx, np.array([[[[0.0, 0.0, 0.0], [0.0, 10.0, 0.0], [0.0, 0.0, 0.0]]]]))


def test_max_pool_nan_and_padding_as_conv_cpu(C, dev, check):
    # a NaN wins its windows (as numpy's argmax); in a window of -inf only, padding included,
    # the first entry is the maximum, as on the CPU
    x = np.array([[[[-np.inf, np.nan, 2.0], [-np.inf, 0.0, 3.0], [4.0, -1.0, -np.inf]]]])
    cases = (((2, 2), (1, 1), (0, 0)), ((3, 3), (2, 2), (1, 1)), ((2, 2), (2, 2), (1, 1)))
    for kernel, stride, padding in cases:
        y, arg = P.max_pool2d_forward(x, kernel, stride, padding)
        y_gpu, arg_gpu = G.max_pool2d_forward(dev(x), kernel, stride, padding)
        np.testing.assert_array_equal(C.to_numpy(y_gpu), y)
        check(arg_gpu, arg)


def test_pool_ops_on_cuda_tensors_keep_everything_on_the_device(rng):
    x_host = rng.standard_normal((1, 2, 4, 4))
    for pool in (F.max_pool2d, F.avg_pool2d):
        xc = Tensor(x_host, requires_grad=True)
        xg = Tensor(x_host, device="cuda", requires_grad=True)
        yc, yg = pool(xc, 3, 1, 1), pool(xg, 3, 1, 1)
        (yc * yc).sum().backward()
        (yg * yg).sum().backward()
        assert yg.device == "cuda" and xg.grad.device == "cuda"
        np.testing.assert_allclose(yg.numpy(), yc.numpy(), rtol=1e-12)
        np.testing.assert_allclose(xg.grad.numpy(), xc.grad.numpy(), rtol=1e-12)


def _cnn_step(device):
    """One SGD step of Conv2d + ReLU + MaxPool2d + Linear in float64; returns the loss, the
    gradients and the updated parameters."""
    tg.manual_seed(0)
    model = nn.Sequential(
        nn.Conv2d(2, 3, (3, 2), padding=1, dtype="float64"),
        nn.ReLU(),
        nn.MaxPool2d(2),
        nn.Flatten(),
        nn.Linear(3 * 2 * 2, 3, dtype="float64"),
    ).to(device)
    data = np.random.default_rng(3)
    x = Tensor(data.standard_normal((2, 2, 4, 3)), device=device)
    opt = optim.SGD(model.parameters(), lr=0.1)
    opt.zero_grad()
    loss = F.cross_entropy(model(x), [0, 2])
    loss.backward()
    grads = [p.grad.numpy() for p in model.parameters()]
    opt.step()
    assert all(p.device == device and p.grad.device == device for p in model.parameters())
    return loss.item(), grads, [p.numpy() for p in model.parameters()]


def test_a_cnn_step_on_cuda_matches_the_cpu():
    loss_cpu, grads_cpu, params_cpu = _cnn_step("cpu")
    loss_gpu, grads_gpu, params_gpu = _cnn_step("cuda")
    np.testing.assert_allclose(loss_gpu, loss_cpu, rtol=1e-10)
    for g_gpu, g_cpu in zip(grads_gpu, grads_cpu):
        np.testing.assert_allclose(g_gpu, g_cpu, rtol=1e-9, atol=1e-12)
    for p_gpu, p_cpu in zip(params_gpu, params_cpu):
        np.testing.assert_allclose(p_gpu, p_cpu, rtol=1e-10, atol=1e-12)


def _gradient_penalty(device):
    """d/d(x, w) of |dL/dx|^2 for L = sum(max_pool(conv(x, w))^2): second derivatives through
    conv2d and max_pool2d with create_graph=True (float64); returns them as numpy arrays."""
    data = np.random.default_rng(5)
    x = Tensor(data.standard_normal((1, 1, 4, 4)), device=device, requires_grad=True)
    w = Tensor(data.standard_normal((2, 1, 2, 2)), device=device, requires_grad=True)
    y = F.max_pool2d(F.conv2d(x, w, padding=1), 2)
    (dx,) = tg.grad((y * y).sum(), [x], create_graph=True)
    penalty = (dx * dx).sum()
    penalty.backward()
    assert x.grad.device == device and w.grad.device == device
    return penalty.item(), x.grad.numpy(), w.grad.numpy()


def test_create_graph_through_conv_and_pooling_on_cuda_matches_the_cpu():
    # the recorded twin (conv_differentiable) runs on whatever backend the tensors are on
    p_cpu, dx_cpu, dw_cpu = _gradient_penalty("cpu")
    p_gpu, dx_gpu, dw_gpu = _gradient_penalty("cuda")
    np.testing.assert_allclose(p_gpu, p_cpu, rtol=1e-10)
    np.testing.assert_allclose(dx_gpu, dx_cpu, rtol=1e-9, atol=1e-12)
    np.testing.assert_allclose(dw_gpu, dw_cpu, rtol=1e-9, atol=1e-12)
    assert np.abs(dw_cpu).max() > 0  # the cross term x-w is there (not a first-order copy)
