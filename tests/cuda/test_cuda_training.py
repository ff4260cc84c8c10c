"""Tensors, autograd, nn and optim on device="cuda", against the same code on the CPU."""

from __future__ import annotations

import numpy as np
import pytest

import tinygrad_edu as tg
import tinygrad_edu.cuda as tg_cuda
import tinygrad_edu.nn.functional as F
from tinygrad_edu import Tensor, nn, optim


def _is_device_array(x) -> bool:
    return getattr(x, "__cuda_ndarray__", False)


def test_the_cuda_namespace():
    assert tg_cuda.is_available()
    assert tg_cuda.device_count() >= 1
    tg_cuda.synchronize()


def test_tensors_live_on_the_device(rng):
    x = rng.standard_normal((2, 3))
    t = Tensor(x, device="cuda")
    assert t.device == "cuda" and _is_device_array(t._data)
    assert t.shape == (2, 3) and t.dtype == np.float64 and t.size == 6
    assert np.array_equal(t.numpy(), x) and t[1, 2].item() == x[1, 2]
    assert "device='cuda'" in repr(t)
    moved = Tensor(x).to("cuda:0")
    assert moved.device == "cuda" and np.array_equal(moved.cpu().numpy(), x)
    assert Tensor(x, device="cuda").to("cuda").device == "cuda"


def test_backward_leaves_gradients_on_the_device(rng):
    x = rng.standard_normal((3, 4))
    a = Tensor(x, device="cuda", requires_grad=True)
    (a * a).sum().backward()
    assert a.grad.device == "cuda" and _is_device_array(a.grad._data)
    np.testing.assert_allclose(a.grad.numpy(), 2 * x, rtol=1e-6, atol=1e-6)


def test_to_is_differentiable_back_to_the_cpu(rng):
    x = rng.standard_normal((3, 2))
    a = Tensor(x, requires_grad=True)
    assert a.to("cuda").device == "cuda" and a.to("cuda").requires_grad
    for first in (True, False):
        a.grad = None
        on_gpu, on_cpu = (a.to("cuda") * 3.0).sum().cpu(), (a * 2.0).sum()
        loss = on_gpu + on_cpu if first else on_cpu + on_gpu
        loss.backward()  # two paths meet at a, on the cpu: the gradients add there
        assert a.grad.device == "cpu" and isinstance(a.grad._data, np.ndarray)
        np.testing.assert_allclose(a.grad.numpy(), np.full((3, 2), 5.0))


def test_mixing_devices_raises_an_error_naming_both(rng):
    a = Tensor(rng.standard_normal((2, 2)), device="cuda")
    b = Tensor(rng.standard_normal((2, 2)))
    for op in (lambda: a + b, lambda: b * a, lambda: a @ b, lambda: Tensor.cat([a, b])):
        with pytest.raises(RuntimeError, match="cpu") as info:
            op()
        assert "cuda" in str(info.value)


def test_float32_meets_float64_on_the_device(rng):
    a = Tensor(rng.standard_normal((2, 3)), dtype="float32", device="cuda", requires_grad=True)
    b = Tensor(rng.standard_normal((3, 2)), dtype="float64", device="cuda", requires_grad=True)
    out = (a @ b).sum() + Tensor.cat([a, b.T], axis=0).sum()
    assert out.dtype == np.float64 and out.device == "cuda"
    out.backward()
    assert a.grad.dtype == np.float32 and a.grad.device == "cuda"
    expected = b.numpy().sum(axis=1)[None, :] + 1.0
    np.testing.assert_allclose(a.grad.numpy(), np.broadcast_to(expected, (2, 3)), rtol=1e-6)


def _composite(xs):
    """Many ops in one graph: every forward kernel and every backward rule gets used."""
    x, w, b, v = xs
    h = (x @ w + b).relu() + (x @ w).sigmoid() * 0.5 - (x @ w).tanh() ** 2
    h = h.leaky_relu(0.1).clip(-2.0, 2.0) / (1.0 + h.abs())
    z = Tensor.cat([h, h[:, :2] * v], axis=1).T.reshape(3, -1)
    s = z.softmax(-1).sum() + z.log_softmax(0).mean() + z.max(axis=1).sum() - z.min()
    return s + (h.exp() + 1.0).log().sum(axis=0).mean() + (h[[0, 0, 2]] ** 2 + 1.0).sqrt().sum()


def test_many_ops_forward_and_backward_match_the_cpu(rng):
    arrays = [
        rng.standard_normal((3, 4)),
        rng.standard_normal((4, 5)),
        rng.standard_normal(5),
        rng.standard_normal((1, 2)),
    ]
    results = {}
    for device in ("cpu", "cuda"):
        xs = [Tensor(a, device=device, requires_grad=True) for a in arrays]
        out = _composite(xs)
        out.backward()
        results[device] = (out.item(), [x.grad.numpy() for x in xs])
        assert all(x.grad.device == device for x in xs)
    (cpu_out, cpu_grads), (gpu_out, gpu_grads) = results["cpu"], results["cuda"]
    assert np.isfinite(cpu_out) and all(np.isfinite(g).all() for g in cpu_grads)
    np.testing.assert_allclose(gpu_out, cpu_out, rtol=1e-6, atol=1e-6)
    for g_gpu, g_cpu in zip(gpu_grads, cpu_grads):
        np.testing.assert_allclose(g_gpu, g_cpu, rtol=1e-6, atol=1e-6)


