"""train: fit, early stopping, evaluate and cross_validate on small problems."""

import numpy as np
import pytest

import tinygrad_edu as tg
from tinygrad_edu import nn, optim
from tinygrad_edu.data import DataLoader
from tinygrad_edu.nn import functional as F
from tinygrad_edu.train import History, cross_validate, evaluate, fit


def _blobs(n=200, seed=0):
    """Two well separated Gaussian blobs in 2-D, labels 0 and 1."""
    rng = np.random.default_rng(seed)
    y = rng.integers(0, 2, n)
    X = rng.standard_normal((n, 2)) * 0.5 + np.where(y[:, None] == 1, 2.0, -2.0)
    return X.astype(np.float32), y.astype(np.int64)


def _model():
    return nn.Sequential(nn.Linear(2, 8), nn.Tanh(), nn.Linear(8, 2))


def test_fit_reduces_the_loss_and_separates_the_blobs():
    tg.manual_seed(0)
    X, y = _blobs()
    model = _model()
    opt = optim.SGD(model.parameters(), lr=0.1, momentum=0.9)
    loader = DataLoader(X, y, batch_size=16, seed=0)
    before = evaluate(model, DataLoader(X, y, 64, shuffle=False))
    history = fit(model, F.cross_entropy, opt, loader, epochs=10, progress=False)
    after = evaluate(model, DataLoader(X, y, 64, shuffle=False))
    assert isinstance(history, History) and history.epochs == 10
    assert history.val_loss == [] and history.best_epoch is None
    assert history.train_loss[-1] < 0.2 * history.train_loss[0]
    assert after["loss"] < 0.1 * before["loss"]
    assert after["accuracy"] == 1.0 and history.train_acc[-1] > 0.95
    assert model.training  # back in training mode


def test_fit_defaults_to_cross_entropy_or_mse():
    tg.manual_seed(0)
    rng = np.random.default_rng(0)
    X = rng.standard_normal((64, 3)).astype(np.float32)
    y = (X @ np.array([1.0, -2.0, 0.5], dtype=np.float32))[:, None]  # a linear regression
    model = nn.Linear(3, 1)
    history = fit(
        model,
        None,
        optim.SGD(model.parameters(), lr=0.1),
        DataLoader(X, y, 16),
        epochs=30,
        progress=False,
    )
    assert history.train_acc[-1] is None  # not classification
    assert history.train_loss[-1] < 1e-3
    np.testing.assert_allclose(model.weight.numpy().ravel(), [1.0, -2.0, 0.5], atol=0.02)


def test_early_stopping_restores_the_best_weights():
    # A fifth of the validation labels are wrong. The validation loss first falls as the model
    # learns the blobs, then rises as growing confidence makes the wrong labels cost more and
    # more: the best epoch is in the middle.
    tg.manual_seed(0)
    X, y = _blobs(200)
    X_val, y_val = _blobs(60, seed=1)
    y_val[:12] = 1 - y_val[:12]
    model = _model()
    opt = optim.SGD(model.parameters(), lr=0.02)
    train_loader = DataLoader(X, y, batch_size=20, seed=0)
    val_loader = DataLoader(X_val, y_val, batch_size=60, shuffle=False)
    history = fit(
        model,
        F.cross_entropy,
        opt,
        train_loader,
        val_loader,
        epochs=50,
        patience=3,
        progress=False,
    )
    best = history.best_epoch
    assert best == int(np.argmin(history.val_loss)) and 0 < best < history.epochs - 1
    assert history.stopped_early and history.restored_best
    assert history.epochs == best + 3 + 1  # three epochs without improvement, then stop
    # The model now holds the weights of the best epoch: its validation loss is the recorded one.
    assert evaluate(model, val_loader)["loss"] == pytest.approx(history.val_loss[best], rel=1e-6)
    assert evaluate(model, val_loader)["loss"] < history.val_loss[-1]


def test_without_patience_all_epochs_run_and_nothing_is_restored():
    tg.manual_seed(0)
    X, y = _blobs(100)
    model = _model()
    opt = optim.SGD(model.parameters(), lr=0.05)
    val_loader = DataLoader(X[:20], 1 - y[:20], batch_size=20, shuffle=False)
    history = fit(
        model, F.cross_entropy, opt, DataLoader(X, y, 20), val_loader, epochs=6, progress=False
    )
    assert history.epochs == 6 and not history.stopped_early and not history.restored_best
    assert evaluate(model, val_loader)["loss"] == pytest.approx(history.val_loss[-1], rel=1e-6)


def test_l2_penalty_shrinks_the_weights():
    X, y = _blobs(100)
    norms = []
    for l2 in (0.0, 0.1):
        tg.manual_seed(0)
        model = _model()
        opt = optim.SGD(model.parameters(), lr=0.1)
        fit(
            model,
            F.cross_entropy,
            opt,
            DataLoader(X, y, 20, seed=0),
            epochs=20,
            l2=l2,
            progress=False,
        )
        norms.append(sum(float((p.numpy() ** 2).sum()) for p in model.parameters() if p.ndim == 2))
    assert norms[1] < 0.7 * norms[0]


