"""Layers go one way (docs: STYLE.md): nn and optim use Tensor's public API, functional does not
import the layers, each op lives in ops.py, each optimizer rule is one function per backend, and
the library has one finite-difference routine. Source checks, then the numbers behind them."""

from __future__ import annotations

import ast
import inspect
from pathlib import Path

import numpy as np
import pytest

import tinygrad_edu as tg
from tinygrad_edu import ops
from tinygrad_edu.autograd import Op
from tinygrad_edu.backend import optim_cpu, optim_reference
from tinygrad_edu.backend.jit import Kernel
from tinygrad_edu.nn import functional as F
from tinygrad_edu.optim import optimizer as optimizer_module
from tinygrad_edu.tensor import Tensor

PACKAGE = Path(tg.__file__).parent
RULES = ("sgd", "adagrad", "adadelta", "rmsprop", "adam")


def _tree(path: Path) -> ast.Module:
    return ast.parse(path.read_text(), filename=str(path))


def _imported_modules(tree: ast.Module) -> set[str]:
    names = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module:
            names.add(node.module)
            names.update(f"{node.module}.{alias.name}" for alias in node.names)
    return names


# ----- the rules, read from the source -----


def test_functional_does_not_import_layers():
    imported = _imported_modules(_tree(PACKAGE / "nn" / "functional.py"))
    assert not any(name.startswith("tinygrad_edu.nn.layers") for name in imported), imported
    assert "tinygrad_edu.nn.module" not in imported


@pytest.mark.parametrize("path", sorted((PACKAGE / "nn").glob("*.py")), ids=lambda p: p.name)
def test_nn_uses_no_private_tensor_or_backend_fields(path):
    """No ``x._data``, ``x._backend``, ``x._ctx`` or ``Tensor._wrap`` anywhere under nn/."""
    private = {"_data", "_backend", "_ctx", "_wrap"}
    bad = [
        f"line {node.lineno}: .{node.attr}"
        for node in ast.walk(_tree(path))
        if isinstance(node, ast.Attribute) and node.attr in private
    ]
    assert not bad, bad


def test_binary_cross_entropy_is_an_op():
    assert issubclass(ops.BinaryCrossEntropy, Op)
    assert not hasattr(F, "_BinaryCrossEntropy")
    tree = _tree(PACKAGE / "nn" / "functional.py")
    (fn,) = [n for n in tree.body if getattr(n, "name", None) == "binary_cross_entropy"]
    assert "ops.BinaryCrossEntropy.apply" in ast.unparse(fn)


def test_layers_call_the_functional_forms():
    source = (PACKAGE / "nn" / "layers.py").read_text()
    assert "F.dropout(" in source and "F.gaussian_noise(" in source
    assert "def dropout" not in source


def test_optimizer_base_does_not_name_a_device():
    source = (PACKAGE / "optim" / "optimizer.py").read_text()
    assert 'get_backend("cpu")' not in source and "'cpu'" not in source
    assert "unchecked" not in source


@pytest.mark.parametrize("rule", RULES)
def test_each_rule_is_one_step_function_a_kernel_and_an_update(rule):
    step = getattr(optim_cpu, f"{rule}_step")
    assert not hasattr(step, "unchecked")
    assert isinstance(getattr(optim_cpu, f"_{rule}_loop"), Kernel)
    assert callable(getattr(optim_cpu, f"_{rule}_update").py_func)  # what cuda_optim compiles
    assert not hasattr(optim_cpu, f"_{rule}_serial") and not hasattr(optim_cpu, f"_{rule}_parallel")
    # The CPU step and the reference take the same arguments, check= included.
    assert inspect.signature(step) == inspect.signature(getattr(optim_reference, f"{rule}_step"))
    assert inspect.signature(step).parameters["check"].default is True


def test_one_finite_difference_routine():
    """Outside gradcheck.py, nothing in the library or the benchmarks divides by 2 * eps."""
    roots = [PACKAGE, PACKAGE.parent / "benchmarks"]
    offenders = []
    for root in roots:
        for path in root.rglob("*.py"):
            if path.name == "gradcheck.py":
                continue
            for lineno, line in enumerate(path.read_text().splitlines(), 1):
                code = line.split("#")[0]
                if "(2 * eps)" in code and '"""' not in code:
                    offenders.append(f"{path.name}:{lineno}")
    assert not offenders, offenders


# ----- the numbers behind them -----


