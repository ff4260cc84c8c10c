"""One kernel, five ways: the same matrix product C = A B, from slowest to fastest.

C[i, j] = sum_k A[i, k] B[k, j] costs 2 n^3 floating-point operations for n x n matrices (one
multiply and one add per term), so speed is reported in GFLOP/s = 2 n^3 / seconds / 10^9.
What differs between the versions below is only how the loops meet the hardware:

1. numpy without BLAS: each row of C as one broadcast multiply and a sum (temporaries, one
   numpy call per row);
2. plain Numba loop: the textbook triple loop compiled to machine code. Its innermost loop
   walks down a column of B, so nearly every load misses the cache;
3. the project's blocked Numba kernel (``backend.cpu.matmul_blocked``) on one thread: tiles
   that fit in cache, innermost loop along rows (contiguous, vectorised);
4. the same kernel's parallel build on every core (threads split the rows of C);
5. BLAS (``np.matmul``): hand-tuned assembly, what the library really uses;
6. numba.cuda (``device="cuda"``, the project's CUDA matmul kernel) when a GPU is present.
"""

from __future__ import annotations

import os
import time
from pathlib import Path

import numba
import numpy as np

import tinygrad_edu as tg
from tinygrad_edu.backend import cpu

NAME = "kernels"
TITLE = "one matmul, five ways (numpy, Numba loop, blocked, parallel, BLAS, CUDA) in GFLOP/s"


def numpy_rows(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """numpy without BLAS: row i of C is the sum over k of A[i, k] * (row k of B)."""
    return np.stack([(a[i][:, None] * b).sum(axis=0) for i in range(a.shape[0])])


@numba.njit(cache=True)
def naive_matmul(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """The textbook loop: C[i, j] = sum_k A[i, k] B[k, j], in i, j, k order."""
    n, m, kdim = a.shape[0], b.shape[1], a.shape[1]
    out = np.zeros((n, m), dtype=a.dtype)
    for i in range(n):
        for j in range(m):
            acc = 0.0
            for k in range(kdim):
                acc += a[i, k] * b[k, j]
            out[i, j] = acc
    return out


def blocked_on(threads: int):
    """The project's blocked kernel, run on ``threads`` threads."""

    def matmul(a, b):
        previous = numba.get_num_threads()
        numba.set_num_threads(threads)
        try:
            return cpu.matmul_blocked(a, b)
        finally:
            numba.set_num_threads(previous)

    return matmul


def cuda_matmul():
    """The project's CUDA matmul through Tensors on the GPU, or None (no GPU / the simulator,
    which is far too slow to time)."""
    if os.environ.get("NUMBA_ENABLE_CUDASIM") == "1" or not tg.cuda.is_available():
        return None

    def matmul(a, b):
        out = tg.Tensor(a).to("cuda") @ tg.Tensor(b).to("cuda")
        tg.cuda.synchronize()
        return out.numpy()

    return matmul


def gflops(fn, a, b, reference, repeat: int) -> tuple[float, float]:
    """(GFLOP/s of the fastest of ``repeat`` runs, max |fn(a, b) - reference|); one untimed
    warm-up call compiles the kernel first."""
    diff = float(np.max(np.abs(fn(a, b) - reference)))
    best = float("inf")
    for _ in range(repeat):
        start = time.perf_counter()
        fn(a, b)
        best = min(best, time.perf_counter() - start)
    return 2 * a.shape[0] * a.shape[1] * b.shape[1] / best / 1e9, diff


def draw(results: dict[str, float], n: int, note: str, path: Path) -> None:
    from matplotlib.figure import Figure

    fig = Figure(figsize=(8, 4.5), layout="constrained")
    ax = fig.subplots()
    names = list(results)
    # On a log axis a bar must start at a positive value, left of the slowest result.
    floor = min(results.values()) / 2
    values = [results[k] for k in names]
    bars = ax.barh(names, [v - floor for v in values], left=floor, color="tab:blue")
    ax.bar_label(bars, labels=[f"{v:.2f}" for v in values], padding=3)
    ax.invert_yaxis()
    ax.set_xscale("log")
    ax.set_xlim(floor, max(results.values()) * 3)
    ax.set_xlabel("GFLOP/s (log scale; higher is faster)")
    ax.set_title(f"C = A B for {n}x{n} float32 matrices on {numba.config.NUMBA_NUM_THREADS} "
                 "CPU threads")  # fmt: skip
    ax.grid(alpha=0.3, axis="x")
    if note:
        ax.text(0.98, 0.02, note, transform=ax.transAxes, ha="right", va="bottom", fontsize=8)
    fig.savefig(path, dpi=90)


def run(out_dir: Path, tiny: bool = False) -> dict[str, float]:
    n, repeat = (64, 2) if tiny else (256, 5)
    rng = np.random.default_rng(0)
    a, b = (rng.standard_normal((n, n)).astype(np.float32) for _ in range(2))
    reference = a.astype(np.float64) @ b.astype(np.float64)
    ways = {
        "numpy rows (no BLAS)": numpy_rows,
        "plain Numba loop": naive_matmul,
        "blocked Numba, 1 thread": blocked_on(1),
        f"blocked Numba, parallel ({numba.config.NUMBA_NUM_THREADS} threads)": blocked_on(
            numba.config.NUMBA_NUM_THREADS
        ),
        "BLAS (np.matmul)": np.matmul,
    }
    gpu = cuda_matmul()
    note = "" if gpu is not None else "numba.cuda: no GPU here (or the CUDA simulator): skipped"
    if gpu is None:
        print(note)
    else:
        ways["numba.cuda (project kernel)"] = gpu
    results: dict[str, float] = {}
    worst = 0.0
    for name, fn in ways.items():
        results[name], diff = gflops(fn, a, b, reference, repeat)
        worst = max(worst, diff / float(np.max(np.abs(reference))))
        print(f"  {name:34s} {results[name]:8.2f} GFLOP/s   max |C - C_float64| {diff:.1e}")
    print(f"all agree with the float64 product to {worst:.1e} (relative to max |C|)")
    draw(results, n, note, out_dir / f"{NAME}.png")
    return {**results, "max_rel_diff": worst}
