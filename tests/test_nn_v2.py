"""nn v2: Module walking, Parameter, containers, composed activations, loss modules (and their
functional twins), nn.init and nn.utils.

References: torch (forward and gradient on the same float64 inputs), central finite differences
(tg.gradcheck, float64) for every composed op, first and second derivatives, and the
distributions' statistics for the initialisers.
"""

import math

import numpy as np
import pytest

import tinygrad_edu as tg
from tinygrad_edu import nn
from tinygrad_edu.nn import functional as F
from tinygrad_edu.tensor import Tensor

torch = pytest.importorskip("torch")
TF = torch.nn.functional


def _leaf(array):
    return Tensor(np.asarray(array, dtype=np.float64), requires_grad=True)


def _torch_leaf(array):
    return torch.tensor(np.asarray(array, dtype=np.float64), requires_grad=True)


def _second_order_check(f, x):
    """gradcheck of x -> sum(grad f(x) * v): the second derivatives of f by finite differences
    of its (recorded) first derivative."""
    v = Tensor(np.random.default_rng(3).standard_normal(x.shape))

    def first():
        with tg.enable_grad():  # gradcheck's finite differences run under no_grad
            (g,) = tg.grad(f(x).sum(), [x], create_graph=True)
            return (g * v).sum()

    assert tg.gradcheck(first, [x], atol=1e-5, rtol=1e-4)


# ----- Module: apply, walking the tree, requires_grad_ -----


class Block(nn.Module):
    def __init__(self):
        super().__init__()
        self.fc = nn.Linear(3, 3)
        self.act = nn.ReLU()

    def forward(self, x):
        return self.act(self.fc(x))


class Net(nn.Module):
    def __init__(self):
        super().__init__()
        self.a = Block()
        self.b = nn.Linear(3, 2)

    def forward(self, x):
        return self.b(self.a(x))


def test_apply_visits_children_before_parent_and_returns_self():
    net = Net()
    seen = []
    assert net.apply(lambda m: seen.append(type(m).__name__)) is net
    assert seen == ["Linear", "ReLU", "Block", "Linear", "Net"]  # PyTorch's order


def test_apply_can_initialise_weights():
    net = Net()

    def init(m):
        if isinstance(m, nn.Linear):
            nn.init.constant_(m.weight, 0.5)
            nn.init.zeros_(m.bias)

    net.apply(init)
    for name, p in net.named_parameters():
        expected = 0.5 if name.endswith("weight") else 0.0
        np.testing.assert_array_equal(p.numpy(), np.full(p.shape, expected, dtype=np.float32))


def test_apply_rejects_non_callables():
    with pytest.raises(TypeError, match="apply"):
        Net().apply(3)


def test_module_walks_match_torch_names():
    net = Net()
    assert [n for n, _ in net.named_modules()] == ["", "a", "a.fc", "a.act", "b"]
    assert [n for n, _ in net.named_children()] == ["a", "b"]
    assert list(net.children()) == [net.a, net.b]
    assert list(net.modules()) == [net, net.a, net.a.fc, net.a.act, net.b]


def test_requires_grad_freezes_and_unfreezes():
    net = Net()
    assert net.requires_grad_(False) is net
    assert all(not p.requires_grad for p in net.parameters())
    assert len(net.parameters()) == 4  # frozen parameters stay registered
    net.a.requires_grad_(True)
    assert [n for n, p in net.named_parameters() if p.requires_grad] == ["a.fc.weight", "a.fc.bias"]


def test_frozen_layer_is_not_updated_by_the_optimizer():
    tg.manual_seed(0)
    net = Net()
    net.a.requires_grad_(False)
    before = net.a.fc.weight.numpy().copy()
    opt = tg.optim.SGD([p for p in net.parameters() if p.requires_grad], lr=0.1)
    F.mse_loss(net(Tensor(np.ones((2, 3)))), np.zeros((2, 2))).backward()
    opt.step()
    np.testing.assert_array_equal(net.a.fc.weight.numpy(), before)


# ----- Parameter -----


def test_parameter_requires_grad_and_registers():
    p = nn.Parameter(Tensor([1.0, 2.0]))
    assert isinstance(p, Tensor) and isinstance(p, nn.Parameter) and p.requires_grad
    frozen = nn.Parameter(Tensor([1.0]), requires_grad=False)

    class M(nn.Module):
        def __init__(self):
            super().__init__()
            self.w = p
            self.frozen = frozen  # registered even without requires_grad, as PyTorch
            self.plain = Tensor([3.0])

    assert [n for n, _ in M().named_parameters()] == ["w", "frozen"]
    assert "Parameter containing" in repr(p)
    assert type(p * 2.0) is Tensor
    np.testing.assert_array_equal(nn.Parameter(np.array([1.5])).numpy(), [1.5])