def test_binary_cross_entropy_op_gradients_match_torch(rng):
    torch = pytest.importorskip("torch")
    p = np.concatenate([rng.uniform(0.05, 0.95, 10), [0.0, 1.0, 1e-9, 1 - 1e-9]])
    t = np.concatenate([rng.uniform(0.0, 1.0, 10), [0.3, 0.6, 0.0, 1.0]])
    g = rng.standard_normal(p.shape)
    ours_p, ours_t = Tensor(p, requires_grad=True), Tensor(t, requires_grad=True)
    out = ops.BinaryCrossEntropy.apply(ours_p, ours_t)
    (out * Tensor(g)).sum().backward()
    tp = torch.tensor(p, requires_grad=True)
    tt = torch.tensor(t, requires_grad=True)
    theirs = torch.nn.functional.binary_cross_entropy(tp, tt, reduction="none")
    (theirs * torch.tensor(g)).sum().backward()
    np.testing.assert_allclose(out.numpy(), theirs.detach().numpy(), rtol=1e-12, atol=1e-12)
    # rtol 1e-8: at p = 0 and 1 the gradient is ~1e11 and the two round max(p(1-p), 1e-12) apart
    np.testing.assert_allclose(ours_p.grad.numpy(), tp.grad.numpy(), rtol=1e-8, atol=1e-9)
    # dL/dt: PyTorch's is inf at p = 0 and 1 (its logs are clamped in the loss only); ours uses
    # the clamped logs there too, so it stays finite: g * (max(log(1-p), -100) - max(log p, -100))
    dt, finite = ours_t.grad.numpy(), np.isfinite(tt.grad.numpy())
    np.testing.assert_allclose(dt[finite], tt.grad.numpy()[finite], rtol=1e-9, atol=1e-9)
    np.testing.assert_allclose(dt[10:12], g[10:12] * np.array([100.0, -100.0]), rtol=1e-12)


def test_binary_cross_entropy_passes_gradcheck(rng):
    p = Tensor(rng.uniform(0.1, 0.9, (3, 4)), requires_grad=True)
    t = Tensor(rng.uniform(0.0, 1.0, (3, 4)), requires_grad=True)
    assert tg.gradcheck(lambda: F.binary_cross_entropy(p, t), [p, t], eps=1e-6)


def test_dropout_mask_and_gradient(rng):
    x = Tensor(rng.standard_normal((50, 40)), requires_grad=True)
    tg.manual_seed(3)
    y = F.dropout(x, 0.25)
    y.sum().backward()
    scale = y.numpy() / x.numpy()
    kept = scale != 0
    np.testing.assert_allclose(scale[kept], 1 / 0.75)
    assert 0.7 < kept.mean() < 0.8
    np.testing.assert_allclose(x.grad.numpy(), np.where(kept, 1 / 0.75, 0.0))
    tg.manual_seed(3)
    np.testing.assert_array_equal(tg.nn.Dropout(0.25)(x).numpy(), y.numpy())  # same draw
    assert F.dropout(x, 0.25, training=False) is x


def test_gaussian_noise_values_and_gradient(rng):
    x = Tensor(rng.standard_normal((200, 100)), requires_grad=True)
    tg.manual_seed(5)
    y = F.gaussian_noise(x, 0.5)
    noise = y.numpy() - x.numpy()
    assert abs(noise.mean()) < 0.01 and abs(noise.std() - 0.5) < 0.01
    (y * 2.0).sum().backward()
    np.testing.assert_array_equal(x.grad.numpy(), np.full(x.shape, 2.0))  # d(x + n)/dx = 1
    tg.manual_seed(5)
    np.testing.assert_array_equal(tg.nn.GaussianNoise(0.5)(x).numpy(), y.numpy())
    assert F.gaussian_noise(x, 0.5, training=False) is x


def test_cross_entropy_labels_from_a_list_and_a_tensor_agree(rng):
    z = rng.standard_normal((6, 4))
    labels = [0, 3, 1, 1, 2, 0]
    a, b = Tensor(z, requires_grad=True), Tensor(z, requires_grad=True)
    F.cross_entropy(a, labels).backward()
    F.cross_entropy(b, Tensor(labels, dtype="int64")).backward()
    shifted = z - z.max(axis=1, keepdims=True)
    log_p = shifted - np.log(np.exp(shifted).sum(axis=1, keepdims=True))
    want = -log_p[np.arange(6), labels].mean()
    assert F.cross_entropy(Tensor(z), labels).item() == pytest.approx(want, rel=1e-12)
    np.testing.assert_array_equal(a.grad.numpy(), b.grad.numpy())
    onehot = np.eye(4)[labels]
    np.testing.assert_allclose(a.grad.numpy(), (np.exp(log_p) - onehot) / 6, rtol=1e-12)


def test_module_to_keeps_parameters_gradients_and_optimizer(rng):
    model = tg.nn.Sequential(tg.nn.Linear(3, 2))
    params = model.parameters()
    values = [p.numpy().copy() for p in params]
    for p in params:
        p.grad = Tensor(np.ones(p.shape, p.dtype))
    assert model.to("cpu") is model
    assert model.parameters()[0] is params[0]
    for p, v in zip(params, values):
        np.testing.assert_array_equal(p.numpy(), v)
        assert p.requires_grad and p.is_leaf and p.grad is not None


