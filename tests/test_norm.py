"""BatchNorm1d/2d, LayerNorm, Embedding and their functional twins, against PyTorch (weights
copied), finite differences in float64, and the closed forms; plus Module buffers."""

from __future__ import annotations

import numpy as np
import pytest

import tinygrad_edu as tg
import tinygrad_edu.nn.functional as F
from tinygrad_edu import nn
from tinygrad_edu.tensor import Tensor


def _t(a, requires_grad=False):
    return Tensor(a, dtype=np.asarray(a).dtype, requires_grad=requires_grad)


# ----- batch normalization: closed form, finite differences -----


@pytest.mark.parametrize("shape", [(6, 3), (4, 3, 5), (3, 3, 4, 2)])
def test_batchnorm_train_forward_is_the_closed_form(shape):
    rng = np.random.default_rng(0)
    x = rng.normal(2.0, 3.0, shape)
    layer = (nn.BatchNorm2d if len(shape) == 4 else nn.BatchNorm1d)(3, dtype="float64")
    y = layer(_t(x)).numpy()
    axes = (0,) + tuple(range(2, len(shape)))
    mean, var = x.mean(axes, keepdims=True), x.var(axes, keepdims=True)
    np.testing.assert_allclose(y, (x - mean) / np.sqrt(var + 1e-5), rtol=1e-10, atol=1e-12)
    n = x.size // 3
    np.testing.assert_allclose(layer.running_mean.numpy(), 0.1 * mean.ravel(), rtol=1e-10)
    unbiased = var.ravel() * n / (n - 1)
    np.testing.assert_allclose(layer.running_var.numpy(), 0.9 + 0.1 * unbiased, rtol=1e-10)
    assert layer.num_batches_tracked.item() == 1


@pytest.mark.parametrize("training", [True, False])
def test_batchnorm_gradients_match_finite_differences(training):
    rng = np.random.default_rng(1)
    layer = nn.BatchNorm1d(3, dtype="float64")
    layer.running_mean.data = rng.normal(size=3)
    layer.running_var.data = rng.uniform(0.5, 2.0, 3)
    layer.weight.data = rng.normal(size=3)
    layer.bias.data = rng.normal(size=3)
    layer.train(training)
    x = _t(rng.normal(size=(4, 3, 2)), requires_grad=True)
    c = _t(rng.normal(size=(4, 3, 2)))
    layer.momentum = 0.0  # keep the running statistics fixed while differences are taken
    assert tg.gradcheck(lambda: (layer(x) * c).sum(), [x, layer.weight, layer.bias])


def test_layernorm_and_embedding_gradients_match_finite_differences():
    rng = np.random.default_rng(2)
    ln = nn.LayerNorm((2, 3), dtype="float64")
    ln.weight.data, ln.bias.data = rng.normal(size=(2, 3)), rng.normal(size=(2, 3))
    x = _t(rng.normal(size=(4, 2, 3)), requires_grad=True)
    c = _t(rng.normal(size=(4, 2, 3)))
    assert tg.gradcheck(lambda: (ln(x) * c).sum(), [x, ln.weight, ln.bias])
    ids = np.array([[0, 1, 4], [4, 4, 2]])
    c = rng.normal(size=(2, 3, 3))
    emb = nn.Embedding(5, 3, dtype="float64")
    assert tg.gradcheck(lambda: (emb(Tensor(ids, dtype="int64")) * _t(c)).sum(), [emb.weight])
    # with a padding row: the closed form (scatter-add of c into the rows), row 1 left out
    emb = nn.Embedding(5, 3, padding_idx=1, dtype="float64")
    (emb(ids) * _t(c)).sum().backward()
    expected = np.zeros((5, 3))
    np.add.at(expected, ids, c)
    expected[1] = 0.0
    np.testing.assert_allclose(emb.weight.grad.numpy(), expected, rtol=1e-12)


# ----- against PyTorch -----


def _torch_bn(torch, shape, c, **kw):
    layer = {2: torch.nn.BatchNorm1d, 3: torch.nn.BatchNorm1d, 4: torch.nn.BatchNorm2d}[len(shape)](
        c, **kw
    )
    return layer.double()


