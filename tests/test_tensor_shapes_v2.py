"""Contract v2, Tensor: PyTorch's shape ops, reductions, constructors, dtypes and in-place methods.

References: numpy for values, central differences in float64 (``tg.gradcheck``, with
``check_grad_grad`` for second derivatives through the recorded backward) and PyTorch itself.
"""

from __future__ import annotations

import math

import numpy as np
import pytest

import tinygrad_edu as tg
from tinygrad_edu.tensor import Tensor


def _x(*shape: int, seed: int = 0) -> Tensor:
    rng = np.random.default_rng(seed)
    return tg.tensor(rng.standard_normal(shape), dtype=tg.float64, requires_grad=True)


def _cubed(f):
    """A nonzero second derivative for linear ops: J = sum(f()^3 * weights)."""

    def loss():
        y = f()
        w = Tensor(np.linspace(0.5, 1.5, y.size).reshape(y.shape), dtype="float64")
        return (y**3 * w).sum()

    return loss


# ----- dim= / keepdim= -----


@pytest.mark.parametrize("name", ["sum", "mean", "max", "min"])
def test_dim_keepdim_spelling_matches_axis_keepdims(name):
    x = _x(2, 3, 4)
    a = getattr(x, name)(axis=1, keepdims=True)
    b = getattr(x, name)(dim=1, keepdim=True)
    b = b.values if isinstance(b, tuple) else b
    want = getattr(np, name)(x.numpy(), axis=1, keepdims=True)
    np.testing.assert_allclose(a.numpy(), want)
    np.testing.assert_allclose(b.numpy(), want)


@pytest.mark.parametrize(
    "call",
    [
        lambda t: t.sum(axis=0, dim=0),
        lambda t: t.mean(1, dim=1),
        lambda t: t.sum(keepdims=True, keepdim=True),
        lambda t: t.max(axis=1, dim=1),
        lambda t: t.argmax(axis=1, dim=1),
        lambda t: t.softmax(axis=1, dim=1),
        lambda t: t.log_softmax(1, dim=1),
        lambda t: t.var(1, axis=1),
        lambda t: t.logsumexp(1, axis=1),
        lambda t: Tensor.cat([t, t], 0, dim=0),
    ],
)
def test_both_spellings_is_a_type_error(call):
    with pytest.raises(TypeError, match="both"):
        call(_x(2, 3))


def test_everyday_pytorch_reductions():
    torch = pytest.importorskip("torch")
    a = np.random.default_rng(1).standard_normal((4, 5))
    x, tx = tg.tensor(a), torch.tensor(a)
    np.testing.assert_allclose(
        x.mean(dim=1, keepdim=True).numpy(), tx.mean(dim=1, keepdim=True).numpy()
    )
    np.testing.assert_allclose(x.sum(dim=(0, 1)).numpy(), tx.sum(dim=(0, 1)).numpy())
    np.testing.assert_allclose(x.softmax(dim=0).numpy(), tx.softmax(dim=0).numpy())
    np.testing.assert_allclose(x.log_softmax(dim=-1).numpy(), tx.log_softmax(dim=-1).numpy())
    assert x.argmax(dim=1).tolist() == tx.argmax(dim=1).tolist()
    assert x.argmax(dim=1, keepdim=True).shape == tuple(tx.argmax(dim=1, keepdim=True).shape)
    assert x.argmin(dim=0).tolist() == tx.argmin(dim=0).tolist()
    assert x.argmin().item() == tx.argmin().item()
    assert x.argmin(dim=0, keepdim=True).shape == (1, 5)


def test_max_dim_is_a_named_tuple_like_torch():
    torch = pytest.importorskip("torch")
    a = np.random.default_rng(2).standard_normal((3, 4))  # no ties
    x = tg.tensor(a, requires_grad=True)
    tx = torch.tensor(a, requires_grad=True)
    for name in ("max", "min"):
        out, tout = getattr(x, name)(dim=1), getattr(tx, name)(dim=1)
        values, indices = out  # unpacks as torch.return_types.max
        np.testing.assert_allclose(values.numpy(), tout.values.detach().numpy())
        assert out.indices.tolist() == tout.indices.tolist()
        assert indices.dtype == tg.int64 and out[0] is values
        kept = getattr(x, name)(dim=0, keepdim=True)
        assert kept.values.shape == kept.indices.shape == (1, 4)
        (values * Tensor([1.0, 2.0, 3.0], dtype="float64")).sum().backward()
        (tout.values * torch.tensor([1.0, 2.0, 3.0], dtype=torch.float64)).sum().backward()
        np.testing.assert_allclose(x.grad.numpy(), tx.grad.numpy())
        x.grad, tx.grad = None, None
    # v1 forms: a Tensor, not a tuple
    assert isinstance(x.max(), Tensor) and isinstance(x.max(axis=1), Tensor)
    assert isinstance(x.max(1), Tensor)