def test_parameter_keeps_dtype():
    assert nn.Parameter(Tensor([1.0], dtype="float64")).dtype == np.float64
    with pytest.raises(TypeError):
        nn.Parameter(Tensor([1], dtype="int64"))  # integers cannot require grad, as PyTorch


# ----- containers -----


def test_module_list_operations():
    a, b, c, d = nn.Linear(2, 2), nn.ReLU(), nn.Linear(2, 3), nn.Tanh()
    ml = nn.ModuleList([a, b])
    ml.append(c)
    assert len(ml) == 3 and ml[0] is a and ml[-1] is c and list(ml) == [a, b, c]
    ml.insert(1, d)
    assert list(ml) == [a, d, b, c]
    ml.extend([nn.Identity()])
    assert len(ml) == 5
    del ml[1]
    assert list(ml)[:3] == [a, b, c]
    assert isinstance(ml[1:3], nn.ModuleList) and list(ml[1:3]) == [b, c]
    ml[1] = d
    assert ml[1] is d
    with pytest.raises(IndexError, match="ModuleList"):
        ml[10]
    with pytest.raises(TypeError, match="not a Module"):
        ml.append(3)


def test_module_list_names_parameters_like_torch():
    class M(nn.Module):
        def __init__(self):
            super().__init__()
            self.layers = nn.ModuleList([nn.Linear(2, 3), nn.ReLU(), nn.Linear(3, 1)])

    names = [n for n, _ in M().named_parameters()]
    tm = torch.nn.Module()
    tm.layers = torch.nn.ModuleList([torch.nn.Linear(2, 3), torch.nn.ReLU(), torch.nn.Linear(3, 1)])
    assert names == [n for n, _ in tm.named_parameters()]
    assert [n for n, _ in M().named_modules()] == [n for n, _ in tm.named_modules()]


def test_optimizer_over_parameters_updates_module_list_layers():
    tg.manual_seed(1)

    class M(nn.Module):
        def __init__(self):
            super().__init__()
            self.layers = nn.ModuleList([nn.Linear(3, 3) for _ in range(3)])

        def forward(self, x):
            for layer in self.layers:
                x = layer(x).tanh()
            return x

    model = M()
    before = [p.numpy().copy() for p in model.parameters()]
    assert len(before) == 6
    opt = tg.optim.SGD(model.parameters(), lr=0.5)
    x, y = Tensor(np.random.default_rng(0).standard_normal((8, 3))), np.zeros((8, 3))
    first = F.mse_loss(model(x), y).item()
    for _ in range(20):
        opt.zero_grad()
        F.mse_loss(model(x), y).backward()
        opt.step()
    assert all(not np.array_equal(b, p.numpy()) for b, p in zip(before, model.parameters()))
    assert F.mse_loss(model(x), y).item() < first


def test_module_dict():
    heads = nn.ModuleDict({"cls": nn.Linear(4, 3), "reg": nn.Linear(4, 1)})
    heads["extra"] = nn.Identity()
    assert list(heads) == ["cls", "reg", "extra"] and len(heads) == 3 and "cls" in heads
    assert [n for n, _ in heads.named_parameters()] == [
        "cls.weight",
        "cls.bias",
        "reg.weight",
        "reg.bias",
    ]
    assert heads.pop("extra").__class__ is nn.Identity and "extra" not in heads
    assert [k for k, _ in heads.items()] == heads.keys() == ["cls", "reg"]
    with pytest.raises(KeyError):
        heads["missing"]
    with pytest.raises(TypeError, match="not a Module"):
        heads["x"] = "no"
    with pytest.raises(TypeError, match="strings"):
        heads[1] = nn.ReLU()


def test_identity_and_flatten_match_torch():
    x = np.arange(2 * 3 * 4 * 5, dtype=np.float64).reshape(2, 3, 4, 5)
    assert nn.Identity(54, unused=1)(Tensor(x)).shape == x.shape
    for args in [(), (0,), (1, 2), (2, -1), (0, -2), (-3, -2), (3, 3)]:
        ours = nn.Flatten(*args)(Tensor(x)).numpy()
        theirs = torch.nn.Flatten(*args)(torch.tensor(x)).numpy()
        np.testing.assert_array_equal(ours, theirs)
    with pytest.raises(tg.InputError, match="Flatten"):
        nn.Flatten()(Tensor([1.0, 2.0]))  # start_dim=1 on a 1-D input, as PyTorch
    with pytest.raises(tg.InputError, match="Flatten"):
        nn.Flatten(2, 1)(Tensor(x))


# ----- activations: against torch, and by finite differences -----

