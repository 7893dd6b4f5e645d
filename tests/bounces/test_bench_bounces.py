"""`bench/bounces.py` keeps working and its figures on our own corpus meet issue 12's targets."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

BENCH = Path(__file__).resolve().parent.parent.parent / "bench" / "bounces.py"


def test_bench_bounces_prints_the_five_figures_and_meets_the_targets() -> None:
    result = subprocess.run(
        [sys.executable, str(BENCH)], capture_output=True, text=True, timeout=120, check=False
    )
    assert result.returncode == 0, result.stderr
    figures = {
        line.split(":")[0]: float(re.search(r"= ([\d.]+) %", line).group(1))  # type: ignore[union-attr]
        for line in result.stdout.splitlines()
        if "%" in line and "=" in line
    }
    assert figures["address recall"] >= 95
    assert figures["removed at once and really gone"] >= 98
    assert figures["really gone and removed at once"] >= 90
    assert figures["sender-side refusals held against a reader"] <= 5
    assert re.search(r"^non-bounces counted: 0 of \d+", result.stdout, re.M)
