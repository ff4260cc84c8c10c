"""Side by side: tinygrad_edu, the hand-written numpy floor and PyTorch, in one process.

    python -m benchmarks.compare            # about 2 minutes on 2 cores
    python -m benchmarks.compare --quick    # fewer rounds, shorter samples
    python -m benchmarks.compare --json results.json

Each workload is timed for each contender in rounds; the contenders' order rotates from round to
round and every sample is short, so a drift of the machine's CPU speed hits all of them alike.
The table shows medians over the rounds and the ratios of tinygrad_edu to each other contender
(below 1: tinygrad_edu is faster), then the targets of issue 9 and of the earlier issue 5 with
their status. Only ratios taken in the same run mean anything on a machine whose speed drifts.

There are two numpy floors. "numpy lean" is what issue 9 measures against: every buffer
allocated once, products written in place (``np.dot(..., out=)``), in-place updates
(``common.LeanNumpyMLP``). "numpy" is the plain hand-written version (``common.NumpyMLP``: the
same arithmetic, a fresh array per product), kept for comparison with earlier tables.

PyTorch runs with ``torch.set_num_threads(2)`` when it is installed and is skipped otherwise
(or with ``--no-torch``).
"""

from __future__ import annotations

import argparse
import datetime
import importlib.util
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from . import common

CONTENDERS = ("tinygrad_edu", "numpy_lean", "numpy", "torch")


@dataclass
class Item:
    """One timed quantity: a callable per contender, reported as median seconds per call."""

    key: str
    fns: dict[str, Callable[[], Any]]
    number: dict[str, int] = field(default_factory=dict)
    samples: dict[str, list[float]] = field(default_factory=dict)

    def median(self, contender: str) -> float | None:
        values = self.samples.get(contender)
        return statistics.median(values) if values else None


def _run(fn: Callable[[], Any], number: int) -> float:
    start = time.perf_counter()
    for _ in range(number):
        fn()
    return time.perf_counter() - start


def _calibrate(fn: Callable[[], Any], target: float) -> int:
    """Calls per sample so that one sample lasts about ``target`` seconds."""
    fn()  # warm-up: compile kernels, create optimizer state, fill caches
    number = 1
    while True:
        elapsed = _run(fn, number)
        if elapsed >= target or number >= 1_000_000:
            return number
        number = max(2 * number, int(number * target / max(elapsed, 1e-9) * 1.1))


# ----- the workloads -----


def build_items(torch_ok: bool) -> list[Item]:
    """Every timed callable, built once (same weights and batches for every contender)."""
    items: list[Item] = []
    contenders = [c for c in CONTENDERS if c != "torch" or torch_ok]

    def network(cls_name: str, name: str, batch: int, optimizer: str | None):
        if cls_name == "numpy_lean":
            return common.NumpyNetwork(name, batch, optimizer, lean=True)
        cls = {"tinygrad_edu": common.TgNetwork, "numpy": common.NumpyNetwork,
               "torch": common.TorchNetwork}[cls_name]  # fmt: skip
        return cls(name, batch, optimizer)

    for tag, name, batch, optimizer in (
        ("small", common.SMALL, common.SMALL_BATCH, "SGD(momentum)"),
        ("wide", common.WIDE, common.WIDE_BATCH, "Adam"),
    ):
        steps, forwards, backwards = {}, {}, {}
        for c in contenders:
            steps[c] = network(c, name, batch, optimizer).step
            net = network(c, name, batch, None)
            net.keep_graph()
            forwards[c], backwards[c] = net.forward, net.backward_again
        items += [Item(f"{tag}_step", steps), Item(f"{tag}_forward", forwards),
                  Item(f"{tag}_backward", backwards)]  # fmt: skip

    from tinygrad_edu import Tensor

    x_np = common.chain_input()
    x_tg = Tensor(x_np, requires_grad=True)
    chains = {
        "tinygrad_edu": lambda: common.chain_forward_backward(x_tg),
        "numpy": lambda: common.numpy_chain_forward_backward(x_np),
    }
    if torch_ok:
        torch = common.torch_module()
        x_torch = torch.tensor(x_np, requires_grad=True)
        chains["torch"] = lambda: common.chain_forward_backward(x_torch)
    items.append(Item("chain", chains))

    n = common.MATMUL_SIZES[-1]
    rng = np.random.default_rng(0)
    a_np, b_np, g_np = (rng.standard_normal((n, n), dtype=np.float32) for _ in range(3))
    a_tg, b_tg = Tensor(a_np, requires_grad=True), Tensor(b_np, requires_grad=True)

    def tg_matmul():
        a_tg.grad = b_tg.grad = None
        (a_tg @ b_tg).backward(g_np)

    def np_matmul():
        return a_np @ b_np, g_np @ b_np.T, a_np.T @ g_np

    c_out, da_out, db_out = (np.empty((n, n), np.float32) for _ in range(3))

    def np_lean_matmul():  # the three products written into arrays allocated once
        np.dot(a_np, b_np, out=c_out)
        np.dot(g_np, b_np.T, out=da_out)
        np.dot(a_np.T, g_np, out=db_out)

    matmuls = {"tinygrad_edu": tg_matmul, "numpy_lean": np_lean_matmul, "numpy": np_matmul}
    if torch_ok:
        a_t = torch.tensor(a_np, requires_grad=True)
        b_t = torch.tensor(b_np, requires_grad=True)
        g_t = torch.from_numpy(g_np)

        def torch_matmul():
            a_t.grad = b_t.grad = None
            (a_t @ b_t).backward(g_t)

        matmuls["torch"] = torch_matmul
    items.append(Item("matmul_fwd_bwd", matmuls))
    items.append(Item("matmul_numpy_single", {"numpy": lambda: a_np @ b_np}))

    # ----- issue 11: the image workloads (conv_workloads.py) -----
    from . import conv_workloads as cw

    convs, cnn_steps = {"tinygrad_edu": cw.conv_tg()}, {"tinygrad_edu": cw.cnn_step_tg()}
    if torch_ok:
        convs["torch"], cnn_steps["torch"] = cw.conv_torch(), cw.cnn_step_torch()
    items += [Item("conv_fwd_bwd", convs), Item("cnn_step", cnn_steps)]
    return items