ACTIVATIONS = [
    ("softmax0", lambda: nn.Softmax(dim=0), lambda: torch.nn.Softmax(dim=0)),
    ("softmax1", lambda: nn.Softmax(dim=1), lambda: torch.nn.Softmax(dim=1)),
    ("log_softmax", lambda: nn.LogSoftmax(dim=-1), lambda: torch.nn.LogSoftmax(dim=-1)),
    ("gelu", lambda: nn.GELU(), lambda: torch.nn.GELU()),
    ("gelu_tanh", lambda: nn.GELU("tanh"), lambda: torch.nn.GELU("tanh")),
    ("elu", lambda: nn.ELU(), lambda: torch.nn.ELU()),
    ("elu_alpha", lambda: nn.ELU(0.3), lambda: torch.nn.ELU(0.3)),
    ("softplus", lambda: nn.Softplus(), lambda: torch.nn.Softplus()),
    ("softplus_beta", lambda: nn.Softplus(2.0, 5.0), lambda: torch.nn.Softplus(2.0, 5.0)),
]


def _activation_input():
    rng = np.random.default_rng(7)
    x = rng.standard_normal((6, 5)) * 3
    x[0, :] = [-40.0, -8.0, 8.0, 40.0, 0.0]  # saturated ends and exactly 0
    return x


@pytest.mark.parametrize("name, ours, theirs", ACTIVATIONS, ids=[a[0] for a in ACTIVATIONS])
def test_activation_matches_torch(name, ours, theirs):
    x = _activation_input()
    g = np.random.default_rng(8).standard_normal(x.shape)
    ox, tx = _leaf(x), _torch_leaf(x)
    out, ref = ours()(ox), theirs()(tx)
    np.testing.assert_allclose(out.numpy(), ref.detach().numpy(), rtol=1e-12, atol=1e-13)
    (out * Tensor(g)).sum().backward()
    (ref * torch.tensor(g)).sum().backward()
    np.testing.assert_allclose(ox.grad.numpy(), tx.grad.numpy(), rtol=1e-10, atol=1e-12)


@pytest.mark.parametrize("name, ours, theirs", ACTIVATIONS, ids=[a[0] for a in ACTIVATIONS])
def test_activation_gradcheck_first_and_second_order(name, ours, theirs):
    x = _leaf(np.random.default_rng(9).standard_normal((3, 4)) * 2)
    layer = ours()
    w = Tensor(np.random.default_rng(10).standard_normal((3, 4)))
    assert tg.gradcheck(lambda: (layer(x) * w).sum(), [x])
    _second_order_check(layer, x)


def test_activation_float32_matches_float64():
    x = _activation_input()
    for _, ours, _ in ACTIVATIONS:
        single = ours()(Tensor(x, dtype="float32"))
        assert single.dtype == np.float32
        np.testing.assert_allclose(single.numpy(), ours()(Tensor(x)).numpy(), rtol=1e-5, atol=1e-6)


def test_erf_matches_torch_everywhere():
    x = np.concatenate([np.linspace(-30, 30, 20001), [0.0, 1e-300, -1e-300, 5.9, -5.9]])
    ours = _leaf(x)
    out = F.erf(ours)
    theirs = _torch_leaf(x)
    ref = torch.special.erf(theirs)
    np.testing.assert_allclose(out.numpy(), ref.detach().numpy(), rtol=0, atol=1e-13)
    out.sum().backward()
    ref.sum().backward()
    np.testing.assert_allclose(ours.grad.numpy(), theirs.grad.numpy(), rtol=1e-11, atol=1e-14)


def test_erf_float32_matches_torch():
    x = np.linspace(-8, 8, 4001).astype(np.float32)
    ours = F.erf(Tensor(x))
    assert ours.dtype == np.float32
    ref = torch.special.erf(torch.tensor(x)).numpy()
    np.testing.assert_allclose(ours.numpy(), ref, rtol=0, atol=3e-7)


def test_gradient_at_exactly_zero_is_the_derivative():
    """The composed ops use constant masks, not abs/relu, so their gradient at 0 is the
    derivative itself (as PyTorch's fused kernels give)."""
    for ours, theirs in [
        (lambda x: nn.GELU()(x), lambda x: TF.gelu(x)),
        (lambda x: F.erf(x), torch.special.erf),
        (lambda x: nn.Softplus()(x), TF.softplus),
        (lambda x: nn.ELU(0.5)(x), lambda x: TF.elu(x, 0.5)),
        (
            lambda x: F.binary_cross_entropy_with_logits(x, np.array([0.3])),
            lambda x: TF.binary_cross_entropy_with_logits(x, torch.tensor([0.3], dtype=x.dtype)),
        ),
    ]:
        ox, tx = _leaf([0.0]), _torch_leaf([0.0])
        ours(ox).sum().backward()
        theirs(tx).sum().backward()
        np.testing.assert_allclose(ox.grad.numpy(), tx.grad.numpy(), rtol=1e-12)


def test_activation_bad_arguments():
    with pytest.raises(tg.InputError, match="approximate"):
        nn.GELU("fast")
    with pytest.raises(TypeError, match="gelu"):
        F.gelu([1.0, 2.0])
    with pytest.warns(UserWarning, match="implicit dimension"):
        out = nn.Softmax()(Tensor(np.ones((2, 3))))  # dim=None picks 1 for 2-D, as PyTorch
    np.testing.assert_allclose(out.numpy(), np.full((2, 3), 1 / 3))


