"""nn: Module registration and state dicts, Linear, activations, losses, dropout, noise, penalties.

References: numpy formulas, central finite differences (tg.gradcheck, float64), closed forms, and
torch.nn.functional when torch is importable.
"""

import math

import numpy as np
import pytest

import tinygrad_edu as tg
from tinygrad_edu import nn
from tinygrad_edu.nn import functional as F
from tinygrad_edu.tensor import Tensor


def _param(array):
    return Tensor(np.asarray(array, dtype=np.float64), requires_grad=True)


class Net(nn.Module):
    def __init__(self):
        super().__init__()
        self.scale = Tensor(1.0, requires_grad=True)
        self.fc1 = nn.Linear(3, 4)
        self.blocks = [nn.Linear(4, 4), nn.Sequential(nn.Linear(4, 2), nn.ReLU())]
        self.constant = Tensor([1.0, 2.0])  # no requires_grad: a plain attribute
        self.note = "not a parameter"

    def forward(self, x):
        x = self.fc1(x).relu()
        for block in self.blocks:
            x = block(x)
        return x * self.scale


# ----- Module: registration and names -----


def test_named_parameters_use_dotted_names_in_assignment_order():
    names = [name for name, _ in Net().named_parameters()]
    assert names == [
        "scale",
        "fc1.weight",
        "fc1.bias",
        "blocks.0.weight",
        "blocks.0.bias",
        "blocks.1.0.weight",
        "blocks.1.0.bias",
    ]


def test_sequential_names_match_pytorch():
    model = nn.Sequential(nn.Linear(2, 3), nn.Sigmoid(), nn.Linear(3, 1))
    assert list(model.state_dict()) == ["0.weight", "0.bias", "2.weight", "2.bias"]
    assert len(model) == 3 and isinstance(model[1], nn.Sigmoid) and model[-1] is model[2]
    assert [type(m) for m in model[1:]] == [nn.Sigmoid, nn.Linear]
    with pytest.raises(IndexError, match="Sequential"):
        model[3]


def test_chapter_network_has_11935_parameters():
    # 784 inputs, 15 hidden, 10 outputs: 784*15 + 15*10 weights and 15 + 10 biases.
    model = nn.Sequential(nn.Linear(784, 15), nn.Sigmoid(), nn.Linear(15, 10))
    assert sum(p.size for p in model.parameters()) == 11_935
    assert model.num_parameters() == 11_935


def test_parameters_are_the_tensors_themselves_and_shared_ones_count_once():
    net = Net()
    assert net.parameters()[1] is net.fc1.weight
    shared = nn.Linear(2, 2)
    model = nn.Sequential(shared, nn.ReLU(), shared)
    assert len(model.parameters()) == 2


def test_reassigning_or_deleting_an_attribute_unregisters_it():
    net = Net()
    net.scale = 3.0
    assert "scale" not in dict(net.named_parameters())
    del net.fc1
    assert not any(name.startswith("fc1.") for name, _ in net.named_parameters())


def test_frozen_parameter_stays_registered():
    layer = nn.Linear(2, 2)
    layer.weight.requires_grad = False
    assert list(layer.state_dict()) == ["weight", "bias"]


def test_module_without_super_init_still_registers():
    class Lazy(nn.Module):
        def __init__(self):  # no super().__init__()
            self.fc = nn.Linear(2, 2)

    assert [n for n, _ in Lazy().named_parameters()] == ["fc.weight", "fc.bias"]

    class Late(nn.Module):
        def __init__(self):
            self.fc = nn.Linear(2, 2)
            super().__init__()  # late: must not forget fc

    assert [n for n, _ in Late().named_parameters()] == ["fc.weight", "fc.bias"]


def test_train_eval_zero_grad_and_children():
    net = Net()
    assert net.training and all(m.training for m in net.modules())
    assert net.eval() is net
    assert not any(m.training for m in net.modules())
    net.train()
    assert all(m.training for m in net.modules())
    assert [type(m) for m in net.children()] == [nn.Linear, nn.Linear, nn.Sequential]
    net(Tensor(np.ones((2, 3)))).sum().backward()
    assert all(p.grad is not None for p in net.parameters())
    net.zero_grad()
    assert all(p.grad is None for p in net.parameters())


