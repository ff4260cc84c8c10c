"""The GPU check: run the CUDA tests on a real GPU and measure the kernels against their goals.

    python benchmarks/gpu_check.py --out gpu_check.json        # on a machine with an NVIDIA GPU
    NUMBA_ENABLE_CUDASIM=1 python benchmarks/gpu_check.py --tiny   # the dry run CI does

On a GPU it
  1. runs the CUDA test-suite without the simulator (``pytest tests/cuda`` in a subprocess);
  2. measures matmul TFLOP/s for 1024, 2048 and 4096 square float32 matrices, against cuBLAS
     through PyTorch or CuPy (whichever is installed; neither is needed, the comparison is then
     skipped);
  3. measures a fused Adam step's effective bandwidth over 10M and 100M float32 parameters
     (7 values of 4 bytes move per parameter: p, g, m, v read, p, m, v written), against the
     GPU's memory bandwidth: computed from the device attributes (memory clock x bus width x 2,
     double data rate), and measured as a device-to-device copy;
  4. times one training step of a 784-256-256-10 MLP (Adam, batch 256) against PyTorch on the
     same GPU, when PyTorch is there;
then prints one table and writes it, with the GPU's name and the date, as JSON to ``--out``.
The goals (docs/gpu.md): matmul at 4096 >= 25% of cuBLAS float32; the Adam step >= 60% of the
memory bandwidth. It takes a few minutes, most of it the test-suite compiling kernels.

``--tiny`` uses toy sizes so that the whole script runs in numba's simulator (CI runs it there so
it cannot rot); the numbers it prints then mean nothing. Without a usable GPU (and without the
simulator) the script says why and exits with status 0.
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import subprocess
import sys
import time
from functools import partial
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:  # run as a script from anywhere
    sys.path.insert(0, str(ROOT))

SIZES = {
    "full": {
        "matmul": (1024, 2048, 4096),
        "adam": (10_000_000, 100_000_000),
        "mlp": (784, 256, 256, 10),
        "batch": 256,
    },
    "tiny": {"matmul": (16, 40), "adam": (1000, 5000), "mlp": (12, 8, 8, 4), "batch": 4},
}
GOALS = {"matmul": 0.25, "adam": 0.60}  # fraction of cuBLAS; fraction of memory bandwidth


# ----- timing -----


def _time(fn, sync, min_seconds: float, max_reps: int) -> float:
    """Seconds per call: one warm-up call (compiles), then repeat until ``min_seconds``."""
    fn()
    sync()
    reps, start = 0, time.perf_counter()
    while True:
        fn()
        reps += 1
        if reps >= max_reps or time.perf_counter() - start >= min_seconds:
            break
    sync()
    return (time.perf_counter() - start) / reps


def _reference_library():
    """('torch', module) or ('cupy', module) when one of them can use the GPU, else (None, None)."""
    try:
        import torch

        if torch.cuda.is_available():
            return "torch", torch
    except Exception:  # noqa: BLE001 - any import failure means "not usable"
        pass
    try:
        import cupy

        if cupy.cuda.runtime.getDeviceCount() > 0:
            return "cupy", cupy
    except Exception:  # noqa: BLE001
        pass
    return None, None


# ----- the checks -----


def run_tests(timeout: int) -> dict:
    """The CUDA test-suite on the real GPU (the simulator switched off)."""
    env = {k: v for k, v in os.environ.items() if k != "NUMBA_ENABLE_CUDASIM"}
    command = [sys.executable, "-m", "pytest", "tests/cuda", "-q", "-p", "no:cacheprovider"]
    start = time.perf_counter()
    try:
        done = subprocess.run(
            command, cwd=ROOT, env=env, capture_output=True, text=True, timeout=timeout
        )
    except subprocess.TimeoutExpired:
        return {"passed": False, "summary": f"timed out after {timeout} s", "seconds": timeout}
    lines = [line for line in done.stdout.strip().splitlines() if line.strip()]
    return {
        "passed": done.returncode == 0,
        "summary": lines[-1] if lines else done.stderr.strip()[-300:],
        "seconds": round(time.perf_counter() - start, 1),
    }


def device_info() -> dict:
    """The GPU's name and, where the driver reports them, its memory clock and bus width."""
    from numba import cuda

    device = cuda.get_current_device()
    name = getattr(device, "name", "numba.cuda simulator")  # the simulator's device has none
    name = name.decode() if isinstance(name, bytes) else str(name)
    info = {"name": name, "compute_capability": list(getattr(device, "compute_capability", ()))}
    try:
        clock_khz = device.MEMORY_CLOCK_RATE
        bus_bits = device.GLOBAL_MEMORY_BUS_WIDTH
        info["sms"] = device.MULTIPROCESSOR_COUNT
        info["theoretical_gb_s"] = round(2 * clock_khz * 1e3 * bus_bits / 8 / 1e9, 1)
    except Exception:  # noqa: BLE001 - the simulator and some drivers lack these attributes
        info["theoretical_gb_s"] = None
    return info