def test_max_dim_ties_share_the_gradient_a_documented_difference_from_torch():
    # The values keep the Tensor form's rule (tied entries share the gradient equally);
    # PyTorch gives it all to the entry at `indices`. The indices are the first max, as torch.
    x = tg.tensor([[2.0, 2.0, 1.0]], requires_grad=True)
    out = x.max(dim=1)
    assert out.indices.tolist() == [0]
    out.values.sum().backward()
    assert x.grad.tolist() == [[0.5, 0.5, 0.0]]


def test_logits_max_dim_indices_everyday():
    logits = tg.tensor([[0.1, 2.0, -1.0], [3.0, 0.0, 1.0]])
    labels = tg.tensor([1, 2])
    assert logits.max(dim=1).indices.tolist() == [1, 0]
    accuracy = (logits.max(dim=1).indices == labels).float().mean()
    assert accuracy.item() == 0.5


def test_max_dim_gradcheck_and_second_order():
    x = _x(3, 4, seed=3)
    assert tg.gradcheck(_cubed(lambda: x.max(dim=1).values), [x], check_grad_grad=True)
    assert tg.gradcheck(_cubed(lambda: x.min(dim=0).values), [x], check_grad_grad=True)


# ----- shape ops -----


def test_shape_ops_forward_match_numpy():
    a = np.arange(24.0).reshape(2, 1, 3, 4)
    x = tg.tensor(a)
    np.testing.assert_array_equal(x.unsqueeze(0).numpy(), a[None])
    np.testing.assert_array_equal(x.unsqueeze(-1).numpy(), a[..., None])
    np.testing.assert_array_equal(x.unsqueeze(2).numpy(), np.expand_dims(a, 2))
    assert x.squeeze().shape == (2, 3, 4)
    assert x.squeeze(1).shape == (2, 3, 4)
    assert x.squeeze(0).shape == a.shape  # size 2: unchanged, as torch
    assert x.squeeze((0, 1)).shape == (2, 3, 4)
    np.testing.assert_array_equal(x.permute(3, 0, 2, 1).numpy(), a.transpose(3, 0, 2, 1))
    np.testing.assert_array_equal(x.permute((3, 0, 2, 1)).numpy(), a.transpose(3, 0, 2, 1))
    np.testing.assert_array_equal(x.view(4, -1).numpy(), a.reshape(4, -1))
    np.testing.assert_array_equal(x.view((6, 4)).numpy(), a.reshape(6, 4))
    np.testing.assert_array_equal(x.flatten().numpy(), a.ravel())
    assert x.flatten(1).shape == (2, 12)
    assert x.flatten(1, 2).shape == (2, 3, 4)
    assert x.flatten(0, -2).shape == (6, 4)
    assert tg.tensor(3.0).flatten().shape == (1,)
    np.testing.assert_array_equal(
        x.expand(5, 2, 3, 3, 4).numpy(), np.broadcast_to(a, (5, 2, 3, 3, 4))
    )
    assert x.expand(-1, 6, -1, -1).shape == (2, 6, 3, 4)


def test_shape_ops_match_torch():
    torch = pytest.importorskip("torch")
    a = np.random.default_rng(4).standard_normal((2, 1, 3))
    x, tx = tg.tensor(a), torch.tensor(a)
    cases = [
        (lambda t: t.unsqueeze(1), lambda t: t.unsqueeze(1)),
        (lambda t: t.squeeze(), lambda t: t.squeeze()),
        (lambda t: t.squeeze(-2), lambda t: t.squeeze(-2)),
        (lambda t: t.permute(2, 0, 1), lambda t: t.permute(2, 0, 1)),
        (lambda t: t.view(3, 2), lambda t: t.view(3, 2)),
        (lambda t: t.expand(4, 2, 5, 3), lambda t: t.expand(4, 2, 5, 3)),
        (lambda t: t.flatten(0, 1), lambda t: t.flatten(0, 1)),
        (lambda t: t[None, ..., 0], lambda t: t[None, ..., 0]),
        (lambda t: t[..., None, 1:], lambda t: t[..., None, 1:]),
    ]
    for ours, theirs in cases:
        np.testing.assert_array_equal(ours(x).numpy(), theirs(tx).numpy())