def test_repr_shows_the_layers():
    text = repr(Net())
    assert "(fc1): Linear(in_features=3, out_features=4, bias=True)" in text
    assert "(blocks): list(" in text and "(1): ReLU()" in text
    assert repr(nn.Dropout(0.2)) == "Dropout(p=0.2)"


def test_forward_not_defined_is_a_clear_error():
    with pytest.raises(NotImplementedError, match="forward"):
        nn.Module()(Tensor([1.0]))


# ----- Linear -----


def test_linear_shapes_and_init_bounds():
    tg.manual_seed(0)
    layer = nn.Linear(400, 300)
    bound = 1 / math.sqrt(400)
    w, b = layer.weight.numpy(), layer.bias.numpy()
    assert w.shape == (300, 400) and b.shape == (300,) and w.dtype == np.float32
    assert np.abs(w).max() <= bound and np.abs(b).max() <= bound
    # U(-a, a) has mean 0 and standard deviation a / sqrt(3); 120,000 samples pin both down.
    assert abs(w.mean()) < 0.01 * bound
    assert w.std() == pytest.approx(bound / math.sqrt(3), rel=0.01)
    assert np.abs(w).max() > 0.99 * bound  # the whole range is used
    assert nn.Linear(3, 2, bias=False).bias is None
    assert nn.Linear(3, 2, dtype="float64").weight.dtype == np.float64


def test_linear_init_is_repeatable_with_manual_seed():
    tg.manual_seed(7)
    a = nn.Linear(5, 3).state_dict()
    tg.manual_seed(7)
    b = nn.Linear(5, 3).state_dict()
    for k in a:
        np.testing.assert_array_equal(a[k], b[k])


@pytest.mark.parametrize("shape", [(4, 5), (5,), (2, 3, 5)])
def test_linear_forward_matches_numpy(rng, shape):
    layer = nn.Linear(5, 3, dtype="float64")
    x = rng.standard_normal(shape)
    expected = x @ layer.weight.numpy().T + layer.bias.numpy()
    out = layer(Tensor(x))
    assert out.shape == shape[:-1] + (3,)
    np.testing.assert_allclose(out.numpy(), expected, rtol=1e-12)


@pytest.mark.parametrize("bias", [True, False])
def test_linear_backward_matches_finite_differences(rng, bias):
    layer = nn.Linear(4, 3, bias=bias, dtype="float64")
    x = _param(rng.standard_normal((5, 4)))
    weights = Tensor(rng.standard_normal((5, 3)))
    assert tg.gradcheck(lambda: (layer(x) * weights).sum(), [x, *layer.parameters()])


def test_linear_mixed_dtypes_give_float64(rng):
    layer = nn.Linear(3, 2)  # float32
    x = Tensor(rng.standard_normal((2, 3)), dtype="float64")
    out = layer(x)
    assert out.dtype == np.float64
    out.sum().backward()
    assert layer.weight.grad.dtype == np.float32


def test_linear_rejects_bad_inputs():
    layer = nn.Linear(3, 2)
    with pytest.raises(ValueError, match=r"Linear: input of shape \(2, 4\).*in_features=3"):
        layer(Tensor(np.ones((2, 4))))
    with pytest.raises(TypeError, match="Linear"):
        layer(np.ones((2, 3)))
    with pytest.raises(TypeError, match="int64"):
        layer(Tensor(np.ones((2, 3)), dtype="int64"))
    with pytest.raises(ValueError, match="in_features"):
        nn.Linear(0, 2)
    with pytest.raises(TypeError, match="out_features"):
        nn.Linear(2, 2.5)


