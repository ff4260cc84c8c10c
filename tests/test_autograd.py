"""Graph semantics of the engine (API.md, section Autograd)."""

from __future__ import annotations

import sys
import warnings

import numpy as np
import pytest

import tinygrad_edu as tg
from tinygrad_edu import Tensor
from tinygrad_edu.autograd import Op


def leaf(a, dtype=np.float64) -> Tensor:
    return Tensor(np.asarray(a, dtype=dtype), requires_grad=True)


# ----- shared subexpressions -----


def test_diamond_adds_both_paths():
    """x -> u = x^2 -> (v = u + u, w = v * u): dw/dx = d(2 u^2)/dx = 8 x^3."""
    x = leaf([3.0, -1.5])
    u = x * x
    v = u + u
    w = v * u
    w.sum().backward()
    np.testing.assert_allclose(x.grad.numpy(), 8 * np.array([3.0, -1.5]) ** 3)


def test_same_leaf_used_many_times(rng):
    a = rng.uniform(0.5, 2.0, (3, 2))
    x = leaf(a)
    y = x * x + x.exp() * x - x / (x + 1.0) + x.sum(axis=0)
    y.sum().backward()
    expected = 2 * a + np.exp(a) * (1 + a) - 1 / (a + 1) ** 2 + 3
    np.testing.assert_allclose(x.grad.numpy(), expected, rtol=1e-12)


def test_wide_diamond_many_consumers_of_one_node(rng):
    a = rng.standard_normal(4)
    x = leaf(a)
    h = x.tanh()
    total = h * 0.0
    for k in range(1, 30):
        total = total + h * float(k)
    total.sum().backward()
    np.testing.assert_allclose(x.grad.numpy(), 435 * (1 - np.tanh(a) ** 2), rtol=1e-12)


def test_each_node_is_visited_once():
    calls = []

    class Counted(Op):
        def forward(ctx, x):
            return x * 1.0

        def backward(ctx, g):
            calls.append(1)
            return g

    x = leaf([1.0, 2.0])
    h = Counted.apply(x)
    out = (h + h) * h + h
    out.sum().backward()
    assert len(calls) == 1
    np.testing.assert_allclose(x.grad.numpy(), 4 * np.array([1.0, 2.0]) + 1)


# ----- accumulation and what keeps a .grad -----


def test_gradients_accumulate_across_backward_calls():
    x = leaf([1.0, 2.0])
    (x * x).sum().backward()
    (x * 3.0).sum().backward()
    np.testing.assert_allclose(x.grad.numpy(), [2.0 + 3.0, 4.0 + 3.0])
    x.zero_grad()
    (x * 3.0).sum().backward()
    np.testing.assert_allclose(x.grad.numpy(), [3.0, 3.0])


def test_only_leaves_keep_grad():
    x = leaf([1.0, 2.0])
    h = x * 2.0
    y = (h * h).sum()
    y.backward()
    assert h.grad is None and y.grad is None
    assert x.grad is not None
    assert x.is_leaf and not h.is_leaf


def test_tensors_without_requires_grad_get_no_grad():
    x = leaf([1.0, 2.0])
    c = Tensor([3.0, 4.0])
    (x * c).sum().backward()
    assert c.grad is None
    np.testing.assert_array_equal(x.grad.numpy(), [3.0, 4.0])


def test_no_work_for_inputs_that_need_no_gradient():
    seen = []

    class Spy(Op):
        def forward(ctx, x, y):
            return x * y

        def backward(ctx, g):
            seen.append(ctx.needs_input_grad)
            return (g if ctx.needs_input_grad[0] else None, g if ctx.needs_input_grad[1] else None)

    x, c = leaf([1.0]), Tensor([2.0])
    Spy.apply(x, c).sum().backward()
    assert seen == [(True, False)]


def test_backward_on_a_leaf_itself():
    x = leaf([1.0, 2.0])
    x.backward(np.array([5.0, 6.0]))
    np.testing.assert_array_equal(x.grad.numpy(), [5.0, 6.0])


