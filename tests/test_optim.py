"""Optimizers: each rule against its formula, the CPU kernels against the reference, and
tinygrad_edu.optim against torch.optim (same start, same gradients, 50 steps)."""

import math
import re

import numpy as np
import pytest

import tinygrad_edu.optim.optimizer as optimizer_module
from tinygrad_edu import config
from tinygrad_edu.backend import optim_cpu, optim_reference
from tinygrad_edu.optim import (
    SGD,
    Adadelta,
    Adagrad,
    Adam,
    AdamW,
    Optimizer,
    RMSprop,
    lr_scheduler,
)
from tinygrad_edu.tensor import Tensor

STEPS = 50


@pytest.fixture(params=["cpu", "reference"])
def backend(request, monkeypatch):
    """Run the optimizer classes on the Numba kernels, and again on the numpy reference."""
    if request.param == "reference":
        from tinygrad_edu.backend import reference

        monkeypatch.setattr(optimizer_module, "get_backend", lambda device: reference)
    return request.param


def quadratic(rng, n=6):
    """J(w) = 0.5 w^T A w - b^T w with A symmetric positive definite; dJ/dw = A w - b."""
    m = rng.standard_normal((n, n))
    a, b = m @ m.T / n + np.eye(n), rng.standard_normal(n)
    return (lambda w: a @ w - b), rng.standard_normal(n)


def run_optimizer(make_opt, w0, grad_fn, steps=STEPS):
    """Train one float64 parameter with the library; return the iterates w_1..w_steps."""
    p = Tensor(w0.copy(), requires_grad=True)
    opt = make_opt([p])
    path = []
    for _ in range(steps):
        p.grad = Tensor(grad_fn(p.numpy().copy()))
        opt.step()
        path.append(p.numpy().copy())
    return np.array(path)


# ----- each rule against a transcription of its formula -----
# Written out here, independently of backend/optim_reference.py, in the order the docstrings give.


def sgd_formula(w, grad_fn, lr, momentum=0.0, dampening=0.0, weight_decay=0.0, nesterov=False):
    z, path = None, []
    for _ in range(STEPS):
        g = grad_fn(w) + weight_decay * w
        if momentum:
            z = g.copy() if z is None else momentum * z + (1 - dampening) * g
            g = g + momentum * z if nesterov else z
        w = w - lr * g
        path.append(w)
    return np.array(path)


def adagrad_formula(
    w, grad_fn, lr, lr_decay=0.0, weight_decay=0.0, initial_accumulator_value=0.0, eps=1e-10
):
    G, path = np.full_like(w, initial_accumulator_value), []
    for t in range(1, STEPS + 1):
        g = grad_fn(w) + weight_decay * w
        G = G + g**2
        w = w - lr / (1 + (t - 1) * lr_decay) * g / (np.sqrt(G) + eps)
        path.append(w)
    return np.array(path)


def adadelta_formula(w, grad_fn, lr=1.0, rho=0.9, eps=1e-6, weight_decay=0.0):
    Eg2, Edw2, path = np.zeros_like(w), np.zeros_like(w), []
    for _ in range(STEPS):
        g = grad_fn(w) + weight_decay * w
        Eg2 = rho * Eg2 + (1 - rho) * g**2
        dw = -np.sqrt(Edw2 + eps) / np.sqrt(Eg2 + eps) * g
        Edw2 = rho * Edw2 + (1 - rho) * dw**2
        w = w + lr * dw
        path.append(w)
    return np.array(path)


def rmsprop_formula(
    w, grad_fn, lr, alpha=0.99, eps=1e-8, weight_decay=0.0, momentum=0.0, centered=False
):
    Eg2, Eg, buf, path = np.zeros_like(w), np.zeros_like(w), np.zeros_like(w), []
    for _ in range(STEPS):
        g = grad_fn(w) + weight_decay * w
        Eg2 = alpha * Eg2 + (1 - alpha) * g**2
        Eg = alpha * Eg + (1 - alpha) * g
        rms = np.sqrt(Eg2 - Eg**2 if centered else Eg2) + eps
        buf = momentum * buf + g / rms
        w = w - lr * (buf if momentum else g / rms)
        path.append(w)
    return np.array(path)


def adam_formula(
    w, grad_fn, lr, betas=(0.9, 0.999), eps=1e-8, weight_decay=0.0, amsgrad=False, decoupled=False
):
    (b1, b2), m, v, v_max, path = betas, np.zeros_like(w), np.zeros_like(w), np.zeros_like(w), []
    for t in range(1, STEPS + 1):
        g = grad_fn(w)
        if decoupled:
            w = w - lr * weight_decay * w
        else:
            g = g + weight_decay * w
        m = b1 * m + (1 - b1) * g
        v = b2 * v + (1 - b2) * g**2
        v_max = np.maximum(v_max, v)
        m_hat, v_hat = m / (1 - b1**t), (v_max if amsgrad else v) / (1 - b2**t)
        w = w - lr * m_hat / (np.sqrt(v_hat) + eps)
        path.append(w)
    return np.array(path)


FORMULA_CASES = [
    (SGD, sgd_formula, {"lr": 0.1}),
    (SGD, sgd_formula, {"lr": 0.05, "momentum": 0.9}),
    (SGD, sgd_formula, {"lr": 0.05, "momentum": 0.8, "dampening": 0.3, "weight_decay": 0.1}),
    (SGD, sgd_formula, {"lr": 0.05, "momentum": 0.9, "nesterov": True, "weight_decay": 0.01}),
    (Adagrad, adagrad_formula, {"lr": 0.5}),
    (
        Adagrad,
        adagrad_formula,
        {
            "lr": 0.5,
            "lr_decay": 0.05,
            "weight_decay": 0.1,
            "initial_accumulator_value": 0.3,
            "eps": 1e-6,
        },
    ),
    (Adadelta, adadelta_formula, {}),
    (Adadelta, adadelta_formula, {"lr": 0.5, "rho": 0.8, "eps": 1e-4, "weight_decay": 0.1}),
    (RMSprop, rmsprop_formula, {"lr": 0.01}),
    (
        RMSprop,
        rmsprop_formula,
        {
            "lr": 0.01,
            "alpha": 0.9,
            "momentum": 0.5,
            "centered": True,
            "weight_decay": 0.1,
            "eps": 1e-6,
        },
    ),
    (Adam, adam_formula, {"lr": 0.05}),
    (Adam, adam_formula, {"lr": 0.05, "betas": (0.8, 0.99), "weight_decay": 0.1, "amsgrad": True}),
]