@pytest.mark.parametrize("shape", [(5, 3), (4, 3, 6), (2, 3, 4, 5)])
@pytest.mark.parametrize("momentum", [0.1, None])
def test_batchnorm_matches_torch_over_several_steps_and_modes(shape, momentum):
    torch = pytest.importorskip("torch")
    rng = np.random.default_rng(3)
    ours = (nn.BatchNorm2d if len(shape) == 4 else nn.BatchNorm1d)(
        3, momentum=momentum, dtype="float64"
    )
    theirs = _torch_bn(torch, shape, 3, momentum=momentum)
    w, b = rng.normal(size=3), rng.normal(size=3)
    ours.weight.data, ours.bias.data = w, b
    with torch.no_grad():
        theirs.weight.copy_(torch.tensor(w))
        theirs.bias.copy_(torch.tensor(b))
    for step in range(4):
        x = rng.normal(1.0, 2.0, shape)
        mode = step != 2  # train, train, eval, train
        ours.train(mode)
        theirs.train(mode)
        c = rng.normal(size=shape)
        xt = _t(x, requires_grad=True)
        (ours(xt) * _t(c)).sum().backward()
        xr = torch.tensor(x, requires_grad=True)
        yr = theirs(xr)
        (yr * torch.tensor(c)).sum().backward()
        np.testing.assert_allclose(
            ours(xt).numpy() if not mode else xt.grad.numpy(),
            (theirs(xr).detach().numpy() if not mode else xr.grad.numpy()),
            rtol=1e-9,
            atol=1e-11,
        )
        np.testing.assert_allclose(xt.grad.numpy(), xr.grad.numpy(), rtol=1e-9, atol=1e-11)
        for name in ("running_mean", "running_var"):
            np.testing.assert_allclose(
                getattr(ours, name).numpy(), getattr(theirs, name).numpy(), rtol=1e-12
            )
        assert ours.num_batches_tracked.item() == theirs.num_batches_tracked.item()
    np.testing.assert_allclose(ours.weight.grad.numpy(), theirs.weight.grad.numpy(), rtol=1e-9)
    np.testing.assert_allclose(ours.bias.grad.numpy(), theirs.bias.grad.numpy(), rtol=1e-9)


@pytest.mark.parametrize("affine,track", [(False, True), (True, False), (False, False)])
def test_batchnorm_options_match_torch(affine, track):
    torch = pytest.importorskip("torch")
    rng = np.random.default_rng(4)
    ours = nn.BatchNorm2d(2, affine=affine, track_running_stats=track, dtype="float64")
    theirs = torch.nn.BatchNorm2d(2, affine=affine, track_running_stats=track).double()
    assert (ours.weight is None) == (theirs.weight is None)
    assert sorted(ours.state_dict()) == sorted(theirs.state_dict())
    for mode in (True, False):
        ours.train(mode)
        theirs.train(mode)
        x = rng.normal(size=(3, 2, 2, 2))
        np.testing.assert_allclose(
            ours(_t(x)).numpy(), theirs(torch.tensor(x)).detach().numpy(), rtol=1e-9, atol=1e-12
        )


def test_layernorm_matches_torch_forward_and_gradients():
    torch = pytest.importorskip("torch")
    rng = np.random.default_rng(5)
    for shape, norm in (((4, 6), 6), ((2, 3, 4, 5), (4, 5))):
        ours = nn.LayerNorm(norm, eps=1e-3)
        theirs = torch.nn.LayerNorm(norm, eps=1e-3)
        w, b = rng.normal(size=ours.weight.shape), rng.normal(size=ours.weight.shape)
        ours.weight.data, ours.bias.data = w, b
        with torch.no_grad():
            theirs.weight.copy_(torch.tensor(w))
            theirs.bias.copy_(torch.tensor(b))
        x, c = rng.normal(size=shape).astype(np.float32), rng.normal(size=shape)
        xt = Tensor(x, requires_grad=True)
        y = ours(xt)
        (y * Tensor(c)).sum().backward()
        xr = torch.tensor(x, requires_grad=True)
        yr = theirs(xr)
        (yr * torch.tensor(c, dtype=torch.float32)).sum().backward()
        assert y.dtype == np.float32
        np.testing.assert_allclose(y.numpy(), yr.detach().numpy(), rtol=1e-4, atol=1e-5)
        np.testing.assert_allclose(xt.grad.numpy(), xr.grad.numpy(), rtol=1e-3, atol=1e-4)
        np.testing.assert_allclose(ours.weight.grad.numpy(), theirs.weight.grad.numpy(), rtol=1e-4)
        np.testing.assert_allclose(ours.bias.grad.numpy(), theirs.bias.grad.numpy(), rtol=1e-4)
        f = F.layer_norm(xt, norm, ours.weight, ours.bias, eps=1e-3)
        np.testing.assert_allclose(f.numpy(), y.numpy())