# ----- losses: every module and reduction against torch -----

REDUCTIONS = ["mean", "sum", "none"]


def _regression_data():
    rng = np.random.default_rng(11)
    x = rng.standard_normal((5, 4)) * 2
    t = rng.standard_normal((5, 4)) * 2
    t[0, :2] = x[0, :2]  # d = 0 exactly
    return x, t


def _classification_data():
    rng = np.random.default_rng(12)
    return rng.standard_normal((6, 4)) * 2, np.array([0, 3, 1, 1, 2, 0])


def _binary_data(probabilities):
    rng = np.random.default_rng(13)
    x = rng.standard_normal((4, 3)) * 3
    x[0] = [-60.0, 60.0, 0.0]  # stability at large logits, and the gradient at 0
    t = rng.uniform(0, 1, (4, 3))
    t[1] = [0.0, 1.0, 0.5]
    return (1 / (1 + np.exp(-x)) * 0.98 + 0.01 if probabilities else x), t


LOSSES = [
    ("mse", lambda r: nn.MSELoss(reduction=r), lambda r: torch.nn.MSELoss(reduction=r), "reg"),
    ("l1", lambda r: nn.L1Loss(reduction=r), lambda r: torch.nn.L1Loss(reduction=r), "reg"),
    ("huber", lambda r: nn.HuberLoss(r), lambda r: torch.nn.HuberLoss(r), "reg"),
    (
        "huber_delta",
        lambda r: nn.HuberLoss(r, delta=0.7),
        lambda r: torch.nn.HuberLoss(r, delta=0.7),
        "reg",
    ),
    (
        "smooth_l1",
        lambda r: nn.SmoothL1Loss(reduction=r),
        lambda r: torch.nn.SmoothL1Loss(reduction=r),
        "reg",
    ),
    (
        "smooth_l1_beta",
        lambda r: nn.SmoothL1Loss(reduction=r, beta=2.5),
        lambda r: torch.nn.SmoothL1Loss(reduction=r, beta=2.5),
        "reg",
    ),
    (
        "smooth_l1_beta0",
        lambda r: nn.SmoothL1Loss(reduction=r, beta=0.0),
        lambda r: torch.nn.SmoothL1Loss(reduction=r, beta=0.0),
        "reg",
    ),
    (
        "cross_entropy",
        lambda r: nn.CrossEntropyLoss(reduction=r),
        lambda r: torch.nn.CrossEntropyLoss(reduction=r),
        "cls",
    ),
    ("nll", lambda r: nn.NLLLoss(reduction=r), lambda r: torch.nn.NLLLoss(reduction=r), "cls"),
    ("bce", lambda r: nn.BCELoss(reduction=r), lambda r: torch.nn.BCELoss(reduction=r), "prob"),
    (
        "bce_logits",
        lambda r: nn.BCEWithLogitsLoss(reduction=r),
        lambda r: torch.nn.BCEWithLogitsLoss(reduction=r),
        "logit",
    ),
]


def _loss_data(kind):
    if kind == "reg":
        return _regression_data()
    if kind == "cls":
        return _classification_data()
    return _binary_data(kind == "prob")


@pytest.mark.parametrize("reduction", REDUCTIONS)
@pytest.mark.parametrize("name, ours, theirs, kind", LOSSES, ids=[case[0] for case in LOSSES])
def test_loss_matches_torch(name, ours, theirs, kind, reduction):
    x, t = _loss_data(kind)
    ox, tx = _leaf(x), _torch_leaf(x)
    if kind == "cls":
        ot, tt = Tensor(t, dtype="int64"), torch.tensor(t)
    else:
        ot, tt = Tensor(t), torch.tensor(t)
    out, ref = ours(reduction)(ox, ot), theirs(reduction)(tx, tt)
    if name == "nll":  # NLL takes log-probabilities: the same input for both
        pass
    np.testing.assert_allclose(out.numpy(), ref.detach().numpy(), rtol=1e-12, atol=1e-12)
    g = np.random.default_rng(14).standard_normal(ref.shape)
    (out * Tensor(g)).sum().backward()
    (ref * torch.tensor(g)).sum().backward()
    np.testing.assert_allclose(ox.grad.numpy(), tx.grad.numpy(), rtol=1e-10, atol=1e-12)


