"""Higher-order gradients: ``backward(create_graph=True)``, ``tg.grad`` and the functional
transforms, against central finite differences of the first derivative (float64), closed
forms, and PyTorch when it is installed."""

from __future__ import annotations

import numpy as np
import pytest

import tinygrad_edu as tg
from tinygrad_edu import Tensor as _Tensor
from tinygrad_edu.nn import functional as F

RNG = np.random.default_rng(7)


def Tensor(data, **kwargs):  # noqa: N802  (numpy's dtype kept: float64 values, int64 labels)
    data = np.asarray(data)
    kwargs.setdefault("dtype", data.dtype)
    return _Tensor(data, **kwargs)


def _t(*shape, low=-2.0, high=2.0, positive=False):
    values = RNG.uniform(0.5 if positive else low, high, size=shape)
    return Tensor(values, dtype=np.float64, requires_grad=True)


def _away_from_kinks(x: Tensor, points=(0.0,), gap=0.2) -> Tensor:
    """Nudge entries away from the points where an op is not differentiable (FD is wrong there)."""
    v = x.numpy().copy()
    for p in points:
        near = np.abs(v - p) < gap
        v[near] = p + np.where(v[near] >= p, gap, -gap)
    return Tensor(v, dtype=np.float64, requires_grad=True)


def check_second_derivative(f, inputs, atol=1e-6, rtol=1e-5):
    """d/dx of (v . dL/dx), L = sum(f(x) * r): backprop through the recorded backward pass
    against central differences of the first derivative (itself computed by backprop)."""
    out = f(*inputs)
    r = Tensor(RNG.standard_normal(out.shape))
    vs = [Tensor(RNG.standard_normal(x.shape)) for x in inputs]

    def first_derivative_dot_v(create_graph: bool):
        with tg.enable_grad():
            loss = (f(*inputs) * r).sum()
            grads = tg.grad(loss, inputs, create_graph=create_graph, allow_unused=True)
            total = None
            for g, v in zip(grads, vs):
                if g is None:
                    continue
                term = (g * v).sum()
                total = term if total is None else total + term
            return total

    s = first_derivative_dot_v(create_graph=True)
    # A gradient that does not depend on the inputs (an op linear in them) carries no graph.
    second = tg.grad(s, inputs, allow_unused=True) if s.requires_grad else [None] * len(inputs)
    numeric = tg.numerical_gradient(lambda: first_derivative_dot_v(False), inputs, eps=1e-5)
    for i, (got, want) in enumerate(zip(second, numeric)):
        got = np.zeros(inputs[i].shape) if got is None else got.numpy()
        np.testing.assert_allclose(got, want, atol=atol, rtol=rtol, err_msg=f"input {i}")