def test_sequential_fuses_linear_and_activation_without_changing_results(rng):
    model = nn.Sequential(
        nn.Linear(4, 5, dtype="float64"), nn.Sigmoid(),
        nn.Linear(5, 5, dtype="float64"), nn.ReLU(),
        nn.Linear(5, 3, dtype="float64"), nn.Tanh(),
        nn.Linear(3, 2, bias=False, dtype="float64"), nn.LeakyReLU(0.1),
    )  # fmt: skip
    x = _param(rng.standard_normal((6, 4)))
    expected = x
    for layer in model:  # one layer at a time: no fusion
        expected = layer(expected)
    np.testing.assert_allclose(model(x).numpy(), expected.numpy(), rtol=1e-12, atol=1e-15)
    w = Tensor(rng.standard_normal((6, 2)))
    assert tg.gradcheck(lambda: (model(x) * w).sum(), [x, *model.parameters()])


def test_sequential_follows_layers_changed_after_a_forward(rng):
    """Sequential works out its fused plan once; replacing, appending or deleting layers later
    must be seen by the next forward."""
    model = nn.Sequential(nn.Linear(3, 4, dtype="float64"), nn.Sigmoid())
    x = Tensor(rng.standard_normal((2, 3)))
    linear = model[0]
    z = x.numpy() @ linear.weight.numpy().T + linear.bias.numpy()
    np.testing.assert_allclose(model(x).numpy(), 1 / (1 + np.exp(-z)), rtol=1e-12)
    setattr(model, "1", nn.Tanh())  # Sequential has no __setitem__
    np.testing.assert_allclose(model(x).numpy(), np.tanh(z), rtol=1e-12)
    model.append(nn.Linear(4, 1, bias=False, dtype="float64"))
    w = model[2].weight.numpy()
    np.testing.assert_allclose(model(x).numpy(), np.tanh(z) @ w.T, rtol=1e-12)
    delattr(model, "2")
    np.testing.assert_allclose(model(x).numpy(), np.tanh(z), rtol=1e-12)


def test_linear_on_an_empty_batch(rng):
    for activation in (None, "sigmoid"):
        layer = nn.Linear(3, 2, bias=False)
        out = layer(Tensor(np.zeros((0, 3))), activation=activation)
        assert out.shape == (0, 2)


# ----- activations -----

ACTIVATIONS = [
    (nn.ReLU(), lambda x: np.maximum(x, 0)),
    (nn.Sigmoid(), lambda x: 1 / (1 + np.exp(-x))),
    (nn.Tanh(), np.tanh),
    (nn.LeakyReLU(0.1), lambda x: np.where(x > 0, x, 0.1 * x)),
    (nn.LeakyReLU(), lambda x: np.where(x > 0, x, 0.01 * x)),
]


@pytest.mark.parametrize("layer, reference", ACTIVATIONS, ids=lambda a: repr(a)[:12])
def test_activation_forward_and_backward(rng, layer, reference):
    x = rng.standard_normal((4, 5))
    x[np.abs(x) < 1e-3] = 0.5  # keep finite differences away from the kink at 0
    np.testing.assert_allclose(layer(Tensor(x)).numpy(), reference(x), rtol=1e-12)
    xt = _param(x)
    w = Tensor(rng.standard_normal((4, 5)))
    assert tg.gradcheck(lambda: (layer(xt) * w).sum(), [xt])


def test_functional_activations_match_modules(rng):
    x = Tensor(rng.standard_normal((3, 4)))
    np.testing.assert_array_equal(F.relu(x).numpy(), nn.ReLU()(x).numpy())
    np.testing.assert_array_equal(F.sigmoid(x).numpy(), nn.Sigmoid()(x).numpy())
    np.testing.assert_array_equal(F.tanh(x).numpy(), nn.Tanh()(x).numpy())
    np.testing.assert_array_equal(F.leaky_relu(x, 0.2).numpy(), nn.LeakyReLU(0.2)(x).numpy())
    e = np.exp(x.numpy() - x.numpy().max(axis=1, keepdims=True))
    np.testing.assert_allclose(F.softmax(x).numpy(), e / e.sum(1, keepdims=True), rtol=1e-5)
    np.testing.assert_allclose(
        F.log_softmax(x).numpy(), np.log(e / e.sum(1, keepdims=True)), rtol=1e-5, atol=1e-6
    )


