r"""Linear regression: the data, the fitted line, and the loss bowl over (slope, intercept).

The model is a line, :math:`\hat y = w x + b`, and its loss is the mean squared error

.. math:: J(w, b) = \frac{1}{n} \sum_i (w x_i + b - y_i)^2 .

J is a quadratic in (w, b): its graph is a bowl with exactly one lowest point. Setting both
partial derivatives to zero gives the *normal equations*; with the design matrix
:math:`A = [x, 1]` their solution is the least-squares line
:math:`(w^*, b^*) = (A^T A)^{-1} A^T y`. No search is needed for this model, which makes it
the reference the later demos (random search, gradient descent) are measured against.

The picture: the data with the fitted line (left) and the contours of J over the (w, b) plane
with the closed-form minimum marked (right). The demo also checks with tinygrad_edu's autograd
that the gradient of J vanishes at that point.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

import tinygrad_edu as tg

NAME = "linear-regression"
TITLE = "data, least-squares line, and the MSE bowl over (slope, intercept) with its minimum"

TRUE_W, TRUE_B, NOISE = 1.5, 0.5, 0.4


def make_data(n: int = 100, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """n points ``y = 1.5 x + 0.5 + noise`` with x uniform in [0, 2] (float64)."""
    rng = np.random.default_rng(seed)
    x = rng.uniform(0.0, 2.0, n)
    y = TRUE_W * x + TRUE_B + NOISE * rng.standard_normal(n)
    return x, y


def least_squares(x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """The closed-form minimum (w*, b*) of the MSE: the normal equations, solved by numpy."""
    design = np.stack([x, np.ones_like(x)], axis=1)
    return np.linalg.lstsq(design, y, rcond=None)[0]


def mse_grid(x: np.ndarray, y: np.ndarray, ws: np.ndarray, bs: np.ndarray) -> np.ndarray:
    """J(w, b) on every point of the grid ``ws x bs`` (rows: b, columns: w), vectorised."""
    W, B = np.meshgrid(ws, bs)
    residual = W[..., None] * x + B[..., None] - y  # (len(bs), len(ws), n)
    return (residual**2).mean(axis=-1)


def mse(params: tg.Tensor, x: tg.Tensor, y: tg.Tensor) -> tg.Tensor:
    """J(w, b) as a tinygrad_edu expression of ``params = [w, b]`` (so it can be differentiated)."""
    return ((params[0] * x + params[1] - y) ** 2).mean()


def draw_bowl(ax, x: np.ndarray, y: np.ndarray, ws: np.ndarray, bs: np.ndarray) -> None:
    """Log-spaced contours of J on ``ax`` (shared with the gradient-descent demo)."""
    J = mse_grid(x, y, ws, bs)
    levels = np.geomspace(J.min() * 1.02, J.max(), 18)
    cs = ax.contour(ws, bs, J, levels=levels, cmap="viridis", linewidths=0.8)
    ax.clabel(cs, cs.levels[::3], fmt="%.2g", fontsize=7)
    ax.set_xlabel("slope w")
    ax.set_ylabel("intercept b")


def run(out_dir: Path, tiny: bool = False) -> dict[str, float]:
    """Fit the line in closed form, check the gradient there is zero, draw data and bowl."""
    from matplotlib.figure import Figure

    x, y = make_data(30 if tiny else 100)
    w_star, b_star = least_squares(x, y)
    params = tg.Tensor(np.array([w_star, b_star]), requires_grad=True)
    loss = mse(params, tg.Tensor(x), tg.Tensor(y))
    loss.backward()
    grad_norm = float(np.linalg.norm(params.grad.numpy()))
    print(f"closed-form minimum (w, b) = ({w_star:.4f}, {b_star:.4f}); MSE there {loss.item():.4f}")
    print(f"|grad J| at the minimum (tinygrad_edu backward) = {grad_norm:.2e}")

    fig = Figure(figsize=(11, 4.5), layout="constrained")
    left, right = fig.subplots(1, 2)
    left.scatter(x, y, s=14, alpha=0.7, label="data")
    line = np.linspace(0, 2, 2)
    left.plot(
        line, w_star * line + b_star, "r", lw=2, label=f"fit: y = {w_star:.2f} x + {b_star:.2f}"
    )
    left.plot(line, TRUE_W * line + TRUE_B, "k--", lw=1, label="true line")
    left.set(title="Data and the least-squares line", xlabel="x", ylabel="y")
    left.legend()
    n_grid = 60 if tiny else 160
    draw_bowl(right, x, y, np.linspace(-1, 4, n_grid), np.linspace(-2, 3, n_grid))
    right.plot(w_star, b_star, "r*", ms=14, label=f"minimum ({w_star:.2f}, {b_star:.2f})")
    right.set_title("MSE loss J(w, b): a bowl with one minimum")
    right.legend(loc="upper right")
    fig.savefig(out_dir / f"{NAME}.png", dpi=110)
    return {"w": float(w_star), "b": float(b_star), "mse": loss.item(), "grad_norm": grad_norm}
