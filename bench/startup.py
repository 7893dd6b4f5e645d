"""Start-up time of the command line (issue 9), side by side with its baselines in one run.

    subscribe --help   <= 3.0x  python -c "import typer"
    subscribe stats    <= 1.3x  python -c "import sqlmodel"

Every command runs from the project's virtual environment (``.venv/bin``), as an installed
``subscribe`` would, with this machine's environment (``PYTHONDONTWRITEBYTECODE`` included).
The four commands are interleaved, run after run, so a slow moment of a shared machine
falls on all of them alike; the figure is the median wall-clock time of each.

    uv run python bench/startup.py [--runs 15]
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from tools import BENCH

VENV_BIN = BENCH.parent / ".venv" / "bin"
TARGETS = {"--help": 3.0, "stats": 1.3}


def _time(argv: list[str], env: dict[str, str], cwd: Path) -> float:
    start = time.perf_counter()
    result = subprocess.run(argv, env=env, cwd=cwd, capture_output=True)
    elapsed = time.perf_counter() - start
    if result.returncode != 0:
        sys.exit(f"{' '.join(argv)} failed: {result.stderr.decode(errors='replace')}")
    return elapsed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=15)
    parser.add_argument("--smoke", action="store_true", help="two runs: what CI runs")
    args = parser.parse_args()
    if args.smoke:
        args.runs = 2
    python = str(VENV_BIN / "python")
    subscribe = str(VENV_BIN / "subscribe")
    with tempfile.TemporaryDirectory() as folder:
        cwd = Path(folder)
        env = {**os.environ, "SUBSCRIBE_DATABASE_URL": f"sqlite:///{cwd / 'startup.db'}"}
        env.pop("SUBSCRIBE_SECRET_KEY", None)
        commands = {
            "import typer": [python, "-c", "import typer"],
            "subscribe --help": [subscribe, "--help"],
            "import sqlmodel": [python, "-c", "import sqlmodel"],
            "subscribe stats": [subscribe, "stats"],
        }
        _time(commands["subscribe stats"], env, cwd)  # creates and migrates the database
        times: dict[str, list[float]] = {name: [] for name in commands}
        for _ in range(args.runs):
            for name, argv in commands.items():
                times[name].append(_time(argv, env, cwd))
    median = {name: statistics.median(values) for name, values in times.items()}
    for command, baseline, target in (
        ("subscribe --help", "import typer", TARGETS["--help"]),
        ("subscribe stats", "import sqlmodel", TARGETS["stats"]),
    ):
        ratio = median[command] / median[baseline]
        verdict = "met" if ratio <= target else "NOT met"
        print(
            f"startup, {command}: {median[command] * 1000:.0f} ms, python -c '{baseline}' "
            f"{median[baseline] * 1000:.0f} ms -> {ratio:.2f}x (target <= {target}x) [{verdict}]"
        )
    for name, values in times.items():
        print(f"  {name}: min {min(values) * 1000:.0f} ms, max {max(values) * 1000:.0f} ms")


if __name__ == "__main__":
    main()