def test_flatten():
    x = Tensor(np.arange(24.0).reshape(2, 3, 4))
    assert nn.Flatten()(x).shape == (2, 12)


# ----- losses: forward against numpy, backward against finite differences -----


def _reduce(values, reduction):
    return {"mean": values.mean(), "sum": values.sum(), "none": values}[reduction]


def _log_softmax(z):
    z = z - z.max(axis=1, keepdims=True)
    return z - np.log(np.exp(z).sum(axis=1, keepdims=True))


@pytest.mark.parametrize("reduction", ["mean", "sum", "none"])
def test_regression_losses_match_numpy(rng, reduction):
    p, t = rng.standard_normal((4, 3)), rng.standard_normal((4, 3))
    mse = F.mse_loss(Tensor(p), t, reduction=reduction).numpy()
    l1 = F.l1_loss(Tensor(p), Tensor(t), reduction=reduction).numpy()
    np.testing.assert_allclose(mse, _reduce((p - t) ** 2, reduction), rtol=1e-12)
    np.testing.assert_allclose(l1, _reduce(np.abs(p - t), reduction), rtol=1e-12)


@pytest.mark.parametrize("reduction", ["mean", "sum", "none"])
@pytest.mark.parametrize("label_kind", ["tensor", "numpy", "list"])
def test_cross_entropy_matches_numpy(rng, reduction, label_kind):
    z = rng.standard_normal((6, 4)) * 3
    y = rng.integers(0, 4, 6)
    labels = {"tensor": Tensor(y, dtype="int64"), "numpy": y, "list": y.tolist()}[label_kind]
    out = F.cross_entropy(Tensor(z), labels, reduction=reduction).numpy()
    expected = -_log_softmax(z)[np.arange(6), y]
    np.testing.assert_allclose(out, _reduce(expected, reduction), rtol=1e-12)


def test_cross_entropy_is_stable_for_large_logits():
    z = Tensor([[1e4, 0.0, -1e4], [0.0, 1e4, 1e4]], dtype="float64")
    np.testing.assert_allclose(
        F.cross_entropy(z, [0, 1], reduction="none").numpy(), [0.0, math.log(2)], atol=1e-12
    )


@pytest.mark.parametrize("reduction", ["mean", "sum", "none"])
def test_binary_cross_entropy_matches_numpy(rng, reduction):
    p = rng.uniform(0.05, 0.95, (5, 2))
    t = rng.uniform(0, 1, (5, 2))
    out = F.binary_cross_entropy(Tensor(p), t, reduction=reduction).numpy()
    expected = -(t * np.log(p) + (1 - t) * np.log(1 - p))
    np.testing.assert_allclose(out, _reduce(expected, reduction), rtol=1e-12)


def test_binary_cross_entropy_clamps_log_at_minus_100():
    p = _param([0.0, 1.0, 0.0])
    loss = F.binary_cross_entropy(p, [1.0, 0.0, 0.0], reduction="none")
    np.testing.assert_allclose(loss.numpy(), [100.0, 100.0, 0.0])
    loss.sum().backward()
    assert np.all(np.isfinite(p.grad.numpy()))  # PyTorch's (p - t) / max(p(1-p), 1e-12)
    np.testing.assert_allclose(p.grad.numpy(), [-1e12, 1e12, 0.0])


LOSSES = {
    "mse": lambda p, t, y: F.mse_loss(p, t),
    "l1": lambda p, t, y: F.l1_loss(p, t, reduction="sum"),
    "cross_entropy": lambda p, t, y: F.cross_entropy(p, y),
    "cross_entropy_sum": lambda p, t, y: F.cross_entropy(p, y, reduction="sum"),
    "bce": lambda p, t, y: F.binary_cross_entropy(p.sigmoid(), t.sigmoid()),
}