def test_embedding_matches_torch_with_repeats_and_padding():
    torch = pytest.importorskip("torch")
    ids = np.array([[1, 3, 3, 0], [2, 3, 1, 1]])
    for pad in (None, 3, -4):
        ours = nn.Embedding(5, 4, padding_idx=pad)
        theirs = torch.nn.Embedding(5, 4, padding_idx=pad)
        w = ours.weight.numpy().copy()
        w[1] = 7.0  # a non-zero padding row (pad=-4 is row 1) is still read, as PyTorch
        ours.weight.data = w
        with torch.no_grad():
            theirs.weight.copy_(torch.tensor(w))
        c = np.random.default_rng(6).normal(size=(2, 4, 4)).astype(np.float32)
        y = ours(Tensor(ids, dtype="int64"))
        (y * Tensor(c)).sum().backward()
        yr = theirs(torch.tensor(ids))
        (yr * torch.tensor(c)).sum().backward()
        np.testing.assert_allclose(y.numpy(), yr.detach().numpy())
        np.testing.assert_allclose(ours.weight.grad.numpy(), theirs.weight.grad.numpy(), rtol=1e-6)
    assert nn.Embedding(4, 2, padding_idx=2).weight.numpy()[2].tolist() == [0.0, 0.0]


def test_embedding_init_is_standard_normal():
    tg.manual_seed(0)
    w = nn.Embedding(1000, 50).weight.numpy()
    assert abs(w.mean()) < 0.01 and abs(w.std() - 1.0) < 0.01


def test_functional_batch_norm_matches_torch():
    torch = pytest.importorskip("torch")
    rng = np.random.default_rng(7)
    x = rng.normal(size=(4, 3, 5))
    rm, rv = rng.normal(size=3), rng.uniform(0.5, 2, 3)
    w, b = rng.normal(size=3), rng.normal(size=3)
    for training in (True, False):
        ours_rm, ours_rv = _t(rm.copy()), _t(rv.copy())
        th_rm, th_rv = torch.tensor(rm.copy()), torch.tensor(rv.copy())
        y = F.batch_norm(_t(x), ours_rm, ours_rv, _t(w), _t(b), training, 0.3, 1e-4)
        yr = torch.nn.functional.batch_norm(
            torch.tensor(x), th_rm, th_rv, torch.tensor(w), torch.tensor(b), training, 0.3, 1e-4
        )
        np.testing.assert_allclose(y.numpy(), yr.numpy(), rtol=1e-10, atol=1e-12)
        np.testing.assert_allclose(ours_rm.numpy(), th_rm.numpy(), rtol=1e-12)
        np.testing.assert_allclose(ours_rv.numpy(), th_rv.numpy(), rtol=1e-12)


# ----- modes, state_dict, buffers -----


def test_eval_uses_running_stats_and_train_eval_switch():
    layer = nn.BatchNorm1d(2, dtype="float64")
    x = np.array([[1.0, 10.0], [3.0, 20.0], [5.0, 60.0]])
    for _ in range(50):  # running stats converge to the batch's (unbiased) statistics
        layer(_t(x))
    layer.eval()
    before = layer.running_mean.numpy().copy()
    y = layer(_t(x)).numpy()
    np.testing.assert_array_equal(layer.running_mean.numpy(), before)  # eval does not update
    assert layer.num_batches_tracked.item() == 50
    rm, rv = x.mean(0) * (1 - 0.9**50), 0.9**50 + x.var(0, ddof=1) * (1 - 0.9**50)
    np.testing.assert_allclose(y, (x - rm) / np.sqrt(rv + 1e-5), rtol=1e-10)
    layer.train()
    np.testing.assert_allclose(layer(_t(x)).numpy(), (x - x.mean(0)) / np.sqrt(x.var(0) + 1e-5))