# After a contender's sample, its thread pools (PyTorch's OpenMP threads, OpenBLAS's threads)
# keep spinning for a while on the two cores, and the next contender's sample pays for it:
# tinygrad_edu's wide backward measured 494 us right after a PyTorch sample, 477 us after a 2 ms
# pause, 424 us after 20 ms and 411 us alone. So every sample starts after a pause.
COOL_DOWN_S = 0.02


def measure(items: list[Item], rounds: int, target: float, log: Callable[[str], None]) -> None:
    """Calibrate every callable, then time them in ``rounds`` rounds, rotating the order."""
    for item in items:
        for c, fn in item.fns.items():
            item.number[c] = _calibrate(fn, target)
    for r in range(rounds):
        for item in items:
            order = list(item.fns)
            shift = r % len(order)
            for c in order[shift:] + order[:shift]:
                time.sleep(COOL_DOWN_S)
                elapsed = _run(item.fns[c], item.number[c])
                item.samples.setdefault(c, []).append(elapsed / item.number[c])
        log(f"  round {r + 1}/{rounds} done")


def measure_startup(rounds: int, torch_ok: bool, log: Callable[[str], None]) -> dict[str, Any]:
    """Fresh processes: tinygrad_edu cold (empty Numba cache) and warm, numpy and torch warm."""
    results: dict[str, list[dict[str, float]]] = {}
    with tempfile.TemporaryDirectory(prefix="tg_numba_warm_") as warm_dir:
        common.run_startup("tinygrad_edu", warm_dir)  # fill the cache
        for r in range(rounds):
            with tempfile.TemporaryDirectory(prefix="tg_numba_cold_") as cold_dir:
                results.setdefault("tinygrad_edu cold", []).append(
                    common.run_startup("tinygrad_edu", cold_dir)
                )
            runs = ["tinygrad_edu", "numpy", "deps only"] + (["torch"] if torch_ok else [])
            shift = r % len(runs)
            for c in runs[shift:] + runs[:shift]:
                if c == "deps only":  # as after a fresh install: no SciPy for Numba to import
                    result = common.run_startup("tinygrad_edu", warm_dir, common.WITHOUT_SCIPY)
                    results.setdefault("tinygrad_edu warm, deps only", []).append(result)
                else:
                    results.setdefault(f"{c} warm", []).append(common.run_startup(c, warm_dir))
            log(f"  start-up round {r + 1}/{rounds} done")
    return {
        key: {k: statistics.median(run[k] for run in runs) for k in runs[0]}
        for key, runs in results.items()
    }


# ----- the report -----


