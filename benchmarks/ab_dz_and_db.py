"""rules.dz_and_db before (one fused loop) and after (two loops), alternating in one process.

    python -m benchmarks.ab_dz_and_db

The one-loop version is the kernel as it was until 2026-12-03 (copied here). The script also
shows that dZ is the same to the bit; db differs in the last bit where the one-loop version
summed the rule's float64 intermediate (sigmoid's ``1 - s`` promotes) and the two-loop version
sums the float32 dZ (as numpy's ``dz.sum(axis=0)`` does).
"""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable

import numpy as np

from tinygrad_edu.backend import rules
from tinygrad_edu.backend.jit import jit

backward_rule, IDENTITY_GRAD = rules.backward_rule, rules.IDENTITY_GRAD


@jit()
def one_loop(g, y, code, dz, db):
    """The kernel as it was: dZ and the column sums in the same loop."""
    db[:] = 0.0
    for i in range(g.shape[0]):
        for j in range(g.shape[1]):
            v = backward_rule(code, g[i, j], y[i, j], 0.0, 0.0)
            if code != IDENTITY_GRAD:
                dz[i, j] = v
            db[j] += v


def _us(fn: Callable[[], None], number: int = 300) -> float:
    start = time.perf_counter()
    for _ in range(number):
        fn()
    return (time.perf_counter() - start) / number * 1e6


def compare(shape: tuple[int, int], code: int, rounds: int = 9) -> str:
    rng = np.random.default_rng(0)
    g = rng.standard_normal(shape).astype(np.float32)
    if code == rules.SIGMOID_GRAD:
        y = rng.random(shape).astype(np.float32)
    else:
        y = np.maximum(rng.standard_normal(shape).astype(np.float32), 0)
    before = (np.empty_like(g), np.empty(shape[1], np.float32))
    after = (np.empty_like(g), np.empty(shape[1], np.float32))
    old, new = [], []
    for _ in range(rounds):
        old.append(_us(lambda: one_loop(g, y, code, *before)))
        new.append(_us(lambda: rules.dz_and_db(g, y, code, *after)))
    same_dz = np.array_equal(before[0], after[0])
    db_diff = np.abs(before[1] - after[1]).max()
    return (
        f"one loop {statistics.median(old):.1f} us, two loops {statistics.median(new):.1f} us; "
        f"dZ equal: {same_dz}, db max |diff| {db_diff:.2g}"
    )


if __name__ == "__main__":
    for shape in ((32, 15), (128, 256)):
        for name, code in (("relu", rules.RELU_GRAD), ("sigmoid", rules.SIGMOID_GRAD)):
            print(f"{shape} {name}: {compare(shape, code)}")