def copy_bandwidth(n: int, min_seconds: float) -> float:
    """GB/s of a device-to-device copy of n float32 (bytes read + bytes written)."""
    from numba import cuda

    src = cuda.to_device(np.ones(n, np.float32))
    dst = cuda.device_array(n, np.float32)
    seconds = _time(lambda: dst.copy_to_device(src), cuda.synchronize, min_seconds, 50)
    return 2 * 4 * n / seconds / 1e9


def matmul_rows(sizes, min_seconds: float, lib_name, lib) -> list[dict]:
    from numba import cuda

    from tinygrad_edu.backend import get_backend

    backend = get_backend("cuda")
    rng = np.random.default_rng(0)
    rows = []
    for n in sizes:
        a = rng.standard_normal((n, n), dtype=np.float32)
        b = rng.standard_normal((n, n), dtype=np.float32)
        da, db = backend.asarray(a), backend.asarray(b)
        flops = 2 * n**3
        ours = _time(partial(backend.matmul, da, db), cuda.synchronize, min_seconds, 100)
        row = {"check": f"matmul {n} float32", "unit": "TFLOP/s", "ours": flops / ours / 1e12}
        result = backend.to_numpy(backend.matmul(da, db))
        if lib_name is None:
            reference = a.astype(np.float64) @ b if n <= 1024 else None
            row["reference_name"] = "numpy (no torch/cupy: no cuBLAS comparison)"
        else:
            if lib_name == "torch":
                ta, tb = lib.from_numpy(a).cuda(), lib.from_numpy(b).cuda()
                seconds = _time(partial(lib.matmul, ta, tb), lib.cuda.synchronize, min_seconds, 100)
                reference = (ta @ tb).cpu().numpy()
            else:
                ca, cb = lib.asarray(a), lib.asarray(b)
                sync = lib.cuda.Device().synchronize
                seconds = _time(partial(lib.matmul, ca, cb), sync, min_seconds, 100)
                reference = lib.asnumpy(ca @ cb)
            row["reference_name"] = f"cuBLAS via {lib_name}"
            row["reference"] = flops / seconds / 1e12
            row["ratio"] = row["ours"] / row["reference"]
            if n == max(sizes):
                row["goal"] = f">= {GOALS['matmul']:.0%} of cuBLAS"
                row["goal_met"] = row["ratio"] >= GOALS["matmul"]
        if reference is not None:
            scale = float(np.abs(reference).max()) or 1.0
            row["max_rel_error"] = float(np.abs(result - reference).max() / scale)
        rows.append(row)
    return rows


