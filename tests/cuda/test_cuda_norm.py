"""BatchNorm, LayerNorm and Embedding on device="cuda" (tiny shapes: the simulator is slow),
against the same layers on the CPU: they are composed of ops the CUDA backend has."""

from __future__ import annotations

import numpy as np

from tinygrad_edu import Tensor, nn


def test_norm_layers_on_cuda_match_cpu(rng):
    x = rng.standard_normal((3, 2, 2))
    c = rng.standard_normal((3, 2, 2))
    for make in (
        lambda: nn.BatchNorm1d(2, dtype="float64"),
        lambda: nn.LayerNorm(2, dtype="float64"),
    ):
        cpu, gpu = make(), make().to("cuda")
        for mode in (True, False):
            cpu.train(mode)
            gpu.train(mode)
            xc, xg = Tensor(x, requires_grad=True), Tensor(x, device="cuda", requires_grad=True)
            yc, yg = cpu(xc), gpu(xg)
            (yc * Tensor(c)).sum().backward()
            (yg * Tensor(c, device="cuda")).sum().backward()
            assert yg.device == "cuda" and xg.grad.device == "cuda"
            np.testing.assert_allclose(yg.numpy(), yc.numpy(), rtol=1e-10, atol=1e-12)
            np.testing.assert_allclose(xg.grad.numpy(), xc.grad.numpy(), rtol=1e-9, atol=1e-12)
        for (name, a), (_, b) in zip(cpu.state_dict().items(), gpu.state_dict().items()):
            np.testing.assert_allclose(b, a, rtol=1e-10, err_msg=name)


def test_embedding_on_cuda_matches_cpu():
    cpu = nn.Embedding(4, 2, padding_idx=0, dtype="float64")
    gpu = nn.Embedding(4, 2, padding_idx=0, dtype="float64")
    gpu.load_state_dict(cpu.state_dict())
    gpu.to("cuda")
    ids = np.array([[0, 3], [3, 1]])
    c = np.arange(8.0).reshape(2, 2, 2)
    yc, yg = cpu(ids), gpu(Tensor(ids, dtype="int64"))
    (yc * Tensor(c)).sum().backward()
    (yg * Tensor(c, device="cuda")).sum().backward()
    assert yg.device == "cuda"
    np.testing.assert_allclose(yg.numpy(), yc.numpy())
    np.testing.assert_allclose(gpu.weight.grad.numpy(), cpu.weight.grad.numpy())
