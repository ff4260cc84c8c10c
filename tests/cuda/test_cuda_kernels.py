"""Every CUDA kernel against the reference backend (numpy), on tiny shapes.

Runs on a GPU or in numba's simulator (see conftest.py). float64 results must match to 1e-6;
integer and shape/dtype results exactly.
"""

from __future__ import annotations

import numpy as np
import pytest

from tinygrad_edu.backend import KERNELS
from tinygrad_edu.backend import cuda_kernels as K
from tinygrad_edu.backend import reference as R

F64 = np.float64


def test_the_backend_defines_every_kernel(C):
    missing = [name for name in KERNELS if not callable(getattr(C, name, None))]
    assert missing == []


# ----- storage -----


def test_storage_round_trip_and_constructors(C, dev, host, check, rng):
    x = rng.standard_normal((2, 3))
    d = dev(x)
    assert C.to_numpy(d) is not x and np.array_equal(host(d), x)
    check(C.zeros((2, 3), np.float32), np.zeros((2, 3), np.float32))
    check(C.full((4,), 2.5, np.float64), np.full(4, 2.5))
    check(C.full((), -1.0, np.float64), np.array(-1.0))
    check(C.zeros_like(d), np.zeros_like(x))
    check(C.astype(d, np.float32), x.astype(np.float32))
    check(C.astype(dev(np.array([1.7, -2.2])), np.int64), np.array([1, -2]))
    copied = C.copy(d)
    C.sgd_step(copied, C.full((2, 3), 1.0, F64), None, lr=1.0, momentum=0, dampening=0,
               weight_decay=0, nesterov=False)  # fmt: skip
    check(copied, x - 1)  # the copy changed,
    check(d, x)  # the original did not
    check(C.zeros((0, 3), F64), np.zeros((0, 3)))


def test_copy_into_writes_the_same_memory_in_its_dtype(C, dev, host, rng):
    dst = dev(np.zeros((2, 3), np.float32))
    src = rng.standard_normal((2, 3))  # float64: stored as float32, as np.copyto(casting=unsafe)
    C.copy_into(dst, dev(src))
    expected = np.zeros((2, 3), np.float32)
    R.copy_into(expected, src)
    assert np.array_equal(host(dst), expected)


def test_in_place_step_on_a_cuda_tensor_updates_it(C):
    import tinygrad_edu as tg

    w = tg.Tensor([1.0, 2.0], requires_grad=True).to("cuda")
    w = w.detach().requires_grad_()
    (w * w).sum().backward()
    with tg.no_grad():
        w -= 0.25 * w.grad  # w - 0.25 * 2w = 0.5 w
    assert w.device == "cuda" and np.allclose(w.numpy(), [0.5, 1.0])


def test_is_view_marks_reshapes_only(C, dev):
    d = dev(np.arange(6.0))
    assert not C.is_view(d)
    view = C.reshape(d, (2, 3))
    assert C.is_view(view) and view.shape == (2, 3)
    assert not C.is_view(C.copy(view))
    assert not C.is_view(C.transpose(view, (1, 0)))


# ----- elementwise -----


@pytest.mark.parametrize(
    "op", ["neg", "exp", "log", "sqrt", "abs", "sign", "tanh", "relu", "sigmoid"]
)
def test_unary(C, dev, check, rng, op):
    x = rng.standard_normal((3, 5))
    x[0, :3] = [0.0, -0.0, 2.0]
    if op in ("log", "sqrt"):
        x = np.abs(x) + 0.1
    check(C.unary(op, dev(x)), R.unary(op, x))


@pytest.mark.parametrize("op", ["neg", "exp", "abs", "sign", "tanh", "relu", "sigmoid"])
def test_unary_propagates_nan_and_handles_inf(C, dev, check, op):
    # NOTE: relu(NaN) was 0 on CUDA and NaN on the CPU; NaN must propagate everywhere.
    x = np.array([np.nan, np.inf, -np.inf, -0.0, 0.0, 5e-324, -1.5])
    with np.errstate(all="ignore"):
        check(C.unary(op, dev(x)), R.unary(op, x))


def test_fused_linear_relu_propagates_nan(C, dev, check):
    x = np.array([[np.nan, 1.0], [1.0, -2.0]])
    w = np.array([[1.0, 0.5], [-1.0, 1.0]])
    b = np.array([0.0, -10.0])
    check(C.linear_forward(dev(x), dev(w), dev(b), "relu"), R.linear_forward(x, w, b, "relu"))


def test_unary_float32_stays_float32(C, dev, check, rng):
    x = rng.standard_normal((4, 3)).astype(np.float32)
    for op in ("exp", "sigmoid", "relu", "tanh"):
        check(C.unary(op, dev(x)), R.unary(op, x))