@pytest.mark.parametrize(("cls", "formula", "kwargs"), FORMULA_CASES)
def test_rule_matches_its_formula(cls, formula, kwargs, backend, rng):
    grad_fn, w0 = quadratic(rng)
    got = run_optimizer(lambda params: cls(params, **kwargs), w0, grad_fn)
    np.testing.assert_allclose(got, formula(w0, grad_fn, **kwargs), rtol=1e-12, atol=1e-13)


@pytest.mark.parametrize("amsgrad", [False, True])
def test_adamw_matches_its_formula(amsgrad, backend, rng):
    grad_fn, w0 = quadratic(rng)
    kwargs = {"lr": 0.05, "weight_decay": 0.2, "amsgrad": amsgrad}
    got = run_optimizer(lambda params: AdamW(params, **kwargs), w0, grad_fn)
    want = adam_formula(w0, grad_fn, decoupled=True, **kwargs)
    np.testing.assert_allclose(got, want, rtol=1e-12, atol=1e-13)


def test_nesterov_is_the_chapters_look_ahead_form_after_a_change_of_variables(rng):
    """PyTorch's Nesterov parameter is the chapter's look-ahead point w + mu * v (SGD docstring)."""
    grad_fn, w0 = quadratic(rng)
    lr, mu = 0.05, 0.9
    got = run_optimizer(lambda params: SGD(params, lr=lr, momentum=mu, nesterov=True), w0, grad_fn)
    w, v = w0.copy(), np.zeros_like(w0)
    for t in range(STEPS):
        v = mu * v - lr * grad_fn(w + mu * v)  # gradient at the look-ahead point
        w = w + v
        np.testing.assert_allclose(got[t], w + mu * v, rtol=1e-11, atol=1e-12)


# ----- the CPU kernels against the reference kernels -----

# (step function name, buffer names, hyperparameters); buffers whose option is off are None.
KERNEL_CASES = [
    ("sgd_step", [], {"lr": 0.1, "momentum": 0.0, "dampening": 0.0, "weight_decay": 0.0,
                      "nesterov": False}),
    ("sgd_step", ["momentum_buffer"], {"lr": 0.1, "momentum": 0.9, "dampening": 0.2,
                                       "weight_decay": 0.1, "nesterov": False}),
    ("sgd_step", ["momentum_buffer"], {"lr": 0.1, "momentum": 0.9, "dampening": 0.0,
                                       "weight_decay": 0.0, "nesterov": True}),
    ("adagrad_step", ["state_sum"], {"step": 3, "lr": 0.1, "lr_decay": 0.01,
                                     "weight_decay": 0.1, "eps": 1e-10}),
    ("adadelta_step", ["square_avg", "acc_delta"], {"lr": 1.0, "rho": 0.9, "eps": 1e-6,
                                                    "weight_decay": 0.1}),
    ("rmsprop_step", ["square_avg", None, None], {"lr": 0.01, "alpha": 0.99, "eps": 1e-8,
                      "weight_decay": 0.0, "momentum": 0.0, "centered": False}),
    ("rmsprop_step", ["square_avg", "momentum_buffer", "grad_avg"], {"lr": 0.01, "alpha": 0.9,
                      "eps": 1e-8, "weight_decay": 0.1, "momentum": 0.9, "centered": True}),
    ("adam_step", ["exp_avg", "exp_avg_sq", None], {"step": 4, "lr": 1e-3, "beta1": 0.9,
                   "beta2": 0.999, "eps": 1e-8, "weight_decay": 0.1, "amsgrad": False,
                   "decoupled_weight_decay": False}),
    ("adam_step", ["exp_avg", "exp_avg_sq", "max_exp_avg_sq"], {"step": 4, "lr": 1e-3,
                   "beta1": 0.9, "beta2": 0.999, "eps": 1e-8, "weight_decay": 0.1,
                   "amsgrad": True, "decoupled_weight_decay": True}),
]  # fmt: skip


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("size", ["small", "large"])
@pytest.mark.parametrize(("name", "buffers", "hyper"), KERNEL_CASES)
def test_cpu_kernels_match_reference(name, buffers, hyper, size, dtype, rng):
    """Below PARALLEL_MIN the serial kernel runs, above it the parallel one: both must agree."""
    n = 37 if size == "small" else config.PARALLEL_MIN + 3
    shape = (n, 2)
    param = rng.standard_normal(shape).astype(dtype)
    # Positive buffers, with grad_avg^2 < square_avg, so that every square root stays real.
    scale = {"grad_avg": 0.1}
    state = [
        None if b is None else (scale.get(b, 1.0) * (rng.random(shape) + 0.5)).astype(dtype)
        for b in buffers
    ]
    if name == "sgd_step" and not buffers:
        state = [None]
    ours, theirs = [param.copy()] + [_copy(s) for s in state], [param] + state
    for k in range(5):  # a few steps, so the state each kernel wrote feeds the next step
        grad = rng.standard_normal(shape).astype(dtype)
        extra = {"step": hyper["step"] + k} if "step" in hyper else {}
        getattr(optim_cpu, name)(ours[0], grad, *ours[1:], **{**hyper, **extra})
        getattr(optim_reference, name)(theirs[0], grad, *theirs[1:], **{**hyper, **extra})
    assert ours[0].dtype == dtype
    rtol = 1e-6 if dtype == np.float32 else 1e-14
    for a, b in zip(ours, theirs):
        if b is not None:
            np.testing.assert_allclose(a, b, rtol=rtol, atol=rtol)


