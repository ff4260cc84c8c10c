"""The fused CUDA optimizer steps against ``optim_reference``, over several steps.

Each case runs the same rule on a host copy (numpy reference) and on device arrays, feeding both
the same gradients, and compares the parameter and every state buffer after each step.
"""

from __future__ import annotations

import numpy as np
import pytest

from tinygrad_edu.backend import optim_reference as R

SHAPE = (5, 7)
STEPS = 4

# rule, state buffers (None = unused), options: the documented combinations of each rule.
CASES = [
    (
        "sgd_step",
        ["momentum_buffer"],
        dict(lr=0.1, momentum=0.9, dampening=0.1, weight_decay=0.01, nesterov=False),
    ),  # noqa: E501
    (
        "sgd_step",
        ["momentum_buffer"],
        dict(lr=0.1, momentum=0.9, dampening=0.0, weight_decay=0.0, nesterov=True),
    ),  # noqa: E501
    ("sgd_step", [None], dict(lr=0.1, momentum=0, dampening=0, weight_decay=0.1, nesterov=False)),
    ("adagrad_step", ["state_sum"], dict(lr=0.1, lr_decay=0.01, weight_decay=0.1, eps=1e-10)),
    (
        "adadelta_step",
        ["square_avg", "acc_delta"],
        dict(lr=1.0, rho=0.9, eps=1e-6, weight_decay=0.1),
    ),  # noqa: E501
    (
        "rmsprop_step",
        ["square_avg", None, None],
        dict(lr=0.01, alpha=0.99, eps=1e-8, weight_decay=0.0, momentum=0, centered=False),
    ),  # noqa: E501
    (
        "rmsprop_step",
        ["square_avg", "momentum_buffer", "grad_avg"],
        dict(lr=0.01, alpha=0.9, eps=1e-8, weight_decay=0.1, momentum=0.5, centered=True),
    ),  # noqa: E501
    (
        "adam_step",
        ["exp_avg", "exp_avg_sq", None],
        dict(
            lr=0.01,
            beta1=0.9,
            beta2=0.999,
            eps=1e-8,
            weight_decay=0.0,
            amsgrad=False,
            decoupled_weight_decay=False,
        ),
    ),  # noqa: E501
    (
        "adam_step",
        ["exp_avg", "exp_avg_sq", "max_exp_avg_sq"],
        dict(
            lr=0.01,
            beta1=0.8,
            beta2=0.9,
            eps=1e-8,
            weight_decay=0.1,
            amsgrad=True,
            decoupled_weight_decay=False,
        ),
    ),  # noqa: E501
    (
        "adam_step",
        ["exp_avg", "exp_avg_sq", None],
        dict(
            lr=0.01,
            beta1=0.9,
            beta2=0.99,
            eps=1e-8,
            weight_decay=0.1,
            amsgrad=False,
            decoupled_weight_decay=True,
        ),
    ),  # noqa: E501
]
TAKES_STEP = {"adagrad_step", "adam_step"}


def _run(C, rule, buffers, options, dtype, rng):
    param = rng.standard_normal(SHAPE).astype(dtype)
    init = 0.1 if rule == "adagrad_step" else 0.0  # Adagrad's initial_accumulator_value
    ref_state = [None if b is None else np.full(SHAPE, init, dtype) for b in buffers]
    dev_param = C.asarray(param.copy())
    dev_state = [None if b is None else C.asarray(s.copy()) for b, s in zip(buffers, ref_state)]
    ref_param = param.copy()
    for step in range(1, STEPS + 1):
        grad = rng.standard_normal(SHAPE).astype(dtype)
        kw = dict(options, step=step) if rule in TAKES_STEP else options
        getattr(R, rule)(ref_param, grad, *ref_state, **kw)
        getattr(C, rule)(dev_param, C.asarray(grad), *dev_state, **kw)
        yield (
            ref_param,
            C.to_numpy(dev_param),
            ref_state,
            [None if s is None else C.to_numpy(s) for s in dev_state],
        )


@pytest.mark.parametrize("rule, buffers, options", CASES, ids=lambda c: str(c)[:40])
def test_step_matches_reference_over_several_steps(C, rng, rule, buffers, options):
    for ref_param, dev_param, ref_state, dev_state in _run(
        C, rule, buffers, options, np.float64, rng
    ):
        np.testing.assert_allclose(dev_param, ref_param, rtol=1e-6, atol=1e-6)
        for r, d in zip(ref_state, dev_state):
            assert (r is None) == (d is None)
            if r is not None:
                np.testing.assert_allclose(d, r, rtol=1e-6, atol=1e-6)
    assert dev_param.dtype == np.float64


@pytest.mark.parametrize("rule, buffers, options", [CASES[0], CASES[7]], ids=["sgd", "adam"])
def test_float32_params_are_updated_in_float32(C, rng, rule, buffers, options):
    for ref_param, dev_param, _, _ in _run(C, rule, buffers, options, np.float32, rng):
        assert dev_param.dtype == np.float32
        np.testing.assert_allclose(dev_param, ref_param, rtol=1e-5, atol=1e-6)


def test_steps_check_their_arrays(C):
    p = C.asarray(np.zeros((2, 3)))
    with pytest.raises(ValueError, match="grad has shape"):
        C.sgd_step(p, C.asarray(np.zeros(3)), None, lr=0.1, momentum=0, dampening=0,
                   weight_decay=0, nesterov=False)  # fmt: skip
    with pytest.raises(TypeError, match="not a CUDA device array"):
        C.sgd_step(p, np.zeros((2, 3)), None, lr=0.1, momentum=0, dampening=0,
                   weight_decay=0, nesterov=False)  # fmt: skip
    with pytest.raises(ValueError, match="max_exp_avg_sq"):
        C.adam_step(p, p, C.zeros_like(p), C.zeros_like(p), None, step=1, lr=0.1, beta1=0.9,
                    beta2=0.99, eps=1e-8, weight_decay=0, amsgrad=True,
                    decoupled_weight_decay=False)  # fmt: skip


def test_optimizer_steps_on_the_device_of_its_parameters(C, rng):
    """Built on the CPU, moved with Module.to("cuda") after: the optimizer takes each parameter's
    backend from its device, so the steps run on the GPU, with the numbers of a CPU run."""
    from tinygrad_edu import nn, optim
    from tinygrad_edu.tensor import Tensor

    def run(device_after_build):
        model = nn.Sequential(
            nn.Linear(3, 4, dtype="float64"), nn.Tanh(), nn.Linear(4, 2, dtype="float64")
        )
        for p, init in zip(model.parameters(), inits):
            p.data = init
        params = model.parameters()
        opt = optim.Adam(params, lr=0.05)
        if device_after_build:
            assert model.to(device_after_build) is model and model.parameters()[0] is params[0]
        x = Tensor(xs, device=params[0].device)
        for _ in range(3):
            opt.zero_grad()
            (model(x) * model(x)).sum().backward()
            opt.step()
        assert all(p.device == (device_after_build or "cpu") for p in params)
        return [p.numpy() for p in params]

    shapes = [(4, 3), (4,), (2, 4), (2,)]
    inits = [rng.standard_normal(s) for s in shapes]
    xs = rng.standard_normal((5, 3))
    for on_gpu, on_cpu in zip(run("cuda"), run(None)):
        np.testing.assert_allclose(on_gpu, on_cpu, rtol=1e-9, atol=1e-12)
