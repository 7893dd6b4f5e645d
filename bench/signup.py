"""Sign-ups at full speed (issue 11): `subscribe serve` and its baseline, side by side.

    POST /subscribe >= 0.3x the baseline's rate, p99 under 250 ms

The baseline (``signup_baseline.py``) is the same stack doing one INSERT per request.
``subscribe serve`` runs as configured in production: the per-IP limit on (10 a minute)
behind a trusted proxy, each request forwarded for a client address of its own, a relay
(``recsink.py``) for the confirmations. The load: ``--clients`` keep-alive connections
(16), each posting unique addresses one after the other. Afterwards every sign-up must be
stored and every confirmation delivered (the ledger says sent, the sink got each once).

    uv run python bench/signup.py [--requests 5000] [--clients 16] [--postgres] [--smoke]

``--postgres`` runs both again on a throwaway PostgreSQL server (tests/pgserver.py).
"""

from __future__ import annotations

import argparse
import asyncio
import os
import signal
import statistics
import subprocess
import sys
import time
from pathlib import Path
from urllib.parse import quote

import sqlalchemy as sa
from harness import Workspace, child_env, common_arguments, figure, log, machine, machine_line
from tools import BENCH, free_port

sys.path.insert(0, str(BENCH.parent / "tests"))
from pgserver import start_postgres

TARGET_RATIO = 0.3
TARGET_P99_MS = 250.0


async def _client(
    port: int, addresses: list[str], start: int, step: int, latencies: list[float]
) -> None:
    """One keep-alive HTTP/1.1 connection posting its share of the addresses in turn."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    try:
        for index in range(start, len(addresses), step):
            body = f"email={quote(addresses[index])}".encode()
            forwarded = f"198.18.{index // 250 % 250}.{index % 250 + 1}"  # RFC 2544 range
            request = (
                f"POST /subscribe HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\n"
                "Content-Type: application/x-www-form-urlencoded\r\n"
                f"X-Forwarded-For: {forwarded}\r\nContent-Length: {len(body)}\r\n\r\n"
            ).encode() + body
            began = time.perf_counter()
            writer.write(request)
            head = await reader.readuntil(b"\r\n\r\n")
            status = int(head.split(b" ", 2)[1])
            length = 0
            for line in head.split(b"\r\n"):
                if line.lower().startswith(b"content-length:"):
                    length = int(line.split(b":", 1)[1])
            await reader.readexactly(length)
            latencies.append(time.perf_counter() - began)
            if status != 200:
                raise RuntimeError(f"{addresses[index]}: HTTP {status}")
    finally:
        writer.close()


def _load(port: int, addresses: list[str], clients: int) -> tuple[float, list[float]]:
    latencies: list[float] = []

    async def run() -> None:
        await asyncio.gather(
            *(_client(port, addresses, n, clients, latencies) for n in range(clients))
        )

    started = time.perf_counter()
    asyncio.run(run())
    return time.perf_counter() - started, latencies


def _wait_http(port: int, process: subprocess.Popen[bytes], timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"the server on port {port} exited with {process.returncode}")
        try:
            with __import__("socket").create_connection(("127.0.0.1", port), timeout=1):
                return
        except OSError:
            time.sleep(0.1)
    raise RuntimeError(f"nothing listens on port {port}")


def _stop(process: subprocess.Popen[bytes]) -> None:
    if process.poll() is None:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            process.kill()


def _percentile(values: list[float], fraction: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(fraction * len(ordered)))]


def _count(url: str, query: str) -> int:
    engine = sa.create_engine(url)
    try:
        with engine.connect() as connection:
            return int(connection.exec_driver_sql(query).scalar_one())
    finally:
        engine.dispose()


def run_ours(work: Workspace, addresses: list[str], clients: int, url: str) -> dict[str, float]:
    sink_port, web_port = free_port(), free_port()
    arrivals = work.path("arrivals.txt")
    sink = subprocess.Popen(
        [
            sys.executable,
            str(BENCH / "recsink.py"),
            "--port",
            str(sink_port),
            "--log",
            str(arrivals),
        ]
    )
    db = url
    env = child_env(
        database_url=url,
        smtp_host="127.0.0.1",
        smtp_port=sink_port,
        smtp_security="none",
        smtp_connections=4,
        base_url=f"http://127.0.0.1:{web_port}",
        trusted_proxies="127.0.0.1",
    )
    serve = subprocess.Popen(
        [
            sys.executable,
            "-c",
            "from subscribe.cli import main; main()",
            "serve",
            "--port",
            str(web_port),
        ],
        env=env,
        cwd=work.dir,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        _wait_http(web_port, serve)
        spy = _profile(serve.pid, work) if os.environ.get("SIGNUP_PROFILE") else None
        elapsed, latencies = _load(web_port, addresses, clients)
        if spy is not None:
            spy.send_signal(signal.SIGINT)  # py-spy writes its profile on SIGINT
            spy.wait(timeout=60)
        log(f"subscribe serve: {len(addresses)} sign-ups answered in {elapsed:.1f} s")
        deadline = time.monotonic() + 120
        sent = 0
        while time.monotonic() < deadline:
            sent = _count(
                db, "SELECT count(*) FROM delivery WHERE kind='confirm' AND status='sent'"
            )
            if sent >= len(addresses):
                break
            time.sleep(0.2)
        stored = _count(db, "SELECT count(*) FROM subscriber")
        peak_mb = _peak_rss_mb(serve.pid)
    finally:
        _stop(serve)
        _stop(sink)
    received = [line.split()[2] for line in arrivals.read_text().splitlines() if line.strip()]
    if stored != len(addresses) or sent != len(addresses):
        raise RuntimeError(f"stored {stored}, confirmations sent {sent} of {len(addresses)}")
    if sorted(received) != sorted(addresses):
        raise RuntimeError(
            f"the sink got {len(received)} confirmations, {len(set(received))} distinct"
        )
    return {"rate": len(addresses) / elapsed, "peak_mb": peak_mb, **_latency(latencies)}


def _peak_rss_mb(pid: int) -> float:
    """The process's peak resident memory so far (Linux): what a burst left behind."""
    status = Path(f"/proc/{pid}/status").read_text(encoding="ascii")
    for line in status.splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def _profile(pid: int, work: Workspace) -> subprocess.Popen[bytes]:
    """py-spy on the serve process while the load runs (SIGNUP_PROFILE=FILE)."""
    out = os.environ["SIGNUP_PROFILE"]
    command = [
        "uvx",
        "py-spy",
        "record",
        "--nonblocking",
        "--pid",
        str(pid),
        "-f",
        "raw",
        "-r",
        "100",
    ]
    command += ["-o", out]
    return subprocess.Popen(command, cwd=work.dir)