def test_buffers_are_in_state_dict_not_parameters_and_round_trip(tmp_path):
    model = nn.Sequential(nn.Linear(3, 4), nn.BatchNorm1d(4))
    assert [n for n, _ in model.named_buffers()] == [
        "1.running_mean",
        "1.running_var",
        "1.num_batches_tracked",
    ]
    assert len(model.parameters()) == 4  # buffers are not parameters: no optimizer sees them
    for _ in range(3):
        model(Tensor(np.random.default_rng(8).normal(size=(5, 3))))
    state = model.state_dict()
    assert list(state)[-3:] == ["1.running_mean", "1.running_var", "1.num_batches_tracked"]
    assert state["1.num_batches_tracked"].dtype == np.int64
    tg.save(state, tmp_path / "m.npz")
    other = nn.Sequential(nn.Linear(3, 4), nn.BatchNorm1d(4))
    buf = other[1].running_mean
    other.load_state_dict(tg.load(tmp_path / "m.npz"))
    assert other[1].running_mean is buf  # loaded in place
    for k, v in state.items():
        np.testing.assert_array_equal(other.state_dict()[k], v)
    x = Tensor(np.random.default_rng(9).normal(size=(2, 3)))
    np.testing.assert_array_equal(model.eval()(x).numpy(), other.eval()(x).numpy())
    del state["1.running_var"]
    with pytest.raises(nn.StateDictError, match="running_var"):
        other.load_state_dict(state)


def test_register_buffer_rules():
    m = nn.Module()
    m.register_buffer("b", Tensor([1.0, 2.0]))
    m.register_buffer("tmp", Tensor([0.0]), persistent=False)
    m.b = Tensor([3.0])  # reassigning keeps it a buffer
    assert [n for n, _ in m.named_buffers()] == ["b", "tmp"]
    assert list(m.state_dict()) == ["b"]
    m.b = 5  # a non-Tensor makes it a plain attribute
    assert [n for n, _ in m.named_buffers()] == ["tmp"]
    with pytest.raises(TypeError, match="register_buffer"):
        m.register_buffer("c", [1.0])
    with pytest.raises(KeyError, match="register_buffer"):
        m.register_buffer("a.b", None)


def test_state_dict_matches_torch_keys():
    torch = pytest.importorskip("torch")
    ours = nn.Sequential(nn.BatchNorm2d(2), nn.LayerNorm(3), nn.Embedding(4, 3))
    theirs = torch.nn.Sequential(
        torch.nn.BatchNorm2d(2), torch.nn.LayerNorm(3), torch.nn.Embedding(4, 3)
    )
    assert list(ours.state_dict()) == list(theirs.state_dict())
    for k, v in theirs.state_dict().items():
        if "weight" not in k or k.startswith("0"):
            np.testing.assert_array_equal(ours.state_dict()[k], v.numpy())  # same initial values


# ----- bad input -----


def test_bad_inputs_name_the_layer_and_shapes():
    with pytest.raises(RuntimeError, match=r"BatchNorm1d\(3\).*\(4, 5\).*num_features = 3"):
        nn.BatchNorm1d(3)(Tensor(np.zeros((4, 5))))
    with pytest.raises(ValueError, match=r"BatchNorm2d\(3\).*\(4, 3, 2\).*\(N, C, H, W\)"):
        nn.BatchNorm2d(3)(Tensor(np.zeros((4, 3, 2))))
    with pytest.raises(ValueError, match="more than 1 value per channel"):
        nn.BatchNorm1d(3)(Tensor(np.zeros((1, 3))))
    with pytest.raises(tg.InputError, match=r"LayerNorm.*\(2, 5\).*\(4,\)"):
        nn.LayerNorm(4)(Tensor(np.zeros((2, 5))))
    with pytest.raises(IndexError, match=r"Embedding\(4, 2\).*id 4.*num_embeddings=4"):
        nn.Embedding(4, 2)(Tensor([0, 4], dtype="int64"))
    with pytest.raises(IndexError, match=r"Embedding.*id -1"):
        nn.Embedding(4, 2)(np.array([-1]))
    with pytest.raises(TypeError, match="integer ids"):
        nn.Embedding(4, 2)(Tensor([0.0, 1.0]))
    with pytest.raises(TypeError, match="BatchNorm1d: num_features"):
        nn.BatchNorm1d(2.5)
    with pytest.raises(ValueError, match="momentum"):
        nn.BatchNorm1d(2, momentum=2.0)
    with pytest.raises(IndexError, match="padding_idx"):
        nn.Embedding(3, 2, padding_idx=3)
    with pytest.raises(ValueError, match="running_mean and running_var"):
        F.batch_norm(Tensor(np.zeros((2, 3))), None, None)