@pytest.mark.parametrize("op", ["add", "sub", "mul", "div", "pow"])
@pytest.mark.parametrize(
    "shapes", [((2, 3), (2, 3)), ((2, 3), (3,)), ((4, 1, 3), (2, 1)), ((), (2, 2)), ((1,), ())]
)
def test_binary_broadcasts_like_numpy(C, dev, check, rng, op, shapes):
    x = rng.uniform(0.5, 2.0, shapes[0])
    y = rng.uniform(0.5, 2.0, shapes[1])
    check(C.binary(op, dev(x), dev(y)), R.binary(op, x, y))


@pytest.mark.parametrize("op", ["add", "sub", "mul", "div", "pow"])
def test_binary_with_python_scalars(C, dev, check, rng, op):
    x = rng.uniform(0.5, 2.0, (2, 3))
    check(C.binary(op, dev(x), 1.5), R.binary(op, x, 1.5))
    check(C.binary(op, 1.5, dev(x)), R.binary(op, 1.5, x))
    x32 = x.astype(np.float32)  # a Python scalar never changes the array's dtype
    check(C.binary(op, dev(x32), 1.5), R.binary(op, x32, 1.5))


def test_binary_mixed_dtypes_promote_like_numpy(C, dev, check, rng):
    x = rng.standard_normal((2, 3)).astype(np.float32)
    y = rng.standard_normal(3)
    check(C.binary("mul", dev(x), dev(y)), R.binary("mul", x, y))
    labels = np.array([1, 2, 3])
    check(C.binary("add", dev(labels), 0.5), R.binary("add", labels, 0.5))


@pytest.mark.filterwarnings("ignore::RuntimeWarning")  # the simulator's numpy warns about 1/0
def test_binary_ieee_edge_cases(C, dev, check):
    x = np.array([1.0, -1.0, 0.0, np.nan])
    check(C.binary("div", dev(x), 0.0), np.array([np.inf, -np.inf, np.nan, np.nan]))
    check(C.unary("log", dev(np.array([0.0, 1.0]))), np.array([-np.inf, 0.0]))


def test_binary_rejects_shapes_that_do_not_broadcast(C, dev):
    with pytest.raises(ValueError):
        C.binary("add", dev(np.ones((2, 3))), dev(np.ones((4,))))
    with pytest.raises(ValueError, match="unknown op"):
        C.binary("mod", dev(np.ones(2)), 1.0)


@pytest.mark.parametrize("op", ["eq", "ne", "lt", "le", "gt", "ge"])
def test_compare(C, dev, check, op):
    x = np.array([[1.0, 2.0, np.nan], [3.0, 2.0, 1.0]])
    y = np.array([2.0, 2.0, 1.0])
    check(C.compare(op, dev(x), dev(y)), R.compare(op, x, y))
    check(C.compare(op, dev(x), 2.0), R.compare(op, x, 2.0))


def test_fused_activation_backward(C, dev, check, rng):
    g = rng.standard_normal((3, 4))
    x = rng.standard_normal((3, 4))
    x[0, 0] = 0.0
    y = R.unary("sigmoid", x)
    check(C.relu_backward(dev(g), dev(x)), R.relu_backward(g, x))
    check(C.sigmoid_backward(dev(g), dev(y)), R.sigmoid_backward(g, y))
    check(C.tanh_backward(dev(g), dev(np.tanh(x))), R.tanh_backward(g, np.tanh(x)))
    check(C.leaky_relu(dev(x), 0.1), R.leaky_relu(x, 0.1))
    check(C.leaky_relu_backward(dev(g), dev(x), 0.1), R.leaky_relu_backward(g, x, 0.1))


@pytest.mark.parametrize("lo, hi", [(-0.5, 0.5), (None, 0.5), (-0.5, None), (None, None)])
def test_clip_and_its_backward(C, dev, check, rng, lo, hi):
    x = rng.standard_normal((3, 4))
    x[0, :3] = [-0.5, 0.5, np.nan]  # the bounds pass the gradient; NaN passes through clip
    g = rng.standard_normal((3, 4))
    check(C.clip(dev(x), lo, hi), R.clip(x, lo, hi))
    check(C.clip_backward(dev(g), dev(x), lo, hi), R.clip_backward(g, x, lo, hi))


# ----- reductions -----