def _copy(a):
    return None if a is None else a.copy()


@pytest.mark.parametrize("module", [optim_cpu, optim_reference], ids=["cpu", "reference"])
def test_kernel_wrappers_reject_bad_arrays_in_words(module):
    p, g = np.zeros((2, 3)), np.zeros((2, 3))
    kw = {
        "step": 1,
        "lr": 0.1,
        "beta1": 0.9,
        "beta2": 0.99,
        "eps": 1e-8,
        "weight_decay": 0.0,
        "amsgrad": False,
        "decoupled_weight_decay": False,
    }
    with pytest.raises(ValueError, match=re.escape("adam_step: grad has shape (3, 2)")):
        module.adam_step(p, np.zeros((3, 2)), np.zeros((2, 3)), np.zeros((2, 3)), None, **kw)
    with pytest.raises(ValueError, match="adam_step: exp_avg_sq has dtype float32"):
        module.adam_step(p, g, np.zeros((2, 3)), np.zeros((2, 3), np.float32), None, **kw)
    with pytest.raises(ValueError, match="adam_step: param dtype must be float32 or float64"):
        module.adam_step(p.astype(np.int64), g, p, p, None, **kw)
    with pytest.raises(ValueError, match="max_exp_avg_sq exactly when amsgrad"):
        module.adam_step(p, g, np.zeros((2, 3)), np.zeros((2, 3)), None, **{**kw, "amsgrad": True})
    with pytest.raises(ValueError, match="sgd_step: pass a momentum_buffer"):
        module.sgd_step(
            p, g, None, lr=0.1, momentum=0.9, dampening=0.0, weight_decay=0.0, nesterov=False
        )


@pytest.mark.parametrize("module", [optim_cpu, optim_reference], ids=["cpu", "reference"])
def test_kernel_wrappers_reject_missing_or_extra_buffers_and_a_bad_step(module):
    p, g = np.zeros((2, 3)), np.zeros((2, 3))
    rms = {"lr": 0.1, "alpha": 0.9, "eps": 1e-8, "weight_decay": 0.0}
    with pytest.raises(ValueError, match="rmsprop_step: pass a grad_avg exactly when centered"):
        module.rmsprop_step(p, g, p.copy(), None, None, **rms, momentum=0.0, centered=True)
    with pytest.raises(ValueError, match="rmsprop_step: pass a momentum_buffer exactly when"):
        module.rmsprop_step(p, g, p.copy(), p.copy(), None, **rms, momentum=0.0, centered=False)
    adam = {"lr": 0.1, "beta1": 0.9, "beta2": 0.99, "eps": 1e-8, "weight_decay": 0.0}
    with pytest.raises(ValueError, match="adam_step: step must be >= 1, got 0"):
        module.adam_step(
            p, g, p.copy(), p.copy(), None, step=0, **adam, amsgrad=False,
            decoupled_weight_decay=False,
        )  # fmt: skip


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_amsgrad_max_propagates_nan_like_the_reference(dtype):
    """A NaN in exp_avg_sq (from a NaN gradient) or already in max_exp_avg_sq stays NaN."""
    grad = np.array([np.nan, 1.0, 1.0, -2.0], dtype)
    v_max = np.array([0.5, np.nan, 0.0, 9.0], dtype)
    hyper = {"step": 2, "lr": 0.1, "beta1": 0.9, "beta2": 0.99, "eps": 1e-8, "weight_decay": 0.0,
             "amsgrad": True, "decoupled_weight_decay": False}  # fmt: skip
    results = []
    for module in (optim_cpu, optim_reference):
        arrays = [np.ones(4, dtype), np.zeros(4, dtype), np.full(4, 0.25, dtype), v_max.copy()]
        module.adam_step(arrays[0], grad, *arrays[1:], **hyper)
        results.append(arrays)
    np.testing.assert_array_equal(np.isnan(results[0][3]), [True, True, False, False])
    assert results[0][3][3] == dtype(9.0)  # the old maximum is kept
    for ours, theirs in zip(*results):
        np.testing.assert_allclose(ours, theirs, rtol=1e-6)  # NaN where the reference has NaN


def test_step_scalars_are_worked_out_in_float64_and_rounded_once():
    lr, beta1, beta2, step, wd = 1e-3, 0.9, 0.999, 3, 0.01
    got = optim_reference.adam_scalars(
        np.dtype(np.float32), step=step, lr=lr, beta1=beta1, beta2=beta2, eps=1e-8,
        weight_decay=wd, amsgrad=False, decoupled_weight_decay=True,
    )  # fmt: skip
    assert all(type(x) is np.float32 for x in got[:-1]) and got[-1] is False
    step_size = lr / (1 - beta1**step)  # Python floats are float64
    assert got[5] == np.float32(step_size) and got[6] == np.float32(math.sqrt(1 - beta2**step))
    assert got[7] == 0 and got[8] == np.float32(1 - lr * wd)  # AdamW: decay, no coupled term
    clr, _, _ = optim_reference.adagrad_scalars(
        np.dtype(np.float64), step=5, lr=0.1, lr_decay=0.01, weight_decay=0.0, eps=1e-10
    )
    assert type(clr) is np.float64 and clr == 0.1 / (1 + 4 * 0.01)


def test_cpu_kernel_rejects_non_contiguous_param():
    p = np.zeros((4, 4))[:, ::2]
    with pytest.raises(ValueError, match="sgd_step: param must be C-contiguous"):
        optim_cpu.sgd_step(
            p,
            np.zeros((4, 2)),
            None,
            lr=0.1,
            momentum=0.0,
            dampening=0.0,
            weight_decay=0.0,
            nesterov=False,
        )


# ----- against torch.optim -----

