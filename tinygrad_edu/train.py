"""The training loop, evaluation, and k-fold cross-validation.

``fit`` is the chapter's procedure written once:

    for each epoch:
        for each minibatch (X_b, y_b):             # minibatch gradient descent
            J = loss(model(X_b), y_b) + R(w)      # R: an optional L1/L2 penalty
            backprop dJ/dw;  optimizer.step()     # w := w - alpha * (the rule's direction)
        measure the loss on the validation set    # held out: it shows over-fitting
        stop when it has not improved for `patience` epochs, and go back to the best weights

Everything here is written against ``Module``, an optimizer and an iterable of ``(X, y)``
minibatches (``tg.data.DataLoader``), so you can read it as the textbook loop it is.
"""

from __future__ import annotations

import math
import sys
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from tinygrad_edu.autograd import no_grad
from tinygrad_edu.data import DataLoader, kfold
from tinygrad_edu.errors import InputError
from tinygrad_edu.nn import functional as F
from tinygrad_edu.nn.module import Module
from tinygrad_edu.tensor import Tensor

__all__ = ["CVResult", "History", "cross_validate", "evaluate", "fit"]


@dataclass
class History:
    """What ``fit`` measured, one entry per epoch run.

    ``train_loss``: mean loss over the epoch's minibatches (weighted by their sizes, measured while
    the weights were changing and with dropout active; the penalty is not included).
    ``val_loss`` / ``val_acc``: measured after the epoch in eval mode (empty without a validation
    set). Accuracies are None when the task is not classification. ``best_epoch``: index of the
    epoch with the lowest validation loss (None without validation). ``stopped_early``: whether
    ``patience`` ended training before ``epochs``.
    """

    train_loss: list[float] = field(default_factory=list)
    train_acc: list[float | None] = field(default_factory=list)
    val_loss: list[float] = field(default_factory=list)
    val_acc: list[float | None] = field(default_factory=list)
    lr: list[float] = field(default_factory=list)
    epoch_seconds: list[float] = field(default_factory=list)
    best_epoch: int | None = None
    stopped_early: bool = False
    restored_best: bool = False

    @property
    def epochs(self) -> int:
        return len(self.train_loss)

    def as_dict(self) -> dict[str, Any]:
        return {k: (list(v) if isinstance(v, list) else v) for k, v in self.__dict__.items()}


# ----- helpers -----


def _device_of(model: Module) -> str:
    params = model.parameters()
    return params[0].device if params else "cpu"


def _is_classification(out: Tensor, y: Tensor) -> bool:
    """Integer labels and one row of scores per sample: accuracy makes sense."""
    return isinstance(y, Tensor) and y.dtype == np.int64 and out.ndim == 2


def _correct(out: Tensor, y: Tensor) -> int:
    return int((out.argmax(axis=1) == y).sum().item())


def _batch(batch: Any, device: str, where: str) -> tuple[Tensor, Tensor]:
    try:
        xb, yb = batch
    except (TypeError, ValueError):
        raise TypeError(
            f"{where}: the loader must yield (X_batch, y_batch) pairs, got {type(batch).__name__}"
        ) from None
    if not isinstance(xb, Tensor):
        xb = Tensor(xb)
    if not isinstance(yb, Tensor):
        array = np.asarray(yb)
        yb = Tensor(array, dtype="int64" if array.dtype.kind in "iu" else None)
    return xb.to(device), yb.to(device)


def _default_loss(out: Tensor, y: Tensor) -> Tensor:
    return F.cross_entropy(out, y) if _is_classification(out, y) else F.mse_loss(out, y)


def _check_loader(loader: Any, what: str, where: str) -> None:
    if not isinstance(loader, Iterable):
        raise TypeError(
            f"{where}: {what} must be an iterable of (X, y) minibatches such as "
            f"tg.data.DataLoader, got {type(loader).__name__}"
        )


# ----- evaluation -----