@pytest.mark.parametrize(
    "fn, kind",
    [
        (F.huber_loss, "reg"),
        (lambda x, t, **kw: F.huber_loss(x, t, delta=0.3, **kw), "reg"),
        (F.smooth_l1_loss, "reg"),
        (lambda x, t, **kw: F.smooth_l1_loss(x, t, beta=0.4, **kw), "reg"),
        (F.binary_cross_entropy_with_logits, "logit"),
        (F.nll_loss, "cls"),
    ],
    ids=["huber", "huber_delta", "smooth_l1", "smooth_l1_beta", "bce_logits", "nll"],
)
def test_composed_loss_gradcheck_first_and_second_order(fn, kind):
    x, t = _loss_data(kind)
    if kind == "reg":
        x = x + 0.05  # keep |d| away from the kinks at 0 and delta (finite differences)
    if kind == "logit":
        x = np.clip(x, -5, 5)
    ox = _leaf(x)
    assert tg.gradcheck(lambda: fn(ox, t), [ox])
    if kind != "cls":  # nll is linear in its input: no second derivative to check
        _second_order_check(lambda z: fn(z, t, reduction="none"), ox)


def test_bce_with_logits_gradient_flows_to_target_as_torch():
    x, t = _binary_data(False)
    ox, ot, tx, tt = _leaf(x), _leaf(t), _torch_leaf(x), _torch_leaf(t)
    F.binary_cross_entropy_with_logits(ox, ot).backward()
    TF.binary_cross_entropy_with_logits(tx, tt).backward()
    np.testing.assert_allclose(ot.grad.numpy(), tt.grad.numpy(), rtol=1e-10, atol=1e-12)


@pytest.mark.parametrize("reduction", REDUCTIONS)
def test_bce_with_logits_weights_match_torch(reduction):
    x, t = _binary_data(False)
    weight = np.random.default_rng(15).uniform(0.5, 2, (4, 3))
    pos_weight = np.array([0.5, 2.0, 3.0])
    ox, tx = _leaf(x), _torch_leaf(x)
    loss = nn.BCEWithLogitsLoss(Tensor(weight), reduction=reduction, pos_weight=pos_weight)
    ref = torch.nn.BCEWithLogitsLoss(
        torch.tensor(weight), reduction=reduction, pos_weight=torch.tensor(pos_weight)
    )
    out, expected = loss(ox, t), ref(tx, torch.tensor(t))
    np.testing.assert_allclose(out.numpy(), expected.detach().numpy(), rtol=1e-12, atol=1e-12)
    out.sum().backward()
    expected.sum().backward()
    np.testing.assert_allclose(ox.grad.numpy(), tx.grad.numpy(), rtol=1e-10, atol=1e-12)
    z = _leaf(np.clip(x, -5, 5))
    assert tg.gradcheck(
        lambda: F.binary_cross_entropy_with_logits(z, t, weight, pos_weight=pos_weight), [z]
    )
    with pytest.raises(tg.InputError, match="pos_weight"):
        F.binary_cross_entropy_with_logits(ox, t, pos_weight=np.ones(5))


CE_OPTIONS = [
    {"weight": [0.5, 2.0, 1.0, 3.0]},
    {"ignore_index": 1},
    {"ignore_index": 1, "weight": [0.5, 2.0, 1.0, 3.0]},
    {"label_smoothing": 0.2},
    {"label_smoothing": 0.1, "weight": [0.5, 2.0, 1.0, 3.0], "ignore_index": 0},
]


CE_CASES = [
    pytest.param(which, options, id=f"{which}-" + "-".join(sorted(options)))
    for which in ("cross_entropy", "nll")
    for options in CE_OPTIONS
    if which == "cross_entropy" or "label_smoothing" not in options  # nll has none, as torch
]


@pytest.mark.parametrize("reduction", REDUCTIONS)
@pytest.mark.parametrize("which, options", CE_CASES)
def test_class_weights_ignore_index_label_smoothing_match_torch(which, options, reduction):
    x, y = _classification_data()
    ours_opts = {k: (Tensor(v) if k == "weight" else v) for k, v in options.items()}
    theirs_opts = {
        k: (torch.tensor(v, dtype=torch.float64) if k == "weight" else v)
        for k, v in options.items()
    }
    ox, tx = _leaf(x), _torch_leaf(x)
    if which == "cross_entropy":
        out = nn.CrossEntropyLoss(reduction=reduction, **ours_opts)(ox, y)
        ref = torch.nn.CrossEntropyLoss(reduction=reduction, **theirs_opts)(tx, torch.tensor(y))
    else:
        out = nn.NLLLoss(reduction=reduction, **ours_opts)(ox.log_softmax(-1), y)
        ref = torch.nn.NLLLoss(reduction=reduction, **theirs_opts)(
            tx.log_softmax(-1), torch.tensor(y)
        )
    np.testing.assert_allclose(out.numpy(), ref.detach().numpy(), rtol=1e-12, atol=1e-12)
    g = np.random.default_rng(16).standard_normal(ref.shape)
    (out * Tensor(g)).sum().backward()
    (ref * torch.tensor(g)).sum().backward()
    np.testing.assert_allclose(ox.grad.numpy(), tx.grad.numpy(), rtol=1e-10, atol=1e-12)


