r"""Random guessing as a search, and why it fails as the parameter count grows.

The simplest optimizer: draw parameters at random, keep the best loss seen. With 2 parameters
it works: the best of N guesses in a box lands within a distance of about :math:`1/\sqrt N` of
the minimum, so its excess loss shrinks like 1/N (the bowl is quadratic near its minimum).

With d parameters the same argument needs :math:`N \sim \varepsilon^{-d}` guesses: for the
chapter's 784-15-10 network, :math:`d = 784 \cdot 15 + 15 + 15 \cdot 10 + 10 = 11{,}935`, so
the volume of "good" weights is a vanishing fraction of the box, a needle in an
11,935-dimensional haystack. Here that network classifies the shipped 8x8 digits, scaled up to
28x28 = 784 pixels. The best of N random networks stays near chance (loss ln 10, accuracy
10%), while N steps of gradient descent, each costing about as much as one guess plus a
backward pass, learn the task.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

import tinygrad_edu as tg
from tinygrad_edu.datasets.digits import load_digits
from tinygrad_edu.demos.d01_linear_regression import least_squares, make_data, mse_grid

NAME = "random-search"
TITLE = "best loss after N random guesses: 2 parameters (works) vs 11,935 parameters (fails)"

BOX = ((-1.0, 4.0), (-2.0, 3.0))  # the (w, b) box of the linear-regression picture


def random_search_2d(n_tries: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray, float]:
    """Best-so-far MSE after each of ``n_tries`` uniform guesses in BOX; also the best point.

    Returns ``(best_loss_curve, best_point, minimum_loss)``.
    """
    x, y = make_data()
    rng = np.random.default_rng(seed)
    ws = rng.uniform(*BOX[0], n_tries)
    bs = rng.uniform(*BOX[1], n_tries)
    losses = ((ws[:, None] * x + bs[:, None] - y) ** 2).mean(axis=1)
    best = int(np.argmin(losses))
    w_star, b_star = least_squares(x, y)
    minimum = float(mse_grid(x, y, np.array([w_star]), np.array([b_star]))[0, 0])
    return np.minimum.accumulate(losses), np.array([ws[best], bs[best]]), minimum


def digits_784(n: int) -> tuple[tg.Tensor, tg.Tensor]:
    """The first n digits, each 8x8 image blown up 3x to 24x24 and padded to 28x28 (784)."""
    X, y = load_digits()
    images = np.kron(X[:n].reshape(n, 8, 8), np.ones((3, 3), dtype=np.float32))
    images = np.pad(images, ((0, 0), (2, 2), (2, 2)))
    return tg.Tensor(images.reshape(n, 784)), tg.Tensor(y[:n], dtype="int64")


def network() -> tg.nn.Module:
    """The chapter's 784-15-10 network: 11,935 parameters."""
    return tg.nn.Sequential(tg.nn.Linear(784, 15), tg.nn.Sigmoid(), tg.nn.Linear(15, 10))


def evaluate(model: tg.nn.Module, X: tg.Tensor, y: tg.Tensor) -> tuple[float, float]:
    """(cross-entropy, accuracy) of the model on (X, y), without recording a graph."""
    with tg.no_grad():
        logits = model(X)
        loss = tg.nn.functional.cross_entropy(logits, y).item()
        accuracy = float((logits.numpy().argmax(axis=1) == y.numpy()).mean())
    return loss, accuracy


def random_search_network(model, X, y, n_tries: int, seed: int = 0) -> tuple[np.ndarray, float]:
    """Best-so-far loss over ``n_tries`` random networks (each weight uniform in +-1/sqrt(fan_in),
    PyTorch's default initialisation); returns the curve and the best network's accuracy."""
    rng = np.random.default_rng(seed)
    best, best_acc, curve = np.inf, 0.0, []
    for _ in range(n_tries):
        for layer in [m for m in model.modules() if isinstance(m, tg.nn.Linear)]:
            bound = 1.0 / np.sqrt(layer.weight.shape[1])
            with tg.no_grad():
                for p in (layer.weight, layer.bias):
                    p.copy_(tg.Tensor(rng.uniform(-bound, bound, p.shape).astype(np.float32)))
        loss, acc = evaluate(model, X, y)
        if loss < best:
            best, best_acc = loss, acc
        curve.append(best)
    return np.array(curve), best_acc