def evaluate(
    model: Module, loader: Iterable, loss_fn: Callable[[Tensor, Tensor], Tensor] | None = None
) -> dict[str, float | None]:
    """Mean loss and accuracy of ``model`` over ``loader``, in eval mode and without a graph.

    ``loss_fn`` defaults to cross-entropy for classification (int64 labels, 2-D outputs) and mean
    squared error otherwise; it must average over the batch (``reduction="mean"``). Returns
    ``{"loss": float, "accuracy": float or None, "samples": int}``. The model's train/eval mode
    is restored afterwards.
    """
    _check_loader(loader, "loader", "evaluate")
    loss_fn = loss_fn or _default_loss
    device, was_training = _device_of(model), model.training
    total_loss, correct, count, classification = 0.0, 0, 0, True
    model.eval()
    try:
        with no_grad():
            for batch in loader:
                xb, yb = _batch(batch, device, "evaluate")
                out = model(xb)
                n = len(xb)
                total_loss += float(loss_fn(out, yb).item()) * n
                count += n
                if classification and _is_classification(out, yb):
                    correct += _correct(out, yb)
                else:
                    classification = False
    finally:
        model.train(was_training)
    if count == 0:
        raise InputError("evaluate: the loader yielded no samples")
    return {
        "loss": total_loss / count,
        "accuracy": correct / count if classification else None,
        "samples": count,
    }


# ----- training -----


def _progress_bar(total: int, enabled: bool) -> Any:
    """A tqdm bar over the epochs when tqdm is installed and stderr is a terminal, else None."""
    if not enabled or not sys.stderr.isatty():
        return None
    try:
        from tqdm import tqdm
    except ImportError:
        return None
    return tqdm(total=total, unit="epoch", leave=True)


def _penalty_terms(model: Module, l1: float, l2: float) -> Callable[[Module], Tensor] | None:
    """L1/L2 penalties on the weight matrices (tensors with 2+ dims): biases are not penalised,
    as is usual (a bias shifts a unit's output; it does not make the function wiggle)."""
    if not l1 and not l2:
        return None
    if l1 < 0 or l2 < 0:
        raise InputError(f"fit: l1 and l2 must be >= 0, got l1={l1}, l2={l2}")
    weights = [p for p in model.parameters() if p.ndim >= 2]

    def penalty(_: Module) -> Tensor:
        total = None
        if l1:
            total = F.l1_penalty(weights, l1)
        if l2:
            term = F.l2_penalty(weights, l2)
            total = term if total is None else total + term
        return total

    return penalty