# Every differentiable op of the v1 surface, as (name, function, inputs).
def _cases():
    x, y = _t(3, 4), _t(3, 4)
    pos = _t(3, 4, positive=True)
    row = _t(4)
    yield "add (broadcast)", lambda a, b: a + b, [x, row]
    yield "sub", lambda a, b: a - b, [x, y]
    yield "mul", lambda a, b: a * b, [x, y]
    yield "mul (broadcast)", lambda a, b: a * b * a, [x, row]
    yield "div", lambda a, b: a / b, [x, pos]
    yield "pow tensor exponent", lambda a, b: a**b, [pos, _t(3, 4, low=-1.0, high=1.5)]
    yield "pow scalar exponent", lambda a: a**3, [x]
    yield "pow scalar base", lambda a: 2.0**a, [x]
    yield "scalar add/mul/rsub/rdiv", lambda a: (3.0 - a * 2.0 + 1.0) / (a * a + 1.0), [x]
    yield "neg", lambda a: -(a * a), [x]
    yield "exp", lambda a: a.exp(), [x]
    yield "log", lambda a: a.log(), [pos]
    yield "sqrt", lambda a: a.sqrt(), [pos]
    yield "abs", lambda a: a.abs() * a, [_away_from_kinks(x)]
    yield "relu", lambda a: a.relu() * a, [_away_from_kinks(x)]
    yield "leaky_relu", lambda a: a.leaky_relu(0.1) * a, [_away_from_kinks(x)]
    yield "sigmoid", lambda a: a.sigmoid(), [x]
    yield "tanh", lambda a: a.tanh(), [x]
    yield "clip", lambda a: a.clip(-1.0, 1.0) * a, [_away_from_kinks(x, (-1.0, 1.0))]
    yield "sum over an axis", lambda a: a.sum(axis=1) ** 2, [x]
    yield "mean", lambda a: a.mean(axis=0, keepdims=True) * a, [x]
    yield "max over an axis", lambda a: a.max(axis=1) * a.sum(axis=1), [x]
    yield "min", lambda a: a.min() * a, [x]
    yield "reshape", lambda a: a.reshape(4, 3) @ a, [x]
    yield "transpose", lambda a: a.transpose() @ a, [x]
    yield "getitem (slice)", lambda a: a[1:, ::2] ** 2, [x]
    yield "getitem (repeated index)", lambda a: a[[0, 0, 2]] ** 3, [x]
    yield "cat", lambda a, b: _Tensor.cat([a, b * b], axis=0) ** 2, [x, y]
    yield "stack", lambda a, b: _Tensor.stack([a, b], axis=1).sigmoid(), [x, y]
    yield "matmul", lambda a, b: a @ b, [x, _t(4, 2)]
    yield "softmax", lambda a: a.softmax(axis=1), [x]
    yield "log_softmax", lambda a: a.log_softmax(axis=1), [x]
    labels = Tensor(np.array([0, 3, 1]))
    yield "cross_entropy", lambda a: F.cross_entropy(a, labels), [x]
    yield "cross_entropy sum", lambda a: F.cross_entropy(a, labels, reduction="sum"), [x]
    yield "mse_loss", lambda a, b: F.mse_loss(a.tanh(), b), [x, y]
    probs = Tensor(RNG.uniform(0.1, 0.9, (3, 4)))
    yield "binary_cross_entropy", lambda a: F.binary_cross_entropy(a.sigmoid(), probs), [x]


def _linear_cases():
    for activation in (None, "relu", "sigmoid", "tanh"):
        layer = tg.nn.Linear(4, 3, activation=activation) if activation else tg.nn.Linear(4, 3)
        yield activation, layer


CASES = list(_cases())


@pytest.mark.parametrize("name,f,inputs", CASES, ids=[c[0] for c in CASES])
def test_second_derivative_of_every_op(name, f, inputs):
    check_second_derivative(f, inputs)


def test_second_derivative_of_a_linear_layer_with_each_activation():
    """The fused Linear op (product, bias and activation in one node) has a composed twin."""
    x = _away_from_kinks(_t(5, 4))
    for activation in (None, "relu", "sigmoid", "tanh"):
        w, b = _t(3, 4), _t(3)

        def f(x_, w_, b_, act=activation):
            from tinygrad_edu import ops

            return ops.Linear.apply(x_, w_, b_, act)

        check_second_derivative(f, [x, w, b])


def test_third_derivative_of_x_to_the_fourth():
    x = Tensor(np.array([1.5, -0.5, 2.0]), requires_grad=True)
    (g,) = tg.grad((x**4).sum(), x, create_graph=True)
    (h,) = tg.grad(g.sum(), x, create_graph=True)
    (t,) = tg.grad(h.sum(), x)
    v = x.numpy()
    np.testing.assert_allclose(g.numpy(), 4 * v**3)
    np.testing.assert_allclose(h.numpy(), 12 * v**2)
    np.testing.assert_allclose(t.numpy(), 24 * v)


def test_backward_create_graph_gives_leaves_a_differentiable_grad():
    x = Tensor(np.array([0.3, -1.2]), requires_grad=True)
    y = x.sin().sum()
    y.backward(create_graph=True)
    assert x.grad.requires_grad
    first = x.grad
    x.grad = None
    first.sum().backward()
    np.testing.assert_allclose(x.grad.numpy(), -np.sin([0.3, -1.2]))  # d/dx cos x