def run_baseline(work: Workspace, addresses: list[str], clients: int, url: str) -> dict[str, float]:
    port = free_port()
    db = url
    server = subprocess.Popen(
        [
            sys.executable,
            str(BENCH / "signup_baseline.py"),
            "--port",
            str(port),
            "--database",
            url.removeprefix("sqlite:///"),
        ],
        env=child_env(),
    )
    try:
        _wait_http(port, server)
        elapsed, latencies = _load(port, addresses, clients)
        log(f"baseline: {len(addresses)} sign-ups answered in {elapsed:.1f} s")
    finally:
        _stop(server)
    stored = _count(db, "SELECT count(*) FROM signup")
    if stored != len(addresses):
        raise RuntimeError(f"the baseline stored {stored} of {len(addresses)}")
    return {"rate": len(addresses) / elapsed, **_latency(latencies)}


def _latency(latencies: list[float]) -> dict[str, float]:
    return {
        "p50_ms": statistics.median(latencies) * 1000,
        "p99_ms": _percentile(latencies, 0.99) * 1000,
    }


def _sqlite_urls(work: Workspace) -> tuple[str, str]:
    return f"sqlite:///{work.path('subscribe.db')}", f"sqlite:///{work.path('baseline.db')}"


def compare(
    work: Workspace, database: str, requests: int, clients: int, ours_url: str, base_url: str
) -> None:
    run = time.strftime("%H%M%S")
    ours = run_ours(
        work, [f"s{run}-{n:06d}@example.org" for n in range(requests)], clients, ours_url
    )
    base = run_baseline(
        work, [f"b{run}-{n:06d}@example.org" for n in range(requests)], clients, base_url
    )
    print(
        figure(
            f"signup, {database}, {clients} clients",
            "subscribe serve",
            ours["rate"],
            "baseline",
            base["rate"],
            TARGET_RATIO,
            unit="sign-ups/s",
        )
    )
    verdict = "met" if ours["p99_ms"] < TARGET_P99_MS else "NOT met"
    print(
        f"signup, {database}: p50 {ours['p50_ms']:.0f} ms, p99 {ours['p99_ms']:.0f} ms "
        f"(baseline p50 {base['p50_ms']:.0f} ms, p99 {base['p99_ms']:.0f} ms) "
        f"(target p99 < {TARGET_P99_MS:.0f} ms) [{verdict}]"
    )
    print(f"  every sign-up stored, every confirmation delivered once: {requests} of {requests}")
    print(f"  subscribe serve peak RSS {ours['peak_mb']:.0f} MB")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    common_arguments(parser)
    parser.add_argument("--requests", type=int, default=5000)
    parser.add_argument("--clients", type=int, default=16)
    parser.add_argument("--postgres", action="store_true", help="also on PostgreSQL")
    args = parser.parse_args()
    requests = 200 if args.smoke else args.requests
    print(machine_line(machine()))
    with Workspace("signup", keep=args.keep) as work:
        compare(work, "SQLite", requests, args.clients, *_sqlite_urls(work))
        if args.postgres:
            server = start_postgres(work.dir)
            try:
                ours, base = server.create_database("ours"), server.create_database("base")
                compare(work, "PostgreSQL", requests, args.clients, ours, base)
            finally:
                server.stop()
    os.environ.pop("SUBSCRIBE_SECRET_KEY", None)


if __name__ == "__main__":
    main()