@pytest.mark.parametrize("name", LOSSES)
def test_loss_gradients_match_finite_differences(rng, name):
    p = _param(rng.standard_normal((5, 3)))
    t = _param(rng.standard_normal((5, 3)))
    y = rng.integers(0, 3, 5)
    loss = LOSSES[name]
    tensors = [p, t] if name in ("mse", "l1", "bce") else [p]
    assert tg.gradcheck(lambda: loss(p, t, y), tensors)


@pytest.mark.parametrize("reduction", ["mean", "sum", "none"])
def test_losses_match_torch(rng, reduction):
    torch = pytest.importorskip("torch")
    tf = torch.nn.functional
    z = rng.standard_normal((6, 4))
    t = rng.standard_normal((6, 4))
    prob, target = rng.uniform(0.01, 0.99, (6, 4)), rng.uniform(0, 1, (6, 4))
    y = rng.integers(0, 4, 6)
    cases = [
        (
            F.mse_loss(Tensor(z), t, reduction),
            tf.mse_loss(torch.tensor(z), torch.tensor(t), reduction=reduction),
        ),
        (
            F.l1_loss(Tensor(z), t, reduction),
            tf.l1_loss(torch.tensor(z), torch.tensor(t), reduction=reduction),
        ),
        (
            F.cross_entropy(Tensor(z), y, reduction),
            tf.cross_entropy(torch.tensor(z), torch.tensor(y), reduction=reduction),
        ),
        (
            F.binary_cross_entropy(Tensor(prob), target, reduction),
            tf.binary_cross_entropy(torch.tensor(prob), torch.tensor(target), reduction=reduction),
        ),
    ]
    for ours, theirs in cases:
        np.testing.assert_allclose(ours.numpy(), theirs.numpy(), rtol=1e-12, atol=1e-14)


def test_cross_entropy_gradient_matches_torch(rng):
    torch = pytest.importorskip("torch")
    z = rng.standard_normal((5, 3))
    y = rng.integers(0, 3, 5)
    ours = _param(z)
    F.cross_entropy(ours, y).backward()
    theirs = torch.tensor(z, requires_grad=True)
    torch.nn.functional.cross_entropy(theirs, torch.tensor(y)).backward()
    np.testing.assert_allclose(ours.grad.numpy(), theirs.grad.numpy(), rtol=1e-12, atol=1e-15)


@pytest.mark.parametrize(
    "labels, match",
    [
        ([0, 1, 3], r"cross_entropy: label 3 is out of range for 3 classes"),
        ([0, -1, 2], r"cross_entropy: label -1 is out of range"),
        ([0.0, 1.0, 2.0], r"cross_entropy: labels must be integers.*float64"),
        (Tensor([0.0, 1.0, 2.0]), r"cross_entropy: labels must be integers.*float32"),
        ([True, False, True], r"cross_entropy: labels must be integers.*bool"),
        ([0, 1], r"cross_entropy: 2 labels for 3 rows"),
        ([[0], [1], [2]], r"cross_entropy: labels must be 1-D.*\(3, 1\)"),
        (1, r"cross_entropy: labels must be a 1-D sequence"),
    ],
)
def test_cross_entropy_rejects_bad_labels(labels, match):
    with pytest.raises(ValueError, match=match):
        F.cross_entropy(Tensor(np.zeros((3, 3))), labels)


def test_loss_argument_errors():
    with pytest.raises(ValueError, match=r"cross_entropy: logits must be 2-D.*\(3,\)"):
        F.cross_entropy(Tensor(np.zeros(3)), [0])
    with pytest.raises(ValueError, match="reduction"):
        F.mse_loss(Tensor([1.0]), [1.0], reduction="avg")
    with pytest.raises(ValueError, match=r"mse_loss: input shape \(3, 1\) and target shape \(3,\)"):
        F.mse_loss(Tensor(np.zeros((3, 1))), np.zeros(3))
    with pytest.raises(ValueError, match=r"binary_cross_entropy: input must hold probabilities"):
        F.binary_cross_entropy(Tensor([0.5, 1.5]), [0.0, 1.0])