def fit(
    model: Module,
    loss_fn: Callable[[Tensor, Tensor], Tensor],
    optimizer: Any,
    train_loader: Iterable,
    val_loader: Iterable | None = None,
    epochs: int = 10,
    patience: int | None = None,
    scheduler: Any = None,
    progress: bool = True,
    *,
    l1: float = 0.0,
    l2: float = 0.0,
    penalty: Callable[[Module], Tensor] | None = None,
    restore_best: bool = True,
    callback: Callable[[int, History], Any] | None = None,
) -> History:
    """Train ``model`` for up to ``epochs`` passes over ``train_loader``; returns a ``History``.

    Args:
        model: the network; its parameters are what ``optimizer`` updates.
        loss_fn: ``loss_fn(outputs, targets)`` -> a scalar Tensor averaged over the batch
            (e.g. ``F.cross_entropy``); None picks cross-entropy for int64 labels, MSE otherwise.
        optimizer: any ``tg.optim`` optimizer (``zero_grad()``, ``step()``).
        train_loader / val_loader: iterables of ``(X, y)`` minibatches (``tg.data.DataLoader``).
        patience: early stopping. After each epoch the validation loss is measured; when it has
            not improved for ``patience`` epochs in a row, training stops and (``restore_best``)
            the weights of the best epoch are loaded back. Needs ``val_loader``.
        scheduler: a ``tg.optim.lr_scheduler`` object; ``scheduler.step()`` runs once per epoch.
        progress: a tqdm bar when tqdm is installed and stderr is a terminal; silent otherwise.
        l1, l2: add ``l1_penalty`` / ``l2_penalty`` of the weight matrices (not biases) to the
            loss that is differentiated. ``penalty(model) -> Tensor`` adds any other term.
        callback: ``callback(epoch, history)`` after each epoch (the CLI prints from it).
    """
    _check_loader(train_loader, "train_loader", "fit")
    if val_loader is not None:
        _check_loader(val_loader, "val_loader", "fit")
    if not isinstance(epochs, (int, np.integer)) or isinstance(epochs, bool) or epochs < 0:
        raise InputError(f"fit: epochs must be an int >= 0, got {epochs!r}")
    if patience is not None:
        if not isinstance(patience, (int, np.integer)) or isinstance(patience, bool):
            raise TypeError(f"fit: patience must be an int or None, got {patience!r}")
        if patience < 1:
            raise InputError(
                f"fit: patience must be >= 1 (epochs without improvement before stopping), "
                f"got {patience}; use patience=None to never stop early"
            )
        if val_loader is None:
            raise InputError("fit: early stopping (patience) needs a val_loader to watch")
    if not isinstance(model, Module):
        raise TypeError(f"fit: model must be a tg.nn.Module, got {type(model).__name__}")
    loss_fn = loss_fn or _default_loss
    penalties = [f for f in (_penalty_terms(model, l1, l2), penalty) if f is not None]
    device = _device_of(model)
    history = History()
    best_loss, best_state, bad_epochs = math.inf, None, 0
    bar = _progress_bar(epochs, progress)
    try:
        for epoch in range(epochs):
            start = time.perf_counter()
            model.train()
            total_loss, correct, count, classification = 0.0, 0, 0, True
            for batch in train_loader:
                xb, yb = _batch(batch, device, "fit")
                optimizer.zero_grad()
                out = model(xb)
                loss = loss_fn(out, yb)
                objective = loss
                for f in penalties:
                    objective = objective + f(model)
                objective.backward()
                optimizer.step()
                n = len(xb)
                total_loss += float(loss.item()) * n
                count += n
                if classification and _is_classification(out, yb):
                    correct += _correct(out, yb)
                else:
                    classification = False
            if count == 0:
                raise InputError("fit: train_loader yielded no samples")
            history.train_loss.append(total_loss / count)
            history.train_acc.append(correct / count if classification else None)
            groups = getattr(optimizer, "param_groups", None)
            history.lr.append(float(groups[0]["lr"]) if groups else math.nan)
            if val_loader is not None:
                result = evaluate(model, val_loader, loss_fn)
                history.val_loss.append(result["loss"])
                history.val_acc.append(result["accuracy"])
                if result["loss"] < best_loss:  # NaN never counts as an improvement
                    best_loss, bad_epochs = result["loss"], 0
                    history.best_epoch = epoch
                    if patience is not None and restore_best:
                        best_state = model.state_dict()
                else:
                    bad_epochs += 1
            if scheduler is not None:
                scheduler.step()
            history.epoch_seconds.append(time.perf_counter() - start)
            if bar is not None:
                bar.set_postfix(_postfix(history), refresh=False)
                bar.update(1)
            if callback is not None:
                callback(epoch, history)
            if patience is not None and bad_epochs >= patience:
                history.stopped_early = epoch + 1 < epochs
                break
    finally:
        if bar is not None:
            bar.close()
    if best_state is not None and history.best_epoch != history.epochs - 1:
        model.load_state_dict(best_state)
        history.restored_best = True
    model.train()
    return history


def _postfix(history: History) -> dict[str, str]:
    post = {"loss": f"{history.train_loss[-1]:.4f}"}
    if history.val_loss:
        post["val_loss"] = f"{history.val_loss[-1]:.4f}"
    if history.val_acc and history.val_acc[-1] is not None:
        post["val_acc"] = f"{history.val_acc[-1]:.3f}"
    return post


