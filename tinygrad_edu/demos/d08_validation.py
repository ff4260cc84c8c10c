"""Train / validation / test, and k-fold cross-validation, to choose a hyperparameter.

A hyperparameter (here the L2 strength ``lam`` of a softmax-regression classifier on the digits)
is not learned by gradient descent, so it is chosen by comparing models on data they were not
trained on. Three sets keep that honest:

- the training set fits the weights for each candidate ``lam``;
- the validation set picks the best ``lam`` (so it is "used up" by the choice);
- the test set, touched once at the end, estimates how the chosen model does on new data.

With few examples one validation split is noisy. k-fold cross-validation splits the training
data into k folds, trains k times, each time validating on the fold left out, and averages:

    CV(lam) = 1/k * sum_i loss(model trained without fold i, fold i)

The spread over the folds (drawn as bars and dots) shows how much one split could mislead.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

import tinygrad_edu as tg
from tinygrad_edu import nn
from tinygrad_edu.nn import functional as F

NAME = "validation"
TITLE = "choosing the L2 strength by a validation split and by k-fold cross-validation"


def fit(X: np.ndarray, y: np.ndarray, lam: float, steps: int) -> nn.Module:
    """Softmax regression 64 -> 10 with loss CE + lam/2 * |W|^2, full-batch Adam."""
    tg.manual_seed(0)
    model = nn.Linear(64, 10)
    opt = tg.optim.Adam(model.parameters(), lr=0.2)
    x = tg.Tensor(X)
    for _ in range(steps):
        loss = F.cross_entropy(model(x), y) + F.l2_penalty([model.weight], lam)
        opt.zero_grad()
        loss.backward()
        opt.step()
    return model


def loss_of(model: nn.Module, X: np.ndarray, y: np.ndarray) -> float:
    """Plain cross-entropy (no penalty): what we want small on new data."""
    with tg.no_grad():
        return float(F.cross_entropy(model(tg.Tensor(X)), y).item())


def kfold(X, y, lam: float, k: int, steps: int) -> list[float]:
    """The k validation losses of k-fold cross-validation for one ``lam``."""
    folds = np.array_split(np.arange(len(X)), k)
    losses = []
    for i, held in enumerate(folds):
        rest = np.concatenate([f for j, f in enumerate(folds) if j != i])
        losses.append(loss_of(fit(X[rest], y[rest], lam, steps), X[held], y[held]))
    return losses


def draw(lams, holdout, folds, best_holdout, best_cv, path: Path) -> None:
    from matplotlib.figure import Figure

    folds = np.array(folds)  # (len(lams), k)
    fig = Figure(figsize=(8, 4.5), layout="constrained")
    ax = fig.subplots()
    for j in range(folds.shape[1]):
        ax.plot(lams, folds[:, j], "o", color="tab:orange", alpha=0.35, ms=4,
                label="one fold's validation loss" if j == 0 else None)  # fmt: skip
    ax.errorbar(lams, folds.mean(1), yerr=folds.std(1), color="tab:orange", capsize=4,
                label=f"{folds.shape[1]}-fold CV mean ± std")  # fmt: skip
    ax.plot(lams, holdout, "s-", color="tab:blue", label="single validation split")
    ax.axvline(best_holdout, color="tab:blue", ls=":", label=f"chosen by split: {best_holdout:g}")
    ax.axvline(best_cv, color="tab:orange", ls="--", label=f"chosen by CV: {best_cv:g}")
    ax.set_xscale("log")
    ax.set_xlabel("L2 strength lam (log scale)")
    ax.set_ylabel("validation cross-entropy")
    ax.set_title("Choosing a hyperparameter: softmax regression on few digits")
    ax.legend(fontsize=8)
    ax.grid(alpha=0.3)
    fig.savefig(path, dpi=90)


def run(out_dir: Path, tiny: bool = False) -> dict[str, float]:
    n, k, steps = (40, 3, 30) if tiny else (50, 5, 60)
    lams = [1e-4, 1e-3, 1e-2, 1e-1] if tiny else [1e-4, 1e-3, 3e-3, 1e-2, 3e-2, 1e-1, 1.0]
    X, y = tg.datasets.load_digits()
    order = np.random.default_rng(1).permutation(len(X))
    tr, va, te = order[:n], order[n : n + 300], order[n + 300 : n + 800]
    holdout = [loss_of(fit(X[tr], y[tr], lam, steps), X[va], y[va]) for lam in lams]
    # CV uses train + validation together: no data is set aside for the choice.
    tv = np.concatenate([tr, va[: n // 2]])
    folds = [kfold(X[tv], y[tv], lam, k, steps) for lam in lams]
    cv_mean = [float(np.mean(f)) for f in folds]
    best_holdout = lams[int(np.argmin(holdout))]
    best_cv = lams[int(np.argmin(cv_mean))]
    final = fit(X[tv], y[tv], best_cv, steps)
    test = loss_of(final, X[te], y[te])
    with tg.no_grad():
        acc = float((final(tg.Tensor(X[te])).numpy().argmax(1) == y[te]).mean())
    for lam, h, f in zip(lams, holdout, folds):
        print(f"  lam {lam:7g}: split validation loss {h:.4f}; "
              f"{k}-fold CV {np.mean(f):.4f} ± {np.std(f):.4f}")  # fmt: skip
    print(f"chosen lam: {best_holdout:g} by the split, {best_cv:g} by {k}-fold CV; "
          f"test loss {test:.4f}, test accuracy {acc:.3f} (500 unseen digits)")  # fmt: skip
    draw(lams, holdout, folds, best_holdout, best_cv, out_dir / f"{NAME}.png")
    return {"best_lam_holdout": best_holdout, "best_lam_cv": best_cv, "test_loss": test,
            "test_accuracy": acc, "cv_mean_min": min(cv_mean)}  # fmt: skip
