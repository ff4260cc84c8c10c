r"""Gradient descent on the linear-regression bowl, at four learning rates.

Gradient descent starts from a guess and repeatedly steps downhill:

.. math:: \theta_{t+1} = \theta_t - \alpha \nabla J(\theta_t), \qquad \theta = (w, b).

On the MSE bowl the gradient is linear, :math:`\nabla J(\theta) = H(\theta - \theta^*)` with
the constant Hessian :math:`H = \frac{2}{n} A^T A`, so the error after t steps is
:math:`(I - \alpha H)^t (\theta_0 - \theta^*)`. Along an eigenvector of H with eigenvalue
:math:`\lambda` the error is multiplied by :math:`1 - \alpha\lambda` each step:

- a tiny :math:`\alpha` makes that factor close to 1, so the path *crawls*;
- :math:`\alpha = 1 / \lambda_{max}` removes the steep direction's error in one step and then
  walks steadily along the shallow one: it *works*;
- just below :math:`2/\lambda_{max}` the factor is close to -1: the path *oscillates* across
  the valley, flipping sides each step, and converges only slowly;
- above :math:`2/\lambda_{max}` the factor exceeds 1 in size: the loss grows, it *diverges*.

The paths are computed with ``tg.optim.SGD`` acting on one Tensor of two parameters.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import numpy as np

import tinygrad_edu as tg
from tinygrad_edu.demos.d01_linear_regression import draw_bowl, least_squares, make_data, mse

NAME = "gradient-descent"
TITLE = "gradient-descent paths on the MSE bowl: a rate that crawls, works, oscillates, diverges"

START = (-0.5, 2.5)


def descend(
    loss_fn: Callable[[tg.Tensor], tg.Tensor],
    start: tuple[float, float],
    make_optimizer: Callable[[list[tg.Tensor]], tg.optim.Optimizer],
    steps: int,
) -> tuple[np.ndarray, np.ndarray]:
    """Run an optimizer on a function of one 2-vector; returns the path (steps+1, 2) and losses.

    ``losses[t]`` is the loss at ``path[t]``. Shared by the momentum and optimizer demos.
    """
    params = tg.Tensor(np.array(start, dtype=np.float64), requires_grad=True)
    optimizer = make_optimizer([params])
    path, losses = [params.numpy().copy()], []
    for _ in range(steps):
        optimizer.zero_grad()
        loss = loss_fn(params)
        loss.backward()
        optimizer.step()
        losses.append(loss.item())
        path.append(params.numpy().copy())
    losses.append(loss_fn(params).item())
    return np.array(path), np.array(losses)


def hessian(x: np.ndarray) -> np.ndarray:
    """H = (2/n) A^T A for the MSE of a line, A = [x, 1]."""
    design = np.stack([x, np.ones_like(x)], axis=1)
    return 2.0 * design.T @ design / len(x)


def learning_rates(H: np.ndarray) -> dict[str, float]:
    """The four rates of the picture, read off the eigenvalues of the Hessian."""
    hi = float(np.linalg.eigvalsh(H)[-1])
    return {
        "crawls": 0.05 / hi,
        "works": 1.0 / hi,
        "oscillates": 1.9 / hi,
        "diverges": 2.1 / hi,
    }


def run(out_dir: Path, tiny: bool = False) -> dict[str, float]:
    """Descend the bowl at each rate; print the distance to the least-squares minimum."""
    from matplotlib.figure import Figure

    x, y = make_data(30 if tiny else 100)
    theta_star = least_squares(x, y)
    xt, yt = tg.Tensor(x), tg.Tensor(y)
    rates = learning_rates(hessian(x))
    steps = 150 if tiny else 300
    results: dict[str, float] = {}
    fig = Figure(figsize=(12, 5), layout="constrained")
    ax_path, ax_loss = fig.subplots(1, 2)
    draw_bowl(ax_path, x, y, np.linspace(-1.5, 4.5, 120), np.linspace(-2.5, 3.5, 120))
    colors = {
        "crawls": "tab:blue",
        "works": "tab:green",
        "oscillates": "tab:orange",
        "diverges": "tab:red",
    }
    for label, lr in rates.items():
        path, losses = descend(
            lambda p: mse(p, xt, yt), START, lambda ps, lr=lr: tg.optim.SGD(ps, lr=lr), steps
        )
        dist = float(np.linalg.norm(path[-1] - theta_star))
        results[f"lr_{label}"] = lr
        results[f"distance_{label}"] = dist
        results[f"final_loss_{label}"] = float(losses[-1])
        print(
            f"lr {lr:.4f} ({label}): after {steps} steps at ({path[-1][0]:.4g}, "
            f"{path[-1][1]:.4g}), distance {dist:.2e}, "
            f"loss {losses[0]:.3g} -> {losses[-1]:.3g}"
        )
        shown = path[: 14 if label == "diverges" else None]  # it leaves the frame
        ax_path.plot(
            shown[:, 0],
            shown[:, 1],
            ".-",
            color=colors[label],
            lw=1,
            ms=3,
            label=f"{label} (lr={lr:.3f})",
        )
        ax_loss.semilogy(losses, color=colors[label], label=f"{label} (lr={lr:.3f})")
    w, b = theta_star
    print(f"closed-form minimum (w, b) = ({w:.4f}, {b:.4f})")
    results.update(w_star=float(w), b_star=float(b))
    ax_path.plot(*START, "ko", ms=7, label="start")
    ax_path.plot(w, b, "r*", ms=14, label="least-squares minimum")
    ax_path.set(xlim=(-1.5, 4.5), ylim=(-2.5, 3.5), title="Paths of gradient descent on J(w, b)")
    ax_path.legend(loc="upper right", fontsize=8)
    ax_loss.axhline(
        float(mse(tg.Tensor(theta_star), xt, yt).item()), color="k", ls=":", label="minimum loss"
    )
    ax_loss.set(
        xlabel="step", ylabel="MSE J (log scale)", title="Loss against step", ylim=(0.1, 1e3)
    )
    ax_loss.legend(fontsize=8)
    fig.savefig(out_dir / f"{NAME}.png", dpi=110)
    return results
