"""CI smoke test of benchmarks/bench.py at its tiny size (no timing assertions)."""

from __future__ import annotations

import importlib.util
import subprocess
import sys
from pathlib import Path

import pytest

BENCH = Path(__file__).resolve().parent.parent / "benchmarks" / "bench.py"

pytestmark = pytest.mark.skipif(
    importlib.util.find_spec("numpy") is None, reason="the corpus (numpy/pandas/torch) is absent"
)


def test_tiny_benchmark_prints_one_sane_table():
    out = subprocess.run(
        [sys.executable, str(BENCH), "--tiny", "--no-torchfix"],
        capture_output=True,
        text=True,
        timeout=600,
        check=True,
    ).stdout
    rows = {
        cells[0]: cells
        for cells in (
            [c.strip() for c in line.strip("|").split("|")]
            for line in out.splitlines()
            if line.startswith("| ") and not line.startswith("| measurement")
        )
    }
    for label in (
        "aiperf-lint cold, 1 job",
        "aiperf-lint warm, 1 job",
        "libcst.parse_module floor, 1 process",
        "growth 1x",
    ):
        matches = [cells for name, cells in rows.items() if name.startswith(label)]
        assert matches, f"no {label!r} line in:\n{out}"
        _, files, runs, wall, rate, cpu, rss, _note = matches[0]
        assert int(files) > 0 and int(runs) == 1
        assert float(wall) > 0 and float(rate) > 0 and float(cpu) > 0 and float(rss) > 0
    assert "TorchFix" in out and "skipped" in out
    assert "parse floor" in out and "peak RSS" in out