@pytest.mark.parametrize(
    "op",
    [
        lambda x: x.unsqueeze(1),
        lambda x: x[:, :1].squeeze(1),
        lambda x: x.permute(1, 0),
        lambda x: x.view(-1),
        lambda x: x[:, :1].expand(3, 4),
        lambda x: x.expand(2, 3, 4),
        lambda x: x.unsqueeze(0).expand(5, -1, -1),
        lambda x: x.flatten(),
        lambda x: x[None, ..., 1:],
        lambda x: x[..., None],
        lambda x: tg.cat([x, x * 2.0], dim=1),
        lambda x: tg.stack([x, x.exp()], dim=-1),
    ],
)
def test_shape_ops_gradcheck_first_and_second_order(op):
    x = _x(3, 4, seed=5)
    assert tg.gradcheck(_cubed(lambda: op(x)), [x], check_grad_grad=True)


def test_expand_gradient_sums_back_like_torch():
    torch = pytest.importorskip("torch")
    a = np.random.default_rng(6).standard_normal((3, 1))
    w = np.random.default_rng(7).standard_normal((2, 3, 4))
    x, tx = tg.tensor(a, requires_grad=True), torch.tensor(a, requires_grad=True)
    (x.expand(2, 3, 4) * tg.tensor(w)).sum().backward()
    (tx.expand(2, 3, 4) * torch.tensor(w)).sum().backward()
    np.testing.assert_allclose(x.grad.numpy(), tx.grad.numpy())


def test_cat_stack_module_functions_everyday():
    torch = pytest.importorskip("torch")
    rng = np.random.default_rng(8)
    a_np, b_np = rng.standard_normal((2, 3)), rng.standard_normal((2, 2))
    a, b = tg.tensor(a_np, requires_grad=True), tg.tensor(b_np, requires_grad=True)
    ta, tb = torch.tensor(a_np, requires_grad=True), torch.tensor(b_np, requires_grad=True)
    (tg.cat([a, b], dim=1) ** 2).sum().backward()
    (torch.cat([ta, tb], dim=1) ** 2).sum().backward()
    np.testing.assert_allclose(a.grad.numpy(), ta.grad.numpy())
    np.testing.assert_allclose(b.grad.numpy(), tb.grad.numpy())
    s = tg.stack([a, a], dim=1)
    assert s.shape == tuple(torch.stack([ta, ta], dim=1).shape)
    assert tg.cat([a, a]).shape == (4, 3)  # dim=0 default


@pytest.mark.parametrize(
    "call",
    [
        lambda t: t.unsqueeze(3),
        lambda t: t.unsqueeze(-4),
        lambda t: t.squeeze(2),
        lambda t: t.permute(0, 2),
        lambda t: t.flatten(0, 5),
        lambda t: t.sum(dim=2),
        lambda t: t.mean(dim=-3),
        lambda t: t.max(dim=2),
        lambda t: t.argmin(dim=5),
        lambda t: t.var(dim=3),
        lambda t: t.logsumexp(2),
        lambda t: tg.cat([t, t], dim=2),
        lambda t: tg.stack([t, t], dim=4),
    ],
)
def test_bad_dim_is_an_index_error_as_torch(call):
    with pytest.raises(IndexError, match="out of range") as info:
        call(tg.ones(2, 3))
    assert isinstance(info.value, tg.InputError)  # and the project's ValueError/RuntimeError


def test_bad_dim_torch_agrees_it_is_an_index_error():
    torch = pytest.importorskip("torch")
    with pytest.raises(IndexError):
        torch.ones(2, 3).unsqueeze(3)
    with pytest.raises(IndexError):
        torch.ones(2, 3).sum(dim=2)


