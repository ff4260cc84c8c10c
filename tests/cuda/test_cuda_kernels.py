"""What only the CUDA backend has, on tiny shapes: device memory (copies, views, in-place steps),
host arrays refused, index data from the host, launches over several matmul tiles, and its errors.

Every kernel of the interface is compared with the reference on every backend in
``tests/test_backends.py``; ``tests/test_cuda_sim.py`` runs both files in the simulator.
"""

from __future__ import annotations

import numpy as np
import pytest

from tinygrad_edu.backend import reference as R

F64 = np.float64


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


def test_binary_rejects_shapes_that_do_not_broadcast(C, dev):
    with pytest.raises(ValueError):
        C.binary("add", dev(np.ones((2, 3))), dev(np.ones((4,))))
    with pytest.raises(ValueError, match="unknown op"):
        C.binary("mod", dev(np.ones(2)), 1.0)


def test_host_arrays_are_refused(C, dev):
    with pytest.raises(TypeError, match="device arrays"):
        C.binary("add", dev(np.ones(2)), np.ones(2))


# ----- movement -----


def test_getitem_of_integers_and_a_numpy_probe(C, dev, check):
    labels = np.array([3, 1, 4, 1, 5])
    check(C.getitem(dev(labels), np.array([4, 0])), labels[[4, 0]])
    probe = np.empty((2, 3), dtype=np.bool_)  # Tensor.__getitem__ validates indices this way
    assert C.getitem(probe, (1, slice(None))).shape == (3,)


def test_concatenate_different_lengths_and_dtypes(C, dev, check, rng):
    xs = [rng.standard_normal((1, 2)).astype(np.float32), rng.standard_normal((3, 2))]
    check(C.concatenate([dev(x) for x in xs], 0), R.concatenate(xs, 0))
    with pytest.raises(ValueError, match="concatenate"):
        C.concatenate([dev(np.ones((2, 3))), dev(np.ones((2, 4)))], 0)


# ----- softmax family and cross-entropy -----


def test_softmax_of_empty_and_integer_arrays(C, dev, check):
    for x in (np.zeros((0, 3)), np.array([[1, 2, 3]])):
        for log in (False, True):
            check(C.softmax(dev(x), 1, log), R.softmax(x, 1, log))


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


def test_cross_entropy_with_host_labels(C, dev, check, rng):
    """Labels may come as a host array (test_backends sends device labels)."""
    labels_on_device = False
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
# The tile is MATMUL_BM x MATMUL_BN = 128 x 128: 130 x 131 outputs take 2 x 2 tiles.


def test_matmul_over_several_tiles(C, dev, check, rng):
    a = rng.standard_normal((130, 9))
    b = rng.standard_normal((9, 131))
    check(C.matmul(dev(a), dev(b)), a @ b)


def test_matmul_float32_and_errors(C, dev, check, rng):
    a = rng.standard_normal((4, 6)).astype(np.float32)
    b = rng.standard_normal((6, 5)).astype(np.float32)
    check(C.matmul(dev(a), dev(b)), a @ b)
    with pytest.raises(ValueError, match="do not align"):
        C.matmul(dev(a), dev(a))
    with pytest.raises(TypeError, match="float32/float64"):
        C.matmul(dev(np.ones((2, 2), np.int64)), dev(np.ones((2, 2), np.int64)))


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
