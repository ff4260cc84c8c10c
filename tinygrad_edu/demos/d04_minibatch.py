r"""Batch, minibatch and stochastic gradient descent.

The loss is an average over the n training examples, :math:`J = \frac1n \sum_i J_i`, so its
gradient is an average too. *Batch* gradient descent computes it exactly, using all n examples
for every step. *Stochastic* gradient descent (SGD) estimates it from one random example, and
*minibatch* gradient descent from a random batch of B examples (here B = 32):

.. math:: w \leftarrow w - \alpha \frac1B \sum_{i \in \text{batch}} \nabla J_i(w).

The estimate is noisy but unbiased, and it is n/B times cheaper, so per example *seen* the
small batches make many more steps and get further. Per second of wall time the picture
changes: one example at a time pays the framework's fixed cost per step (Python, graph
building, kernel launches) for very little arithmetic, while a batch of 32 uses vectorised
kernels. Minibatches are the usual compromise.

The model is softmax regression (one ``tg.nn.Linear(64, 10)``) on the shipped 8x8 digits;
the loss plotted is the cross-entropy on all training examples, measured outside the timing.
"""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np

import tinygrad_edu as tg
from tinygrad_edu.datasets.digits import load_digits

NAME = "minibatch"
TITLE = "batch vs minibatch vs stochastic gradient descent: loss against samples seen and time"

# name: (batch size, or None for all examples; learning rate)
METHODS = {"batch": (None, 0.5), "minibatch (32)": (32, 0.5), "stochastic (1)": (1, 0.05)}


def full_loss(model: tg.nn.Module, X: tg.Tensor, y: tg.Tensor) -> float:
    """Cross-entropy on every training example, without recording a graph."""
    with tg.no_grad():
        return tg.nn.functional.cross_entropy(model(X), y).item()


def train(X: np.ndarray, y: np.ndarray, batch_size: int, lr: float, epochs: int, checkpoints: int):
    """Plain SGD on softmax regression; returns (samples seen, seconds, full loss) at checkpoints.

    Every run starts from the same initial weights (seed 0), so only the batch size differs.
    """
    tg.manual_seed(0)
    model = tg.nn.Linear(64, 10)
    optimizer = tg.optim.SGD(model.parameters(), lr=lr)
    Xt, yt = tg.Tensor(X), tg.Tensor(y, dtype="int64")
    loader = tg.data.DataLoader(X, y, batch_size=batch_size, shuffle=True, seed=0)
    total = epochs * len(X)
    every = max(1, total // checkpoints)
    seen, seconds, next_mark = 0, 0.0, every
    record = [(0, 0.0, full_loss(model, Xt, yt))]
    for _ in range(epochs):
        start = time.perf_counter()
        for xb, yb in loader:
            optimizer.zero_grad()
            tg.nn.functional.cross_entropy(model(xb), yb).backward()
            optimizer.step()
            seen += len(xb)
            if seen >= next_mark:  # stop the clock while measuring the full loss
                seconds += time.perf_counter() - start
                record.append((seen, seconds, full_loss(model, Xt, yt)))
                next_mark += every
                start = time.perf_counter()
        seconds += time.perf_counter() - start
    return np.array(record)


def run(out_dir: Path, tiny: bool = False) -> dict[str, float]:
    """Train with each batch size on the same number of examples; print losses and times."""
    from matplotlib.figure import Figure

    n, epochs = (200, 2) if tiny else (1000, 3)
    X, y = load_digits()
    X, y = X[:n], y[:n]
    fig = Figure(figsize=(12, 4.8), layout="constrained")
    ax_seen, ax_time = fig.subplots(1, 2)
    results: dict[str, float] = {}
    for name, (batch, lr) in METHODS.items():
        size = batch or n
        # Warm-up, untimed: compile the kernels for a full batch and for the short last batch
        # (a smaller batch may take another kernel build), so the clock measures training only.
        warm = size + (n % size or size)
        train(X[:warm], y[:warm], size, lr, 1, 1)
        record = train(X, y, size, lr, epochs, checkpoints=30)
        steps = epochs * -(-n // size)
        key = name.split()[0]
        results[f"loss_{key}"] = float(record[-1, 2])
        results[f"seconds_{key}"] = float(record[-1, 1])
        results[f"steps_{key}"] = float(steps)
        print(
            f"{name:<15} lr {lr}: {steps} steps over {epochs * n} examples, "
            f"{record[-1, 1]:.2f} s, "
            f"loss {record[0, 2]:.3f} -> {record[-1, 2]:.3f}"
        )
        ax_seen.plot(record[:, 0], record[:, 2], ".-", label=f"{name}, lr={lr}")
        ax_time.semilogx(record[1:, 1], record[1:, 2], ".-", label=f"{name}, lr={lr}")
    ax_seen.set(
        title="Loss against examples seen",
        xlabel="training examples seen",
        ylabel="cross-entropy on all training data",
    )
    ax_time.set(
        title="Loss against wall time",
        xlabel="seconds of training (log scale)",
        ylabel="cross-entropy on all training data",
    )
    for ax in (ax_seen, ax_time):
        ax.legend()
    fig.savefig(out_dir / f"{NAME}.png", dpi=110)
    return results