@pytest.mark.parametrize(
    "grad",
    [np.array([[1.0, 2.0]]), Tensor([[1.0, 2.0]]), [[1.0, 2.0]]],
    ids=["ndarray", "tensor", "list"],
)
def test_backward_grad_argument_kinds(grad):
    x = leaf([[1.0, -1.0]])
    (x * 3.0).backward(grad)
    np.testing.assert_array_equal(x.grad.numpy(), [[3.0, 6.0]])


def test_backward_scalar_grad_on_single_element_output():
    x = leaf([2.0])
    (x * x).backward(2.0)
    np.testing.assert_array_equal(x.grad.numpy(), [8.0])


def test_grad_dtype_follows_the_leaf():
    x32 = leaf([1.0, 2.0], np.float32)
    x64 = leaf([3.0, 4.0], np.float64)
    out = (x32 * x64).sum()
    assert out.dtype == np.float64
    out.backward()
    assert x32.grad.dtype == np.float32 and x64.grad.dtype == np.float64
    np.testing.assert_array_equal(x32.grad.numpy(), [3.0, 4.0])


def test_broadcast_leaf_gets_a_gradient_of_its_own_shape():
    b = leaf([1.0, 2.0, 3.0])
    x = Tensor(np.ones((4, 3)))
    (x + b).sum().backward()
    assert b.grad.shape == (3,)
    np.testing.assert_array_equal(b.grad.numpy(), [4.0, 4.0, 4.0])
    s = leaf([[2.0]])
    (x * s).sum().backward()
    assert s.grad.shape == (1, 1)
    np.testing.assert_array_equal(s.grad.numpy(), [[12.0]])


# ----- no_grad and detach -----


def test_no_grad_context_records_nothing():
    x = leaf([1.0, 2.0])
    with tg.no_grad():
        assert not tg.is_grad_enabled()
        y = x * 2.0
        z = (y + x).exp()
    assert tg.is_grad_enabled()
    assert not y.requires_grad and not z.requires_grad
    assert y.is_leaf and z.is_leaf
    with pytest.raises(RuntimeError, match="does not require grad"):
        z.sum().backward()


def test_no_grad_as_decorator_and_nested():
    @tg.no_grad()
    def evaluate(t):
        return t * 2.0

    x = leaf([1.0])
    assert not evaluate(x).requires_grad
    assert tg.is_grad_enabled()
    with tg.no_grad():
        with tg.no_grad():
            pass
        assert not tg.is_grad_enabled()
    assert tg.is_grad_enabled()


def test_no_grad_restores_state_after_an_exception():
    with pytest.raises(ZeroDivisionError), tg.no_grad():
        raise ZeroDivisionError
    assert tg.is_grad_enabled()


def test_detach_cuts_the_graph():
    x = leaf([1.0, 2.0])
    y = x * 3.0
    z = y.detach() * x
    z.sum().backward()
    np.testing.assert_array_equal(x.grad.numpy(), [3.0, 6.0])  # only the direct path
    assert not y.detach().requires_grad


# ----- retain_graph -----


def test_second_backward_without_retain_graph_raises():
    x = leaf([1.0, 2.0])
    y = (x.exp() * x).sum()
    y.backward()
    with pytest.raises(RuntimeError, match="retain_graph"):
        y.backward()


def test_retain_graph_allows_a_second_backward():
    x = leaf([1.0, 2.0])
    y = (x * x).sum()
    y.backward(retain_graph=True)
    y.backward(retain_graph=True)
    y.backward()
    np.testing.assert_array_equal(x.grad.numpy(), [6.0, 12.0])
    with pytest.raises(RuntimeError, match="second time"):
        y.backward()


def test_released_shared_subgraph_raises_for_another_output():
    x = leaf([1.0, 2.0])
    h = x.exp()
    a, b = h.sum(), (h * 2.0).sum()
    a.backward()
    with pytest.raises(RuntimeError, match="retain_graph"):
        b.backward()


def test_two_outputs_of_a_retained_graph():
    x = leaf([1.0, 2.0])
    h = x.exp()
    a, b = h.sum(), (h * 2.0).sum()
    a.backward(retain_graph=True)
    b.backward()
    np.testing.assert_allclose(x.grad.numpy(), 3 * np.exp([1.0, 2.0]))


# ----- depth -----


