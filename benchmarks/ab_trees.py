"""Paired A/B of the small network's forward, backward and training step across source trees.

    python -m benchmarks.ab_trees /path/to/old/checkout /path/to/new/checkout [--rounds 4]

Each tree runs in a fresh process (in turn, the order reversed every round) and reports the best
CPU time (``time.process_time``) of 15 x 300 calls; the table gives medians over the rounds. CPU
time is disturbed less than wall time by other jobs on a shared machine. This file's
``benchmarks`` package is used for every tree, so the workload is the same.
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
from pathlib import Path

_PROBE = r"""
import sys, time
sys.path.insert(0, {root!r})
import tinygrad_edu  # the tree's own package, imported before the path changes
sys.path.insert(0, {bench!r})
from benchmarks import common  # this checkout's workload for every tree
assert tinygrad_edu.__file__.startswith({root!r}), tinygrad_edu.__file__
net = common.TgNetwork(common.SMALL, common.SMALL_BATCH, "SGD(momentum)")
for _ in range(300):
    net.step()
def best(fn, n=300, r=15):
    times = []
    for _ in range(r):
        t = time.process_time()
        for _ in range(n):
            fn()
        times.append((time.process_time() - t) / n * 1e6)
    return min(times)
net.keep_graph()
print(best(net.forward), best(net.backward_again), best(net.step))
"""


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("trees", nargs="+", help="checkouts to compare (their tinygrad_edu)")
    parser.add_argument("--rounds", type=int, default=4)
    args = parser.parse_args()
    bench = str(Path(__file__).resolve().parents[1])
    results: dict[str, list[list[float]]] = {tree: [] for tree in args.trees}
    for i in range(args.rounds):
        for tree in args.trees if i % 2 == 0 else args.trees[::-1]:
            code = _PROBE.format(root=str(Path(tree).resolve()), bench=bench)
            done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
            if done.returncode:
                sys.exit(f"ab_trees: {tree} failed:\n{done.stderr[-2000:]}")
            results[tree].append([float(v) for v in done.stdout.split()])
    print("tree | forward us | backward us | step us   (medians of best CPU times)")
    for tree, rows in results.items():
        medians = [statistics.median(r[k] for r in rows) for k in range(3)]
        print(f"{tree} | " + " | ".join(f"{m:.1f}" for m in medians))


if __name__ == "__main__":
    main()