def test_hessian_of_a_two_parameter_loss_closed_form():
    """L(a, b) = a^2 b + b^3: H = [[2b, 2a], [2a, 6b]]."""
    w = Tensor(np.array([1.5, -0.7]))

    def loss(p):
        return p[0] * p[0] * p[1] + p[1] ** 3

    h = tg.autograd.functional.hessian(loss, w).numpy()
    a, b = 1.5, -0.7
    np.testing.assert_allclose(h, [[2 * b, 2 * a], [2 * a, 6 * b]])


def test_jacobian_vjp_hvp_shapes_and_values():
    x = Tensor(np.array([[0.5, -1.0, 2.0]]))
    jac = tg.autograd.functional.jacobian(lambda v: v.tanh() * 2.0, x)
    assert jac.shape == (1, 3, 1, 3)
    expected = np.diag(2 * (1 - np.tanh(x.numpy()[0]) ** 2)).reshape(1, 3, 1, 3)
    np.testing.assert_allclose(jac.numpy(), expected)
    out, vj = tg.autograd.functional.vjp(lambda v: v**2, x, Tensor(np.ones((1, 3))))
    np.testing.assert_allclose(out.numpy(), x.numpy() ** 2)
    np.testing.assert_allclose(vj.numpy(), 2 * x.numpy())
    v = Tensor(np.array([[1.0, 0.0, -1.0]]))
    value, hv = tg.autograd.functional.hvp(lambda p: (p**3).sum(), x, v)
    np.testing.assert_allclose(value.numpy(), (x.numpy() ** 3).sum())
    np.testing.assert_allclose(hv.numpy(), 6 * x.numpy() * v.numpy())


def _mlp_params(seed=0):
    rng = np.random.default_rng(seed)
    return [rng.standard_normal((5, 3)) * 0.5, rng.standard_normal(5) * 0.1,
            rng.standard_normal((2, 5)) * 0.5, rng.standard_normal(2) * 0.1]  # fmt: skip


def _mlp_loss_tg(flat, x, labels, shapes):
    parts, start = [], 0
    for shape in shapes:
        n = int(np.prod(shape))
        parts.append(flat[start : start + n].reshape(*shape))
        start += n
    w1, b1, w2, b2 = parts
    h = (x @ w1.transpose() + b1).tanh()
    return F.cross_entropy(h @ w2.transpose() + b2, labels)


def test_hessian_of_a_small_mlp_loss_against_finite_differences():
    params = _mlp_params()
    shapes = [p.shape for p in params]
    flat = Tensor(np.concatenate([p.reshape(-1) for p in params]))
    x = Tensor(np.random.default_rng(1).standard_normal((4, 3)))
    labels = Tensor(np.array([0, 1, 1, 0]))
    f = lambda p: _mlp_loss_tg(p, x, labels, shapes)  # noqa: E731
    h = tg.autograd.functional.hessian(f, flat).numpy()
    assert h.shape == (flat.size, flat.size)
    np.testing.assert_allclose(h, h.T, atol=1e-10)  # a Hessian is symmetric
    # Column j by central differences of the (backprop) gradient.
    eps = 1e-5
    base = flat.numpy()
    for j in range(0, flat.size, 7):
        cols = []
        for sign in (1, -1):
            p = base.copy()
            p[j] += sign * eps
            t = Tensor(p, requires_grad=True)
            (g,) = tg.grad(f(t), t)
            cols.append(g.numpy())
        np.testing.assert_allclose(h[:, j], (cols[0] - cols[1]) / (2 * eps), atol=1e-6)


