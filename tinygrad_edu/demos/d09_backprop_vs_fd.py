"""Backpropagation against finite differences: the same gradient, very different costs.

Finite differences estimate each entry of the gradient of a loss L(w) from two evaluations:

    dL/dw_i ~ (L(w + eps e_i) - L(w - eps e_i)) / (2 eps)        (central difference)

so a network with P parameters needs 2P forward passes: cost ~ P * (cost of one forward), which
grows like P^2 as the network grows. Backpropagation gets all P entries from one forward and one
backward pass, cost ~ a small constant times one forward: it grows like P.

This demo builds the chapter's network family d-15-10 (input size d, 15 hidden units, 10
classes; d = 784 is the chapter's MNIST network with 11,935 parameters) for P from ~10^2 to
~10^5, checks in float64 that both methods agree, and times both. At 10^5 parameters the full
finite-difference gradient would take minutes, so FD is run on a random subset of entries and
its time per entry multiplied by P (the plot says "extrapolated" where it is).
"""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np

import tinygrad_edu as tg
from tinygrad_edu import nn
from tinygrad_edu.nn import functional as F

NAME = "backprop-vs-fd"
TITLE = "backprop vs finite differences: same gradients, time against parameter count (log-log)"

CHAPTER_D = 784  # the chapter's 784-15-10 network


def problem(d: int, batch: int = 16):
    """A d-15-10 sigmoid network in float64 with a random batch; returns (loss_fn, params)."""
    tg.manual_seed(d)
    net = nn.Sequential(nn.Linear(d, 15, dtype="float64"), nn.Sigmoid(),
                        nn.Linear(15, 10, dtype="float64"))  # fmt: skip
    rng = np.random.default_rng(d)
    x = tg.Tensor(rng.standard_normal((batch, d)))
    y = rng.integers(0, 10, batch)
    params = list(net.parameters())
    return (lambda: F.cross_entropy(net(x), y)), params


def best_time(fn, repeat: int) -> float:
    """The fastest of ``repeat`` runs of ``fn()`` in seconds (the least disturbed one)."""
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return min(times)


def measure(d: int, fd_entries: int, rng: np.random.Generator) -> dict[str, float]:
    """Backprop time, FD time (measured on a sample, scaled to all entries), and max |diff|."""
    loss_fn, params = problem(d)
    n_params = sum(p.size for p in params)
    backprop = tg.grad(loss_fn(), params)
    t_bp = best_time(lambda: tg.grad(loss_fn(), params), 10)
    # A random sample of (tensor, flat index) entries, spread over the tensors by their sizes.
    flat = rng.choice(n_params, size=min(fd_entries, n_params), replace=False)
    bounds = np.cumsum([0] + [p.size for p in params])
    entries = [
        (int(k), int(i - bounds[k]))
        for i in flat
        for k in [np.searchsorted(bounds, i, "right") - 1]
    ]
    start = time.perf_counter()
    numeric = tg.numerical_gradient(loss_fn, params, eps=1e-6, entries=entries)
    t_fd_sample = time.perf_counter() - start
    diff = max(abs(float(numeric[k].reshape(-1)[i]) - float(backprop[k].numpy().reshape(-1)[i]))
               for k, i in entries)  # fmt: skip
    return {"params": n_params, "backprop_s": t_bp, "fd_s": t_fd_sample / len(entries) * n_params,
            "sampled": len(entries), "max_diff": diff}  # fmt: skip


def draw(rows: list[dict], path: Path) -> None:
    from matplotlib.figure import Figure

    P = np.array([r["params"] for r in rows])
    bp = np.array([r["backprop_s"] for r in rows])
    fd = np.array([r["fd_s"] for r in rows])
    full = np.array([r["sampled"] == r["params"] for r in rows])
    fig = Figure(figsize=(7.5, 5), layout="constrained")
    ax = fig.subplots()
    ax.loglog(P, bp, "o-", label="backprop: one forward + one backward")
    ax.loglog(P, fd, "s--", color="tab:red", label="finite differences (2P forwards)")
    ax.loglog(P[~full], fd[~full], "s", mfc="white", color="tab:red",
              label="FD extrapolated: per-entry time on a sample x P")  # fmt: skip
    k = int(np.argmin(np.abs(P - (15 * CHAPTER_D + 15 + 160))))
    ax.annotate(f"784-15-10 (P={P[k]:,}):\nFD {fd[k] / bp[k]:,.0f}x slower", (P[k], fd[k]),
                xytext=(P[k] / 30, fd[k] * 3), arrowprops={"arrowstyle": "->"})  # fmt: skip
    ax.axvline(P[k], color="grey", ls=":", lw=1)
    ax.set_xlabel("number of parameters P (network d-15-10, log scale)")
    ax.set_ylabel("seconds for one full gradient (log scale)")
    ax.set_title("Backprop vs finite differences: cost of one gradient")
    ax.legend(fontsize=8, loc="center right")
    ax.grid(alpha=0.3, which="both")
    fig.savefig(path, dpi=90)


def run(out_dir: Path, tiny: bool = False) -> dict[str, float]:
    sizes = [1, 50, CHAPTER_D] if tiny else [1, 6, 50, 200, CHAPTER_D, 2000, 6655]
    fd_entries = 40 if tiny else 200
    rng = np.random.default_rng(0)
    problem(2)[0]()  # compile the kernels before timing anything
    rows = [measure(d, fd_entries, rng) for d in sizes]
    for r in rows:
        full = r["sampled"] == r["params"]
        how = "all entries" if full else f"{r['sampled']} sampled entries, scaled to P"
        ratio = r["fd_s"] / r["backprop_s"]
        print(f"  P = {r['params']:6d}: backprop {r['backprop_s'] * 1e3:7.3f} ms, "
              f"FD {r['fd_s'] * 1e3:9.1f} ms ({how}), ratio {ratio:7.0f}, "
              f"max |bp - fd| {r['max_diff']:.1e}")  # fmt: skip
    worst = max(r["max_diff"] for r in rows)
    print(f"backprop and FD agree in float64: max difference {worst:.1e} over all sizes")
    draw(rows, out_dir / f"{NAME}.png")
    chapter = next(r for r in rows if r["params"] == 15 * CHAPTER_D + 175)
    return {"max_diff": worst, "chapter_params": float(chapter["params"]),
            "chapter_ratio": chapter["fd_s"] / chapter["backprop_s"],
            "smallest_ratio": rows[0]["fd_s"] / rows[0]["backprop_s"],
            "largest_ratio": rows[-1]["fd_s"] / rows[-1]["backprop_s"]}  # fmt: skip