def machine_description(torch_ok: bool, load_at_start: float) -> dict[str, Any]:
    import numba

    model = platform.processor() or platform.machine()
    try:
        lscpu = subprocess.run(["lscpu"], capture_output=True, text=True).stdout
        model = next(line.split(":", 1)[1].strip() for line in lscpu.splitlines()
                     if line.startswith("Model name"))  # fmt: skip
    except (OSError, StopIteration):
        pass
    try:
        threading_layer = numba.threading_layer()
    except ValueError:  # no parallel kernel has run in this process
        threading_layer = "not started"
    blas = "unknown"
    try:
        deps = np.show_config(mode="dicts")["Build Dependencies"]["blas"]
        blas = f"{deps.get('name', '?')} {deps.get('version', '?')}"
    except (TypeError, KeyError):
        pass
    commit = "unknown"
    try:
        root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
        git = ["git", "-C", root]
        commit = subprocess.run(git + ["rev-parse", "--short", "HEAD"], capture_output=True,
                                text=True, check=True).stdout.strip()  # fmt: skip
        dirty = subprocess.run(git + ["status", "--porcelain", "--untracked-files=no"],
                               capture_output=True, text=True).stdout.strip()  # fmt: skip
        commit += " (with uncommitted changes)" if dirty else ""
    except (OSError, subprocess.CalledProcessError):
        pass
    info = {
        "date": datetime.date.today().isoformat(),
        "commit": commit,
        "cpu": model,
        "cores": os.cpu_count(),
        "python": platform.python_version(),
        "numpy": np.__version__,
        "blas": blas,
        "numba": numba.__version__,
        "numba_threading_layer": threading_layer,
        "numba_threads": numba.config.NUMBA_NUM_THREADS,
        "torch": None,
        "tiny_sizes": common.TINY,
        "load_average_1min": [round(load_at_start, 2), round(os.getloadavg()[0], 2)],
    }
    if torch_ok:
        torch = common.torch_module()
        info["torch"] = f"{torch.__version__} ({torch.get_num_threads()} threads)"
    return info


def _row(
    label: str,
    unit: str,
    values: dict[str, float | None],
    lower_is_better: bool = True,
    timed: Item | None = None,
):
    """One table row. With ``timed`` (the item the values come from), each ratio is the median
    of the rounds' ratios: the contenders of a round run one after the other, so a slow spell
    of the shared machine slows both sides of a ratio, where it would shift one median alone."""
    row = {"workload": label, "unit": unit, "lower_is_better": lower_is_better}
    row.update({c: values.get(c) for c in CONTENDERS})
    tg = values.get("tinygrad_edu")
    for c in CONTENDERS[1:]:
        other = values.get(c)
        ratio = None if tg is None or not other else tg / other
        if ratio is not None and timed is not None:
            pairs = zip(timed.samples["tinygrad_edu"], timed.samples[c])
            # times per call: tg/c for a time, c/tg for a rate (GFLOP/s)
            ratio = statistics.median(t / o if lower_is_better else o / t for t, o in pairs)
        row[f"tg_over_{c}"] = ratio
    return row