def adam_rows(sizes, min_seconds: float, bandwidth: dict) -> list[dict]:
    from numba import cuda

    from tinygrad_edu.backend import get_backend

    backend = get_backend("cuda")
    peak = bandwidth.get("theoretical_gb_s") or bandwidth["copy_gb_s"]
    peak_name = "theoretical" if bandwidth.get("theoretical_gb_s") else "measured copy"
    rows = []
    for n in sizes:
        seconds = _time(_adam_stepper(backend, n), cuda.synchronize, min_seconds, 200)
        gb_s = 7 * 4 * n / seconds / 1e9
        rows.append({
            "check": f"adam step {n / 1e6:g}M float32",
            "unit": "GB/s",
            "ours": gb_s,
            "reference_name": f"memory bandwidth ({peak_name})",
            "reference": peak,
            "ratio": gb_s / peak,
            "vs_copy": gb_s / bandwidth["copy_gb_s"],
            "goal": f">= {GOALS['adam']:.0%} of bandwidth",
            "goal_met": gb_s / peak >= GOALS["adam"],
        })  # fmt: skip
    return rows


def _adam_stepper(backend, n: int):
    """A function that applies one more Adam step to n float32 parameters on the GPU."""
    rng = np.random.default_rng(1)
    p = backend.asarray(rng.standard_normal(n, dtype=np.float32))
    g = backend.asarray(rng.standard_normal(n, dtype=np.float32))
    m, v = backend.zeros((n,), np.float32), backend.zeros((n,), np.float32)
    step = [0]

    def adam_step():
        step[0] += 1
        backend.adam_step(p, g, m, v, None, step=step[0], lr=1e-3, beta1=0.9, beta2=0.999,
                          eps=1e-8, weight_decay=0.0, amsgrad=False,
                          decoupled_weight_decay=False)  # fmt: skip

    return adam_step


def mlp_row(widths, batch: int, min_seconds: float, lib_name, lib) -> dict:
    """ms per training step (forward, cross-entropy, backward, Adam) of an MLP of ``widths``."""
    from numba import cuda

    import tinygrad_edu as tg
    import tinygrad_edu.nn.functional as F
    from tinygrad_edu import nn, optim

    rng = np.random.default_rng(2)
    x_host = rng.standard_normal((batch, widths[0]), dtype=np.float32)
    y_host = rng.integers(0, widths[-1], batch)
    tg.manual_seed(0)
    layers = []
    for k in range(len(widths) - 1):
        layers.append(nn.Linear(widths[k], widths[k + 1]))
        if k < len(widths) - 2:
            layers.append(nn.ReLU())
    model = nn.Sequential(*layers).to("cuda")
    opt = optim.Adam(model.parameters(), lr=1e-3)
    x = tg.Tensor(x_host, device="cuda")

    def step():
        opt.zero_grad()
        F.cross_entropy(model(x), y_host).backward()  # labels: one small host-to-device copy
        opt.step()

    ours = _time(step, cuda.synchronize, min_seconds, 50)
    label = "-".join(map(str, widths))
    row = {"check": f"mlp {label} step, batch {batch}", "unit": "ms", "ours": ours * 1e3}
    if lib_name == "torch":
        torch = lib
        modules = []
        for k in range(len(widths) - 1):
            modules.append(torch.nn.Linear(widths[k], widths[k + 1]))
            if k < len(widths) - 2:
                modules.append(torch.nn.ReLU())
        tmodel = torch.nn.Sequential(*modules).cuda()
        topt = torch.optim.Adam(tmodel.parameters(), lr=1e-3)
        tx, ty = torch.from_numpy(x_host).cuda(), torch.from_numpy(y_host).cuda()

        def torch_step():
            topt.zero_grad()
            torch.nn.functional.cross_entropy(tmodel(tx), ty).backward()
            topt.step()

        seconds = _time(torch_step, torch.cuda.synchronize, min_seconds, 50)
        row.update(reference_name="PyTorch", reference=seconds * 1e3, ratio=ours / seconds)
    else:
        row["reference_name"] = "PyTorch not available on the GPU: no comparison"
    return row


# ----- report -----


def _fmt(value) -> str:
    if value is None:
        return ""
    if isinstance(value, float):
        return f"{value:.3g}"
    return str(value)