def test_cross_entropy_options_gradcheck_and_errors():
    x, y = _classification_data()
    z = _leaf(x)
    assert tg.gradcheck(
        lambda: F.cross_entropy(z, y, weight=[1.0, 2.0, 0.5, 1.0], label_smoothing=0.3), [z]
    )
    with pytest.raises(tg.InputError, match="weight must have shape"):
        F.cross_entropy(z, y, weight=[1.0, 2.0])
    with pytest.raises(tg.InputError, match="label_smoothing"):
        F.cross_entropy(z, y, label_smoothing=1.5)
    with pytest.raises(tg.InputError, match="out of range"):
        F.cross_entropy(z, [0, 1, 2, 3, 4, -100], label_smoothing=0.1)


def test_nll_of_log_softmax_is_cross_entropy():
    x, y = _classification_data()
    a, b = _leaf(x), _leaf(x)
    F.nll_loss(a.log_softmax(-1), y).backward()
    F.cross_entropy(b, y).backward()
    np.testing.assert_allclose(a.grad.numpy(), b.grad.numpy(), rtol=1e-12, atol=1e-14)


def test_loss_errors_name_the_loss():
    x, t = _regression_data()
    for cls, fn in [
        (nn.MSELoss, "mse_loss"),
        (nn.L1Loss, "l1_loss"),
        (nn.HuberLoss, "huber_loss"),
        (nn.SmoothL1Loss, "smooth_l1_loss"),
        (nn.BCEWithLogitsLoss, "binary_cross_entropy_with_logits"),
    ]:
        with pytest.raises(tg.InputError, match=cls.__name__):
            cls(reduction="average")
        with pytest.raises(tg.InputError, match=fn):
            cls()(Tensor(x), Tensor(t[:, :3]))
        with pytest.raises(RuntimeError):  # PyTorch-style except clauses catch it too
            cls()(Tensor(x), Tensor(t[:2]))
    with pytest.raises(tg.InputError, match="nll_loss"):
        F.nll_loss(Tensor(np.zeros((3, 4))), [0, 1, 4])
    with pytest.raises(tg.InputError, match="nll_loss"):
        F.nll_loss(Tensor(np.zeros((3, 4))), [0, 1])
    with pytest.raises(tg.InputError, match="nll_loss"):
        F.nll_loss(Tensor(np.zeros(4)), [0])
    with pytest.raises(tg.InputError, match="delta"):
        nn.HuberLoss(delta=0.0)
    with pytest.raises(tg.InputError, match="beta"):
        nn.SmoothL1Loss(beta=-1.0)
    with pytest.raises(tg.InputError, match="reduction"):
        F.huber_loss(Tensor(x), t, reduction="avg")


def test_loss_module_repr():
    assert repr(nn.HuberLoss(delta=0.5)) == "HuberLoss(reduction='mean', delta=0.5)"
    assert repr(nn.MSELoss(reduction="sum")) == "MSELoss(reduction='sum')"


def test_loss_modules_take_reduction_by_keyword_as_torch_positions_differ():
    """torch's MSELoss(x) means size_average=x: a positional call here is refused, so any call
    that works here means the same in PyTorch. HuberLoss takes reduction first, as torch's."""
    for cls in [nn.MSELoss, nn.L1Loss, nn.CrossEntropyLoss, nn.NLLLoss, nn.BCELoss]:
        with pytest.raises(TypeError):
            cls("sum")
    for cls in [nn.BCEWithLogitsLoss, nn.SmoothL1Loss]:
        with pytest.raises(TypeError):
            cls("sum")
    assert nn.HuberLoss("sum", 0.5).delta == 0.5


# ----- nn.init -----


def test_fans_of_a_linear_weight_match_torch():
    from tinygrad_edu.nn.init import _calculate_fan_in_and_fan_out

    for shape in [(3, 5), (7, 2), (4, 3, 2, 2), (6, 2, 3)]:
        ours = _calculate_fan_in_and_fan_out(Tensor(np.zeros(shape)), "test")
        theirs = torch.nn.init._calculate_fan_in_and_fan_out(torch.zeros(shape))
        assert ours == theirs
    linear = nn.Linear(30, 20)
    assert _calculate_fan_in_and_fan_out(linear.weight, "test") == (30, 20)


@pytest.mark.parametrize(
    "args",
    [("linear",), ("sigmoid",), ("tanh",), ("relu",), ("leaky_relu",), ("leaky_relu", 0.2)]
    + [("selu",), ("conv2d",)],
)
def test_calculate_gain_matches_torch(args):
    assert nn.init.calculate_gain(*args) == pytest.approx(torch.nn.init.calculate_gain(*args))


def test_calculate_gain_rejects_unknown():
    with pytest.raises(tg.InputError, match="unsupported nonlinearity"):
        nn.init.calculate_gain("swish")


def _std_uniform(bound):
    return bound / math.sqrt(3)