def build_report(items: list[Item], startup: dict[str, Any] | None, torch_ok: bool):
    by_key = {item.key: item for item in items}

    def med(key: str, scale: float = 1.0) -> dict[str, float | None]:
        item = by_key[key]
        return {c: (None if item.median(c) is None else item.median(c) * scale) for c in item.fns}

    small = f"{common.SMALL} / batch {common.SMALL_BATCH}"
    wide = f"{common.WIDE} / batch {common.WIDE_BATCH}"
    rows = [
        _row(label, unit, med(key, scale), timed=by_key[key])
        for label, unit, key, scale in (
            (f"{small}: SGD(momentum) step", "us", "small_step", 1e6),
            (f"{wide}: Adam step", "ms", "wide_step", 1e3),
            (f"{small}: forward", "us", "small_forward", 1e6),
            (f"{small}: backward", "us", "small_backward", 1e6),
            (f"{wide}: forward", "ms", "wide_forward", 1e3),
            (f"{wide}: backward", "ms", "wide_backward", 1e3),
        )
    ]
    ratios = {}
    for tag, label in (("small", small), ("wide", wide)):
        # Forward and backward are timed one after the other in every round: the ratio is the
        # median of the rounds' ratios, so a slow minute of the machine slows both halves.
        fwd, bwd = by_key[f"{tag}_forward"], by_key[f"{tag}_backward"]
        ratios[tag] = {
            c: statistics.median(b / f for f, b in zip(fwd.samples[c], bwd.samples[c]))
            for c in fwd.fns
            if fwd.samples.get(c) and bwd.samples.get(c)
        }
        rows.append(_row(f"{label}: backward / forward", "ratio", ratios[tag]))
    chain = med("chain", 1e6 / common.CHAIN_LEN)
    chain_row = _row(f"chain of {common.CHAIN_LEN} small ops, fwd+bwd per op", "us", chain,
                     timed=by_key["chain"])  # fmt: skip
    rows.append(chain_row)
    n = common.MATMUL_SIZES[-1]
    flops = 6 * n**3
    mm = {c: flops / v / 1e9 for c, v in med("matmul_fwd_bwd").items() if v}
    mm_row = _row(f"matmul {n}: forward + backward", "GFLOP/s", mm, lower_is_better=False,
                  timed=by_key["matmul_fwd_bwd"])  # fmt: skip
    rows.append(mm_row)
    single = 2 * n**3 / by_key["matmul_numpy_single"].median("numpy") / 1e9
    rows.append(_row(f"matmul {n}: numpy A @ B alone", "GFLOP/s", {"numpy": single},
                     lower_is_better=False))  # fmt: skip
    # ----- issue 11: the image workloads -----
    from . import conv_workloads as cw

    rows.append(
        _row(
            f"conv 1->16->32 3x3 on {cw.CONV_SIZE}x{cw.CONV_SIZE}, batch "
            f"{cw.CONV_BATCH}: forward + backward",
            "ms",
            med("conv_fwd_bwd", 1e3),
            timed=by_key["conv_fwd_bwd"],
        )
    )
    cnn_row = _row(f"CNN (train --model cnn), batch {cw.CNN_BATCH}: SGD(momentum) step", "ms",
                   med("cnn_step", 1e3), timed=by_key["cnn_step"])  # fmt: skip
    rows.append(cnn_row)
    if startup:
        warm = {c: startup[f"{c} warm"] for c in CONTENDERS if f"{c} warm" in startup}
        cold = {"tinygrad_edu": startup["tinygrad_edu cold"]}
        deps_only = {"tinygrad_edu": startup["tinygrad_edu warm, deps only"]}
        for label, runs, key in (
            ("start-up, warm Numba cache: launch to first step done", warm, "ready_s"),
            ("  import", warm, "import_s"),
            ("  build the network (tinygrad_edu: imports numba)", warm, "build_s"),
            ("  first step", warm, "first_step_s"),
            ("  launch to exit", warm, "wall_s"),
            ("start-up, warm, numpy + numba only (SciPy hidden)", deps_only, "ready_s"),
            ("  first step", deps_only, "first_step_s"),
            ("start-up, cold Numba cache: launch to first step done", cold, "ready_s"),
            ("  first step (compiling)", cold, "first_step_s"),
        ):
            rows.append(_row(label, "s", {c: run[key] for c, run in runs.items()}))

    def target(name: str, goal: str, measured: float | None, ok: Callable[[float], bool], fmt):
        status = "n/a" if measured is None else ("met" if ok(measured) else "missed")
        shown = "-" if measured is None else fmt(measured)
        return {"name": name, "target": goal, "measured": measured, "shown": shown,
                "status": status}  # fmt: skip

    def times(r):
        return f"{r:.2f}x"

    first_step = None if not startup else startup["tinygrad_edu warm"]["first_step_s"] * 1e3
    targets_9 = [
        target(
            "784-15-10 SGD step vs lean numpy",
            "<= 1.0x",
            rows[0]["tg_over_numpy_lean"],
            lambda r: r <= 1.0,
            times,
        ),
        target(
            "784-256-256-10 Adam step vs lean numpy",
            "<= 0.8x",
            rows[1]["tg_over_numpy_lean"],
            lambda r: r <= 0.8,
            times,
        ),
        target(
            f"matmul {n} fwd+bwd GFLOP/s vs lean numpy's",
            ">= 90%",
            mm_row["tg_over_numpy_lean"],
            lambda r: r >= 0.9,
            lambda r: f"{100 * r:.0f}%",
        ),
        target(
            f"chain of {common.CHAIN_LEN} small ops, fwd+bwd",
            "<= 2.5 us/op",
            chain["tinygrad_edu"],
            lambda v: v <= 2.5,
            lambda v: f"{v:.2f} us/op",
        ),
        target(
            # the same row as a ratio, which a slower machine does not change: the issue's
            # 2.5 us/op against its numpy floor of 0.73 us/op
            "  the same, vs its numpy floor (issue: 2.5 / 0.73)",
            "<= 3.42x",
            chain_row["tg_over_numpy"],
            lambda r: r <= 2.5 / 0.73,
            times,
        ),
        target(
            "first training step, fresh process, warm cache",
            "<= 150 ms",
            first_step,
            lambda v: v <= 150,
            lambda v: f"{v:.0f} ms",
        ),
    ]
    targets_5 = [
        target("small step vs plain numpy", "<= 1.0x",
               rows[0]["tg_over_numpy"], lambda r: r <= 1.0, times),
        target("wide Adam step vs plain numpy", "<= 1.0x",
               rows[1]["tg_over_numpy"], lambda r: r <= 1.0, times),
        target("backward/forward, small", "<= 1.3", ratios["small"].get("tinygrad_edu"),
               lambda r: r <= 1.3, lambda r: f"{r:.2f}"),
        target("backward/forward, wide", "<= 1.3", ratios["wide"].get("tinygrad_edu"),
               lambda r: r <= 1.3, lambda r: f"{r:.2f}"),
        target("chain of small ops", "<= 3 us/op", chain["tinygrad_edu"], lambda v: v <= 3.0,
               lambda v: f"{v:.2f} us/op"),
        target(f"matmul {n} fwd+bwd vs numpy A @ B", ">= 90%",
               _div(mm.get("tinygrad_edu"), single), lambda r: r >= 0.9,
               lambda r: f"{100 * r:.0f}%"),
    ]  # fmt: skip
    if startup:
        scipy_note = " (SciPy installed)" if importlib.util.find_spec("scipy") else ""
        targets_5 += [
            target("start-up, warm cache, as installed (numpy + numba)", "< 0.5 s",
                   startup["tinygrad_edu warm, deps only"]["ready_s"], lambda v: v < 0.5,
                   lambda v: f"{v:.2f} s"),
            target("start-up, warm cache, this interpreter" + scipy_note, "< 0.5 s",
                   startup["tinygrad_edu warm"]["ready_s"], lambda v: v < 0.5,
                   lambda v: f"{v:.2f} s"),
            target("start-up, cold cache", "< 10 s", startup["tinygrad_edu cold"]["ready_s"],
                   lambda v: v < 10.0, lambda v: f"{v:.2f} s"),
        ]  # fmt: skip
    else:
        targets_5 += [target("start-up, warm cache, as installed (numpy + numba)", "< 0.5 s",
                             None, bool, str),
                      target("start-up, cold cache", "< 10 s", None, bool, str)]  # fmt: skip
    targets_11 = [
        target("CNN training step vs PyTorch", "<= 1.0x",
               cnn_row["tg_over_torch"], lambda r: r <= 1.0, times),
    ]  # fmt: skip
    return rows, {"issue 9": targets_9, "issue 5": targets_5, "issue 11": targets_11}