@pytest.mark.parametrize("axis", [None, (0,), (1,), (2,), (0, 2), (0, 1, 2)])
@pytest.mark.parametrize("keepdims", [False, True])
def test_sum_max_min(C, dev, check, rng, axis, keepdims):
    x = rng.standard_normal((2, 3, 4))
    for name in ("sum", "max", "min"):
        check(getattr(C, name)(dev(x), axis, keepdims), getattr(R, name)(x, axis, keepdims))


def test_long_reductions_use_a_block_per_output(C, dev, check, rng):
    n = K.REDUCE_BLOCK_MIN + 37  # long enough for the shared-memory tree reduction
    x = rng.standard_normal((2, n))
    for name in ("sum", "max", "min"):
        check(getattr(C, name)(dev(x), (1,), False), getattr(R, name)(x, (1,), False))
    check(C.sum(dev(x), None, False), R.sum(x, None, False))
    xt = np.ascontiguousarray(x.T)  # reduced axis first: strided reads within each block
    check(C.sum(dev(xt), (0,), True), R.sum(xt, (0,), True))


def test_max_propagates_nan_and_rejects_empty(C, dev, check):
    x = np.array([[1.0, np.nan, 3.0], [1.0, 2.0, 3.0]])
    check(C.max(dev(x), (1,), False), np.array([np.nan, 3.0]))
    check(C.min(dev(x), (1,), False), np.array([np.nan, 1.0]))
    check(C.sum(dev(np.zeros((0, 2))), (0,), False), np.zeros(2))
    with pytest.raises(ValueError, match="max"):
        C.max(dev(np.zeros((0, 2))), (0,), False)


def test_max_backward_shares_ties(C, dev, check, rng):
    x = np.array([[1.0, 3.0, 3.0], [2.0, 0.0, np.nan]])  # a NaN max: the NaN gets the gradient
    for axis in ((1,), (0,), None):
        out = R.max(x, axis, True)
        g = rng.standard_normal(out.shape)
        check(C.max_backward(dev(g), dev(x), dev(out), axis), R.max_backward(g, x, out, axis))


def test_argmax(C, dev, check):
    x = np.array([[1.0, 5.0, 5.0], [7.0, 2.0, np.nan]])
    check(C.argmax(dev(x), None), R.argmax(x, None))
    check(C.argmax(dev(x), 0), R.argmax(x, 0))
    check(C.argmax(dev(x), 1), R.argmax(x, 1))  # first of tied maxima; NaN counts as largest


@pytest.mark.parametrize(
    "shape, target", [((2, 3, 4), (3, 4)), ((2, 3, 4), (3, 1)), ((2, 3), (1, 1)), ((2, 3), ())]
)
def test_sum_to_and_broadcast_to(C, dev, check, rng, shape, target):
    g = rng.standard_normal(shape)
    check(C.sum_to(dev(g), target), R.sum_to(g, target))
    small = rng.standard_normal(target)
    check(C.broadcast_to(dev(small), shape), R.broadcast_to(small, shape))


# ----- movement -----


@pytest.mark.parametrize("axes", [(1, 0, 2), (2, 0, 1), (0, 2, 1), (2, 1, 0)])
def test_transpose(C, dev, check, rng, axes):
    x = rng.standard_normal((2, 3, 4))
    check(C.transpose(dev(x), axes), R.transpose(x, axes))


BASIC_INDICES = [
    1,
    -1,
    (1, 2),
    (slice(None), 1),
    (slice(1, None), slice(None, None, 2)),
    (slice(None, None, -1), Ellipsis, None),
    (None, 0, slice(3, 0, -2)),
    (Ellipsis, 2),
    (slice(5, 9),),  # empty
]
ADVANCED_INDICES = [
    np.array([0, 2, 0]),
    (np.array([1, 0]), np.array([3, 3])),
    (slice(None), np.array([[0, 1], [3, 3]])),
    np.array([True, False, True]),
    (np.array([2, 2]), slice(1, 3)),
]


@pytest.mark.parametrize("index", BASIC_INDICES + ADVANCED_INDICES, ids=repr)
def test_getitem_and_its_backward(C, dev, check, rng, index):
    x = rng.standard_normal((3, 4))
    out = R.getitem(x, index)
    check(C.getitem(dev(x), index), out)
    g = rng.standard_normal(out.shape)
    check(C.getitem_backward(dev(g), x.shape, index), R.getitem_backward(g, x.shape, index))


def test_getitem_of_integers_and_a_numpy_probe(C, dev, check):
    labels = np.array([3, 1, 4, 1, 5])
    check(C.getitem(dev(labels), np.array([4, 0])), labels[[4, 0]])
    probe = np.empty((2, 3), dtype=np.bool_)  # Tensor.__getitem__ validates indices this way
    assert C.getitem(probe, (1, slice(None))).shape == (3,)