INIT_CASES = [
    # (function, kwargs, expected mean, expected std, bound or None)
    ("uniform_", {"a": -2.0, "b": 4.0}, 1.0, 6 / math.sqrt(12), (-2.0, 4.0)),
    ("normal_", {"mean": 1.5, "std": 0.5}, 1.5, 0.5, None),
    ("xavier_uniform_", {}, 0.0, math.sqrt(2 / 900), (-math.sqrt(6 / 900), math.sqrt(6 / 900))),
    ("xavier_uniform_", {"gain": 2.0}, 0.0, 2 * math.sqrt(2 / 900), None),
    ("xavier_normal_", {}, 0.0, math.sqrt(2 / 900), None),
    ("kaiming_uniform_", {}, 0.0, math.sqrt(2 / (1 + 0.01**2)) / math.sqrt(300), None),
    ("kaiming_uniform_", {"nonlinearity": "relu"}, 0.0, math.sqrt(2 / 300), None),
    ("kaiming_uniform_", {"a": math.sqrt(5)}, 0.0, math.sqrt(2 / 6) / math.sqrt(300), None),
    ("kaiming_normal_", {"nonlinearity": "relu"}, 0.0, math.sqrt(2 / 300), None),
    ("kaiming_normal_", {"mode": "fan_out", "nonlinearity": "relu"}, 0.0, math.sqrt(2 / 600), None),
]


@pytest.mark.parametrize("name, kwargs, mean, std, bounds", INIT_CASES)
def test_init_statistics(name, kwargs, mean, std, bounds):
    tg.manual_seed(0)
    w = Tensor(np.zeros((600, 300)), dtype="float32", requires_grad=True)  # (out, in)
    out = getattr(nn.init, name)(w, **kwargs)
    assert out is w and w.dtype == np.float32 and w.requires_grad
    values = w.numpy().astype(np.float64)
    assert abs(values.mean() - mean) < 5 * std / math.sqrt(values.size)
    assert values.std() == pytest.approx(std, rel=0.01)
    if bounds is not None:
        assert values.min() >= bounds[0] and values.max() <= bounds[1]
        assert values.min() < bounds[0] + 0.01 * std and values.max() > bounds[1] - 0.01 * std
    # the same spread as torch's initialiser
    t = getattr(torch.nn.init, name)(torch.zeros(600, 300), **kwargs)
    assert values.std() == pytest.approx(float(t.std()), rel=0.02)


def test_kaiming_uniform_with_sqrt5_is_linears_default_bound():
    """PyTorch's Linear uses kaiming_uniform_(a=sqrt(5)): bound 1/sqrt(in_features)."""
    tg.manual_seed(0)
    w = nn.init.kaiming_uniform_(Tensor(np.zeros((200, 50))), a=math.sqrt(5))
    assert np.abs(w.numpy()).max() <= 1 / math.sqrt(50)
    assert np.abs(w.numpy()).max() > 0.99 / math.sqrt(50)


def test_init_is_seeded_and_outside_the_graph():
    w1, w2 = Tensor(np.zeros((4, 4)), requires_grad=True), Tensor(np.zeros((4, 4)))
    tg.manual_seed(5)
    nn.init.xavier_normal_(w1)
    tg.manual_seed(5)
    nn.init.xavier_normal_(w2)
    np.testing.assert_array_equal(w1.numpy(), w2.numpy())
    assert w1.is_leaf and w1.grad_fn is None


def test_constant_zeros_ones():
    w = Tensor(np.full((2, 3), 7.0), requires_grad=True)
    assert nn.init.zeros_(w) is w and not w.numpy().any()
    nn.init.ones_(w)
    np.testing.assert_array_equal(w.numpy(), np.ones((2, 3)))
    nn.init.constant_(w, -0.25)
    np.testing.assert_array_equal(w.numpy(), np.full((2, 3), -0.25))


def test_init_errors():
    with pytest.raises(tg.InputError, match="fewer than 2 dimensions"):
        nn.init.xavier_uniform_(Tensor(np.zeros(5)))  # as PyTorch's ValueError
    with pytest.raises(ValueError, match="fewer than 2 dimensions"):
        nn.init.kaiming_normal_(Tensor(np.zeros(5)))
    with pytest.raises(tg.InputError, match="mode"):
        nn.init.kaiming_uniform_(Tensor(np.zeros((2, 2))), mode="fan_avg")
    with pytest.raises(TypeError, match="normal_"):
        nn.init.normal_(np.zeros(3))


# ----- nn.utils -----


