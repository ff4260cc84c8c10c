"""benchmarks/gpu_check.py cannot rot: its --tiny run goes through every check (in CI in the
simulator, where its numbers mean nothing) and writes a well-formed table."""

from __future__ import annotations

import json
import math
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_gpu_check_tiny_run_writes_its_table(tmp_path):
    out = tmp_path / "gpu_check.json"
    done = subprocess.run(
        [sys.executable, "benchmarks/gpu_check.py", "--tiny", "--out", str(out)],
        cwd=ROOT, capture_output=True, text=True, timeout=600,
    )  # fmt: skip
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    report = json.loads(out.read_text())
    assert report["device"]["name"] and report["tiny"] is True
    checks = [row["check"] for row in report["rows"]]
    assert [c.split()[0] for c in checks] == ["matmul", "matmul", "adam", "adam", "mlp"]
    for row in report["rows"]:
        assert "error" not in row, row
        assert math.isfinite(row["ours"]) and row["ours"] > 0
    assert all(row["max_rel_error"] < 1e-5 for row in report["rows"] if "max_rel_error" in row)
    assert "matmul 16 float32" in done.stdout  # the printed table