def test_hessian_of_a_small_mlp_loss_against_pytorch():
    torch = pytest.importorskip("torch")
    params = _mlp_params(3)
    shapes = [p.shape for p in params]
    flat_np = np.concatenate([p.reshape(-1) for p in params])
    x_np = np.random.default_rng(4).standard_normal((4, 3))
    labels_np = np.array([1, 0, 1, 1])
    ours = tg.autograd.functional.hessian(
        lambda p: _mlp_loss_tg(p, Tensor(x_np), Tensor(labels_np), shapes), Tensor(flat_np)
    ).numpy()

    def torch_loss(p):
        parts, start = [], 0
        for shape in shapes:
            n = int(np.prod(shape))
            parts.append(p[start : start + n].reshape(*shape))
            start += n
        w1, b1, w2, b2 = parts
        h = torch.tanh(torch.tensor(x_np) @ w1.T + b1)
        return torch.nn.functional.cross_entropy(h @ w2.T + b2, torch.tensor(labels_np))

    theirs = torch.autograd.functional.hessian(torch_loss, torch.tensor(flat_np)).numpy()
    np.testing.assert_allclose(ours, theirs, atol=1e-10)


def test_a_gradient_penalty_training_step_matches_pytorch():
    """WGAN-GP's everyday code: loss = f(x) + lambda * (|df/dx| - 1)^2, backward, SGD step."""
    torch = pytest.importorskip("torch")
    rng = np.random.default_rng(5)
    w_np, x_np = rng.standard_normal((1, 3)), rng.standard_normal((4, 3))

    w = Tensor(w_np, requires_grad=True)
    x = Tensor(x_np, requires_grad=True)
    out = (x @ w.transpose()).tanh().sum()
    (gx,) = tg.grad(out, x, create_graph=True)
    norms = ((gx * gx).sum(axis=1) + 1e-12).sqrt()
    loss = out + 10.0 * ((norms - 1.0) ** 2).mean()
    loss.backward()
    with tg.no_grad():
        w -= 0.1 * w.grad

    tw = torch.tensor(w_np, requires_grad=True)
    tx = torch.tensor(x_np, requires_grad=True)
    tout = torch.tanh(tx @ tw.T).sum()
    (tgx,) = torch.autograd.grad(tout, tx, create_graph=True)
    tnorms = ((tgx * tgx).sum(dim=1) + 1e-12).sqrt()
    tloss = tout + 10.0 * ((tnorms - 1.0) ** 2).mean()
    tloss.backward()
    with torch.no_grad():
        tw -= 0.1 * tw.grad
    np.testing.assert_allclose(loss.item(), tloss.item(), rtol=1e-12)
    np.testing.assert_allclose(w.numpy(), tw.detach().numpy(), rtol=1e-10)


def test_grad_leaves_dot_grad_alone_and_checks_its_inputs():
    x = Tensor(np.array([1.0, 2.0]), requires_grad=True)
    x.grad = Tensor(np.array([5.0, 5.0]))
    (g,) = tg.grad((x * x).sum(), x)
    np.testing.assert_allclose(g.numpy(), [2.0, 4.0])
    np.testing.assert_allclose(x.grad.numpy(), [5.0, 5.0])
    unused = Tensor(np.array([1.0]), requires_grad=True)
    with pytest.raises(RuntimeError, match="not used"):
        tg.grad((x * 2.0).sum(), [x, unused])
    assert tg.grad((x * 2.0).sum(), [x, unused], allow_unused=True)[1] is None
    with pytest.raises(RuntimeError, match="does not require grad"):
        tg.grad((x * 2.0).sum(), Tensor(np.array([1.0])))


def test_grad_of_an_intermediate_tensor():
    x = Tensor(np.array([0.5, -1.0]), requires_grad=True)
    h = x * 3.0
    (gh,) = tg.grad((h * h).sum(), h)
    np.testing.assert_allclose(gh.numpy(), 2 * 3.0 * x.numpy())


def test_create_graph_through_a_rule_without_a_twin_names_the_op():
    from tinygrad_edu.autograd import Op

    class Cube(Op):
        def forward(ctx, x):
            ctx.x = x
            return ctx.backend.binary("pow", x, 3.0)

        def backward(ctx, g):
            return ctx.backend.some_fused_kernel(g, ctx.x)

    x = Tensor(np.array([1.0, 2.0]), requires_grad=True)
    with pytest.raises(NotImplementedError, match="Cube.*some_fused_kernel"):
        Cube.apply(x).sum().backward(create_graph=True)


