"""Demos 1-6 of the chapter: each runs at its tiny size, draws its PNG, and the numbers it
prints agree with independent references (closed forms, numpy recursions, PyTorch)."""

from __future__ import annotations

import numpy as np
import pytest

import tinygrad_edu as tg
from tinygrad_edu import demos

pytest.importorskip("matplotlib")

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


def run_tiny(name: str, tmp_path) -> dict[str, float]:
    numbers = demos.run(name, tmp_path, tiny=True)
    png = tmp_path / f"{name}.png"
    assert png.read_bytes()[:8] == PNG_MAGIC
    assert png.stat().st_size > 10_000  # a real figure, not an empty canvas
    assert all(np.isfinite(v) or "diverges" in k for k, v in numbers.items())
    return numbers


def test_demos_are_found_in_order():
    names = [name for name, _ in demos.available()]
    mine = [
        "linear-regression",
        "random-search",
        "gradient-descent",
        "minibatch",
        "momentum",
        "optimizers",
    ]
    assert [n for n in names if n in mine] == mine


# ----- d01 linear regression -----


def test_linear_regression_minimum_matches_polyfit(tmp_path, capsys):
    from tinygrad_edu.demos.d01_linear_regression import make_data

    numbers = run_tiny("linear-regression", tmp_path)
    x, y = make_data(30)
    w, b = np.polyfit(x, y, 1)
    assert numbers["w"] == pytest.approx(w, abs=1e-10)
    assert numbers["b"] == pytest.approx(b, abs=1e-10)
    assert numbers["mse"] == pytest.approx(np.mean((w * x + b - y) ** 2), rel=1e-10)
    assert numbers["grad_norm"] < 1e-10
    assert "closed-form minimum (w, b)" in capsys.readouterr().out


# ----- d02 random search -----


def test_random_search_works_in_2d_and_fails_in_11935d(tmp_path):
    from tinygrad_edu.demos.d01_linear_regression import make_data
    from tinygrad_edu.demos.d02_random_search import random_search_2d

    numbers = run_tiny("random-search", tmp_path)
    assert numbers["n_params"] == 784 * 15 + 15 + 15 * 10 + 10
    curve, best, minimum = random_search_2d(1000)
    x, y = make_data()
    w, b = np.polyfit(x, y, 1)
    assert minimum == pytest.approx(np.mean((w * x + b - y) ** 2), rel=1e-10)
    assert curve[-1] == pytest.approx(np.mean((best[0] * x + best[1] - y) ** 2), rel=1e-12)
    assert np.all(np.diff(curve) <= 0)
    assert 0 < numbers["excess_2d"] < 0.05  # 1000 guesses in 2-D get close
    assert numbers["random_loss"] > 0.95 * np.log(10)  # the best random network is near chance
    assert numbers["random_accuracy"] < 0.35
    assert numbers["gd_loss"] < 0.5 * np.log(10)  # as many gradient steps learn the task
    assert numbers["gd_accuracy"] > 0.8


# ----- d03 gradient descent -----


def test_gradient_descent_reaches_least_squares_and_diverges(tmp_path):
    numbers = run_tiny("gradient-descent", tmp_path)
    assert numbers["distance_works"] < 1e-3
    assert numbers["distance_oscillates"] < 1e-3
    assert numbers["distance_crawls"] > 0.1
    assert numbers["final_loss_diverges"] > 1e6


def test_gradient_descent_path_is_the_closed_form_iterate():
    """GD on a quadratic: theta_t - theta* = (I - lr H)^t (theta_0 - theta*), exactly."""
    from tinygrad_edu.demos.d01_linear_regression import least_squares, make_data, mse
    from tinygrad_edu.demos.d03_gradient_descent import START, descend, hessian, learning_rates

    x, y = make_data(30)
    H, star = hessian(x), least_squares(x, y)
    xt, yt = tg.Tensor(x), tg.Tensor(y)
    for label, lr in learning_rates(H).items():
        path, losses = descend(
            lambda p: mse(p, xt, yt), START, lambda ps, lr=lr: tg.optim.SGD(ps, lr=lr), 25
        )
        M = np.eye(2) - lr * H
        expected = [
            star + np.linalg.matrix_power(M, t) @ (np.array(START) - star) for t in range(26)
        ]
        np.testing.assert_allclose(path, expected, rtol=1e-9, atol=1e-9, err_msg=label)
        if label == "diverges":
            assert np.all(np.diff(losses[5:]) > 0)  # the loss grows at every step


# ----- d04 minibatch -----


def test_minibatch_beats_batch_per_example(tmp_path):
    numbers = run_tiny("minibatch", tmp_path)
    assert numbers["loss_minibatch"] < numbers["loss_batch"]
    assert numbers["loss_stochastic"] < numbers["loss_batch"]
    assert numbers["steps_stochastic"] == 400 and numbers["steps_batch"] == 2