@pytest.mark.parametrize("rule", ["sgd", "adam", "rmsprop", "adagrad", "adadelta"])
def test_check_false_is_the_same_step(rule, rng):
    """The flat path's check=False runs the same loop on the same numbers, bit for bit."""
    hyper = {
        "sgd": dict(lr=0.1, momentum=0.9, dampening=0.1, weight_decay=0.01, nesterov=False),
        "adagrad": dict(step=2, lr=0.1, lr_decay=0.01, weight_decay=0.1, eps=1e-10),
        "adadelta": dict(lr=1.0, rho=0.9, eps=1e-6, weight_decay=0.1),
        "rmsprop": dict(
            lr=0.01, alpha=0.9, eps=1e-8, weight_decay=0.1, momentum=0.5, centered=True
        ),
        "adam": dict(
            step=3, lr=0.01, beta1=0.9, beta2=0.99, eps=1e-8, weight_decay=0.1, amsgrad=True,
            decoupled_weight_decay=False,
        ),
    }[rule]  # fmt: skip
    n_buffers = {"sgd": 1, "adagrad": 1, "adadelta": 2, "rmsprop": 3, "adam": 3}[rule]
    step = getattr(optim_cpu, f"{rule}_step")
    arrays = [rng.standard_normal(37).astype(np.float32) for _ in range(2 + n_buffers)]
    arrays[2:] = [np.abs(a) for a in arrays[2:]]  # square averages are >= 0
    if rule == "rmsprop":
        arrays[4] *= 0.01  # grad_avg^2 <= square_avg, or the centered variance is negative
    checked, trusted = [a.copy() for a in arrays], [a.copy() for a in arrays]
    reference = [a.astype(np.float64) for a in arrays]
    step(*checked, **hyper)
    step(*trusted, **hyper, check=False)
    getattr(optim_reference, f"{rule}_step")(*reference, **hyper)
    for a, b, r in zip(checked, trusted, reference):
        np.testing.assert_array_equal(a, b)
        np.testing.assert_allclose(a, r, rtol=1e-5, atol=1e-6)


def test_serial_and_parallel_builds_agree(rng):
    p, g, buf = (rng.standard_normal(1000) for _ in range(3))
    scalars = optim_reference.sgd_scalars(
        p.dtype, lr=0.1, momentum=0.9, dampening=0.0, weight_decay=0.01, nesterov=True
    )
    serial, parallel = [p.copy(), g, buf.copy()], [p.copy(), g, buf.copy()]
    optim_cpu._sgd_loop.serial(*serial, *scalars)
    optim_cpu._sgd_loop.parallel(*parallel, *scalars)
    np.testing.assert_array_equal(serial[0], parallel[0])
    np.testing.assert_array_equal(serial[2], parallel[2])
    b = 0.9 * buf + (g + 0.01 * p)  # Nesterov, by hand
    np.testing.assert_allclose(serial[0], p - 0.1 * ((g + 0.01 * p) + 0.9 * b), rtol=1e-12)


def test_optimizer_takes_the_backend_from_the_parameters_device(monkeypatch, rng):
    asked = []
    real = optimizer_module.get_backend

    def recording(device):
        asked.append(device)
        return real(device)

    monkeypatch.setattr(optimizer_module, "get_backend", recording)
    params = [Tensor(rng.standard_normal(s), requires_grad=True) for s in [(4, 3), (4,)]]
    opt = tg.optim.Adam(params, lr=0.1)
    for _ in range(2):  # first step: per parameter; second: the flat layout
        for p in params:
            p.grad = Tensor(np.ones(p.shape))
        opt.step()
    assert asked and set(asked) == {"cpu"}
    # step 1: the layout's device, then each param's own (a first step goes alone); step 2: the
    # layout's device, once for both params
    assert len(asked) == 4


def test_numerical_gradient_on_chosen_entries(rng):
    w = Tensor(rng.standard_normal((3, 4)), requires_grad=True)
    b = Tensor(rng.standard_normal(4), requires_grad=True)

    def f():
        return ((w * w).sum(axis=0) * b).sum()

    full = tg.numerical_gradient(f, [w, b])
    some = tg.numerical_gradient(f, [w, b], entries=[(0, (1, 2)), (0, 7), (1, 3)])
    assert some[0][1, 2] == full[0][1, 2] and some[0][1, 3] == full[0][1, 3]  # 7 = (1, 3)
    assert some[1][3] == full[1][3]
    assert np.isnan(some[0]).sum() == 10 and np.isnan(some[1]).sum() == 3
    np.testing.assert_allclose(full[0], 2 * w.numpy() * b.numpy(), rtol=1e-7)
    np.testing.assert_allclose(full[1], (w.numpy() ** 2).sum(axis=0), rtol=1e-7)
    with pytest.raises(ValueError, match="entries must be"):
        tg.numerical_gradient(f, [w, b], entries=[(0, (3, 0))])
    with pytest.raises(ValueError, match="entries must be"):
        tg.numerical_gradient(f, [w, b], entries=[(2, 0)])
