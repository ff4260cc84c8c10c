"""Regression tests of issue 13: per-thread grad mode, in-place updates, error classes.

Each test runs the code a PyTorch user writes and checks the numbers against an independent
reference (a closed form, numpy's least squares, a single-threaded run, PyTorch when installed).
"""

import threading

import numpy as np
import pytest

import tinygrad_edu as tg
from tinygrad_edu import Tensor

# ----- grad mode is per thread -----


def _train_steps(steps: int, seed: int = 0) -> np.ndarray:
    """Plain gradient descent on a least-squares problem; returns the final weights."""
    rng = np.random.default_rng(seed)
    X = Tensor(rng.normal(size=(16, 4)))
    y = Tensor(rng.normal(size=(16, 1)))
    w = Tensor(np.zeros((4, 1), np.float32), requires_grad=True)
    for _ in range(steps):
        loss = ((X @ w - y) ** 2).mean()
        assert loss.requires_grad, "the training thread lost grad mode"
        w.grad = None
        loss.backward()
        with tg.no_grad():
            w -= 0.05 * w.grad
    return w.numpy().copy()


def test_no_grad_in_one_thread_does_not_change_another_thread():
    steps = 2000
    expected = _train_steps(steps)  # single-threaded reference
    stop = threading.Event()
    evaluated, leaked = [0], [0]

    def evaluate() -> None:
        x = Tensor(np.ones((8, 4)), requires_grad=True)
        while not stop.is_set():
            with tg.no_grad():  # entered and left thousands of times beside the trainer
                out = (x * 2).sum()
                leaked[0] += out.requires_grad
                evaluated[0] += 1

    evaluator = threading.Thread(target=evaluate)
    evaluator.start()
    try:
        result = {}
        trainer = threading.Thread(target=lambda: result.setdefault("w", _train_steps(steps)))
        trainer.start()
        trainer.join()
    finally:
        stop.set()
        evaluator.join()
    assert evaluated[0] > 0 and leaked[0] == 0
    np.testing.assert_array_equal(result["w"], expected)
    assert tg.is_grad_enabled()