@pytest.mark.parametrize("axis", [0, 1, -1])
def test_concatenate(C, dev, check, rng, axis):
    xs = [rng.standard_normal((2, 3)), rng.standard_normal((2, 3)), rng.standard_normal((2, 3))]
    check(C.concatenate([dev(x) for x in xs], axis), R.concatenate(xs, axis))


def test_concatenate_different_lengths_and_dtypes(C, dev, check, rng):
    xs = [rng.standard_normal((1, 2)).astype(np.float32), rng.standard_normal((3, 2))]
    check(C.concatenate([dev(x) for x in xs], 0), R.concatenate(xs, 0))
    with pytest.raises(ValueError, match="concatenate"):
        C.concatenate([dev(np.ones((2, 3))), dev(np.ones((2, 4)))], 0)


# ----- softmax family and cross-entropy -----


@pytest.mark.parametrize("axis", [0, 1, 2])
def test_softmax_family(C, dev, check, rng, axis):
    x = rng.standard_normal((2, 3, 4)) * 3
    g = rng.standard_normal((2, 3, 4))
    y = R.softmax(x, axis)
    ly = R.log_softmax(x, axis)
    check(C.softmax(dev(x), axis), y)
    check(C.log_softmax(dev(x), axis), ly)
    check(C.softmax_backward(dev(g), dev(y), axis), R.softmax_backward(g, y, axis))
    check(C.log_softmax_backward(dev(g), dev(ly), axis), R.log_softmax_backward(g, ly, axis))


def test_softmax_of_empty_and_integer_arrays(C, dev, check):
    for x in (np.zeros((0, 3)), np.array([[1, 2, 3]])):
        check(C.softmax(dev(x), 1), R.softmax(x, 1))
        check(C.log_softmax(dev(x), 1), R.log_softmax(x, 1))


def test_softmax_does_not_overflow(C, dev, check):
    x = np.array([[1000.0, 0.0, -1000.0]])
    check(C.softmax(dev(x), 1), R.softmax(x, 1))
    check(C.log_softmax(dev(x), 1), R.log_softmax(x, 1))


def test_out_of_range_labels_on_the_device_raise_as_on_the_cpu(C):
    import tinygrad_edu as tg

    # NOTE: device labels used to be unchecked, giving a silent NaN loss.
    logits = tg.Tensor(np.zeros((2, 3)), dtype="float64").to("cuda")
    for bad in ([0, 3], [-1, 0]):
        labels = tg.Tensor(bad, dtype="int64").to("cuda")
        with pytest.raises(ValueError, match="cross_entropy: label -?[0-9]+ is out of range"):
            tg.nn.functional.cross_entropy(logits, labels)
        with pytest.raises(ValueError, match="out of range"):  # the CPU says the same
            tg.nn.functional.cross_entropy(logits.to("cpu"), labels.to("cpu"))


@pytest.mark.parametrize("labels_on_device", [False, True])
def test_cross_entropy(C, dev, check, rng, labels_on_device):
    logits = rng.standard_normal((5, 3)) * 2
    labels = np.array([0, 2, 1, 2, 0])
    lab = dev(labels) if labels_on_device else labels
    losses, probs = C.cross_entropy_forward(dev(logits), lab)
    ref_losses, ref_probs = R.cross_entropy_forward(logits, labels)
    check(losses, ref_losses)
    check(probs, ref_probs)
    g_rows = rng.standard_normal(5)
    check(
        C.cross_entropy_backward(dev(g_rows), probs, lab),
        R.cross_entropy_backward(g_rows, ref_probs, labels),
    )
    for reduction in ("sum", "mean"):
        loss, _ = C.cross_entropy_forward(dev(logits), lab, reduction)
        check(loss, R.cross_entropy_forward(logits, labels, reduction)[0])
        g = np.array(1.7)
        check(
            C.cross_entropy_backward(dev(g), probs, lab, reduction),
            R.cross_entropy_backward(g, ref_probs, labels, reduction),
        )
    with pytest.raises(ValueError, match="labels"):
        C.cross_entropy_forward(dev(logits), labels[:3])
    with pytest.raises(ValueError, match="out of range"):
        C.cross_entropy_forward(dev(logits), np.array([0, 1, 2, 3, 0]))
    with pytest.raises(ValueError, match="label -1 is out of range"):  # device labels too
        C.cross_entropy_forward(dev(logits), dev(np.array([0, 1, 2, -1, 0])))


# ----- matmul -----
# The tile is MATMUL_BM x MATMUL_BN = 128 x 128 with MATMUL_BK = 8: these sizes leave partial
# tiles in every dimension, K below, at and above a multiple of BK, and one case of 2 x 2 tiles.


