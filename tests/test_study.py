"""Study tools (API.md, section Study tools): detect_anomaly, profile, warmup, fd_report."""

from __future__ import annotations

import inspect
import os
import subprocess
import sys
import textwrap

import numpy as np
import pytest
from numba import njit

import tinygrad_edu as tg
from tinygrad_edu import Tensor, nn
from tinygrad_edu.autograd import Op
from tinygrad_edu.study import _ORIGINAL_APPLY

# log(0) and 1/sqrt(0) are what the anomaly tests are about: numpy's warnings are expected.
pytestmark = pytest.mark.filterwarnings("ignore:divide by zero:RuntimeWarning")


def leaf(a, dtype=np.float64) -> Tensor:
    return Tensor(np.asarray(a, dtype=dtype), requires_grad=True)


def here() -> int:
    """The line number of the caller (the line that builds the op under test)."""
    return inspect.currentframe().f_back.f_lineno


def assert_unpatched() -> None:
    assert Op.__dict__["apply"] is _ORIGINAL_APPLY


# ----- detect_anomaly -----


def test_anomaly_in_forward_names_op_shapes_direction_and_line():
    x = leaf([1.0, 2.0])
    with pytest.raises(RuntimeError) as info:
        with tg.autograd.detect_anomaly():
            line = here() + 1
            ((x - x).log() * 0).sum()
    message = str(info.value)
    assert "Log" in message and "forward" in message and "(2,)" in message
    assert f"{os.path.basename(__file__)}:{line}" in message
    assert_unpatched()


def test_anomaly_made_only_in_backward_points_at_the_forward_line():
    x = leaf([0.0, 4.0])
    with tg.autograd.detect_anomaly():
        line = here() + 1
        y = x.abs().sqrt().sum()  # forward: finite; backward of sqrt at 0: inf
        assert np.isfinite(y.item())
        with pytest.raises(RuntimeError) as info:
            y.backward()
    message = str(info.value)
    assert "Sqrt" in message and "backward" in message and "(2,)" in message
    assert f"{os.path.basename(__file__)}:{line}" in message
    assert_unpatched()


def test_anomaly_works_as_a_decorator():
    @tg.autograd.detect_anomaly()
    def bad():
        return Tensor([0.0]).log() * 0

    with pytest.raises(RuntimeError, match="Log"):
        bad()
    assert_unpatched()


def test_no_false_alarm_on_a_clean_training_step(rng):
    tg.manual_seed(0)
    model = nn.Sequential(nn.Linear(4, 8), nn.Tanh(), nn.Linear(8, 3))
    opt = tg.optim.SGD(model.parameters(), lr=0.1)
    x, y = Tensor(rng.standard_normal((5, 4))), Tensor(np.array([0, 1, 2, 0, 1]), dtype="int64")
    with tg.autograd.detect_anomaly():
        loss = nn.functional.cross_entropy(model(x), y)
        opt.zero_grad()
        loss.backward()
        opt.step()
    assert np.isfinite(loss.item())
    assert all(p.grad is not None for p in model.parameters())
    assert_unpatched()


def test_anomaly_checks_a_recorded_backward_without_false_alarms():
    x = leaf([0.5, 1.5])
    with tg.autograd.detect_anomaly():
        (g,) = tg.grad((x.tanh() * x).sum(), [x], create_graph=True)
        (h,) = tg.grad(g.sum(), [x])
    assert np.isfinite(h.numpy()).all()
    assert_unpatched()


def test_block_leaves_no_patch_behind_on_exception():
    with pytest.raises(KeyError):
        with tg.autograd.detect_anomaly():
            assert Op.__dict__["apply"] is not _ORIGINAL_APPLY
            raise KeyError("boom")
    assert_unpatched()


def test_anomaly_and_profile_nest_in_any_order():
    x = leaf([1.0, 2.0])
    outer = tg.profile()
    inner = tg.autograd.detect_anomaly()
    outer.__enter__()
    inner.__enter__()
    (x * x).sum().backward()
    outer.__exit__(None, None, None)  # not last in, first out: each block removes only itself
    with pytest.raises(RuntimeError, match="Log"):
        Tensor([0.0]).log()
    inner.__exit__(None, None, None)
    assert_unpatched()
    assert outer.stats["Mul"]["calls"] == 1


# ----- profile -----


def test_profile_counts_ops_of_a_known_graph():
    x, y = leaf([1.0, 2.0, 3.0]), leaf([4.0, 5.0, 6.0])
    with tg.profile() as prof:
        z = (x * y * x * y).sum()  # 3 Mul, 1 Sum
        z.backward()
    assert prof.stats["Mul"]["calls"] == 3
    assert prof.stats["Sum"]["calls"] == 1
    for name in ("Mul", "Sum"):
        assert prof.stats[name]["forward_s"] > 0
        assert prof.stats[name]["backward_s"] > 0
    table = prof.table()
    assert "Mul" in table and "Sum" in table and "backward ms" in table
    assert_unpatched()