def test_first_order_results_are_unchanged_by_the_new_path():
    """The same loss, backward with and without create_graph: the same numbers."""
    x = _t(6, 4)
    layer = tg.nn.Linear(4, 3)
    labels = Tensor(np.array([0, 1, 2, 0, 1, 2]))
    F.cross_entropy(layer(x).tanh(), labels).backward()
    plain = [p.grad.numpy().copy() for p in layer.parameters()]
    layer.zero_grad()
    F.cross_entropy(layer(x).tanh(), labels).backward(create_graph=True)
    for got, want in zip([p.grad.numpy() for p in layer.parameters()], plain):
        np.testing.assert_allclose(got, want, rtol=1e-12)


def _torch_pairs(torch):
    tf = torch.nn.functional
    return [
        ("exp", lambda a: a.exp(), torch.exp),
        ("log", lambda a: (a * a + 1.0).log(), lambda a: torch.log(a * a + 1.0)),
        ("sqrt", lambda a: (a * a + 1.0).sqrt(), lambda a: torch.sqrt(a * a + 1.0)),
        ("tanh", lambda a: a.tanh(), torch.tanh),
        ("sigmoid", lambda a: a.sigmoid(), torch.sigmoid),
        ("div", lambda a: 1.0 / (a * a + 2.0), lambda a: 1.0 / (a * a + 2.0)),
        ("pow", lambda a: (a * a + 1.0) ** 1.5, lambda a: (a * a + 1.0) ** 1.5),
        ("softmax", lambda a: a.softmax(axis=1) * a, lambda a: torch.softmax(a, 1) * a),
        ("log_softmax", lambda a: a.log_softmax(axis=1) ** 2, lambda a: tf.log_softmax(a, 1) ** 2),
        ("matmul", lambda a: (a @ a.transpose()).tanh(), lambda a: torch.tanh(a @ a.T)),
        ("max", lambda a: a.max(axis=1) * a.sum(axis=1), lambda a: a.max(1).values * a.sum(1)),
        ("cross_entropy",
         lambda a: F.cross_entropy(a * a, Tensor(np.array([0, 2, 1]))),
         lambda a: tf.cross_entropy(a * a, torch.tensor([0, 2, 1]))),
    ]  # fmt: skip


@pytest.mark.parametrize("index", range(12))
def test_second_derivatives_match_pytorch(index):
    """The Hessian-vector product of sum(f(x) * r) for each op, against torch.autograd."""
    torch = pytest.importorskip("torch")
    name, ours, theirs = _torch_pairs(torch)[index]
    rng = np.random.default_rng(index)
    x_np, v_np = rng.uniform(-1.5, 1.5, (3, 4)), rng.standard_normal((3, 4))
    r_np = rng.standard_normal(ours(Tensor(x_np)).shape)

    x = Tensor(x_np, requires_grad=True)
    (g,) = tg.grad((ours(x) * Tensor(r_np)).sum(), x, create_graph=True)
    (hv,) = tg.grad((g * Tensor(v_np)).sum(), x)

    tx = torch.tensor(x_np, requires_grad=True)
    (tgx,) = torch.autograd.grad((theirs(tx) * torch.tensor(r_np)).sum(), tx, create_graph=True)
    (thv,) = torch.autograd.grad((tgx * torch.tensor(v_np)).sum(), tx)
    np.testing.assert_allclose(g.numpy(), tgx.detach().numpy(), rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(hv.numpy(), thv.numpy(), rtol=1e-9, atol=1e-11, err_msg=name)


def test_grad_outputs_may_be_one_array_a_tensor_or_a_list():
    x = Tensor(np.array([1.0, 2.0]), requires_grad=True)
    for seed in (np.array([1.0, 2.0]), Tensor(np.array([1.0, 2.0])), [np.array([1.0, 2.0])]):
        (g,) = tg.grad(x * 3.0, x, seed)
        np.testing.assert_allclose(g.numpy(), [3.0, 6.0])
