"""Overfitting, and five ways to fight it.

A network with far more parameters than training examples can memorise them: its training loss
goes to ~0 while the loss on examples it never saw (the validation set) first falls, then rises.
The gap is *overfitting*. Each remedy below limits how freely the weights can fit noise:

- L2 penalty   loss + 1/2 * lam * sum(w^2)      (pulls every weight towards 0: dR/dw = lam * w)
- L1 penalty   loss + lam * sum(|w|)            (pushes small weights to exactly 0)
- dropout      each hidden unit zeroed with probability p during training
- input noise  train on x + N(0, std^2): nearby inputs must share a label
- early stop   keep the weights of the epoch where the validation loss was lowest

All six runs share the data, the network's initial weights and the optimizer, so their panels
compare directly (same axes).
"""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np

import tinygrad_edu as tg
from tinygrad_edu import nn
from tinygrad_edu.nn import functional as F

NAME = "overfitting"
TITLE = "train vs validation loss of an oversized network on few digits, plain and regularised"

VARIANTS = ("plain", "L2", "L1", "dropout", "input noise")


def split_digits(n_train: int, n_val: int, seed: int = 0):
    """A few training digits and a separate validation set (8x8 images, values 0..1)."""
    X, y = tg.datasets.load_digits()
    order = np.random.default_rng(seed).permutation(len(X))
    tr, va = order[:n_train], order[n_train : n_train + n_val]
    return X[tr], y[tr], X[va], y[va]


def make_net(variant: str, hidden: int) -> nn.Module:
    """64 -> hidden -> hidden -> 10 ReLU net; dropout / noise layers only in their variant."""
    tg.manual_seed(0)  # the same initial weights for every variant
    noise = [nn.GaussianNoise(0.3)] if variant == "input noise" else []
    drop = [nn.Dropout(0.5)] if variant == "dropout" else []
    layers = [*noise, nn.Linear(64, hidden), nn.ReLU(), *drop]
    layers += [nn.Linear(hidden, hidden), nn.ReLU(), *drop, nn.Linear(hidden, 10)]
    return nn.Sequential(*layers)


def train(variant: str, data, epochs: int, hidden: int) -> tuple[list[float], list[float]]:
    """Full-batch Adam; returns the train and validation cross-entropy after every epoch."""
    Xtr, ytr, Xva, yva = data
    net = make_net(variant, hidden)
    weights = [p for name, p in net.named_parameters() if name.endswith("weight")]
    opt = tg.optim.Adam(net.parameters(), lr=3e-3)
    xtr, xva = tg.Tensor(Xtr), tg.Tensor(Xva)
    train_loss, val_loss = [], []
    for _ in range(epochs):
        net.train()
        loss = F.cross_entropy(net(xtr), ytr)
        if variant == "L2":
            loss = loss + F.l2_penalty(weights, 1e-3)
        elif variant == "L1":
            loss = loss + F.l1_penalty(weights, 1e-4)
        opt.zero_grad()
        loss.backward()
        opt.step()
        net.eval()
        with tg.no_grad():  # the losses of the same weights, without noise or dropout
            train_loss.append(float(F.cross_entropy(net(xtr), ytr).item()))
            val_loss.append(float(F.cross_entropy(net(xva), yva).item()))
    return train_loss, val_loss


def draw(curves: dict, stop: int, hidden: int, n_train: int, path: Path) -> None:
    from matplotlib.figure import Figure

    fig = Figure(figsize=(15, 3.6), layout="constrained")
    axes = fig.subplots(1, len(curves), sharey=True)
    top = max(max(v) for _, v in curves.values())
    low = min(min(t) for t, _ in curves.values())
    for ax, (variant, (tr, va)) in zip(axes, curves.items()):
        epochs = np.arange(1, len(tr) + 1)
        ax.plot(epochs, tr, label="train")
        ax.plot(epochs, va, label="validation")
        ax.set_title(f"{variant}: val {va[-1]:.3f}, gap {va[-1] - tr[-1]:.3f}", fontsize=10)
        ax.set_xlabel("epoch (full batch)")
        ax.set_yscale("log")
        ax.set_ylim(low * 0.5, top * 1.5)
        ax.grid(alpha=0.3)
    axes[0].axvline(stop, color="k", ls="--", lw=1)
    axes[0].plot(
        [stop], [curves["plain"][1][stop - 1]], "k*", ms=12, label=f"early stop (ep {stop})"
    )
    axes[0].set_ylabel("cross-entropy (log scale)")
    axes[0].legend(fontsize=8)
    fig.suptitle(f"Overfitting: a 64-{hidden}-{hidden}-10 network trained on {n_train} digits, "
                 "evaluated on 300 held-out ones")  # fmt: skip
    fig.savefig(path, dpi=90)


def run(out_dir: Path, tiny: bool = False) -> dict[str, float]:
    n_train, epochs, hidden = (40, 40, 64) if tiny else (100, 150, 96)
    data = split_digits(n_train, 300)
    start = time.perf_counter()
    curves = {v: train(v, data, epochs, hidden) for v in VARIANTS}
    plain_val = curves["plain"][1]
    stop = int(np.argmin(plain_val)) + 1
    print(f"{n_train} training digits, 300 validation, 64-{hidden}-{hidden}-10, {epochs} epochs")
    results: dict[str, float] = {}
    for v, (tr, va) in curves.items():
        key = v.replace(" ", "_")
        results[f"{key}_train"], results[f"{key}_val"] = tr[-1], va[-1]
        print(f"  {v:12s} final train loss {tr[-1]:.4f}, validation loss {va[-1]:.4f}")
    results["early_stop_epoch"] = float(stop)
    results["early_stop_val"] = plain_val[stop - 1]
    print(f"  early stopping: lowest validation loss {plain_val[stop - 1]:.4f} at epoch {stop}")
    print(f"  ({time.perf_counter() - start:.1f} s of training)")
    draw(curves, stop, hidden, n_train, out_dir / f"{NAME}.png")
    return results