def test_shape_errors_name_the_op_and_shapes():
    x = tg.ones(2, 3)
    with pytest.raises(tg.InputError, match=r"view: .*\(2, 3\).*\(4, 2\)"):
        x.view(4, 2)
    with pytest.raises(RuntimeError, match=r"view: .*\(2, 3\)"):
        x.view(-1, 4)
    with pytest.raises(tg.InputError, match=r"expand: .*\(2, 3\).*\(2, 4\)"):
        x.expand(2, 4)
    with pytest.raises(tg.InputError, match=r"expand: .*fewer dims"):
        x.expand(3)
    with pytest.raises(tg.InputError, match=r"permute: .*repeats"):
        x.permute(1, 1)
    with pytest.raises(tg.InputError, match=r"permute: .*3 entries"):
        x.permute(0, 1, 2)
    with pytest.raises(tg.InputError, match=r"flatten: start_dim 1 comes after end_dim 0"):
        x.flatten(1, 0)


def test_transpose_two_dims_swaps_them_as_torch():
    torch = pytest.importorskip("torch")
    a = np.random.default_rng(17).standard_normal((2, 3, 4))
    x, tx = tg.tensor(a), torch.tensor(a)
    for d0, d1 in [(1, 2), (0, -1), (2, 2)]:
        np.testing.assert_array_equal(x.transpose(d0, d1).numpy(), tx.transpose(d0, d1).numpy())
    np.testing.assert_array_equal(x.transpose(2, 0, 1).numpy(), a.transpose(2, 0, 1))  # numpy's
    np.testing.assert_array_equal(x[0].transpose(1, 0).numpy(), a[0].T)
    with pytest.raises(IndexError):
        x.transpose(0, 3)
    y = _x(2, 3, 4, seed=18)
    assert tg.gradcheck(_cubed(lambda: y.transpose(0, 2)), [y], check_grad_grad=True)


# ----- var / std / logsumexp -----


@pytest.mark.parametrize("dim", [None, 0, 1, (0, 1), -1])
@pytest.mark.parametrize("correction", [0, 1, 2])
def test_var_std_match_numpy(dim, correction):
    a = np.random.default_rng(9).standard_normal((4, 5))
    x = tg.tensor(a)
    np.testing.assert_allclose(
        x.var(dim, correction=correction).numpy(), np.var(a, axis=dim, ddof=correction)
    )
    np.testing.assert_allclose(
        x.std(dim=dim, correction=correction, keepdim=True).numpy(),
        np.std(a, axis=dim, ddof=correction, keepdims=True),
    )


def test_var_std_match_torch_including_unbiased():
    torch = pytest.importorskip("torch")
    a = np.random.default_rng(10).standard_normal((3, 6))
    x, tx = tg.tensor(a), torch.tensor(a)
    np.testing.assert_allclose(x.var().numpy(), tx.var().numpy())
    np.testing.assert_allclose(x.var(1, unbiased=False).numpy(), tx.var(1, unbiased=False))
    np.testing.assert_allclose(x.std(0, keepdim=True).numpy(), tx.std(0, keepdim=True))
    np.testing.assert_allclose(x.var(dim=1, correction=0).numpy(), tx.var(dim=1, correction=0))
    one = tg.tensor([2.0]).var()  # N - correction = 0: nan, as torch
    assert math.isnan(one.item()) and math.isnan(torch.tensor([2.0]).var().item())
    with pytest.raises(TypeError, match="correction= and unbiased="):
        x.var(correction=1, unbiased=True)


def test_var_std_gradcheck_and_second_order():
    x = _x(3, 4, seed=11)
    assert tg.gradcheck(lambda: x.var(dim=1).sum(), [x], check_grad_grad=True)
    assert tg.gradcheck(lambda: x.std(correction=0), [x], check_grad_grad=True)
    assert tg.gradcheck(lambda: (x.var(0, keepdim=True) * x).sum(), [x], check_grad_grad=True)


def test_var_gradient_matches_torch():
    torch = pytest.importorskip("torch")
    a = np.random.default_rng(12).standard_normal((3, 4))
    x, tx = tg.tensor(a, requires_grad=True), torch.tensor(a, requires_grad=True)
    (x.std(dim=1) * tg.tensor([1.0, -2.0, 3.0], dtype=tg.float64)).sum().backward()
    (tx.std(dim=1) * torch.tensor([1.0, -2.0, 3.0], dtype=torch.float64)).sum().backward()
    np.testing.assert_allclose(x.grad.numpy(), tx.grad.numpy())