def print_table(report: dict) -> None:
    print(f"\nGPU check, {report['date']}: {report['device'].get('name')}")
    tests = report.get("tests")
    if tests:
        print(f"tests/cuda on the GPU: {tests['summary']} ({tests['seconds']} s)")
    header = ("check", "unit", "ours", "reference", "ratio", "goal", "met", "reference is")
    rows = [header]
    for r in report["rows"]:
        ratio = r.get("ratio")
        rows.append((
            r["check"], r["unit"], _fmt(r.get("ours")), _fmt(r.get("reference")),
            "" if ratio is None else (f"{ratio:.0%}" if r["unit"] != "ms" else f"{ratio:.1f}x"),
            r.get("goal", ""), {True: "yes", False: "NO"}.get(r.get("goal_met"), ""),
            r.get("reference_name", "") + (f"; error: {r['error']}" if "error" in r else ""),
        ))  # fmt: skip
    widths = [max(len(str(row[k])) for row in rows) for k in range(len(header))]
    for k, row in enumerate(rows):
        print("  ".join(str(cell).ljust(w) for cell, w in zip(row, widths)).rstrip())
        if k == 0:
            print("  ".join("-" * w for w in widths))


def _guarded(rows: list, name: str, fn) -> None:
    """Run one check; a failure becomes a row that says so instead of ending the script."""
    try:
        result = fn()
        rows.extend(result if isinstance(result, list) else [result])
    except Exception as exc:  # noqa: BLE001 - report and go on with the other checks
        rows.append({"check": name, "unit": "", "error": f"{type(exc).__name__}: {exc}"})


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", help="write the table as JSON to this path")
    parser.add_argument("--tiny", "--dry-run", action="store_true", dest="tiny",
                        help="toy sizes, no test-suite run (for the simulator in CI)")  # fmt: skip
    parser.add_argument("--skip-tests", action="store_true", help="do not run tests/cuda")
    parser.add_argument("--test-timeout", type=int, default=900, help="seconds (default 900)")
    args = parser.parse_args(argv)

    simulator = os.environ.get("NUMBA_ENABLE_CUDASIM") == "1"
    from tinygrad_edu.backend import cuda_support

    reason = cuda_support.cuda_unavailable_reason()
    date = datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds")
    if reason is not None:
        print(f"gpu_check: no usable GPU, nothing to measure ({reason})")
        if args.out:
            Path(args.out).write_text(json.dumps({"date": date, "device": None, "reason": reason}))
        return 0
    if simulator and not args.tiny:
        print("gpu_check: NUMBA_ENABLE_CUDASIM=1 is set; the simulator only runs --tiny")
        return 2

    sizes = SIZES["tiny" if args.tiny else "full"]
    min_seconds = 0.0 if args.tiny else 0.5
    report = {"date": date, "simulator": simulator, "tiny": args.tiny, "rows": []}
    report["device"] = device_info()
    if not (args.tiny or args.skip_tests):
        print("gpu_check: running tests/cuda on the GPU ...", flush=True)
        report["tests"] = run_tests(args.test_timeout)
    lib_name, lib = (None, None) if simulator else _reference_library()
    report["reference_library"] = lib_name
    bandwidth = {"theoretical_gb_s": report["device"]["theoretical_gb_s"]}
    bandwidth["copy_gb_s"] = copy_bandwidth(max(sizes["adam"]), min_seconds)
    report["bandwidth"] = bandwidth
    rows = report["rows"]
    _guarded(rows, "matmul", lambda: matmul_rows(sizes["matmul"], min_seconds, lib_name, lib))
    _guarded(rows, "adam step", lambda: adam_rows(sizes["adam"], min_seconds, bandwidth))
    _guarded(
        rows, "mlp step",
        lambda: mlp_row(sizes["mlp"], sizes["batch"], min_seconds, lib_name, lib),
    )  # fmt: skip
    print_table(report)
    if args.out:
        Path(args.out).write_text(json.dumps(report, indent=2, default=str))
        print(f"\nwritten to {args.out}")
    # A missed goal is a measurement, not a failure; a failing test or a check that broke is.
    tests_failed = "tests" in report and not report["tests"]["passed"]
    return 1 if tests_failed or any("error" in r for r in rows) else 0


if __name__ == "__main__":
    sys.exit(main())