def test_two_threads_toggling_no_grad_leave_recording_on():
    barrier = threading.Barrier(2)

    def toggle() -> None:
        barrier.wait()
        for _ in range(3000):
            with tg.no_grad():
                assert not tg.is_grad_enabled()
            assert tg.is_grad_enabled()

    threads = [threading.Thread(target=toggle) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    x = Tensor([1.0], requires_grad=True)
    assert (x * 2).requires_grad


def test_a_new_thread_starts_with_grad_mode_on():
    seen = []
    with tg.no_grad():
        thread = threading.Thread(target=lambda: seen.append(tg.is_grad_enabled()))
        thread.start()
        thread.join()
    assert seen == [True]  # as PyTorch: grad mode is not inherited by new threads


def test_enable_grad_and_set_grad_enabled():
    x = Tensor([3.0], requires_grad=True)
    with tg.no_grad():
        assert not (x * 2).requires_grad
        with tg.enable_grad():
            y = x * x
        assert y.requires_grad
    y.backward()
    assert x.grad.item() == 6.0

    tg.set_grad_enabled(False)  # as a call: takes effect at once
    try:
        assert not tg.is_grad_enabled() and not (x * 2).requires_grad
    finally:
        tg.set_grad_enabled(True)
    with tg.set_grad_enabled(False):  # as a block: restored on the way out
        assert not (x * 2).requires_grad
    assert (x * 2).requires_grad
    with pytest.raises(TypeError, match="set_grad_enabled"):
        tg.set_grad_enabled("no")


def test_grad_mode_is_restored_after_an_exception_and_works_as_decorator():
    @tg.no_grad()
    def evaluate(t: Tensor) -> Tensor:
        return t * 2

    x = Tensor([1.0], requires_grad=True)
    assert not evaluate(x).requires_grad
    assert (x * 2).requires_grad
    with pytest.raises(KeyError):
        with tg.no_grad():
            raise KeyError("boom")
    assert tg.is_grad_enabled()


# ----- in-place updates and augmented assignment -----


def test_hand_written_gradient_step_trains_y_equals_3x_plus_2():
    rng = np.random.default_rng(1)
    x = Tensor(rng.uniform(-1, 1, size=(64, 1)))
    y = 3 * x + 2
    w = Tensor.zeros(1, 1, requires_grad=True)
    b = Tensor.zeros(1, requires_grad=True)
    w_object, w_storage = w, w._data
    for _ in range(400):
        loss = ((x @ w + b - y) ** 2).mean()
        w.grad = b.grad = None
        loss.backward()
        with tg.no_grad():
            w -= 0.2 * w.grad  # PyTorch's hand-written step
            b -= 0.2 * b.grad
    assert w is w_object and w._data is w_storage and w.requires_grad and w.is_leaf
    np.testing.assert_allclose(w.item(), 3.0, atol=1e-3)
    np.testing.assert_allclose(b.item(), 2.0, atol=1e-3)


def test_learning_pytorch_with_examples_polynomial_in_a_list_reaches_least_squares():
    # "Learning PyTorch with Examples": fit y = sin(x) with a + b x + c x^2 + d x^3, the weights
    # kept in a list and updated by `-=` under no_grad. The reference is numpy's least squares.
    xs = np.linspace(-np.pi, np.pi, 200)
    x, y = Tensor(xs, dtype="float64"), Tensor(np.sin(xs), dtype="float64")
    weights = [Tensor(0.0, dtype="float64", requires_grad=True) for _ in range(4)]
    lr = 1e-5
    for _ in range(20000):
        a, b, c, d = weights
        loss = ((a + b * x + c * x**2 + d * x**3 - y) ** 2).sum()
        loss.backward()
        with tg.no_grad():
            for w in weights:
                w -= lr * w.grad
                w.grad = None
    basis = np.stack([xs**k for k in range(4)], axis=1)
    best, *_ = np.linalg.lstsq(basis, np.sin(xs), rcond=None)
    best_loss = float(((basis @ best - np.sin(xs)) ** 2).sum())
    assert loss.item() < best_loss * 1.05  # trained to (near) the least-squares optimum
    np.testing.assert_allclose([w.item() for w in weights[:2]], best[:2], atol=2e-2)


def test_in_place_on_a_parameter_in_grad_mode_raises():
    w = Tensor([1.0, 2.0], requires_grad=True)
    for update in (
        lambda: w.__isub__(1.0),
        lambda: w.__iadd__(1.0),
        lambda: w.__imul__(2.0),
        lambda: w.__itruediv__(2.0),
        lambda: w.zero_(),
        lambda: w.add_(1.0),
    ):
        with pytest.raises(RuntimeError, match="in-place update of a leaf tensor that requires"):
            update()
    np.testing.assert_array_equal(w.numpy(), [1.0, 2.0])  # nothing was changed


def test_in_place_values_match_numpy():
    rng = np.random.default_rng(2)
    a = rng.normal(size=(3, 4)).astype(np.float32)
    row = rng.normal(size=(4,)).astype(np.float32)
    cases = [
        (lambda t: t.__iadd__(Tensor(row)), lambda n: n.__iadd__(row)),
        (lambda t: t.__isub__(2.5), lambda n: n.__isub__(np.float32(2.5))),
        (lambda t: t.__imul__(Tensor(row)), lambda n: n.__imul__(row)),
        (lambda t: t.__itruediv__(3.0), lambda n: n.__itruediv__(np.float32(3.0))),
        (lambda t: t.__ipow__(2), lambda n: n.__ipow__(2)),
        (lambda t: t.add_(Tensor(row), alpha=-2.0), lambda n: n.__iadd__(-2.0 * row)),
        (lambda t: t.clamp_(-0.5, 0.5), lambda n: np.clip(n, -0.5, 0.5, out=n)),
        (lambda t: t.fill_(7.0), lambda n: n.fill(7.0)),
        (lambda t: t.zero_(), lambda n: n.fill(0.0)),
        (lambda t: t.copy_(row), lambda n: np.copyto(n, row)),
    ]
    for tensor_update, numpy_update in cases:
        t, n = Tensor(a), a.copy()
        storage = t._data
        assert tensor_update(t) is t
        numpy_update(n)
        assert t._data is storage and t.dtype == np.float32
        np.testing.assert_allclose(t.numpy(), n, rtol=1e-6)


def test_in_place_keeps_dtype_and_refuses_what_does_not_fit():
    t = Tensor([1.0, 2.0])  # float32
    t += Tensor(np.array([1e-3, 2e-3]))  # float64 operand: stored as float32, as PyTorch
    assert t.dtype == np.float32
    np.testing.assert_allclose(t.numpy(), [1.001, 2.002], rtol=1e-6)
    labels = Tensor([1, 2, 3], dtype="int64")
    labels += 1
    np.testing.assert_array_equal(labels.numpy(), [2, 3, 4])
    with pytest.raises(TypeError, match="div_.*float32.*int64"):
        labels /= 2
    with pytest.raises(ValueError, match=r"add_: the result has shape \(2, 2\).*\(2,\)"):
        t += Tensor([[1.0, 2.0], [3.0, 4.0]])


def test_in_place_on_a_plain_tensor_records_when_the_other_side_requires_grad():
    a = Tensor([2.0, -1.0], requires_grad=True)
    total = Tensor(0.0)
    total += (a * a).sum()  # PyTorch records this; so do we
    total += a.sum()
    total *= 3.0
    total.backward()
    expected = 3 * (2 * a.numpy() + 1)  # d/da 3 (sum a^2 + sum a)
    np.testing.assert_allclose(a.grad.numpy(), expected)
    assert not total.is_leaf


def test_in_place_does_not_corrupt_values_saved_for_backward():
    w = Tensor([1.0, 2.0], requires_grad=True)
    x = Tensor([3.0, 4.0])
    y = (w * x).sum()  # saves x for w's gradient
    x += Tensor([1.0, 1.0], requires_grad=True)  # recorded, so x gets new storage
    y.backward()
    np.testing.assert_array_equal(w.grad.numpy(), [3.0, 4.0])


def test_in_place_matches_pytorch_when_installed():
    torch = pytest.importorskip("torch")
    rng = np.random.default_rng(3)
    a = rng.normal(size=(5,))
    ours = Tensor(a, dtype="float64", requires_grad=True)
    theirs = torch.tensor(a, requires_grad=True)
    for _ in range(3):
        (ours * ours).sum().backward()
        (theirs * theirs).sum().backward()
        with tg.no_grad():
            ours -= 0.1 * ours.grad
            ours.grad.zero_()
        with torch.no_grad():
            theirs -= 0.1 * theirs.grad
            theirs.grad.zero_()
    np.testing.assert_allclose(ours.numpy(), theirs.detach().numpy(), rtol=1e-12)


# ----- error classes and messages -----


def test_shape_errors_are_caught_by_pytorch_style_except_runtime_error():
    try:
        Tensor.ones(2, 3) @ Tensor.ones(4, 5)
    except RuntimeError as err:  # as PyTorch code writes it
        assert isinstance(err, ValueError) and "matmul" in str(err)
    else:
        pytest.fail("matmul of misaligned shapes did not raise")
    with pytest.raises(IndexError):
        Tensor([1.0, 2.0])[5]


def test_exponent_gradient_of_a_negative_base_names_the_op():
    x = Tensor([1.0, 2.0], requires_grad=True)
    with pytest.raises(RuntimeError, match=r"pow backward: .*-5\.5.*negative base"):
        ((-5.5) ** x).sum().backward()
    x.grad = None
    (2.0**x).sum().backward()  # a positive base: d/dx 2^x = 2^x log 2
    np.testing.assert_allclose(x.grad.numpy(), 2.0 ** np.array([1.0, 2.0]) * np.log(2), rtol=1e-6)


def test_a_python_int_beyond_any_float_as_an_operand_names_the_op():
    x = Tensor([1.0])
    for op, name in ((lambda: x + 10**400, "add"), (lambda: x - 10**400, "sub"),
                     (lambda: 10**400 * x, "mul")):  # fmt: skip
        with pytest.raises(OverflowError, match=f"{name}: the number .* too large"):
            op()
