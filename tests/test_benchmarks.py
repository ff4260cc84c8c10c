"""The benchmarks cannot rot: every asv benchmark runs once with tiny sizes, and the workloads
they time compute what they claim (the numpy floor's hand-written gradients and updates agree
with tinygrad_edu's backprop and optimizers, and with finite differences)."""

import importlib
import inspect
import itertools
import json
import math
import sys
from pathlib import Path

import numpy as np
import pytest

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

BENCH_MODULES = sorted(p.stem for p in (ROOT / "benchmarks").glob("bench_*.py"))
PREFIXES = ("time_", "track_", "peakmem_")


@pytest.fixture(scope="module")
def bench(tmp_path_factory):
    """The benchmarks package re-imported with TINYGRAD_EDU_BENCH_TINY=1 (tiny sizes)."""
    mp = pytest.MonkeyPatch()
    mp.setenv("TINYGRAD_EDU_BENCH_TINY", "1")
    mp.setenv("NUMBA_CACHE_DIR", str(tmp_path_factory.mktemp("numba_cache")))
    common = importlib.reload(importlib.import_module("benchmarks.common"))
    modules = {name: importlib.reload(importlib.import_module(f"benchmarks.{name}"))
               for name in BENCH_MODULES}  # fmt: skip
    yield common, modules
    mp.undo()
    importlib.reload(common)
    for module in modules.values():
        importlib.reload(module)


def _benchmark_classes(module):
    for name, obj in vars(module).items():
        if inspect.isclass(obj) and obj.__module__ == module.__name__:
            methods = [m for m in dir(obj) if m.startswith(PREFIXES)]
            if methods:
                yield name, obj, methods


def _param_grid(cls):
    params = getattr(cls, "params", [])
    if not params:
        return [()]
    if not isinstance(params[0], (list, tuple)):  # one parameter: a flat list
        params = [params]
    return list(itertools.product(*params))


def test_suite_has_every_kind_of_benchmark(bench):
    _, modules = bench
    names = [m for mod in modules.values() for _, _, ms in _benchmark_classes(mod) for m in ms]
    for prefix in PREFIXES:
        assert any(n.startswith(prefix) for n in names), prefix
    assert "track_fd_gradient_sampled_scaled_seconds" in names
    assert "track_cold_start_seconds" in names and "track_warm_start_seconds" in names
    assert "peakmem_training_step_wide" in names


@pytest.mark.parametrize("module_name", BENCH_MODULES)
def test_every_benchmark_runs_once(bench, module_name, tmp_path, monkeypatch):
    _, modules = bench
    module = modules[module_name]
    monkeypatch.chdir(tmp_path)  # asv runs setup_cache in a scratch directory
    for name, cls, methods in _benchmark_classes(module):
        for method in methods:
            assert getattr(cls, method).__doc__, f"{name}.{method} needs a docstring"
        instance = cls()
        cached = (instance.setup_cache(),) if hasattr(instance, "setup_cache") else ()
        for args in _param_grid(cls):
            full_args = cached + tuple(args)
            if hasattr(instance, "setup"):
                instance.setup(*full_args)
            for method in methods:
                result = getattr(instance, method)(*full_args)
                if method.startswith("track_"):
                    assert isinstance(result, (int, float)), (name, method, args)
                    assert math.isfinite(result) and result > 0, (name, method, args, result)
            if hasattr(instance, "teardown"):
                instance.teardown(*full_args)


# ----- the workloads are right -----


@pytest.mark.parametrize("network", ["5-4-3", "6-5-4-3"])  # sigmoid, then ReLU
def test_numpy_floor_gradients_match_backprop(bench, network):
    common, _ = bench
    tg_net = common.TgNetwork(network, 7, dtype=np.float64)
    np_net = common.NumpyNetwork(network, 7, dtype=np.float64)
    assert np_net.forward() == pytest.approx(tg_net.loss_value(), rel=1e-12)
    tg_net.forward_backward()
    for p, g in zip(tg_net.params, np_net.backward_again()):
        np.testing.assert_allclose(g, p.grad.numpy(), rtol=1e-10, atol=1e-12)


@pytest.mark.parametrize("network", ["5-4-3", "6-5-4-3"])  # sigmoid, then ReLU
def test_lean_numpy_floor_matches_the_plain_one(bench, network):
    common, _ = bench
    for optimizer in ("SGD(momentum)", "Adam"):
        plain = common.NumpyNetwork(network, 7, optimizer, dtype=np.float64)
        lean = common.NumpyNetwork(network, 7, optimizer, dtype=np.float64, lean=True)
        assert lean.forward() == pytest.approx(plain.forward(), rel=1e-12)
        for g_lean, g_plain in zip(lean.backward_again(), plain.backward_again()):
            np.testing.assert_allclose(g_lean, g_plain, rtol=1e-10, atol=1e-12)
        for _ in range(3):  # the buffers are reused from step to step
            plain.step()
            lean.step()
        for p_lean, p_plain in zip(lean.params, plain.params):
            np.testing.assert_allclose(p_lean, p_plain, rtol=1e-10, atol=1e-12)


def test_numpy_floor_matches_finite_differences(bench):
    common, _ = bench
    np_net = common.NumpyNetwork("4-3-2", 5, dtype=np.float64)
    np_net.forward()
    analytic = np_net.backward_again()
    eps = 1e-6
    for p, g in zip(np_net.params, analytic):
        for index in np.ndindex(p.shape):
            v = p[index]
            p[index] = v + eps
            plus = np_net.forward()
            p[index] = v - eps
            minus = np_net.forward()
            p[index] = v
            assert g[index] == pytest.approx((plus - minus) / (2 * eps), rel=1e-5, abs=1e-8)