def test_ten_thousand_op_chain_at_default_recursion_limit():
    assert sys.getrecursionlimit() <= 10_000  # the default (1000) or close: the walk is iterative
    x = leaf([1.0])
    y = x
    for _ in range(5000):  # 10,000 graph nodes, each the input of the next
        y = y * 1.0001
        y = y + 0.0
    y.sum().backward()
    np.testing.assert_allclose(x.grad.numpy(), [1.0001**5000], rtol=1e-10)


def test_deep_chain_of_mixed_ops():
    x = leaf([0.3])
    y = x
    for _ in range(10_000):
        y = y.tanh() * 1.01
    y.sum().backward()
    expected, v = 1.0, 0.3
    for _ in range(10_000):
        expected *= (1 - np.tanh(v) ** 2) * 1.01
        v = np.tanh(v) * 1.01
    np.testing.assert_allclose(y.item(), v, rtol=1e-9)
    np.testing.assert_allclose(x.grad.item(), expected, rtol=1e-8)


# ----- what the graph captured stays as it was -----


def test_reassigning_data_after_the_forward_does_not_corrupt_the_graph():
    a = leaf([1.0, 2.0, 3.0])
    b = leaf([4.0, 5.0, 6.0])
    c = a * b
    a.data = np.array([10.0, 10.0, 10.0])  # replaces a's storage; the graph keeps the old one
    c.sum().backward()
    np.testing.assert_array_equal(b.grad.numpy(), [1.0, 2.0, 3.0])
    np.testing.assert_array_equal(a.grad.numpy(), [4.0, 5.0, 6.0])


def test_building_more_graph_does_not_corrupt_saved_values():
    x = leaf([0.5, 1.5])
    e = x.exp()
    y = (e * x).sum()
    for _ in range(3):  # more ops on the same tensors, before backward
        _ = (e * 2.0 + x * x).exp().sum()
        _ = e.relu() * x.sigmoid()
    y.backward()
    a = np.array([0.5, 1.5])
    np.testing.assert_allclose(x.grad.numpy(), np.exp(a) * (1 + a), rtol=1e-12)


def test_backward_does_not_modify_forward_values():
    x = leaf([0.5, -1.0])
    h = x.tanh()
    before = h.numpy().copy()
    out = (h * h).sum()
    out.backward()
    np.testing.assert_array_equal(h.numpy(), before)
    np.testing.assert_array_equal(x.numpy(), [0.5, -1.0])


def test_leaves_fed_the_same_gradient_do_not_alias():
    for make in (lambda a, b: a + b, lambda a, b: a - b * 1.0, lambda a, b: a.reshape(2) + b):
        a, b = leaf([1.0, 2.0]), leaf([3.0, 4.0])
        make(a, b).sum().backward()
        before = b.grad.numpy().copy()
        a.grad.data[0] = 100.0  # in-place edit of one gradient
        np.testing.assert_array_equal(b.grad.numpy(), before)


def test_users_grad_array_is_not_modified_nor_aliased():
    for dtype in (np.float32, np.float64):
        a, b = leaf([1.0, 2.0], dtype), leaf([3.0, 4.0], dtype)
        g = np.array([1.0, 1.0], dtype=dtype)
        (a + b).backward(g)
        (a + b).backward(g)  # accumulation adds into a.grad: must not write into g
        np.testing.assert_array_equal(g, [1.0, 1.0])
        a.grad.data[:] = 7.0
        np.testing.assert_array_equal(g, [1.0, 1.0])
        assert not np.shares_memory(a.grad.numpy(), g)
        x = leaf([1.0, 2.0], dtype)
        x.backward(g)
        x.grad.data[:] = 9.0
        np.testing.assert_array_equal(g, [1.0, 1.0])


