"""The benchmarks keep working: each bench script runs with ``--smoke`` and prints its figures.

Benchmarks are never timed assertions: these tests check only that a script exits 0 and
prints each of its figure lines (a ratio against a baseline, or a target verdict). They use
Postfix's smtp-sink when ``bench/.tools`` or PATH has it and never download it
(``--smoke``); otherwise the scripts fall back to the aiosmtpd sink.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import require_service
from pgserver import postgres_available

BENCH = Path(__file__).resolve().parent.parent / "bench"

# (script, extra arguments) -> line prefixes that must each appear in its output
FIGURES: dict[tuple[str, ...], list[str]] = {
    ("throughput.py",): [
        "machine:",
        "message:",
        "throughput, 4 connections, 1 process: subscribe notify",
        "throughput, 4 connections, 2 processes: subscribe resume x2",
        "throughput vs plain loop: subscribe notify",
    ],
    # The fallback when Postfix's tools are missing: aiosmtpd sink, no smtp-source figures.
    ("throughput.py", "--python-sink", "--one-process"): [
        "message:",
        "throughput, 4 connections, 1 process: subscribe notify",
        "throughput vs plain loop: subscribe notify",
    ],
    ("throughput.py", "--dkim", "--dkim-ed25519"): [
        "message:",
        "throughput with DKIM (rsa-sha256 + ed25519-sha256), 4 connections: notify DKIM on",
    ],
    ("latency.py",): [
        "machine:",
        "round trip through the proxy:",
        "latency, 4 connections, RTT",
    ],
    ("million.py",): [
        "machine:",
        "million: import of 3000 rows",
        "million: enqueue of 3000 deliveries",
        "million: peak RSS of notify",
        "million: throughput, 4 connections",
    ],
    ("rate.py",): [
        "machine:",
        "rate: SUBSCRIBE_SEND_RATE=50: achieved",
        "rate: daily limit 20 of 60 readers",
    ],
    # Starts its own PostgreSQL server (tests/pgserver.py).
    ("workers.py",): [
        "machine:",
        "workers, PostgreSQL, 4 connections in all",
        "workers: exactly once, 2 workers into recsink: 300 readers received",
    ],
    ("imports.py",): ["machine:", "mailchimp import of 2000 rows:"],
    ("startup.py",): ["startup, subscribe --help:", "startup, subscribe stats:"],
    ("signup.py",): [
        "machine:",
        "signup, SQLite, 16 clients: subscribe serve",
        "signup, SQLite: p50",
    ],
    # Tools rather than targets: they print measurements, no ratios.
    ("profile.py",): ["machine:", "profiled: subscribe notify, 300 readers", "profile:"],
    ("micro.py",): ["machine:", "message:", "micro: tokens.unsubscribe_token"],
    ("ab.py", "render_process=off", "render_process=on"): [
        "machine:",
        "ab: render_process=off: median",
        "ab: render_process=on: median",
    ],
}
TOOLS = {"profile.py", "micro.py", "ab.py"}
NEEDS_POSTGRES = {"workers.py"}


@pytest.mark.timeout(180)
@pytest.mark.parametrize("command", sorted(FIGURES), ids=" ".join)
def test_bench_script_smoke(command: tuple[str, ...], tmp_path: Path) -> None:
    script, *extra = command
    if script in NEEDS_POSTGRES:
        require_service(postgres_available())
    env = {k: v for k, v in os.environ.items() if not k.startswith("SUBSCRIBE_")}
    result = subprocess.run(
        [sys.executable, str(BENCH / script), "--smoke", *extra],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=170,
    )
    assert result.returncode == 0, f"{command} failed:\n{result.stdout}\n{result.stderr[-4000:]}"
    lines = result.stdout.splitlines()
    for prefix in FIGURES[command]:
        matching = [line for line in lines if line.startswith(prefix)]
        assert matching, f"{command}: no line starting with {prefix!r} in:\n{result.stdout}"
    if script not in TOOLS:
        figures = [line for line in lines if "->" in line or "(target" in line]
        assert figures, f"{command}: no figure lines in:\n{result.stdout}"