def _train(device, make_optimizer, steps=3):
    """A few steps of an 8-16-3 MLP in float64; returns the losses and the final weights."""
    tg.manual_seed(0)
    model = nn.Sequential(
        nn.Linear(8, 16, dtype="float64"), nn.ReLU(), nn.Linear(16, 3, dtype="float64")
    )
    model.to(device)
    data = np.random.default_rng(1)
    x = Tensor(data.standard_normal((12, 8)), device=device)
    y = data.integers(0, 3, 12)
    opt = make_optimizer(model.parameters())
    losses = []
    for _ in range(steps):
        opt.zero_grad()
        loss = F.cross_entropy(model(x), y)
        loss.backward()
        opt.step()
        losses.append(loss.item())
    assert all(p.device == device and p.grad.device == device for p in model.parameters())
    return losses, [p.numpy() for p in model.parameters()]


@pytest.mark.parametrize(
    "make_optimizer",
    [
        lambda params: optim.SGD(params, lr=0.1, momentum=0.9),
        lambda params: optim.Adam(params, lr=0.01),
    ],
    ids=["sgd-momentum", "adam"],
)
def test_mlp_training_matches_the_cpu(make_optimizer):
    cpu_losses, cpu_params = _train("cpu", make_optimizer)
    gpu_losses, gpu_params = _train("cuda", make_optimizer)
    np.testing.assert_allclose(gpu_losses, cpu_losses, rtol=1e-6, atol=1e-6)
    assert gpu_losses[-1] < gpu_losses[0]  # it trains
    for p_gpu, p_cpu in zip(gpu_params, cpu_params):
        np.testing.assert_allclose(p_gpu, p_cpu, rtol=1e-6, atol=1e-6)


def test_dropout_and_float32_training_run_on_the_device():
    tg.manual_seed(0)
    model = nn.Sequential(nn.Linear(4, 6), nn.Dropout(0.5), nn.Tanh(), nn.Linear(6, 2)).to("cuda")
    x = Tensor(np.random.default_rng(2).standard_normal((5, 4)), dtype="float32", device="cuda")
    opt = optim.Adam(model.parameters(), lr=0.01)
    loss = F.cross_entropy(model(x), [0, 1, 1, 0, 1])
    loss.backward()
    opt.step()
    assert np.isfinite(loss.item())
    assert all(p.dtype == np.float32 and p.device == "cuda" for p in model.parameters())


def test_fit_and_evaluate_on_the_device_match_the_cpu():
    from tinygrad_edu import train
    from tinygrad_edu.data import DataLoader

    histories = {}
    for device in ("cpu", "cuda"):
        tg.manual_seed(0)
        data = np.random.default_rng(0)
        x, y = data.standard_normal((16, 6)), data.integers(0, 3, 16)
        model = nn.Sequential(
            nn.Linear(6, 8, dtype="float64"), nn.Tanh(), nn.Linear(8, 3, dtype="float64")
        ).to(device)
        opt = optim.SGD(model.parameters(), lr=0.1, momentum=0.9)
        loader = DataLoader(x, y, batch_size=8, seed=1)
        histories[device] = train.fit(model, F.cross_entropy, opt, loader, epochs=1, progress=False)
    cpu, gpu = histories["cpu"], histories["cuda"]
    np.testing.assert_allclose(gpu.train_loss, cpu.train_loss, rtol=1e-6, atol=1e-6)
    assert gpu.train_acc == cpu.train_acc


def test_gradcheck_works_on_device_tensors(rng):
    a = Tensor(rng.standard_normal((2, 3)), device="cuda", requires_grad=True)
    b = Tensor(rng.standard_normal(3), device="cuda", requires_grad=True)
    assert tg.gradcheck(lambda: (a * b).tanh().sum(), [a, b])


@pytest.mark.parametrize("shape, axis", [((0, 3), 1), ((2, 0, 4), (0, 2)), ((3, 0), 0)])
def test_max_min_of_empty_tensors_as_numpy(shape, axis):
    a = np.ones(shape)
    for name in ("max", "min"):
        x = Tensor(a, device="cuda", requires_grad=True)
        y = getattr(x, name)(axis=axis, keepdims=True)
        assert y.shape == getattr(a, name)(axis=axis, keepdims=True).shape
        y.sum().backward()
        np.testing.assert_array_equal(x.grad.numpy(), np.zeros_like(a))
        with pytest.raises(ValueError, match=rf"^{name}.*{shape}"):  # the empty axis: no max
            getattr(x, name)()
