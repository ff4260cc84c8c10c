r"""Momentum and Nesterov momentum against plain gradient descent.

Plain gradient descent forgets: each step uses only the current gradient. Momentum keeps a
velocity z, a running sum of past gradients, and moves along it:

.. math::
    z_t = \beta z_{t-1} + \nabla J(w_{t-1}), \qquad w_t = w_{t-1} - \alpha z_t .

Like a ball rolling downhill, the velocity builds up along directions where the gradients
agree (the floor of a long valley) and cancels across directions where they flip sign (the
valley's steep walls). :math:`\beta = 0` is plain gradient descent. Nesterov's variant takes
the gradient where momentum is about to carry the weights, :math:`w_{t-1} - \alpha\beta
z_{t-1}`, and so corrects an overshoot one step earlier.

Two surfaces: an elongated bowl :math:`J = \frac12 (w_1^2 + 25 w_2^2)`, where the learning
rate is limited by the steep direction so plain GD crawls along the shallow one, and the
Rosenbrock valley :math:`J = (1 - w_1)^2 + 100 (w_2 - w_1^2)^2` (minimum at (1, 1)), a curved
narrow valley. Momentum gets far further in the same number of steps, overshooting on the way.
All paths come from ``tg.optim.SGD(momentum=..., nesterov=...)``.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

import tinygrad_edu as tg
from tinygrad_edu.demos.d03_gradient_descent import descend

NAME = "momentum"
TITLE = "plain GD, momentum and Nesterov on an elongated bowl and the Rosenbrock valley"

BETA = 0.9


def elongated_bowl(p):
    """J(w) = (w1^2 + 25 w2^2) / 2 on a Tensor or an array; minimum 0 at (0, 0)."""
    return 0.5 * (p[0] ** 2 + 25.0 * p[1] ** 2)


def rosenbrock(p):
    """J(w) = (1 - w1)^2 + 100 (w2 - w1^2)^2 on a Tensor or an array; minimum 0 at (1, 1)."""
    return (1.0 - p[0]) ** 2 + 100.0 * (p[1] - p[0] ** 2) ** 2


# name: (function, start, minimum, learning rate, plot box (xmin, xmax, ymin, ymax))
PROBLEMS = {
    "elongated bowl": (elongated_bowl, (-9.0, 1.5), (0.0, 0.0), 0.03, (-10, 3, -2.5, 2.5)),
    "Rosenbrock": (rosenbrock, (-1.2, 1.0), (1.0, 1.0), 1e-3, (-2, 2, -1, 3)),
}
METHODS = {
    "plain GD": dict(momentum=0.0),
    f"momentum (beta={BETA})": dict(momentum=BETA),
    f"Nesterov (beta={BETA})": dict(momentum=BETA, nesterov=True),
}


def draw_contours(ax, f, box: tuple[float, float, float, float]) -> None:
    """Log-spaced contours of f over ``box``; f is evaluated on numpy grids."""
    x0, x1, y0, y1 = box
    X, Y = np.meshgrid(np.linspace(x0, x1, 200), np.linspace(y0, y1, 200))
    Z = f(np.stack([X, Y]))
    ax.contour(
        X,
        Y,
        Z,
        levels=np.geomspace(max(Z.min(), 1e-3), Z.max(), 20),
        cmap="viridis",
        linewidths=0.7,
    )
    ax.set(xlim=(x0, x1), ylim=(y0, y1), xlabel="w1", ylabel="w2")


def run(out_dir: Path, tiny: bool = False) -> dict[str, float]:
    """Race the three methods on both surfaces; print each final distance to the minimum."""
    from matplotlib.figure import Figure

    steps = {"elongated bowl": 60 if tiny else 120, "Rosenbrock": 300 if tiny else 1200}
    results: dict[str, float] = {}
    fig = Figure(figsize=(12, 9), layout="constrained")
    axes = fig.subplots(2, 2)
    for row, (problem, (f, start, minimum, lr, box)) in enumerate(PROBLEMS.items()):
        ax_path, ax_loss = axes[row]
        draw_contours(ax_path, f, box)
        for method, options in METHODS.items():
            path, losses = descend(
                f, start, lambda ps, o=options, lr=lr: tg.optim.SGD(ps, lr=lr, **o), steps[problem]
            )
            dist = float(np.linalg.norm(path[-1] - np.array(minimum)))
            key = f"{problem.split()[-1].lower()}_{method.split()[0].lower()}"
            results[f"distance_{key}"] = dist
            results[f"loss_{key}"] = float(losses[-1])
            print(
                f"{problem}, {method}, lr {lr}: after {steps[problem]} steps at "
                f"({path[-1][0]:.4f}, {path[-1][1]:.4f}), "
                f"distance to minimum {dist:.2e}"
            )
            ax_path.plot(path[:, 0], path[:, 1], ".-", lw=1, ms=2, label=method)
            ax_loss.semilogy(np.maximum(losses, 1e-16), label=method)
        ax_path.plot(*start, "ko", ms=7, label="start")
        ax_path.plot(*minimum, "r*", ms=14, label="minimum")
        ax_path.set_title(f"{problem}: paths (lr={lr})")
        ax_path.legend(fontsize=8, loc="lower right")
        ax_loss.set(title=f"{problem}: loss against step", xlabel="step", ylabel="loss (log)")
        ax_loss.legend(fontsize=8)
    fig.savefig(out_dir / f"{NAME}.png", dpi=100)
    return results