# ----- Dropout and GaussianNoise -----


def test_dropout_zeroes_about_p_and_scales_the_rest():
    tg.manual_seed(0)
    p, n = 0.3, 200_000
    x = Tensor(np.full(n, 2.0), requires_grad=True)
    out = nn.Dropout(p)(x)
    values = out.numpy()
    dropped = values == 0
    # The fraction dropped is Binomial(n, p) / n: standard deviation sqrt(p(1-p)/n) ~ 0.001.
    assert abs(dropped.mean() - p) < 0.005
    np.testing.assert_allclose(values[~dropped], 2.0 / (1 - p), rtol=1e-6)
    assert abs(values.mean() - 2.0) < 0.02  # the expected value is kept
    out.sum().backward()  # the gradient passes through the same mask and scale
    np.testing.assert_allclose(x.grad.numpy(), np.where(dropped, 0.0, 1 / (1 - p)), rtol=1e-6)


def test_dropout_draws_a_new_mask_each_call():
    x = Tensor(np.ones(1000))
    layer = nn.Dropout(0.5)
    assert not np.array_equal(layer(x).numpy(), layer(x).numpy())


def test_dropout_is_identity_in_eval_and_for_p0_and_zero_for_p1(rng):
    x = Tensor(rng.standard_normal((10, 10)))
    layer = nn.Dropout(0.5).eval()
    np.testing.assert_array_equal(layer(x).numpy(), x.numpy())
    np.testing.assert_array_equal(nn.Dropout(0.0)(x).numpy(), x.numpy())
    np.testing.assert_array_equal(nn.Dropout(1.0)(x).numpy(), np.zeros((10, 10)))
    np.testing.assert_array_equal(F.dropout(x, 0.5, training=False).numpy(), x.numpy())
    for bad in (-0.1, 1.5):
        with pytest.raises(ValueError, match=r"Dropout: p must be in \[0, 1\]"):
            nn.Dropout(bad)


def test_gaussian_noise_has_the_requested_std():
    tg.manual_seed(1)
    x = Tensor(np.full((400, 500), 3.0))
    noise = nn.GaussianNoise(0.2)(x).numpy() - 3.0
    # 200,000 samples: the sample std is within ~0.3% of 0.2, the mean within ~0.0005 of 0.
    assert noise.std() == pytest.approx(0.2, rel=0.01)
    assert abs(noise.mean()) < 0.002
    layer = nn.GaussianNoise(0.2).eval()
    np.testing.assert_array_equal(layer(x).numpy(), x.numpy())
    with pytest.raises(ValueError, match="GaussianNoise: std"):
        nn.GaussianNoise(-1.0)


def test_gaussian_noise_passes_the_gradient_unchanged(rng):
    x = _param(rng.standard_normal(5))
    nn.GaussianNoise(1.0)(x).sum().backward()
    np.testing.assert_array_equal(x.grad.numpy(), np.ones(5))


# ----- state_dict / load_state_dict -----


def _mlp(dtype=None):
    return nn.Sequential(nn.Linear(4, 5, dtype=dtype), nn.Tanh(), nn.Linear(5, 2, dtype=dtype))


def test_state_dict_is_a_copy():
    model = _mlp()
    state = model.state_dict()
    assert all(isinstance(v, np.ndarray) for v in state.values())
    before = state["0.weight"].copy()
    model[0].weight.data = np.zeros((5, 4))
    np.testing.assert_array_equal(state["0.weight"], before)