def _model_pair():
    tg.manual_seed(2)
    ours = nn.Sequential(nn.Linear(4, 5), nn.Tanh(), nn.Linear(5, 3))
    theirs = torch.nn.Sequential(torch.nn.Linear(4, 5), torch.nn.Tanh(), torch.nn.Linear(5, 3))
    with torch.no_grad():
        for p, q in zip(ours.parameters(), theirs.parameters()):
            q.copy_(torch.tensor(p.numpy()))
    x = np.random.default_rng(3).standard_normal((6, 4)).astype(np.float32) * 3
    y = np.random.default_rng(4).standard_normal((6, 3)).astype(np.float32)
    F.mse_loss(ours(Tensor(x)), y).backward()
    TF.mse_loss(theirs(torch.tensor(x)), torch.tensor(y)).backward()
    return ours, theirs


@pytest.mark.parametrize("max_norm", [0.05, 1e6])
@pytest.mark.parametrize("norm_type", [2.0, 1.0, 3.0, float("inf")])
def test_clip_grad_norm_matches_torch(max_norm, norm_type):
    ours, theirs = _model_pair()
    total = nn.utils.clip_grad_norm_(ours.parameters(), max_norm, norm_type)
    ref = torch.nn.utils.clip_grad_norm_(theirs.parameters(), max_norm, norm_type)
    assert isinstance(total, Tensor) and total.shape == ()
    assert total.item() == pytest.approx(ref.item(), rel=1e-5)
    for p, q in zip(ours.parameters(), theirs.parameters()):
        np.testing.assert_allclose(p.grad.numpy(), q.grad.numpy(), rtol=1e-4, atol=1e-7)


def test_clip_grad_norm_edge_cases():
    assert nn.utils.clip_grad_norm_([Tensor([1.0], requires_grad=True)], 1.0).item() == 0.0
    p = Tensor([3.0, 4.0], requires_grad=True)
    p.grad = Tensor([3.0, 4.0])
    assert nn.utils.clip_grad_norm_(p, 1.0).item() == pytest.approx(5.0)  # a single Tensor
    np.testing.assert_allclose(p.grad.numpy(), [0.6, 0.8], rtol=1e-5)
    p.grad = Tensor([float("inf"), 1.0])
    with pytest.raises(RuntimeError, match="clip_grad_norm_"):
        nn.utils.clip_grad_norm_(p, 1.0, error_if_nonfinite=True)
    with pytest.raises(TypeError, match="clip_grad_norm_"):
        nn.utils.clip_grad_norm_(3.0, 1.0)


def test_clip_grad_value_matches_torch():
    ours, theirs = _model_pair()
    nn.utils.clip_grad_value_(ours.parameters(), 0.01)
    torch.nn.utils.clip_grad_value_(theirs.parameters(), 0.01)
    for p, q in zip(ours.parameters(), theirs.parameters()):
        np.testing.assert_allclose(p.grad.numpy(), q.grad.numpy(), rtol=1e-5, atol=1e-8)
    with pytest.raises(tg.InputError, match="clip_value"):
        nn.utils.clip_grad_value_(ours.parameters(), -1.0)


def test_parameters_to_vector_round_trip_matches_torch():
    ours, theirs = _model_pair()
    vec = nn.utils.parameters_to_vector(ours.parameters())
    ref = torch.nn.utils.parameters_to_vector(theirs.parameters())
    np.testing.assert_allclose(vec.numpy(), ref.detach().numpy(), rtol=1e-6)
    assert vec.shape == (ours.num_parameters(),)
    objects = ours.parameters()
    nn.utils.vector_to_parameters(vec * 0.0 + 2.0, ours.parameters())
    assert all(a is b for a, b in zip(objects, ours.parameters()))
    assert all((p.numpy() == 2.0).all() and p.dtype == np.float32 for p in ours.parameters())
    with pytest.raises(tg.InputError, match="vector_to_parameters"):
        nn.utils.vector_to_parameters(Tensor(np.zeros(3)), ours.parameters())
    with pytest.raises(TypeError, match="vector_to_parameters"):
        nn.utils.vector_to_parameters(np.zeros(53), ours.parameters())


def test_parameters_to_vector_is_differentiable():
    a, b = _leaf([[1.0, 2.0]]), _leaf([3.0])
    (nn.utils.parameters_to_vector([a, b]) ** 2).sum().backward()
    np.testing.assert_array_equal(a.grad.numpy(), [[2.0, 4.0]])
    np.testing.assert_array_equal(b.grad.numpy(), [6.0])


def test_new_names_are_exported():
    for name in [
        "ModuleList",
        "ModuleDict",
        "Identity",
        "Flatten",
        "Parameter",
        "Softmax",
        "LogSoftmax",
        "GELU",
        "ELU",
        "Softplus",
        "MSELoss",
        "L1Loss",
        "CrossEntropyLoss",
        "BCELoss",
        "BCEWithLogitsLoss",
        "NLLLoss",
        "HuberLoss",
        "SmoothL1Loss",
        "init",
        "utils",
    ]:
        assert name in nn.__all__ and hasattr(nn, name)
    for name in ["nll_loss", "binary_cross_entropy_with_logits", "huber_loss", "smooth_l1_loss"]:
        assert name in F.__all__