# ----- k-fold cross-validation -----


@dataclass
class CVResult:
    """Per-fold results of ``cross_validate`` and their mean and (population) standard deviation.

    ``folds[i]`` is ``{"val_loss", "val_acc", "history", "n_train", "n_val"}``.
    """

    folds: list[dict[str, Any]]
    mean_val_loss: float
    std_val_loss: float
    mean_val_acc: float | None
    std_val_acc: float | None

    @property
    def k(self) -> int:
        return len(self.folds)

    def __str__(self) -> str:
        text = f"{self.k}-fold CV: val loss {self.mean_val_loss:.4f} +- {self.std_val_loss:.4f}"
        if self.mean_val_acc is not None:
            text += f", val accuracy {self.mean_val_acc:.4f} +- {self.std_val_acc:.4f}"
        return text


def cross_validate(
    make_model: Callable[[], Module],
    make_optimizer: Callable[[list[Tensor]], Any],
    loss_fn: Callable[[Tensor, Tensor], Tensor] | None,
    X: Any,
    y: Any,
    k: int = 5,
    epochs: int = 10,
    batch_size: int = 32,
    seed: int | None = None,
    **fit_kwargs: Any,
) -> CVResult:
    """k-fold cross-validation: train a fresh model on k - 1 folds, score it on the held-out fold,
    k times, so that every sample is used for validation exactly once.

    ``make_model()`` builds a new network and ``make_optimizer(params)`` its optimizer (called once
    per fold). ``seed`` fixes the folds and the shuffling; call ``tg.manual_seed`` first for
    repeatable initial weights too. ``fit_kwargs`` go to ``fit`` (e.g. ``l2=1e-4``); ``patience``
    is not accepted, since the validation fold is the score and must not steer training.
    """
    if "patience" in fit_kwargs or "val_loader" in fit_kwargs:
        raise InputError(
            "cross_validate: patience/val_loader are not accepted: the held-out fold is the "
            "score and must not choose when to stop"
        )
    fit_kwargs.setdefault("progress", False)
    X = X.numpy() if isinstance(X, Tensor) else np.asarray(X)
    y = y.numpy() if isinstance(y, Tensor) else np.asarray(y)
    if len(X) != len(y):
        raise InputError(
            f"cross_validate: X has {len(X)} samples but y has {len(y)}; expected the same"
        )
    folds = []
    for i, (train_idx, val_idx) in enumerate(kfold(len(X), k, seed=seed)):
        model = make_model()
        if not isinstance(model, Module):
            raise TypeError(f"cross_validate: make_model() returned {type(model).__name__}")
        optimizer = make_optimizer(model.parameters())
        loader_seed = None if seed is None else seed + i
        train_loader = DataLoader(X[train_idx], y[train_idx], batch_size, seed=loader_seed)
        val_loader = DataLoader(
            X[val_idx], y[val_idx], batch_size=max(len(val_idx), 1), shuffle=False
        )
        history = fit(model, loss_fn, optimizer, train_loader, epochs=epochs, **fit_kwargs)
        result = evaluate(model, val_loader, loss_fn)
        folds.append(
            {
                "val_loss": result["loss"],
                "val_acc": result["accuracy"],
                "history": history,
                "n_train": len(train_idx),
                "n_val": len(val_idx),
            }
        )
    losses = np.array([f["val_loss"] for f in folds])
    accs = [f["val_acc"] for f in folds]
    has_acc = all(a is not None for a in accs)
    return CVResult(
        folds=folds,
        mean_val_loss=float(losses.mean()),
        std_val_loss=float(losses.std()),
        mean_val_acc=float(np.mean(accs)) if has_acc else None,
        std_val_acc=float(np.std(accs)) if has_acc else None,
    )