def test_users_grad_array_enters_the_graph_uncopied_but_never_leaks_into_a_grad():
    # backward(G) no longer copies G (a 4 MB copy for a 1024 x 1024 output): every path by
    # which G, or a view of it, can reach a leaf must still give the leaf memory of its own.
    rng = np.random.default_rng(0)
    paths = {
        "leaf itself": lambda a, b: a,
        "add": lambda a, b: a + b,
        "add scalar": lambda a, b: a + 1.0,
        "reshape": lambda a, b: a.reshape(3, 2).reshape(2, 3),
        "transpose": lambda a, b: a.T.T,
        "getitem": lambda a, b: a[:, :],
        "matmul": lambda a, b: a @ b.T,
        "mul": lambda a, b: a * b,
    }
    for name, make in paths.items():
        a, b = leaf(rng.standard_normal((2, 3))), leaf(rng.standard_normal((2, 3)))
        out = make(a, b)
        g = rng.standard_normal(out.shape)
        g_before = g.copy()
        out.backward(g)
        assert not np.shares_memory(a.grad.numpy(), g), name
        np.testing.assert_array_equal(g, g_before, err_msg=name)  # backward wrote nothing into g
        a_grad = a.grad.numpy().copy()
        g[...] = 123.0  # the user reuses the buffer for the next step
        np.testing.assert_array_equal(a.grad.numpy(), a_grad, err_msg=name)
        if b.grad is not None:
            assert not np.shares_memory(b.grad.numpy(), g), name


def test_backward_accepts_non_contiguous_and_tensor_grads():
    a = leaf(np.arange(6.0).reshape(2, 3))
    big = np.ones((4, 6))
    (a * 2.0).backward(big[::2, ::2])  # a strided slice of a larger array
    np.testing.assert_array_equal(a.grad.numpy(), np.full((2, 3), 2.0))
    a.grad = None
    g = Tensor(np.ones((2, 3)), dtype="float64")
    (a * 3.0).backward(g)
    g.data[...] = 0.0
    np.testing.assert_array_equal(a.grad.numpy(), np.full((2, 3), 3.0))
    a.grad = None
    a.backward(np.broadcast_to(np.float64(5.0), (2, 3)))  # a read-only broadcast view
    a.grad.data[0, 0] = 1.0  # a private, writable .grad
    np.testing.assert_array_equal(a.grad.numpy(), [[1.0, 5.0, 5.0], [5.0, 5.0, 5.0]])


def test_gradient_of_a_broadcast_is_writable_and_private():
    b = leaf([1.0, 2.0])
    (Tensor(np.ones((3, 2))) * b).sum().backward()
    b.grad.data[0] = 5.0  # must not raise (read-only broadcast view) nor leak
    np.testing.assert_array_equal(b.grad.numpy(), [5.0, 3.0])


# ----- numpy's floating-point rules -----


def test_division_by_zero_log_zero_and_nan_propagate_without_raising():
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        x = leaf([1.0, 0.0, -1.0, np.nan])
        inv = 1.0 / x
        np.testing.assert_array_equal(inv.numpy()[:3], [1.0, np.inf, -1.0])
        assert np.isnan(inv.numpy()[3])
        logs = Tensor([0.0, 1.0, -1.0]).log().numpy()
        assert logs[0] == -np.inf and logs[1] == 0.0 and np.isnan(logs[2])
        z = Tensor([0.0]) / Tensor([0.0])
        assert np.isnan(z.item())
        inv.sum().backward()
        g = x.grad.numpy()
        assert g[0] == -1.0 and g[1] == -np.inf and np.isnan(g[3])
        big = Tensor(np.zeros(40_000)) / 0.0  # the Numba kernels follow numpy too
        assert np.all(np.isnan(big.numpy()))
        ones = Tensor(np.ones(40_000)) / Tensor(np.zeros(40_000))
        assert np.all(ones.numpy() == np.inf)
        assert np.all(Tensor(np.zeros(40_000)).log().numpy() == -np.inf)


def test_nan_in_one_entry_does_not_touch_the_others():
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        x = leaf([np.nan, 2.0])
        (x * x).sum().backward()
        assert np.isnan(x.grad.numpy()[0]) and x.grad.numpy()[1] == 4.0


# ----- a custom Function plugs into the engine -----


def test_custom_function():
    class Cube(Op):
        """z = x^3; dz/dx = 3 x^2"""

        def forward(ctx, x):
            ctx.save_for_backward(x)
            return x**3

        def backward(ctx, g):
            (x,) = ctx.saved
            return g * 3 * x**2

    x = leaf([1.0, -2.0])
    y = Cube.apply(x)
    assert y.requires_grad and not y.is_leaf
    y.sum().backward()
    np.testing.assert_array_equal(x.grad.numpy(), [3.0, 12.0])
    assert tg.gradcheck(lambda: Cube.apply(x).sum(), [x])