def test_custom_penalty_and_scheduler_and_callback():
    tg.manual_seed(0)
    X, y = _blobs(40)
    model = _model()
    opt = optim.SGD(model.parameters(), lr=0.1)
    scheduler = optim.lr_scheduler.StepLR(opt, step_size=1, gamma=0.5)
    calls, seen = [], []

    def penalty(m):
        calls.append(m)
        return F.l1_penalty([m[0].weight], 0.01)

    fit(
        model,
        F.cross_entropy,
        opt,
        DataLoader(X, y, 20),
        epochs=3,
        scheduler=scheduler,
        penalty=penalty,
        callback=lambda epoch, h: seen.append((epoch, h.lr[-1])),
        progress=False,
    )
    assert seen == [(0, 0.1), (1, 0.05), (2, 0.025)]
    assert len(calls) == 3 * 2 and calls[0] is model


def test_fit_is_quiet_when_not_attached_to_a_terminal(capsys):
    X, y = _blobs(20)
    model = _model()
    fit(
        model,
        F.cross_entropy,
        optim.SGD(model.parameters(), lr=0.1),
        DataLoader(X, y, 10),
        epochs=2,
        progress=True,
    )
    captured = capsys.readouterr()
    assert captured.out == "" and captured.err == ""


def test_evaluate_restores_the_mode_and_uses_no_graph():
    X, y = _blobs(30)
    model = nn.Sequential(nn.Linear(2, 4), nn.Dropout(0.5), nn.Linear(4, 2)).eval()
    loader = DataLoader(X, y, 7, shuffle=False)
    first, second = evaluate(model, loader), evaluate(model, loader)
    assert first == second  # dropout was off: deterministic
    assert first["samples"] == 30 and not model.training
    assert all(p.grad is None for p in model.parameters())
    model.train()
    evaluate(model, loader)
    assert model.training


def test_fit_argument_errors():
    X, y = _blobs(20)
    model = _model()
    opt = optim.SGD(model.parameters(), lr=0.1)
    loader = DataLoader(X, y, 10)
    with pytest.raises(ValueError, match="fit: early stopping .* needs a val_loader"):
        fit(model, F.cross_entropy, opt, loader, patience=2)
    with pytest.raises(ValueError, match="fit: patience must be >= 1"):
        fit(model, F.cross_entropy, opt, loader, loader, patience=0)
    with pytest.raises(ValueError, match="fit: epochs"):
        fit(model, F.cross_entropy, opt, loader, epochs=-1)
    with pytest.raises(TypeError, match="fit: model must be a tg.nn.Module"):
        fit(lambda x: x, F.cross_entropy, opt, loader)
    with pytest.raises(TypeError, match="fit: train_loader must be an iterable"):
        fit(model, F.cross_entropy, opt, 5)
    with pytest.raises(ValueError, match="fit: l1 and l2 must be >= 0"):
        fit(model, F.cross_entropy, opt, loader, l2=-1.0)


def test_cross_validate_runs_k_folds_and_reports_mean_and_std():
    tg.manual_seed(0)
    X, y = _blobs(90)
    result = cross_validate(
        _model,
        lambda params: optim.SGD(params, lr=0.1, momentum=0.9),
        F.cross_entropy,
        X,
        y,
        k=3,
        epochs=3,
        batch_size=16,
        seed=0,
    )
    assert result.k == 3
    assert [f["n_val"] for f in result.folds] == [30, 30, 30]
    assert all(f["n_train"] == 60 and f["history"].epochs == 3 for f in result.folds)
    losses = [f["val_loss"] for f in result.folds]
    accs = [f["val_acc"] for f in result.folds]
    assert result.mean_val_loss == pytest.approx(np.mean(losses))
    assert result.std_val_loss == pytest.approx(np.std(losses))
    assert result.mean_val_acc == pytest.approx(np.mean(accs)) and result.mean_val_acc > 0.9
    assert result.std_val_acc == pytest.approx(np.std(accs))
    assert "3-fold CV" in str(result)


def test_cross_validate_errors():
    X, y = _blobs(10)

    def run(**kwargs):
        args = dict(k=3, epochs=1)
        args.update(kwargs)
        return cross_validate(
            _model, lambda p: optim.SGD(p, lr=0.1), F.cross_entropy, X, args.pop("y", y), **args
        )

    with pytest.raises(ValueError, match="kfold: k=11"):
        run(k=11)
    with pytest.raises(ValueError, match="cross_validate: X has 10 samples but y has 9"):
        run(y=y[:9])
    with pytest.raises(ValueError, match="cross_validate: patience"):
        run(patience=2)