def test_profile_table_is_sorted_by_total_time():
    prof = tg.profile()
    prof.stats = {
        "A": {"calls": 1, "forward_s": 0.001, "backward_s": 0.0},
        "B": {"calls": 1, "forward_s": 0.002, "backward_s": 0.002},
    }
    rows = prof.table().splitlines()[1:3]
    assert rows[0].startswith("B") and rows[1].startswith("A")


def test_profile_measures_a_fresh_compilation():
    with tg.profile() as prof:

        @njit
        def fresh_kernel(a):
            return a * 2.0 + 1.0

        fresh_kernel(np.ones(3))
    assert prof.compile_seconds > 0
    assert any("fresh_kernel" in name for name, _, _ in prof.compiled)
    assert "compilations" in prof.table()


def test_profile_tells_compiles_from_cache_loads(tmp_path):
    # A fresh process with an empty cache compiles; a second one loads from the cache.
    script = textwrap.dedent(
        """
        import numpy as np, tinygrad_edu as tg
        x = tg.Tensor(np.arange(6.0), requires_grad=True)
        with tg.profile() as prof:
            x.sigmoid().sum().backward()  # a Numba loop at this size (fused exp)
        print(len(prof.compiled), sum(prof.cache_hits.values()))
        """
    )
    env = dict(os.environ, NUMBA_CACHE_DIR=str(tmp_path), TINYGRAD_EDU_ELEMENTWISE_MIN="0")
    runs = []
    for _ in range(2):
        done = subprocess.run(
            [sys.executable, "-c", script], env=env, capture_output=True, text=True, timeout=300
        )
        assert done.returncode == 0, done.stderr
        runs.append(tuple(int(v) for v in done.stdout.split()))
    (compiled1, hits1), (compiled2, hits2) = runs
    assert compiled1 > 0
    assert compiled2 == 0 and hits2 > 0


# ----- warmup -----


def test_warmup_leaves_the_model_alone_and_the_next_step_compiles_nothing(rng):
    tg.manual_seed(1)
    model = nn.Sequential(nn.Linear(6, 16), nn.Tanh(), nn.Linear(16, 3))
    opt = tg.optim.Adam(model.parameters(), lr=1e-2)
    x = rng.standard_normal((10, 6))
    y = np.array([0, 1, 2, 0, 1, 2, 0, 1, 2, 0])
    before = [p.numpy().copy() for p in model.parameters()]
    report = tg.warmup(model, (x, y), optimizer=opt)
    assert "warmup" in str(report)
    for p, b in zip(model.parameters(), before):
        np.testing.assert_array_equal(p.numpy(), b)
        assert p.grad is None
    assert opt.state_dict()["state"] == {}
    with tg.profile() as prof:
        loss = nn.functional.cross_entropy(model(Tensor(x)), Tensor(y, dtype="int64"))
        opt.zero_grad()
        loss.backward()
        opt.step()
    assert prof.compiled == [] and prof.compile_seconds == 0
    assert any(not np.array_equal(p.numpy(), b) for p, b in zip(model.parameters(), before))


# ----- fd_report and fd_sweep -----


def test_fd_report_per_tensor_numbers(rng):
    x, w = leaf(rng.standard_normal((4, 3))), leaf(rng.standard_normal((3, 2)))

    def f():
        return (x @ w).tanh().sum()

    report = tg.fd_report(f, [x, w], names=["x", "w"])
    assert [r.name for r in report.rows] == ["x", "w"]
    assert report.forward_passes == 2 * (12 + 6)
    assert report.max_abs < 1e-8 and report.max_rel < 1e-6
    assert report.backprop_seconds > 0 and report.fd_seconds > 0 and report.ratio > 0
    text = str(report)
    assert "max abs diff" in text and "slower" in text and "w" in text


def test_fd_report_can_promote_to_float64_and_restores_dtype(rng):
    x = leaf(rng.standard_normal(5), dtype=np.float32)
    data = x._data
    report = tg.fd_report(lambda: (x * x).sum(), [x], dtype=np.float64)
    assert report.dtype == "float64" and report.max_rel < 1e-6
    assert x._data is data and x.dtype == np.float32


def test_fd_report_on_a_sample_of_entries(rng):
    x = leaf(rng.standard_normal((3, 3)))
    report = tg.fd_report(lambda: (x * x).sum(), [x], entries=[(0, (0, 1)), (0, 5)])
    assert report.rows[0].checked == 2 and report.forward_passes == 4


def test_fd_sweep_shows_truncation_then_round_off(rng):
    x = leaf(rng.standard_normal(4))
    sweep = tg.fd_sweep(lambda: (x.exp() * x.tanh()).sum(), [x])
    e64 = dict(zip(sweep.eps, sweep.errors["float64"]))
    e32 = dict(zip(sweep.eps, sweep.errors["float32"]))
    assert e64[1e-1] > e64[1e-3] > e64[1e-5]  # truncation error falls as eps^2
    assert e64[1e-10] > 10 * e64[1e-5]  # round-off rises as eps shrinks
    assert 1e-7 <= sweep.best("float64") <= 1e-3
    assert sweep.best("float32") >= 1e-4 and min(e32.values()) > min(e64.values())
    assert "best eps" in str(sweep)
    assert x.dtype == np.float64