@pytest.mark.parametrize("m, k, n", [(1, 1, 1), (5, 7, 3), (3, 8, 9), (6, 17, 2), (130, 9, 131)])
def test_matmul_and_both_backward_products(C, dev, check, rng, m, k, n):
    a = rng.standard_normal((m, k))
    b = rng.standard_normal((k, n))
    g = rng.standard_normal((m, n))
    check(C.matmul(dev(a), dev(b)), a @ b)
    if m < 100:  # the 2 x 2 tile case is slow in the simulator: forward only
        check(C.matmul(dev(g), dev(b), transpose_b=True), g @ b.T)  # dA = G B^T
        check(C.matmul(dev(a), dev(g), transpose_a=True), a.T @ g)  # dB = A^T G
        check(C.matmul(dev(b), dev(a), True, True), b.T @ a.T)


@pytest.mark.parametrize(
    "shape_a, shape_b",
    [((2, 3, 5), (2, 5, 4)), ((2, 3, 5), (5, 4)), ((3, 5), (2, 5, 4)), ((2, 1, 3, 5), (3, 5, 2))],
)
def test_batched_matmul_broadcasts_batch_dims(C, dev, check, rng, shape_a, shape_b):
    a = rng.standard_normal(shape_a)
    b = rng.standard_normal(shape_b)
    check(C.matmul(dev(a), dev(b)), R.matmul(a, b))
    at = np.swapaxes(a, -1, -2).copy()
    check(C.matmul(dev(at), dev(b), transpose_a=True), R.matmul(at, b, transpose_a=True))


def test_matmul_float32_and_errors(C, dev, check, rng):
    a = rng.standard_normal((4, 6)).astype(np.float32)
    b = rng.standard_normal((6, 5)).astype(np.float32)
    check(C.matmul(dev(a), dev(b)), a @ b)
    with pytest.raises(ValueError, match="do not align"):
        C.matmul(dev(a), dev(a))
    with pytest.raises(TypeError, match="float32/float64"):
        C.matmul(dev(np.ones((2, 2), np.int64)), dev(np.ones((2, 2), np.int64)))


@pytest.mark.parametrize("activation", [None, "relu", "sigmoid", "tanh"])
@pytest.mark.parametrize("bias", [True, False])
def test_linear_forward_and_backward(C, dev, check, rng, bias, activation):
    x = rng.standard_normal((6, 5))
    w = rng.standard_normal((3, 5))
    b = rng.standard_normal(3) if bias else None
    g = rng.standard_normal((6, 3))
    y = R.linear_forward(x, w, b, activation)
    check(C.linear_forward(dev(x), dev(w), None if b is None else dev(b), activation), y)
    got = C.linear_backward(dev(g), dev(x), dev(w), True, True, bias, activation, dev(y))
    want = R.linear_backward(g, x, w, True, True, bias, activation, y)
    for actual, expected in zip(got, want):
        if expected is None:
            assert actual is None
        else:
            check(actual, expected)
    none = C.linear_backward(dev(g), dev(x), dev(w), False, True, False, activation, dev(y))
    assert none[0] is None and none[2] is None


def test_linear_of_3d_inputs_and_bad_activations(C, dev, check, rng):
    x = rng.standard_normal((2, 3, 5))
    w = rng.standard_normal((4, 5))
    check(C.linear_forward(dev(x), dev(w), None), x @ w.T)
    with pytest.raises(ValueError, match="activation"):
        C.linear_forward(dev(x), dev(w), None, "softmax")


# ----- random numbers -----


def test_bernoulli_mask_and_normal(C, host):
    import tinygrad_edu as tg

    tg.manual_seed(3)
    mask = host(C.bernoulli_mask((40, 50), 0.3, np.float32))
    assert mask.dtype == np.float32 and set(np.unique(mask)) <= {0.0, 1.0}
    assert abs(mask.mean() - 0.3) < 0.05  # 2000 draws: the mean is within 0.05 w.p. > 0.999
    noise = host(C.normal((2000,), 2.0, np.float64))
    assert abs(noise.mean()) < 0.2 and abs(noise.std() - 2.0) < 0.2
    tg.manual_seed(3)  # re-seeding repeats the stream
    assert np.array_equal(host(C.bernoulli_mask((40, 50), 0.3, np.float32)), mask)
    assert not np.array_equal(host(C.bernoulli_mask((40, 50), 0.3, np.float32)), mask)
    with pytest.raises(ValueError, match="bernoulli_mask"):
        C.bernoulli_mask((2,), 1.5, np.float32)
