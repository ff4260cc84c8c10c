"""Contract v2's shape ops, reductions and casts on the GPU give the CPU's numbers (tiny shapes:
the simulator runs each thread in Python)."""

from __future__ import annotations

import numpy as np

import tinygrad_edu as tg


def test_v2_shape_ops_reductions_and_casts_on_cuda_match_the_cpu():
    values = np.array([[0.3, -1.2, 0.8], [1.5, -0.4, 0.1]])
    results = {}
    for device in ("cpu", "cuda"):
        x = tg.tensor(values, dtype=tg.float64, requires_grad=True, device=device)
        y = x[:, None, :1].expand(2, 3, 2).permute(2, 0, 1).flatten(1) * x.unsqueeze(0).view(1, 6)
        loss = y.var(dim=1).sum() + x.logsumexp(1).sum() + x.float().std(dim=0).double().sum()
        (gx,) = tg.grad(loss, x, create_graph=True)
        (gg,) = tg.grad((gx * gx).sum(), x)
        picked = x.max(dim=1)
        results[device] = (
            loss.numpy(),
            gx.numpy(),
            gg.numpy(),
            picked.values.numpy(),
            picked.indices.numpy(),
            x.argmin(dim=0).numpy(),
            x.long().numpy(),
        )
    for cpu, gpu in zip(results["cpu"], results["cuda"]):
        np.testing.assert_allclose(gpu, cpu, rtol=1e-6, atol=1e-9)
    assert results["cpu"][4].tolist() == [2, 0] and results["cpu"][5].tolist() == [0, 0, 1]