TORCH_CASES = [
    ("SGD", {"lr": 0.1}),
    ("SGD", {"lr": 0.1, "momentum": 0.9}),
    ("SGD", {"lr": 0.1, "momentum": 0.9, "dampening": 0.5, "weight_decay": 0.05}),
    ("SGD", {"lr": 0.1, "momentum": 0.9, "nesterov": True, "weight_decay": 0.05}),
    ("Adagrad", {}),
    (
        "Adagrad",
        {
            "lr": 0.1,
            "lr_decay": 0.01,
            "weight_decay": 0.05,
            "initial_accumulator_value": 0.2,
            "eps": 1e-8,
        },
    ),
    ("Adadelta", {}),
    ("Adadelta", {"lr": 0.5, "rho": 0.95, "eps": 1e-5, "weight_decay": 0.05}),
    ("RMSprop", {}),
    ("RMSprop", {"momentum": 0.9}),
    ("RMSprop", {"centered": True}),
    (
        "RMSprop",
        {
            "lr": 0.005,
            "alpha": 0.9,
            "eps": 1e-6,
            "weight_decay": 0.05,
            "momentum": 0.5,
            "centered": True,
        },
    ),
    ("Adam", {}),
    ("Adam", {"lr": 0.01, "betas": (0.8, 0.99), "eps": 1e-6, "weight_decay": 0.05}),
    ("Adam", {"lr": 0.01, "amsgrad": True}),
    ("Adam", {"lr": 0.01, "weight_decay": 0.05, "decoupled_weight_decay": True}),
    ("AdamW", {}),
    ("AdamW", {"lr": 0.01, "weight_decay": 0.1, "amsgrad": True}),
]

OURS = {
    "SGD": SGD,
    "Adagrad": Adagrad,
    "Adadelta": Adadelta,
    "RMSprop": RMSprop,
    "Adam": Adam,
    "AdamW": AdamW,
}


def _torch_run(torch, name, kwargs, w0s, grads, dtype=np.float64):
    params = [torch.tensor(w.astype(dtype), requires_grad=True) for w in w0s]
    opt = getattr(torch.optim, name)(params, **kwargs)
    for step_grads in grads:
        for p, g in zip(params, step_grads):
            p.grad = torch.tensor(g.astype(dtype))
        opt.step()
    return [p.detach().numpy() for p in params]


def _our_run(name, kwargs, w0s, grads, dtype=np.float64):
    params = [Tensor(w.astype(dtype), requires_grad=True) for w in w0s]
    opt = OURS[name](params, **kwargs)
    for step_grads in grads:
        for p, g in zip(params, step_grads):
            p.grad = Tensor(g.astype(dtype))
        opt.step()
    return [p.numpy() for p in params]


def _problem(rng, shapes=((3, 4), (5,))):
    w0s = [rng.standard_normal(s) for s in shapes]
    grads = [[rng.standard_normal(s) for s in shapes] for _ in range(STEPS)]
    return w0s, grads


@pytest.mark.parametrize(("name", "kwargs"), TORCH_CASES)
def test_matches_torch(name, kwargs, rng):
    torch = pytest.importorskip("torch")
    w0s, grads = _problem(rng)
    for ours, theirs in zip(
        _our_run(name, kwargs, w0s, grads), _torch_run(torch, name, kwargs, w0s, grads)
    ):
        np.testing.assert_allclose(ours, theirs, rtol=1e-10, atol=1e-12)


@pytest.mark.parametrize("name", ["SGD", "Adam", "RMSprop"])
def test_matches_torch_in_float32(name, rng):
    torch = pytest.importorskip("torch")
    kwargs = {"lr": 0.01, "momentum": 0.9} if name != "Adam" else {"lr": 0.01}
    w0s, grads = _problem(rng)
    ours = _our_run(name, kwargs, w0s, grads, np.float32)
    theirs = _torch_run(torch, name, kwargs, w0s, grads, np.float32)
    for a, b in zip(ours, theirs):
        assert a.dtype == np.float32
        np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-5)


def test_param_groups_match_torch(rng):
    torch = pytest.importorskip("torch")
    w0s, grads = _problem(rng)
    ours = [Tensor(w.copy(), requires_grad=True) for w in w0s]
    theirs = [torch.tensor(w.copy(), requires_grad=True) for w in w0s]
    opt = SGD(
        [{"params": [ours[0]]}, {"params": [ours[1]], "lr": 0.01, "nesterov": True}],
        lr=0.1,
        momentum=0.9,
    )
    topt = torch.optim.SGD(
        [{"params": [theirs[0]]}, {"params": [theirs[1]], "lr": 0.01, "nesterov": True}],
        lr=0.1,
        momentum=0.9,
    )
    for step_grads in grads:
        for p, q, g in zip(ours, theirs, step_grads):
            p.grad, q.grad = Tensor(g), torch.tensor(g)
        opt.step()
        topt.step()
    for p, q in zip(ours, theirs):
        np.testing.assert_allclose(p.numpy(), q.detach().numpy(), rtol=1e-10, atol=1e-12)


# ----- schedulers against torch's -----

SCHEDULERS = [
    ("StepLR", {"step_size": 3}),
    ("StepLR", {"step_size": 2, "gamma": 0.5}),
    ("ExponentialLR", {"gamma": 0.9}),
    ("CosineAnnealingLR", {"T_max": 7}),
    ("CosineAnnealingLR", {"T_max": 5, "eta_min": 0.001}),
]


@pytest.mark.parametrize(("name", "kwargs"), SCHEDULERS)
def test_scheduler_matches_torch(name, kwargs):
    torch = pytest.importorskip("torch")
    p = Tensor(np.zeros(2), requires_grad=True)
    q = Tensor(np.zeros(3), requires_grad=True)
    opt = SGD([{"params": [p]}, {"params": [q], "lr": 0.3}], lr=0.1)
    tp, tq = torch.zeros(2, requires_grad=True), torch.zeros(3, requires_grad=True)
    topt = torch.optim.SGD([{"params": [tp]}, {"params": [tq], "lr": 0.3}], lr=0.1)
    sched = getattr(lr_scheduler, name)(opt, **kwargs)
    tsched = getattr(torch.optim.lr_scheduler, name)(topt, **kwargs)
    assert sched.get_last_lr() == pytest.approx(tsched.get_last_lr(), rel=1e-14)
    for _ in range(25):  # past 2 * T_max: the cosine climbs back up
        opt.step()
        topt.step()
        sched.step()
        tsched.step()
        assert sched.last_epoch == tsched.last_epoch
        assert sched.get_last_lr() == pytest.approx(tsched.get_last_lr(), rel=1e-12, abs=1e-15)
        assert [g["lr"] for g in opt.param_groups] == sched.get_last_lr()