@pytest.mark.parametrize("optimizer", ["SGD(momentum)", "Adam"])
def test_numpy_floor_optimizers_match_tinygrad(bench, optimizer):
    common, _ = bench
    tg_net = common.TgNetwork("5-4-3", 6, optimizer=optimizer, dtype=np.float64)
    np_net = common.NumpyNetwork("5-4-3", 6, optimizer=optimizer, dtype=np.float64)
    for _ in range(3):
        tg_net.step()
        np_net.step()
    for p, q in zip(tg_net.params, np_net.params):
        np.testing.assert_allclose(q, p.numpy(), rtol=1e-9, atol=1e-12)


def test_torch_contender_matches_numpy_floor(bench):
    torch = pytest.importorskip("torch")
    common, _ = bench
    torch_net = common.TorchNetwork("5-4-3", 6, optimizer="Adam")
    np_net = common.NumpyNetwork("5-4-3", 6, optimizer="Adam")
    for _ in range(3):
        torch_net.step()
        np_net.step()
    for p, q in zip(torch_net.params, np_net.params):
        np.testing.assert_allclose(q, p.detach().numpy(), rtol=1e-4, atol=1e-6)
    assert torch.get_num_threads() == 2


def test_chain_floor_matches_backprop(bench):
    common, _ = bench
    from tinygrad_edu import Tensor

    x_np = common.chain_input(6).astype(np.float64)
    x = Tensor(x_np, requires_grad=True)
    common.chain_forward_backward(x, 23)
    np.testing.assert_allclose(
        common.numpy_chain_forward_backward(x_np, 23), x.grad.numpy(), rtol=1e-10
    )


def test_sampled_finite_differences_match_backprop(bench):
    common, _ = bench
    import tinygrad_edu as tg

    net = common.TgNetwork("6-4-3", 5, dtype=np.float64)
    net.forward_backward()
    entries = common.fd_sample(net.params, 10)
    assert len(set(entries)) == 10
    fd = tg.numerical_gradient(net.forward, net.params, eps=1e-6, entries=entries)
    for t, flat in entries:
        backprop = net.params[t].grad.numpy().reshape(-1)[flat]
        assert fd[t].reshape(-1)[flat] == pytest.approx(backprop, rel=1e-5)
    picked = sum(np.isfinite(g).sum() for g in fd)
    assert picked == 10  # the other entries are NaN: not computed


def test_parameter_counts(bench):
    common, _ = bench
    assert common.n_params("784-15-10") == 11_935
    assert common.n_params("784-256-256-10") == 784 * 256 + 256 + 256 * 256 + 256 + 2570


def test_compare_ratios_are_medians_of_the_rounds_paired_ratios(bench):
    compare = importlib.import_module("benchmarks.compare")
    # round 3 is a slow spell for both sides: a ratio of medians would read 3 / 2 = 1.5
    item = compare.Item("x", {"tinygrad_edu": None, "numpy_lean": None})
    item.samples = {"tinygrad_edu": [1.0, 3.0, 10.0], "numpy_lean": [2.0, 2.0, 20.0]}
    values = {c: item.median(c) for c in item.samples}
    assert compare._row("x", "s", values, timed=item)["tg_over_numpy_lean"] == 0.5
    assert compare._row("x", "s", values)["tg_over_numpy_lean"] == 1.5
    rate = compare._row("x", "GFLOP/s", values, lower_is_better=False, timed=item)
    assert rate["tg_over_numpy_lean"] == 2.0  # a rate: lean's time over tinygrad_edu's


def test_compare_runs_and_writes_json(bench, tmp_path, capsys):
    common, _ = bench
    compare = importlib.reload(importlib.import_module("benchmarks.compare"))
    out = tmp_path / "compare.json"
    compare.main(["--quick", "--rounds", "1", "--json", str(out)])
    printed = capsys.readouterr().out
    report = json.loads(out.read_text())
    assert {"machine", "rows", "targets"} <= set(report)
    assert set(report["targets"]) == {"issue 9", "issue 5", "issue 11"}
    # the five rows of issue 9, the chain twice (us/op, and as a ratio to its numpy floor)
    assert len(report["targets"]["issue 9"]) == 6
    for target in (t for group in report["targets"].values() for t in group):
        assert target["status"] in ("met", "missed", "n/a")
        assert target["name"] in printed
    for row in report["rows"]:
        assert "numpy_lean" in row and "tg_over_numpy_lean" in row


def test_ab_dz_and_db_reports_both_kernels_and_equal_dz(bench):
    ab = importlib.import_module("benchmarks.ab_dz_and_db")
    from tinygrad_edu.backend import rules

    line = ab.compare((4, 3), rules.RELU_GRAD, rounds=1)
    assert "one loop" in line and "two loops" in line and "dZ equal: True" in line


def test_ab_cnn_times_both_sides_of_a_tree(bench):
    pytest.importorskip("torch")
    ab = importlib.import_module("benchmarks.ab_cnn")
    root = str(Path(ab.__file__).resolve().parents[1])
    ours, theirs, ratio = ab.run_one(root, "cnn_step", rounds=3, steps=2)
    assert ours > 0 and theirs > 0
    # a median of per-round ratios: near the ratio of the medians, not equal to it
    assert 0.2 < ratio / (ours / theirs) < 5
    with pytest.raises(RuntimeError, match="ab_cnn: .* failed"):
        ab.run_one(root, "no_such_workload", rounds=1, steps=1)