def test_load_state_dict_round_trip_keeps_tensor_objects_and_dtype(rng, tmp_path):
    source, target = _mlp(), _mlp()
    x = Tensor(rng.standard_normal((3, 4)))
    params_before = target.parameters()
    path = tg.save(source.state_dict(), tmp_path / "model")
    state = {k: v.astype(np.float64) for k, v in tg.load(path).items()}  # dtype is converted
    result = target.load_state_dict(state)
    assert result.missing_keys == [] and result.unexpected_keys == []
    assert all(a is b for a, b in zip(target.parameters(), params_before))
    assert all(p.dtype == np.float32 for p in target.parameters())
    np.testing.assert_array_equal(target(x).numpy(), source(x).numpy())


def test_load_state_dict_accepts_tensors():
    source, target = _mlp(), _mlp()
    target.load_state_dict({k: Tensor(v) for k, v in source.state_dict().items()})
    np.testing.assert_array_equal(target[2].bias.numpy(), source[2].bias.numpy())


def test_load_state_dict_reports_missing_unexpected_and_shapes():
    model = _mlp()
    state = model.state_dict()
    del state["2.bias"]
    state["3.weight"] = np.zeros(2)
    state["0.weight"] = np.zeros((4, 5))
    with pytest.raises(RuntimeError) as info:
        model.load_state_dict(state)
    message = str(info.value)
    assert "load_state_dict (Sequential)" in message
    assert "missing keys: ['2.bias']" in message
    assert "unexpected keys: ['3.weight']" in message
    assert "'0.weight' has shape (4, 5) in the state dict but (5, 4) in the model" in message
    assert isinstance(info.value, ValueError)


def test_load_state_dict_non_strict_returns_the_key_lists():
    model = _mlp()
    state = model.state_dict()
    del state["0.bias"]
    state["extra"] = np.zeros(1)
    old_bias = model[0].bias.numpy().copy()
    result = model.load_state_dict(state, strict=False)
    assert result.missing_keys == ["0.bias"] and result.unexpected_keys == ["extra"]
    np.testing.assert_array_equal(model[0].bias.numpy(), old_bias)
    with pytest.raises(ValueError, match="shape"):  # shapes are checked even when not strict
        model.load_state_dict({"0.bias": np.zeros(3)}, strict=False)


def test_to_cpu_is_in_place_and_unknown_devices_fail():
    model = _mlp()
    params = model.parameters()
    assert model.to("cpu") is model and model.parameters()[0] is params[0]
    with pytest.raises(ValueError, match="device"):
        model.to("tpu")


def test_to_cuda_without_a_gpu_is_a_clear_error():
    from tinygrad_edu.backend import cuda_support

    if cuda_support.is_available():
        pytest.skip("a GPU is usable here")
    with pytest.raises(RuntimeError):
        _mlp().to("cuda")


# ----- penalties -----


def test_penalties_closed_form_and_gradients(rng):
    a, b = _param(rng.standard_normal((3, 2))), _param(rng.standard_normal(4))
    wa, wb = a.numpy(), b.numpy()
    l2 = F.l2_penalty([a, b], 0.3)
    l1 = F.l1_penalty([a, b], 0.3)
    assert l2.item() == pytest.approx(0.5 * 0.3 * ((wa**2).sum() + (wb**2).sum()), rel=1e-12)
    assert l1.item() == pytest.approx(0.3 * (np.abs(wa).sum() + np.abs(wb).sum()), rel=1e-12)
    (l2 + l1).backward()
    np.testing.assert_allclose(a.grad.numpy(), 0.3 * wa + 0.3 * np.sign(wa), rtol=1e-12)
    np.testing.assert_allclose(b.grad.numpy(), 0.3 * wb + 0.3 * np.sign(wb), rtol=1e-12)


def test_penalties_accept_a_module_and_check_lam():
    model = _mlp()
    expected = sum((p.numpy().astype(np.float64) ** 2).sum() for p in model.parameters())
    assert F.l2_penalty(model, 2.0).item() == pytest.approx(expected, rel=1e-5)
    with pytest.raises(ValueError, match="l1_penalty: lam must be >= 0"):
        F.l1_penalty(model, -1.0)
    with pytest.raises(TypeError, match="l2_penalty"):
        F.l2_penalty([1.0, 2.0], 1.0)