def test_logsumexp_values_stable_and_like_torch():
    torch = pytest.importorskip("torch")
    a = np.array([[1000.0, 1000.0, -5.0], [-1000.0, -1001.0, -1002.0]])
    x = tg.tensor(a)
    want = np.log(np.exp(a - a.max(1, keepdims=True)).sum(1)) + a.max(1)
    np.testing.assert_allclose(x.logsumexp(1).numpy(), want)  # no overflow to inf
    np.testing.assert_allclose(x.logsumexp(dim=1).numpy(), torch.tensor(a).logsumexp(dim=1))
    np.testing.assert_allclose(
        x.logsumexp((0, 1), keepdim=True).numpy(),
        torch.tensor(a).logsumexp((0, 1), keepdim=True).numpy(),
    )
    f32 = tg.tensor([[80.0, 89.0]]).logsumexp(1)  # exp(89) overflows float32
    assert f32.dtype == tg.float32 and np.isfinite(f32.item())
    inf = tg.tensor([[-math.inf, -math.inf], [math.inf, 0.0]]).logsumexp(1)
    assert inf.tolist() == [-math.inf, math.inf]  # torch gives the same, not nan
    with pytest.raises(TypeError, match="logsumexp: missing the dim"):
        x.logsumexp()


def test_logsumexp_gradient_is_softmax_and_second_order():
    x = _x(3, 4, seed=13)
    x.logsumexp(1).sum().backward()
    np.testing.assert_allclose(x.grad.numpy(), x.softmax(1).numpy(), rtol=1e-12)
    assert tg.gradcheck(lambda: x.logsumexp(1, keepdim=True).sum(), [x], check_grad_grad=True)
    assert tg.gradcheck(lambda: (x * 300.0).logsumexp(0).sum(), [x], check_grad_grad=True)


# ----- constructors and dtypes -----


def test_tensor_function_and_submodule_coexist():
    import sys

    import tinygrad_edu.tensor  # noqa: F401  (the submodule still imports)

    assert callable(tg.tensor) and not isinstance(tg.tensor, type(sys))
    assert sys.modules["tinygrad_edu.tensor"].Tensor is Tensor
    from tinygrad_edu.tensor import Tensor as T2

    assert T2 is tg.Tensor


def test_tensor_function_dtype_rules_like_torch():
    torch = pytest.importorskip("torch")
    to_ours = {torch.int64: tg.int64, torch.float32: tg.float32, torch.float64: tg.float64}
    for data in ([1, 2], [1.0, 2.0], [[1, 2.5]], np.zeros(2), np.zeros(2, np.float32), 3, 2.5):
        assert tg.tensor(data).dtype == to_ours[torch.tensor(data).dtype], data
    t = tg.tensor([1, 2], dtype=tg.float64, requires_grad=True)
    assert t.dtype == np.float64 and t.requires_grad and t.is_leaf
    copy = tg.tensor(t)
    assert copy.dtype == tg.float64 and not copy.requires_grad
    copy.zero_()
    assert t.tolist() == [1.0, 2.0]  # a copy, not a view
    assert tg.float32 == np.float32 and tg.int64 == np.dtype("int64")


def test_constructors_sizes_dtypes_and_grad():
    torch = pytest.importorskip("torch")
    for fn in ("zeros", "ones", "randn", "rand"):
        a, b = getattr(tg, fn)(2, 3), getattr(tg, fn)((2, 3))
        assert a.shape == b.shape == (2, 3) and a.dtype == tg.float32
        c = getattr(tg, fn)(4, dtype=tg.float64, requires_grad=True)
        assert c.dtype == tg.float64 and c.requires_grad
    assert tg.zeros(2, 3).numpy().sum() == 0 and tg.ones(2).tolist() == [1.0, 1.0]
    r = tg.rand(1000).numpy()
    assert 0 <= r.min() and r.max() < 1
    assert tg.full((2, 2), 7).tolist() == torch.full((2, 2), 7).tolist()
    assert tg.full((2, 2), 7).dtype == tg.int64 and tg.full((2,), 0.5).dtype == tg.float32
    np.testing.assert_array_equal(tg.eye(3).numpy(), torch.eye(3).numpy())
    np.testing.assert_array_equal(tg.eye(2, 3).numpy(), torch.eye(2, 3).numpy())
    x = tg.randn(2, 3, dtype=tg.float64)
    assert tg.zeros_like(x).dtype == tg.float64 and tg.zeros_like(x).shape == (2, 3)
    assert tg.ones_like(x, dtype=tg.float32).dtype == tg.float32
    assert tg.ones_like(x).numpy().sum() == 6