def _div(a: float | None, b: float | None) -> float | None:
    return None if a is None or not b else a / b


def _fmt(v: float | None) -> str:
    if v is None:
        return "-"
    if v >= 100:
        return f"{v:.0f}"
    if v >= 10:
        return f"{v:.1f}"
    return f"{v:.3g}" if v < 1 else f"{v:.2f}"


def format_table(machine: dict[str, Any], rows: list[dict], targets: dict[str, list]) -> str:
    lines = [
        f"tinygrad_edu vs hand-written numpy (lean and plain) vs PyTorch -- {machine['date']}, "
        f"commit "
        f"{machine['commit']}",
        f"CPU: {machine['cpu']}, {machine['cores']} cores; Python {machine['python']}; "
        f"numpy {machine['numpy']} ({machine['blas']}); numba {machine['numba']} "
        f"(threading layer {machine['numba_threading_layer']}, {machine['numba_threads']} "
        f"threads); torch {machine['torch'] or 'not used (not installed, or --no-torch)'}",
        "1-minute load average at start and end: {} and {} (other processes on the same cores"
        " make every number slower and noisier)".format(*machine["load_average_1min"]),
        "medians over rounds; ratio < 1 means tinygrad_edu is faster (for GFLOP/s, higher is"
        " better)",
        "",
    ]
    header = ("workload", "unit", "tinygrad_edu", "numpy lean", "numpy", "torch",
              "tg/lean", "tg/numpy", "tg/torch")  # fmt: skip

    def ratio(v: float | None) -> str:
        return "-" if v is None else f"{v:.2f}"

    table = [header] + [
        (r["workload"], r["unit"], _fmt(r["tinygrad_edu"]), _fmt(r["numpy_lean"]),
         _fmt(r["numpy"]), _fmt(r["torch"]), ratio(r["tg_over_numpy_lean"]),
         ratio(r["tg_over_numpy"]), ratio(r["tg_over_torch"]))
        for r in rows
    ]  # fmt: skip
    widths = [max(len(row[i]) for row in table) for i in range(len(header))]
    for k, row in enumerate(table):
        cells = [row[0].ljust(widths[0]), row[1].ljust(widths[1])]
        cells += [cell.rjust(w) for cell, w in zip(row[2:], widths[2:])]
        lines.append("| " + " | ".join(cells) + " |")
        if k == 0:
            lines.append("|" + "|".join("-" * (w + 2) for w in widths) + "|")
    every = [t for group in targets.values() for t in group]
    t_widths = [max(len(t[k]) for t in every + [{"name": "target", "target": "goal",
                                                  "shown": "measured", "status": "status"}])
                for k in ("name", "target", "shown", "status")]  # fmt: skip
    t_header = ("target", "goal", "measured", "status")
    for issue, group in targets.items():
        lines += ["", f"Targets ({issue})", ""]
        lines.append("| " + " | ".join(h.ljust(w) for h, w in zip(t_header, t_widths)) + " |")
        lines.append("|" + "|".join("-" * (w + 2) for w in t_widths) + "|")
        for t in group:
            cells = (t["name"], t["target"], t["shown"], t["status"])
            lines.append("| " + " | ".join(c.ljust(w) for c, w in zip(cells, t_widths)) + " |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m benchmarks.compare",
        description="tinygrad_edu vs a hand-written numpy MLP vs PyTorch, in one process.",
    )
    parser.add_argument("--quick", action="store_true", help="fewer rounds, shorter samples")
    parser.add_argument("--rounds", type=int, help="rounds of timing (default 9, quick 3)")
    parser.add_argument("--json", metavar="PATH", help="also write the results as JSON")
    parser.add_argument("--no-torch", action="store_true", help="leave PyTorch out")
    parser.add_argument("--no-startup", action="store_true", help="skip the start-up runs")
    parser.add_argument(
        "--torch-first", action="store_true", help="import torch before tinygrad_edu (see NOTE)"
    )
    args = parser.parse_args(argv)
    rounds = args.rounds or (3 if args.quick else 9)
    target = 0.02 if args.quick else 0.08
    startup_rounds = 1 if args.quick else 3

    def log(message: str) -> None:
        print(message, file=sys.stderr, flush=True)

    load_at_start = os.getloadavg()[0]
    # NOTE: the import order used to matter, when tinygrad_edu's import set OpenMP's passive
    # waiting for the whole process. It now sets it only when its first parallel kernel starts
    # (tinygrad_edu.config.parallel), which these workloads never do on a 2-core machine;
    # --torch-first is kept to check that. See docs/benchmarks.md.
    if args.torch_first and not args.no_torch:
        common.torch_module()
    import tinygrad_edu

    # The start-up probes run in fresh processes in a scratch directory: make them import the
    # same tinygrad_edu as this process (this checkout), not whichever copy is installed.
    root = os.path.dirname(os.path.dirname(os.path.abspath(tinygrad_edu.__file__)))
    os.environ["PYTHONPATH"] = os.pathsep.join(
        [root] + [p for p in os.environ.get("PYTHONPATH", "").split(os.pathsep) if p]
    )
    torch_ok = not args.no_torch and common.torch_module() is not None
    log(f"building workloads (torch {'on' if torch_ok else 'off'}) ...")
    items = build_items(torch_ok)
    log(f"timing {len(items)} workloads, {rounds} rounds ...")
    measure(items, rounds, target, log)
    startup = None
    if not args.no_startup:
        log(f"start-up: {startup_rounds} round(s) of fresh processes ...")
        startup = measure_startup(startup_rounds, torch_ok, log)
    machine = machine_description(torch_ok, load_at_start)
    rows, targets = build_report(items, startup, torch_ok)
    print(format_table(machine, rows, targets))
    if args.json:
        with open(args.json, "w") as f:
            json.dump({"machine": machine, "rows": rows, "targets": targets, "startup": startup},
                      f, indent=2)  # fmt: skip
    return 0


if __name__ == "__main__":
    sys.exit(main())
