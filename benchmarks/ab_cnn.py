"""Paired A/B of the conv and CNN-step workloads across source trees, each beside PyTorch.

    python -m benchmarks.ab_cnn /path/to/old/checkout /path/to/new/checkout [--rounds 15]

Each tree runs in a fresh process (in turn, the order reversed on every repeat); inside it the
tree's step and PyTorch's alternate, ``--rounds`` times ``--steps`` calls each, and the process
reports both medians and the median of the per-round ratios (tree / PyTorch). Pairing inside
one process is what makes the ratio usable on a shared machine: a slow spell slows both sides
of a round. This file's ``benchmarks`` package builds the workloads for every tree.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
from pathlib import Path

WORKLOADS = ("conv", "cnn_step")

_PROBE = r"""
import json, statistics, sys, time
sys.path.insert(0, {root!r})
import tinygrad_edu  # the tree's own package, imported before the path changes
sys.path.insert(0, {bench!r})
from benchmarks import conv_workloads
assert tinygrad_edu.__file__.startswith({root!r}), tinygrad_edu.__file__
import torch
torch.set_num_threads(2)
ours = getattr(conv_workloads, {what!r} + "_tg")()
theirs = getattr(conv_workloads, {what!r} + "_torch")()
for fn in (ours, theirs):
    for _ in range(max(2, {steps} // 2)):
        fn()
def ms(fn):
    start = time.perf_counter()
    for _ in range({steps}):
        fn()
    return (time.perf_counter() - start) / {steps} * 1e3
a, b = [], []
for _ in range({rounds}):
    a.append(ms(ours))
    b.append(ms(theirs))
print(json.dumps([statistics.median(a), statistics.median(b),
                  statistics.median(x / y for x, y in zip(a, b))]))
"""


def run_one(tree: str, what: str, rounds: int, steps: int) -> tuple[float, float, float]:
    """(tree's ms, PyTorch's ms, median paired ratio) of one fresh process on ``tree``."""
    bench = str(Path(__file__).resolve().parents[1])
    code = _PROBE.format(
        root=str(Path(tree).resolve()), bench=bench, what=what, rounds=rounds, steps=steps
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    if done.returncode:
        raise RuntimeError(f"ab_cnn: {tree} ({what}) failed:\n{done.stderr[-2000:]}")
    ours, theirs, ratio = json.loads(done.stdout.strip().splitlines()[-1])
    return ours, theirs, ratio


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("trees", nargs="+", help="checkouts to compare (their tinygrad_edu)")
    parser.add_argument("--rounds", type=int, default=15, help="paired rounds per process")
    parser.add_argument("--steps", type=int, default=20, help="calls per side per round")
    parser.add_argument("--repeats", type=int, default=3, help="fresh processes per tree")
    args = parser.parse_args()
    print("repeat | tree | workload | tree ms | torch ms | paired ratio")
    for i in range(args.repeats):
        for tree in args.trees if i % 2 == 0 else args.trees[::-1]:
            for what in WORKLOADS:
                ours, theirs, ratio = run_one(tree, what, args.rounds, args.steps)
                print(f"{i + 1} | {tree} | {what} | {ours:.2f} | {theirs:.2f} | {ratio:.2f}")


if __name__ == "__main__":
    main()