def test_arange_linspace_like_torch():
    torch = pytest.importorskip("torch")
    for args in [(5,), (2, 7), (1, 10, 3), (0.0, 1.0, 0.25), (5, 0, -2), (0, 1, 0.1), (3, 3)]:
        ours, theirs = tg.arange(*args), torch.arange(*args)
        np.testing.assert_allclose(ours.numpy(), theirs.numpy(), rtol=1e-6)
        assert str(ours.dtype) == str(theirs.dtype).removeprefix("torch."), args
    for args in [(0, 1, 5), (-2.0, 3.0, 7), (1, 1, 1), (0, 1, 0)]:
        want = torch.linspace(*args).numpy()
        np.testing.assert_allclose(tg.linspace(*args).numpy(), want, rtol=1e-6, atol=1e-7)
        assert tg.linspace(*args).dtype == tg.float32
    assert tg.arange(4, dtype=tg.float64).dtype == tg.float64
    with pytest.raises(tg.InputError, match="arange: step must be nonzero"):
        tg.arange(0, 3, 0)
    with pytest.raises(TypeError, match="linspace: steps must be an int"):
        tg.linspace(0, 1, 2.5)


def test_indexing_with_none_and_ellipsis_forward_and_backward():
    torch = pytest.importorskip("torch")
    a = np.random.default_rng(14).standard_normal((2, 3, 4))
    x, tx = tg.tensor(a, requires_grad=True), torch.tensor(a, requires_grad=True)
    w = np.random.default_rng(15).standard_normal((1, 2, 3, 1, 2))
    (x[None, ..., None, 1:3] * tg.tensor(w)).sum().backward()
    (tx[None, ..., None, 1:3] * torch.tensor(w)).sum().backward()
    np.testing.assert_allclose(x.grad.numpy(), tx.grad.numpy())
    assert x[..., 0].shape == (2, 3) and x[0, ..., None].shape == (3, 4, 1)


def test_to_float_double_long_type():
    torch = pytest.importorskip("torch")
    a = np.array([-1.7, 0.5, 2.9])
    x = tg.tensor(a, requires_grad=True)
    assert x.to(tg.float32).dtype == tg.float32 and x.float().dtype == tg.float32
    assert x.to("cpu") is x and x.to(tg.float64) is x and x.double() is x
    assert x.to("cpu", tg.float32).dtype == tg.float32
    assert x.to("float32").dtype == tg.float32  # the library's dtype names work too
    assert x.to(device="cpu", dtype=tg.float32).dtype == tg.float32
    assert x.to(tg.ones(1)).dtype == tg.float32  # to(other): its dtype and device
    assert x.type(tg.float32).dtype == tg.float32 and x.type() == "float64"
    assert x.long().tolist() == torch.tensor(a).long().tolist()  # toward zero: [-1, 0, 2]
    assert x.long().dtype == tg.int64 and not x.long().requires_grad
    assert tg.tensor([1, 2]).float().tolist() == [1.0, 2.0]
    with pytest.raises(tg.InputError, match="int64"):
        tg.tensor([math.nan]).long()
    with pytest.raises(TypeError, match="unsupported dtype"):
        x.to(np.float16)
    with pytest.raises(tg.InputError, match="unknown device 'gpu7'"):
        x.to("gpu7")


def test_float_casts_are_differentiable_to_second_order():
    x = _x(3, seed=16)
    y = x.float()
    assert y.requires_grad and y.dtype == tg.float32
    (y * 2.0).sum().backward()
    assert x.grad.dtype == tg.float64 and x.grad.tolist() == [2.0, 2.0, 2.0]
    x.grad = None
    # second order through the casts (float32 in the middle: closed forms, not differences)
    (g,) = tg.grad((x.float() ** 3).sum(), [x], create_graph=True)
    assert g.dtype == tg.float64 and g.requires_grad
    np.testing.assert_allclose(g.numpy(), 3 * x.numpy() ** 2, rtol=1e-6)
    g.sum().backward()
    np.testing.assert_allclose(x.grad.numpy(), 6 * x.numpy(), rtol=1e-6)


