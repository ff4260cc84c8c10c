"""Demos 7-12 at their tiny size: each writes a PNG, and the numbers it prints are checked
against independent references (closed forms, PyTorch, recomputation)."""

from __future__ import annotations

import math
import sys

import numpy as np
import pytest

pytest.importorskip("matplotlib")

import tinygrad_edu as tg  # noqa: E402
from tinygrad_edu import demos  # noqa: E402
from tinygrad_edu.demos import (  # noqa: E402
    d08_validation,
    d09_backprop_vs_fd,
    d10_graph,
    d12_kernels,
)

PNG_HEADER = b"\x89PNG\r\n\x1a\n"


def run_tiny(name: str, tmp_path):
    results = demos.run(name, tmp_path, tiny=True)
    png = tmp_path / f"{name}.png"
    assert png.read_bytes()[:8] == PNG_HEADER
    assert png.stat().st_size > 5000  # a real picture, not an empty canvas
    assert all(isinstance(v, float) and math.isfinite(v) for v in results.values()), results
    return results


def test_overfitting(tmp_path, capsys):
    r = run_tiny("overfitting", tmp_path)
    assert "early stopping" in capsys.readouterr().out
    # The oversized net memorises its few digits: train loss far below the chance level ln 10,
    # validation loss far above the train loss.
    assert r["plain_train"] < 0.1 * math.log(10)
    assert r["plain_val"] > 3 * r["plain_train"]
    # Early stopping keeps the epoch with the lowest validation loss of the plain run.
    assert r["early_stop_val"] <= r["plain_val"] + 1e-12
    for variant in ("L2", "L1", "dropout", "input_noise"):  # every variant trained
        assert r[f"{variant}_train"] < 0.5 * math.log(10)


def test_validation(tmp_path):
    r = run_tiny("validation", tmp_path)
    assert r["best_lam_cv"] in (1e-4, 1e-3, 1e-2, 1e-1)
    assert r["test_loss"] < math.log(10) and r["test_accuracy"] > 0.5  # far better than chance
    # Closed form: a huge L2 strength forces W ~ 0, leaving a model that predicts from the bias
    # alone, whose cross-entropy cannot beat the entropy of the label frequencies (~ln 10).
    X, y = tg.datasets.load_digits()
    losses = d08_validation.kfold(X[:60], y[:60], lam=1e3, k=3, steps=30)
    counts = np.bincount(y[:60], minlength=10) / 60
    entropy = -float(np.sum(counts[counts > 0] * np.log(counts[counts > 0])))
    assert len(losses) == 3
    assert np.mean(losses) > entropy - 0.05
    assert np.mean(losses) < math.log(10) + 0.3


def test_backprop_vs_fd(tmp_path, capsys):
    r = run_tiny("backprop-vs-fd", tmp_path)
    out = capsys.readouterr().out
    assert "sampled entries, scaled to P" in out  # the extrapolation is said
    assert r["max_diff"] < 1e-6  # float64 agreement
    assert r["chapter_params"] == 784 * 15 + 15 + 15 * 10 + 10 == 11935
    # FD costs ~P forwards, backprop ~1: the ratio grows with P (P goes from 190 to 11935).
    assert r["largest_ratio"] > 5 * r["smallest_ratio"]


def test_backprop_vs_fd_gradient_matches_torch():
    torch = pytest.importorskip("torch")
    loss_fn, params = d09_backprop_vs_fd.problem(7)
    ours = tg.grad(loss_fn(), params)
    net = loss_fn.__closure__  # the demo's closure holds net, x, y
    cells = {c.cell_contents.__class__.__name__: c.cell_contents for c in net}
    x = torch.tensor(cells["Tensor"].numpy())
    w1, b1, w2, b2 = (torch.tensor(p.numpy(), requires_grad=True) for p in params)
    labels = torch.tensor(
        [c.cell_contents for c in net if isinstance(c.cell_contents, np.ndarray)][0]
    )
    loss = torch.nn.functional.cross_entropy(torch.sigmoid(x @ w1.T + b1) @ w2.T + b2, labels)
    loss.backward()
    for mine, theirs in zip(ours, (w1, b1, w2, b2)):
        np.testing.assert_allclose(mine.numpy(), theirs.grad.numpy(), rtol=1e-10, atol=1e-12)


def test_graph(tmp_path, capsys):
    torch = pytest.importorskip("torch")
    r = run_tiny("graph", tmp_path)
    assert "drawn with Graphviz dot" in capsys.readouterr().out
    # 2 transposes, 2 matmuls, 2 adds, tanh, cross-entropy; x, labels and 4 parameters.
    assert r["op_nodes"] == 8 and r["tensor_nodes"] == 6
    params, _ = d10_graph.small_network(2)
    assert r["params"] == sum(p.size for p in params.values()) == 3 * 2 + 2 + 2 * 2 + 2
    x = torch.tensor(np.random.default_rng(0).standard_normal((5, 3)).astype(np.float32))
    w1, b1, w2, b2 = (torch.tensor(params[k].numpy()) for k in ("W1", "b1", "W2", "b2"))
    logits = torch.tanh(x @ w1.T + b1) @ w2.T + b2
    expected = torch.nn.functional.cross_entropy(logits, torch.tensor([0, 1, 1, 0, 1])).item()
    assert abs(r["loss"] - expected) < 1e-5


def test_graph_without_graphviz_still_draws(tmp_path, capsys, monkeypatch):
    monkeypatch.setitem(sys.modules, "graphviz", None)  # `import graphviz` now fails
    assert not d10_graph.dot_available()
    r = demos.run("graph", tmp_path, tiny=True)
    out = capsys.readouterr().out
    assert "Graphviz is not available" in out and "drawing the DOT text instead" in out
    assert r["graphviz"] == 0.0
    assert (tmp_path / "graph.png").read_bytes()[:8] == PNG_HEADER


def test_fd_training_race(tmp_path):
    r = run_tiny("fd-training-race", tmp_path)
    assert r["fd_steps"] >= 1
    # Same start, same step rule, gradients equal to ~1e-9: the same loss after the same steps.
    assert abs(r["fd_loss_at_k"] - r["bp_loss_at_k"]) < 1e-6
    assert r["bp_steps"] > 10 * r["fd_steps"]  # the race: many more steps in the same time
    assert r["bp_final_loss"] < r["fd_final_loss"] < r["initial_loss"] + 1e-12


def test_kernels(tmp_path, capsys):
    r = run_tiny("kernels", tmp_path)
    out = capsys.readouterr().out
    assert r["max_rel_diff"] < 1e-5  # float32 products agree with the float64 one
    speeds = {k: v for k, v in r.items() if k != "max_rel_diff"}
    assert len(speeds) >= 5 and all(v > 0 for v in speeds.values())
    if not tg.cuda.is_available():
        assert "numba.cuda: no GPU here" in out


def test_kernel_versions_against_numpy():
    rng = np.random.default_rng(3)
    # float32, the dtype the demo compiled its kernels for
    a, b = (rng.standard_normal(s).astype(np.float32) for s in ((7, 5), (5, 9)))
    expected = a.astype(np.float64) @ b.astype(np.float64)
    for fn in (d12_kernels.naive_matmul, d12_kernels.numpy_rows, d12_kernels.blocked_on(1)):
        np.testing.assert_allclose(fn(a, b), expected, rtol=1e-5, atol=1e-5)
