"""The chapter's point as a race: training with finite differences against backprop.

Both runs train the same small network from the same initial weights with the same plain
gradient-descent step  w <- w - lr * g.  The only difference is how g is computed:

- finite differences: g_i = (L(w + eps e_i) - L(w - eps e_i)) / (2 eps), i.e. 2P forward passes
  for P parameters per step;
- backprop: one forward and one backward pass per step.

Step for step the two runs follow the same path (their gradients agree to ~1e-9 in float64),
so the loss *per step* is the same. But each run gets the same wall-clock budget, and in that
time backprop takes hundreds of times more steps: plotted against seconds, the FD curve barely
moves while backprop's has converged.
"""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np

import tinygrad_edu as tg
from tinygrad_edu import nn
from tinygrad_edu.nn import functional as F

NAME = "fd-training-race"
TITLE = "loss against wall-clock time: training by finite differences vs by backprop"

LR = 0.5


def problem(n: int, hidden: int):
    """A 64-hidden-10 sigmoid network (float64) on n digits; returns (loss_fn, params)."""
    X, y = tg.datasets.load_digits()
    tg.manual_seed(0)
    net = nn.Sequential(nn.Linear(64, hidden, dtype="float64"), nn.Sigmoid(),
                        nn.Linear(hidden, 10, dtype="float64"))  # fmt: skip
    x = tg.Tensor(X[:n].astype(np.float64))
    return (lambda: F.cross_entropy(net(x), y[:n])), list(net.parameters())


def fd_gradient(loss_fn, params):
    return [tg.Tensor(g) for g in tg.numerical_gradient(loss_fn, params, eps=1e-6)]


def backprop_gradient(loss_fn, params):
    return tg.grad(loss_fn(), params)


def race(gradient, n: int, hidden: int, budget_s: float, max_steps: int):
    """Gradient descent until ``budget_s`` seconds (or ``max_steps``) have passed; returns the
    (seconds, loss) pairs after each step, the first at time 0."""
    loss_fn, params = problem(n, hidden)
    with tg.no_grad():
        history = [(0.0, float(loss_fn().item()))]
    start = time.perf_counter()
    while time.perf_counter() - start < budget_s and len(history) <= max_steps:
        grads = gradient(loss_fn, params)
        with tg.no_grad():
            for p, g in zip(params, grads):
                p -= LR * g
            history.append((time.perf_counter() - start, float(loss_fn().item())))
    return history


def draw(fd, bp, n_params: int, path: Path) -> None:
    from matplotlib.figure import Figure

    fig = Figure(figsize=(11, 4.2), layout="constrained")
    by_time, by_step = fig.subplots(1, 2)
    for hist, label, style in ((fd, "finite differences", "s-"), (bp, "backprop", "-")):
        t, loss = np.array(hist).T
        by_time.plot(t, loss, style, ms=3, label=f"{label}: {len(hist) - 1} steps")
        by_step.plot(np.arange(len(loss)), loss, style, ms=3, label=label)
    by_time.set_xlabel("wall-clock seconds")
    by_time.set_title(f"Same time budget ({n_params} parameters)")
    by_step.set_xlabel("gradient-descent step")
    by_step.set_xscale("symlog")
    by_step.set_title("Same path, step for step")
    for ax in (by_time, by_step):
        ax.set_ylabel("training cross-entropy")
        ax.legend()
        ax.grid(alpha=0.3)
    fig.suptitle("Training race: the gradient by finite differences vs by backprop")
    fig.savefig(path, dpi=90)


def run(out_dir: Path, tiny: bool = False) -> dict[str, float]:
    n, hidden, budget = (50, 4, 0.3) if tiny else (200, 8, 1.5)
    race(backprop_gradient, n, hidden, 0.0, 1)  # compile the kernels before the clock starts
    fd = race(fd_gradient, n, hidden, budget, 10**6)
    bp = race(backprop_gradient, n, hidden, budget, 10**6)
    n_params = sum(p.size for p in problem(n, hidden)[1])
    k = len(fd) - 1  # the last step both runs took
    print(f"{n_params} parameters, {n} digits, lr {LR}, {budget:g} s each")
    print(f"  finite differences: {k} steps, final loss {fd[-1][1]:.4f}")
    print(f"  backprop:           {len(bp) - 1} steps, final loss {bp[-1][1]:.4f}")
    print(f"  after step {k}: FD loss {fd[k][1]:.6f}, backprop loss {bp[k][1]:.6f} (same path)")
    draw(fd, bp, n_params, out_dir / f"{NAME}.png")
    return {"params": float(n_params), "fd_steps": float(k), "bp_steps": float(len(bp) - 1),
            "fd_final_loss": fd[-1][1], "bp_final_loss": bp[-1][1],
            "fd_loss_at_k": fd[k][1], "bp_loss_at_k": bp[k][1],
            "initial_loss": fd[0][1]}  # fmt: skip