# ----- in place -----


def test_in_place_methods_change_storage_and_return_self():
    torch = pytest.importorskip("torch")
    t = tg.tensor([1.0, -2.0, 3.0])
    view = t.numpy()  # the CPU storage itself
    assert t.mul_(2.0) is t and view.tolist() == [2.0, -4.0, 6.0]
    assert t.add_(tg.tensor([1.0, 1.0, 1.0]), alpha=0.5) is t and t.tolist() == [2.5, -3.5, 6.5]
    assert t.clamp_(-1.0, 3.0) is t and view.tolist() == [2.5, -1.0, 3.0]
    assert t.copy_(tg.tensor([7.0, 8.0, 9.0])) is t and view.tolist() == [7.0, 8.0, 9.0]
    assert t.fill_(4.0) is t and view.tolist() == [4.0, 4.0, 4.0]
    assert t.zero_() is t and view.tolist() == [0.0, 0.0, 0.0]
    tt = torch.tensor([1.0, -2.0, 3.0])
    tt.mul_(2.0).add_(torch.ones(3), alpha=0.5).clamp_(-1.0, 3.0)
    ours = tg.tensor([1.0, -2.0, 3.0]).mul_(2.0).add_(tg.ones(3), alpha=0.5).clamp_(-1.0, 3.0)
    assert ours.tolist() == tt.tolist()
    n = tg.tensor([1, 2, 3])
    n.copy_(tg.tensor([1.9, -2.9, 3.0]))  # converted to the destination's dtype, as torch
    assert n.dtype == tg.int64 and n.tolist() == [1, -2, 3]
    m = tg.zeros(2, 3)
    m.copy_(tg.tensor([1.0, 2.0, 3.0]))  # broadcast
    assert m.tolist() == [[1.0, 2.0, 3.0]] * 2


@pytest.mark.parametrize(
    "method",
    [
        lambda w: w.zero_(),
        lambda w: w.fill_(1.0),
        lambda w: w.add_(1.0, alpha=2),
        lambda w: w.mul_(2.0),
        lambda w: w.copy_(tg.zeros(2)),
        lambda w: w.clamp_(0.0, 1.0),
    ],
)
def test_in_place_on_a_leaf_that_requires_grad(method):
    w = tg.tensor([0.5, 2.0], requires_grad=True)
    assert w.is_leaf
    with pytest.raises(RuntimeError, match="leaf tensor that requires grad"):
        method(w)
    assert w.tolist() == [0.5, 2.0]  # nothing was written
    with tg.no_grad():
        assert method(w) is w
    assert w.requires_grad and w.is_leaf
    with tg.set_grad_enabled(False):
        method(w)
    with tg.no_grad(), tg.enable_grad(), pytest.raises(RuntimeError):
        method(w)


def test_hand_written_sgd_step_with_in_place_methods():
    w = tg.tensor([1.0, -3.0], requires_grad=True)
    for _ in range(50):
        loss = (w * w).sum()
        loss.backward()
        with tg.no_grad():
            w.add_(w.grad, alpha=-0.1)
        w.grad = None
    assert np.allclose(w.numpy(), [1.0 * 0.8**50, -3.0 * 0.8**50])


def test_int_inputs_of_var_std_logsumexp_give_float32_as_torch():
    torch = pytest.importorskip("torch")
    n = tg.tensor([[1, 2, 4], [0, 3, 9]])
    tn = torch.tensor([[1, 2, 4], [0, 3, 9]])
    assert n.logsumexp(1).dtype == tg.float32
    np.testing.assert_allclose(n.logsumexp(1).numpy(), tn.logsumexp(1).numpy(), rtol=1e-6)
    np.testing.assert_allclose(n.var(1).numpy(), tn.float().var(1).numpy(), rtol=1e-6)
    assert n.std().dtype == tg.float32


def test_positional_numpy_spelling_still_works_and_names_are_exported():
    x = tg.tensor([[1.0, 2.0], [3.0, 4.0]])
    assert x.sum(1, True).tolist() == [[3.0], [7.0]]
    assert x.max(0, True).tolist() == [[3.0, 4.0]]
    for name in ("tensor", "zeros", "arange", "linspace", "cat", "stack", "float32", "int64"):
        assert name in tg.__all__ and getattr(tg, name) is not None
