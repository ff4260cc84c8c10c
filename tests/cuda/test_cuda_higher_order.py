"""Higher-order gradients on the GPU: the differentiable namespace runs on CUDA arrays too."""

from __future__ import annotations

import numpy as np

import tinygrad_edu as tg


def test_second_derivatives_on_cuda_match_the_cpu():
    values = np.array([[0.3, -1.2, 0.8], [1.5, -0.4, 0.1]])
    labels = np.array([2, 0])
    results = {}
    for device in ("cpu", "cuda"):
        x = tg.Tensor(values, dtype=np.float64, requires_grad=True, device=device)
        w = tg.Tensor(np.eye(3) * 0.5, dtype=np.float64, requires_grad=True, device=device)
        y = tg.Tensor(labels, dtype=np.int64, device=device)
        loss = tg.nn.functional.cross_entropy((x @ w).tanh().sigmoid(), y)
        (gx,) = tg.grad(loss, x, create_graph=True)
        (gw,) = tg.grad((gx * gx).sum(), w)
        results[device] = (gx.numpy(), gw.numpy())
    for cpu, gpu in zip(results["cpu"], results["cuda"]):
        np.testing.assert_allclose(gpu, cpu, rtol=1e-10, atol=1e-12)
    assert np.abs(results["cpu"][1]).max() > 1e-4  # a real second derivative, not zeros