def test_scheduler_closed_forms():
    p = Tensor(np.zeros(1), requires_grad=True)
    lrs = {}
    for name, kw in [
        ("StepLR", {"step_size": 3, "gamma": 0.5}),
        ("ExponentialLR", {"gamma": 0.9}),
        ("CosineAnnealingLR", {"T_max": 10, "eta_min": 0.01}),
    ]:
        opt = SGD([p], lr=1.0)
        sched = getattr(lr_scheduler, name)(opt, **kw)
        lrs[name] = [sched.get_last_lr()[0]]
        for _ in range(10):
            sched.step()
            lrs[name].append(sched.get_last_lr()[0])
    epochs = np.arange(11)
    np.testing.assert_allclose(lrs["StepLR"], 0.5 ** (epochs // 3))
    np.testing.assert_allclose(lrs["ExponentialLR"], 0.9**epochs)
    cosine = 0.01 + (1 - 0.01) * (1 + np.cos(np.pi * epochs / 10)) / 2
    np.testing.assert_allclose(lrs["CosineAnnealingLR"], cosine, atol=1e-12)


def test_scheduler_state_dict_round_trip():
    p = Tensor(np.zeros(1), requires_grad=True)
    opt = SGD([p], lr=1.0)
    sched = lr_scheduler.StepLR(opt, step_size=2, gamma=0.5)
    for _ in range(3):
        sched.step()
    saved = sched.state_dict()
    assert "optimizer" not in saved and saved["last_epoch"] == 3
    opt2 = SGD([Tensor(np.zeros(1), requires_grad=True)], lr=1.0)
    opt2.load_state_dict(opt.state_dict())
    sched2 = lr_scheduler.StepLR(opt2, step_size=5)
    sched2.load_state_dict(saved)
    for _ in range(4):
        sched.step()
        sched2.step()
        assert sched2.get_last_lr() == sched.get_last_lr()


@pytest.mark.parametrize(
    ("make", "exc", "pattern"),
    [
        (lambda o: lr_scheduler.StepLR(o, step_size=0), ValueError, "StepLR: step_size"),
        (lambda o: lr_scheduler.StepLR(o, step_size=2.5), TypeError, "StepLR: step_size"),
        (lambda o: lr_scheduler.ExponentialLR(o, gamma=-1), ValueError, "ExponentialLR: gamma"),
        (lambda o: lr_scheduler.CosineAnnealingLR(o, T_max=0), ValueError, "T_max"),
        (lambda o: lr_scheduler.StepLR("sgd", step_size=1), TypeError, "expected an Optimizer"),
        (lambda o: lr_scheduler.StepLR(o, step_size=1, last_epoch=4), ValueError, "initial_lr"),
    ],
)
def test_scheduler_errors(make, exc, pattern):
    opt = SGD([Tensor(np.zeros(1), requires_grad=True)], lr=0.1)
    with pytest.raises(exc, match=pattern):
        make(opt)


# ----- state_dict -----


@pytest.mark.parametrize(
    ("cls", "kwargs"),
    [
        (SGD, {"lr": 0.1, "momentum": 0.9, "dampening": 0.1}),
        (Adagrad, {"lr": 0.1, "initial_accumulator_value": 0.1}),
        (Adadelta, {}),
        (RMSprop, {"momentum": 0.5, "centered": True}),
        (Adam, {"amsgrad": True}),
        (AdamW, {"lr": 0.01}),
    ],
)
def test_state_dict_round_trip_continues_the_same_trajectory(cls, kwargs, rng):
    w0s, grads = _problem(rng)

    def train(opt, params, step_grads):
        for gs in step_grads:
            for p, g in zip(params, gs):
                p.grad = Tensor(g)
            opt.step()

    params = [Tensor(w, requires_grad=True) for w in w0s]
    opt = cls(params, **kwargs)
    train(opt, params, grads[:20])
    saved = opt.state_dict()
    saved_values = [p.numpy().copy() for p in params]
    train(opt, params, grads[20:])

    assert saved["state"][0]["step"] == 20  # a copy: the 30 steps since did not change it
    restored = [Tensor(w, requires_grad=True) for w in saved_values]
    opt2 = cls(restored, **kwargs)
    opt2.load_state_dict(saved)
    train(opt2, restored, grads[20:])
    for p, q in zip(params, restored):
        np.testing.assert_array_equal(p.numpy(), q.numpy())


def test_state_dict_layout_and_copies():
    p = Tensor(np.ones(3), requires_grad=True)
    q = Tensor(np.ones(2), requires_grad=True)
    opt = Adam([{"params": [p]}, {"params": [q], "lr": 0.1}])
    p.grad = Tensor(np.ones(3))
    opt.step()
    sd = opt.state_dict()
    assert [g["params"] for g in sd["param_groups"]] == [[0], [1]]
    assert sd["param_groups"][1]["lr"] == 0.1
    assert set(sd["state"]) == {0}  # q never had a gradient: no state
    assert sd["state"][0]["step"] == 1
    assert isinstance(sd["state"][0]["exp_avg"], np.ndarray)
    assert sd["state"][0]["exp_avg"] is not opt.state[p]["exp_avg"]


def test_load_state_dict_restores_hyperparameters():
    p = Tensor(np.ones(3), requires_grad=True)
    opt = SGD([p], lr=0.5, momentum=0.9)
    opt2 = SGD([Tensor(np.ones(3), requires_grad=True)], lr=0.1, momentum=0.9)
    opt2.load_state_dict(opt.state_dict())
    assert opt2.param_groups[0]["lr"] == 0.5


@pytest.mark.parametrize(
    ("edit", "pattern"),
    [
        (lambda sd: sd.pop("state"), "expected a dict with keys"),
        (lambda sd: sd["param_groups"].append(dict(sd["param_groups"][0])), "2 parameter groups"),
        (lambda sd: sd["param_groups"][0]["params"].append(7), "group 0 has 2 parameters"),
        (lambda sd: sd["state"][0].update(exp_avg=np.zeros(4)), r"exp_avg has shape \(4,\)"),
        (lambda sd: sd["state"][0].pop("exp_avg_sq"), "has keys"),
        (lambda sd: sd["state"].update({5: {}}), "state key 5 is not a parameter index"),
        (lambda sd: sd["state"][0].update(step=-1), "step must be an int"),
        (lambda sd: sd["param_groups"][0].update(lr=-1.0), "Adam: invalid lr value -1.0"),
        (lambda sd: sd["param_groups"][0].pop("betas"), r"lacks options \['betas'\]"),
    ],
)
def test_load_state_dict_rejects_a_bad_dict_and_changes_nothing(edit, pattern):
    p = Tensor(np.ones(3), requires_grad=True)
    opt = Adam([p])
    p.grad = Tensor(np.ones(3))
    opt.step()
    sd = opt.state_dict()
    edit(sd)
    before = opt.state_dict()
    with pytest.raises(ValueError, match=pattern):
        opt.load_state_dict(sd)
    after = opt.state_dict()
    assert after["param_groups"] == before["param_groups"]
    np.testing.assert_array_equal(after["state"][0]["exp_avg"], before["state"][0]["exp_avg"])


# ----- step, zero_grad, parameters without gradients -----


@pytest.mark.parametrize("cls", [SGD, Adagrad, Adadelta, RMSprop, Adam, AdamW])
def test_step_skips_params_without_grad(cls):
    p = Tensor(np.ones(3), requires_grad=True)
    q = Tensor(np.ones(2), requires_grad=True)
    opt = cls([p, q], lr=0.1)
    p.grad = Tensor(np.ones(3))
    opt.step()
    assert not np.allclose(p.numpy(), 1.0)
    np.testing.assert_array_equal(q.numpy(), np.ones(2))
    assert q not in opt.state and opt.state[p]["step"] == 1
    opt.zero_grad()
    assert p.grad is None and q.grad is None
    opt.step()  # nothing has a gradient: nothing changes
    assert opt.state[p]["step"] == 1


def test_zero_grad_set_to_none_false_gives_zeros():
    p = Tensor(np.ones(3), requires_grad=True)
    opt = SGD([p], lr=0.1)
    p.grad = Tensor(np.ones(3))
    opt.zero_grad(set_to_none=False)
    np.testing.assert_array_equal(p.grad.numpy(), np.zeros(3))
    assert p.grad.dtype == np.float64


def test_step_returns_the_closures_loss():
    p = Tensor(np.ones(2), requires_grad=True)
    opt = SGD([p], lr=0.5)

    def closure():
        opt.zero_grad()
        loss = (p * p).sum()
        loss.backward()
        return loss

    loss = opt.step(closure)
    assert loss.item() == 2.0
    np.testing.assert_allclose(p.numpy(), [0.0, 0.0])  # w - 0.5 * 2w


def test_training_reduces_a_loss():
    """End to end with autograd: Adam drives a least-squares loss near zero."""
    gen = np.random.default_rng(0)
    x, w_true = gen.standard_normal((64, 3)), np.array([1.0, -2.0, 0.5])
    w = Tensor(np.zeros(3), requires_grad=True)
    opt = Adam([w], lr=0.1)
    for _ in range(200):
        opt.zero_grad()
        loss = ((Tensor(x) @ w - Tensor(x @ w_true)) ** 2).mean()
        loss.backward()
        opt.step()
    np.testing.assert_allclose(w.numpy(), w_true, atol=1e-3)


def test_grad_with_the_wrong_dtype_is_a_clear_error():
    p = Tensor(np.ones(3), requires_grad=True)
    opt = Adam([p])
    p.grad = Tensor(np.ones(3, np.float32))
    with pytest.raises(ValueError, match="Adam: a parameter of shape .* has a .grad of"):
        opt.step()


# ----- invalid arguments -----


def _param():
    return Tensor(np.ones(2), requires_grad=True)


BAD_HYPERPARAMETERS = [
    (SGD, {"lr": -0.1}, ValueError, "SGD: invalid lr value -0.1"),
    (SGD, {"lr": 0.1, "momentum": -0.5}, ValueError, "SGD: invalid momentum value -0.5"),
    (SGD, {"lr": 0.1, "weight_decay": -1}, ValueError, "SGD: invalid weight_decay value -1"),
    (SGD, {"lr": 0.1, "nesterov": True}, ValueError, "SGD: Nesterov momentum requires"),
    (
        SGD,
        {"lr": 0.1, "momentum": 0.9, "dampening": 0.1, "nesterov": True},
        ValueError,
        "dampening = 0",
    ),
    (SGD, {"lr": "fast"}, TypeError, "SGD: lr must be a real number"),
    (SGD, {"lr": float("nan")}, ValueError, "SGD: invalid lr value nan"),
    (Adagrad, {"lr_decay": -1}, ValueError, "Adagrad: invalid lr_decay"),
    (Adagrad, {"eps": -1e-10}, ValueError, "Adagrad: invalid eps"),
    (Adagrad, {"initial_accumulator_value": -1}, ValueError, "initial_accumulator_value"),
    (Adadelta, {"rho": 1.5}, ValueError, r"Adadelta: invalid rho value 1.5; expected in \[0.0"),
    (Adadelta, {"rho": -0.1}, ValueError, "Adadelta: invalid rho"),
    (RMSprop, {"alpha": -0.5}, ValueError, "RMSprop: invalid alpha"),
    (RMSprop, {"momentum": -0.5}, ValueError, "RMSprop: invalid momentum"),
    (RMSprop, {"eps": -1.0}, ValueError, "RMSprop: invalid eps"),
    (Adam, {"lr": -1e-3}, ValueError, "Adam: invalid lr value -0.001"),
    (Adam, {"betas": (1.0, 0.999)}, ValueError, r"Adam: invalid betas\[0\] value 1.0"),
    (Adam, {"betas": (0.9, -0.1)}, ValueError, r"Adam: invalid betas\[1\] value -0.1"),
    (Adam, {"betas": 0.9}, TypeError, "Adam: betas must be a pair"),
    (Adam, {"eps": -1e-8}, ValueError, "Adam: invalid eps"),
    (Adam, {"weight_decay": -0.01}, ValueError, "Adam: invalid weight_decay"),
    (AdamW, {"weight_decay": -0.01}, ValueError, "AdamW: invalid weight_decay"),
]


@pytest.mark.parametrize(("cls", "kwargs", "exc", "pattern"), BAD_HYPERPARAMETERS)
def test_invalid_hyperparameters(cls, kwargs, exc, pattern):
    with pytest.raises(exc, match=pattern):
        cls([_param()], **kwargs)


def test_invalid_hyperparameter_in_a_param_group():
    with pytest.raises(ValueError, match="Adam: invalid lr value -1"):
        Adam([{"params": [_param()]}, {"params": [_param()], "lr": -1}])


@pytest.mark.parametrize(
    ("params", "exc", "pattern"),
    [
        ([], ValueError, "Adam: got an empty parameter list"),
        (lambda: _param(), TypeError, "wrap it in a list"),
        (lambda: [np.ones(2)], TypeError, "parameter 0 is a ndarray, not a Tensor"),
        (lambda: [Tensor(np.ones(2))], TypeError, "requires_grad=False"),
        (lambda: [Tensor([1, 2], dtype="int64")], TypeError, "dtype int64"),
        (lambda: [(_param() * 2)], ValueError, "not a leaf"),
        (lambda: {_param()}, TypeError, "not a set"),
    ],
)
def test_invalid_params(params, exc, pattern):
    with pytest.raises(exc, match=pattern):
        Adam(params() if callable(params) else params)


def test_same_param_twice_is_an_error():
    p = _param()
    with pytest.raises(ValueError, match="same parameter twice"):
        SGD([p, p], lr=0.1)
    with pytest.raises(ValueError, match="more than one parameter group"):
        SGD([{"params": [p]}, {"params": [p]}], lr=0.1)


def test_sgd_needs_a_learning_rate():
    with pytest.raises(TypeError):
        SGD([_param()])


def test_public_names_and_defaults_are_torchs():
    import inspect

    assert issubclass(AdamW, Adam) and issubclass(Adam, Optimizer)
    defaults = {
        Adagrad: {"lr": 1e-2, "lr_decay": 0, "weight_decay": 0, "initial_accumulator_value": 0,
                  "eps": 1e-10},
        Adadelta: {"lr": 1.0, "rho": 0.9, "eps": 1e-6, "weight_decay": 0},
        RMSprop: {"lr": 1e-2, "alpha": 0.99, "eps": 1e-8, "weight_decay": 0, "momentum": 0,
                  "centered": False},
        Adam: {"lr": 1e-3, "betas": (0.9, 0.999), "eps": 1e-8, "weight_decay": 0,
               "amsgrad": False},
        AdamW: {"lr": 1e-3, "betas": (0.9, 0.999), "eps": 1e-8, "weight_decay": 1e-2,
                "amsgrad": False},
    }  # fmt: skip
    for cls, want in defaults.items():
        sig = inspect.signature(cls)
        got = {k: v.default for k, v in sig.parameters.items() if k in want}
        assert got == want, cls.__name__
    assert math.isclose(AdamW([_param()]).param_groups[0]["weight_decay"], 0.01)
    assert AdamW([_param()]).param_groups[0]["decoupled_weight_decay"] is True


# ----- flat buffers: one kernel call per step, the same numbers as one call per parameter -----

FLAT_CASES = [
    (SGD, {"lr": 0.1}),
    (SGD, {"lr": 0.1, "momentum": 0.9, "dampening": 0.1, "weight_decay": 0.01}),
    (SGD, {"lr": 0.1, "momentum": 0.9, "nesterov": True}),
    (
        Adagrad,
        {"lr": 0.1, "lr_decay": 0.01, "weight_decay": 0.01, "initial_accumulator_value": 0.1},
    ),
    (Adadelta, {"weight_decay": 0.01}),
    (RMSprop, {}),
    (RMSprop, {"momentum": 0.5, "centered": True, "weight_decay": 0.01}),
    (Adam, {"weight_decay": 0.01}),
    (Adam, {"amsgrad": True}),
    (AdamW, {"amsgrad": True}),
]
# An option switched on mid-training: the buffers it needs appear then.
SWITCH = {
    SGD: ("momentum", 0.5),
    Adagrad: ("lr_decay", 0.1),
    Adadelta: ("rho", 0.5),
    RMSprop: ("centered", True),
    Adam: ("amsgrad", True),
    AdamW: ("amsgrad", True),
}
# float32 layers, a parameter over flat.GATHER_MAX elements (stepped on its own gradient), and a
# float64 one (a layout of its own).
FLAT_SHAPES = [((15, 20), np.float32), ((15,), np.float32), ((3, 15), np.float32),
               ((3,), np.float32), ((130, 130), np.float32), ((4,), np.float64)]  # fmt: skip


def _flat_trajectory(cls, kwargs, use_flat, monkeypatch):
    """50 steps with every irregularity the flat path must handle; the values after each step."""
    monkeypatch.setattr(Optimizer, "_use_flat", use_flat)
    gen = np.random.default_rng(7)
    params = [Tensor(gen.standard_normal(s).astype(d), requires_grad=True) for s, d in FLAT_SHAPES]
    late = Tensor(gen.standard_normal((5,)).astype(np.float32), requires_grad=True)
    opt = cls(params, **kwargs)
    history = []
    for t in range(STEPS):
        grads = [gen.standard_normal(p.shape).astype(p.dtype) for p in params + [late]]
        for k, (p, g) in enumerate(zip(params + [late], grads)):
            skip = (k == 1 and t == 3) or (k == 0 and 10 <= t <= 12) or (k == 5 and t < 20)
            p.grad = None if skip else Tensor(g)
        if t == 5:
            opt.add_param_group({"params": [late], "lr": 0.05})
        if t == 15:  # replaced, as Module.load_state_dict does
            params[2].data = params[2].numpy() * 0.5
        if t == 25:  # a fresh optimizer that continues from a state_dict
            saved = opt.state_dict()
            opt = cls(params, **kwargs)
            opt.add_param_group({"params": [late], "lr": 0.05})
            opt.load_state_dict(saved)
        if t == 30:
            key, value = SWITCH[cls]
            opt.param_groups[0][key] = value
        if t == 35:  # the same optimizer loads an older state
            opt.load_state_dict(saved)
        opt.param_groups[0]["lr"] *= 0.99
        opt.step()
        sd = opt.state_dict()
        history.append(([p.numpy().copy() for p in params + [late]], sd))
    return history


@pytest.mark.parametrize(("cls", "kwargs"), FLAT_CASES)
def test_flat_step_is_bitwise_the_per_parameter_step(cls, kwargs, monkeypatch):
    flat = _flat_trajectory(cls, kwargs, True, monkeypatch)
    alone = _flat_trajectory(cls, kwargs, False, monkeypatch)
    for t, ((values, sd), (values_alone, sd_alone)) in enumerate(zip(flat, alone)):
        for a, b in zip(values, values_alone):
            assert a.dtype == b.dtype
            np.testing.assert_array_equal(a, b, err_msg=f"step {t}")
        assert sd["param_groups"] == sd_alone["param_groups"]
        assert sd["state"].keys() == sd_alone["state"].keys()
        for i, entry in sd["state"].items():
            assert entry.keys() == sd_alone["state"][i].keys()
            for key, value in entry.items():
                np.testing.assert_array_equal(value, sd_alone["state"][i][key], err_msg=key)


def _counting_cpu_backend(monkeypatch, name):
    """Patch the optimizers' backend so that calls of the kernel `name` are counted."""
    import types

    from tinygrad_edu.backend import get_backend

    cpu, calls = get_backend("cpu"), []

    def counted(fn):
        def wrapper(param, *args, **kwargs):
            calls.append(param.size)
            return fn(param, *args, **kwargs)

        return wrapper

    step_fn = counted(getattr(cpu, name))  # the flat path calls it with check=False
    fake = types.SimpleNamespace(**{k: getattr(cpu, k) for k in dir(cpu) if not k.startswith("_")})
    setattr(fake, name, step_fn)
    monkeypatch.setattr(optimizer_module, "get_backend", lambda device: fake)
    return calls


def test_a_step_of_a_small_network_is_one_kernel_call(monkeypatch):
    calls = _counting_cpu_backend(monkeypatch, "adam_step")
    gen = np.random.default_rng(0)
    shapes = [(15, 784), (15,), (10, 15), (10,)]  # the chapter's 784-15-10 network
    params = [Tensor(gen.standard_normal(s).astype(np.float32), requires_grad=True) for s in shapes]
    opt = Adam(params)
    base = params[0]._data.base
    assert base is not None and all(p._data.base is base for p in params)  # views of one array
    for p in params:
        p.grad = Tensor(np.ones(p.shape, np.float32))
    opt.step()  # the first step makes each parameter's state, one parameter at a time
    assert calls == [11760, 15, 150, 10]
    calls.clear()
    opt.step()
    assert calls == [11935]
    calls.clear()
    params[1].grad = None  # no gradient: skipped, so the others are stepped in two runs
    opt.step()
    assert calls == [11760, 160]
    assert opt.state[params[1]]["step"] == 2 and opt.state[params[0]]["step"] == 3
    calls.clear()
    params[1].grad = Tensor(np.ones(15, np.float32))
    opt.step()  # params[1] is one step behind: Adam's bias correction differs, so its own run
    assert calls == [11760, 15, 160]


def test_flat_step_checks_every_gradient_before_changing_anything():
    params = [Tensor(np.ones(3), requires_grad=True) for _ in range(3)]
    opt = SGD(params, lr=0.1)
    for p in params:
        p.grad = Tensor(np.ones(3))
    opt.step()
    params[2].grad = Tensor(np.ones(4))
    with pytest.raises(ValueError, match=r"SGD: a parameter of shape \(3,\).* has a .grad of"):
        opt.step()
    for p in params:
        np.testing.assert_array_equal(p.numpy(), np.full(3, 0.9))
    assert all(opt.state[p]["step"] == 1 for p in params)


def test_module_load_state_dict_and_in_place_edits_reach_the_flat_step():
    from tinygrad_edu import nn

    model = nn.Sequential(nn.Linear(4, 3), nn.ReLU(), nn.Linear(3, 2))
    opt = SGD(model.parameters(), lr=0.1, momentum=0.9)
    x = Tensor(np.random.default_rng(0).standard_normal((8, 4)).astype(np.float32))
    model(x).sum().backward()
    opt.step()
    weights = {k: np.zeros_like(v) for k, v in model.state_dict().items()}
    model.load_state_dict(weights)  # new arrays: the next step copies them into the flat buffer
    opt.step()
    for p in model.parameters():  # zeros minus lr times (momentum * grad + grad)
        expected = -0.1 * (0.9 * p.grad.numpy() + p.grad.numpy())
        np.testing.assert_allclose(p.numpy(), expected, rtol=1e-6)
    model[0].weight.data[...] = 1.0  # in place, through the view
    opt.zero_grad()
    opt.step()
    np.testing.assert_array_equal(model[0].weight.numpy(), np.ones((3, 4), np.float32))