def gradient_descent_network(model, X, y, steps: int) -> tuple[np.ndarray, float]:
    """Full-batch Adam on the same network for ``steps`` steps; loss curve and final accuracy."""
    optimizer = tg.optim.Adam(model.parameters(), lr=0.01)
    curve = []
    for _ in range(steps):
        optimizer.zero_grad()
        loss = tg.nn.functional.cross_entropy(model(X), y)
        loss.backward()
        optimizer.step()
        curve.append(loss.item())
    return np.array(curve), evaluate(model, X, y)[1]


def run(out_dir: Path, tiny: bool = False) -> dict[str, float]:
    """Random search in 2 and in 11,935 dimensions, against gradient descent in the latter."""
    from matplotlib.figure import Figure

    tries_2d, tries_net = (1000, 20) if tiny else (20_000, 100)
    curve_2d, best_point, minimum = random_search_2d(tries_2d)
    excess = float(curve_2d[-1] - minimum)
    print(
        f"2 parameters: best of {tries_2d} random guesses at ({best_point[0]:.3f}, "
        f"{best_point[1]:.3f}), loss {curve_2d[-1]:.5f} vs minimum {minimum:.5f} "
        f"(excess {excess:.2e})"
    )

    tg.manual_seed(0)
    X, y = digits_784(60 if tiny else 250)
    model = network()
    n_params = sum(int(np.prod(p.shape)) for p in model.parameters())
    rs_curve, rs_acc = random_search_network(model, X, y, tries_net)
    gd_curve, gd_acc = gradient_descent_network(network(), X, y, tries_net)
    print(
        f"{n_params} parameters: best of {tries_net} random networks: loss {rs_curve[-1]:.3f}, "
        f"accuracy {rs_acc:.1%}; {tries_net} steps of gradient descent (Adam): loss "
        f"{gd_curve[-1]:.3f}, training accuracy {gd_acc:.1%} "
        f"(chance: loss {np.log(10):.3f}, 10%)"
    )

    fig = Figure(figsize=(12, 4.8), layout="constrained")
    left, right = fig.subplots(1, 2)
    n = np.arange(1, tries_2d + 1)
    left.loglog(n, curve_2d - minimum, label="best-so-far excess loss")
    left.loglog(n, (curve_2d[9] - minimum) * 10 / n, "k:", label="~ 1/N")
    left.set(
        title="2 parameters (the line's w, b): random search works",
        xlabel="number of random guesses N",
        ylabel="best loss - minimum loss",
    )
    left.legend()
    steps = np.arange(1, tries_net + 1)
    right.plot(steps, rs_curve, label=f"random search: best of N (accuracy {rs_acc:.0%})")
    right.plot(steps, gd_curve, label=f"gradient descent: N steps (accuracy {gd_acc:.0%})")
    right.axhline(np.log(10), color="k", ls=":", label="chance (ln 10)")
    right.set(
        title=f"{n_params:,} parameters (784-15-10 network on digits)",
        xlabel="N (guesses, or gradient steps)",
        ylabel="cross-entropy loss",
    )
    right.legend()
    fig.savefig(out_dir / f"{NAME}.png", dpi=110)
    return {
        "excess_2d": excess,
        "tries_2d": float(tries_2d),
        "n_params": float(n_params),
        "random_loss": float(rs_curve[-1]),
        "random_accuracy": rs_acc,
        "gd_loss": float(gd_curve[-1]),
        "gd_accuracy": gd_acc,
    }