def test_batch_gradient_descent_matches_numpy_softmax_regression():
    from tinygrad_edu.datasets.digits import load_digits
    from tinygrad_edu.demos.d04_minibatch import train

    X, y = load_digits()
    X, y = X[:200].astype(np.float64), y[:200]
    record = train(X.astype(np.float32), y, batch_size=200, lr=0.5, epochs=3, checkpoints=3)
    tg.manual_seed(0)
    layer = tg.nn.Linear(64, 10)
    W, b = layer.weight.numpy().astype(np.float64), layer.bias.numpy().astype(np.float64)
    onehot = np.eye(10)[y]

    def loss_and_grads(W, b):
        z = X @ W.T + b
        z -= z.max(axis=1, keepdims=True)
        p = np.exp(z) / np.exp(z).sum(axis=1, keepdims=True)
        loss = -np.mean(np.log(p[np.arange(len(y)), y]))
        g = (p - onehot) / len(y)
        return loss, g.T @ X, g.sum(axis=0)

    losses = []
    for _ in range(3):
        _, gW, gb = loss_and_grads(W, b)
        W, b = W - 0.5 * gW, b - 0.5 * gb
        losses.append(loss_and_grads(W, b)[0])
    np.testing.assert_allclose(record[1:, 2], losses, rtol=1e-5)


# ----- d05 momentum -----


def test_momentum_gets_further_than_plain_gd(tmp_path):
    numbers = run_tiny("momentum", tmp_path)
    for problem in ("bowl", "rosenbrock"):
        assert numbers[f"distance_{problem}_momentum"] < numbers[f"distance_{problem}_plain"]
        assert numbers[f"distance_{problem}_nesterov"] < numbers[f"distance_{problem}_plain"]


def test_momentum_path_is_the_chapters_recursion():
    """z_t = beta z_{t-1} + grad J(w_{t-1}); w_t = w_{t-1} - alpha z_t, in numpy."""
    from tinygrad_edu.demos.d03_gradient_descent import descend
    from tinygrad_edu.demos.d05_momentum import rosenbrock

    def grad(w):
        return np.array(
            [-2 * (1 - w[0]) - 400 * w[0] * (w[1] - w[0] ** 2), 200 * (w[1] - w[0] ** 2)]
        )

    lr, beta, start = 1e-3, 0.9, (-1.2, 1.0)
    path, _ = descend(rosenbrock, start, lambda ps: tg.optim.SGD(ps, lr=lr, momentum=beta), 50)
    w, z = np.array(start), np.zeros(2)
    for t in range(50):
        z = beta * z + grad(w)
        w = w - lr * z
        np.testing.assert_allclose(path[t + 1], w, rtol=1e-10, atol=1e-12)


# ----- d06 optimizers -----


def test_optimizers_all_descend(tmp_path):
    numbers = run_tiny("optimizers", tmp_path)
    from tinygrad_edu.demos.d05_momentum import elongated_bowl, rosenbrock

    start_bowl, start_rosen = (
        elongated_bowl(np.array([-9.0, 1.5])),
        rosenbrock(np.array([-1.2, 1.0])),
    )
    for name in ("sgd", "momentum", "nesterov", "adagrad", "adadelta", "rmsprop", "adam", "adamw"):
        assert numbers[f"loss_bowl_{name}"] < start_bowl
        assert numbers[f"loss_rosenbrock_{name}"] < start_rosen


def test_optimizer_paths_match_pytorch():
    torch = pytest.importorskip("torch")
    from tinygrad_edu.demos.d03_gradient_descent import descend
    from tinygrad_edu.demos.d05_momentum import rosenbrock
    from tinygrad_edu.demos.d06_optimizers import OPTIMIZERS

    torch_classes = {
        "SGD": torch.optim.SGD,
        "Adagrad": torch.optim.Adagrad,
        "Adadelta": torch.optim.Adadelta,
        "RMSprop": torch.optim.RMSprop,
        "Adam": torch.optim.Adam,
        "AdamW": torch.optim.AdamW,
    }
    start = (-1.2, 1.0)
    for name, (cls, _, opts) in OPTIMIZERS.items():
        path, _ = descend(rosenbrock, start, lambda ps, c=cls, o=opts: c(ps, **o), 30)
        w = torch.tensor(start, dtype=torch.float64, requires_grad=True)
        opt = torch_classes[cls.__name__]([w], **opts)
        expected = [w.detach().numpy().copy()]
        for _ in range(30):
            opt.zero_grad()
            rosenbrock(w).backward()
            opt.step()
            expected.append(w.detach().numpy().copy())
        np.testing.assert_allclose(path, expected, rtol=1e-9, atol=1e-9, err_msg=name)
