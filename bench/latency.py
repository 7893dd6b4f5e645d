"""Target 2: sending through 20 ms of added round-trip time, against connections / (2 x RTT).

A delaying proxy (``latency_proxy.py``, 10 ms each way) sits between the sender and the sink.
A pipelining sender needs two round trips per message (MAIL+RCPT+DATA, then the body), so
C connections can move at most C / (2 x RTT) messages per second; the target is 0.8x of
that. The RTT is measured through the proxy (NOOP round trips) before the runs. For
context, ``smtp-source`` (which does not pipeline: four round trips a message) goes through
the same proxy.

    uv run python bench/latency.py [--connections 16,64] [--seconds 15] [--smoke]
"""

from __future__ import annotations

import argparse
import socket
import statistics
import subprocess
import sys
import threading
import time

from harness import (
    BenchError,
    Workspace,
    child_env,
    common_arguments,
    db_url,
    figure,
    import_subscribers,
    log,
    machine,
    machine_line,
    notify,
    postfix_tools,
    preview,
    save_results,
    write_post,
    write_subscribers,
)
from tools import BENCH, Sink, smtp_source

TARGET = 0.8


class Proxy:
    def __init__(self, target_port: int, delay_ms: float) -> None:
        self._argv = [
            sys.executable,
            str(BENCH / "latency_proxy.py"),
            "--target",
            f"127.0.0.1:{target_port}",
            "--delay-ms",
            str(delay_ms),
        ]
        self._proc: subprocess.Popen[str] | None = None
        self.port = 0

    def __enter__(self) -> Proxy:
        self._proc = subprocess.Popen(self._argv, stdout=subprocess.PIPE, text=True)
        assert self._proc.stdout is not None
        line = self._proc.stdout.readline().split()
        if not line or line[0] != "ready":
            raise BenchError("the latency proxy did not start")
        self.port = int(line[1])
        return self

    def __exit__(self, *exc: object) -> None:
        if self._proc is not None:
            self._proc.terminate()
            self._proc.wait(timeout=10)


def _read_reply(sock: socket.socket) -> bytes:
    data = b""
    while True:
        data += sock.recv(4096)
        lines = data.split(b"\r\n")
        # A complete reply ends with a line whose fourth byte is a space.
        if len(lines) > 1 and any(len(x) >= 4 and x[3:4] == b" " for x in lines[:-1]):
            return data


def measure_rtt(port: int, probes: int = 20) -> tuple[float, bool]:
    """Median NOOP round trip through the proxy (seconds), and whether PIPELINING is offered."""
    with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        _read_reply(sock)
        sock.sendall(b"EHLO bench.example\r\n")
        pipelining = b"PIPELINING" in _read_reply(sock).upper()
        times = []
        for _ in range(probes):
            started = time.perf_counter()
            sock.sendall(b"NOOP\r\n")
            _read_reply(sock)
            times.append(time.perf_counter() - started)
        sock.sendall(b"QUIT\r\n")
    return statistics.median(times), pipelining


class RttProbe:
    """NOOP round trips through the proxy every 50 ms while a run goes on (the RTT under load)."""

    def __init__(self, port: int) -> None:
        self._port = port
        self._stop = threading.Event()
        self.samples: list[float] = []
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        with socket.create_connection(("127.0.0.1", self._port), timeout=10) as sock:
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            _read_reply(sock)
            sock.sendall(b"EHLO probe.example\r\n")
            _read_reply(sock)
            while not self._stop.wait(0.05):
                started = time.perf_counter()
                sock.sendall(b"NOOP\r\n")
                _read_reply(sock)
                self.samples.append(time.perf_counter() - started)
            sock.sendall(b"QUIT\r\n")

    def __enter__(self) -> RttProbe:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(timeout=15)

    def describe(self) -> str:
        if not self.samples:
            return "no samples"
        ordered = sorted(self.samples)
        p90 = ordered[int(0.9 * (len(ordered) - 1))]
        return f"median {1000 * statistics.median(ordered):.1f} ms, p90 {1000 * p90:.1f} ms"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    common_arguments(parser)
    parser.add_argument("--connections", default="16,64")
    parser.add_argument("--delay-ms", type=float, default=10.0, help="added each way")
    parser.add_argument("--seconds", type=float, default=15.0, help="ideal duration of a run")
    args = parser.parse_args()
    if args.smoke:
        args.connections, args.seconds = "4", 1.5
    counts = [int(c) for c in args.connections.split(",")]

    info = machine()
    print(machine_line(info), flush=True)
    tools = postfix_tools(args)
    results: dict[str, object] = {"machine": info, "delay_ms": args.delay_ms, "runs": []}
    with (
        Workspace("latency", keep=args.keep) as ws,
        Sink(tools, python=args.python_sink) as sink,
        Proxy(sink.port, args.delay_ms) as proxy,
    ):
        rtt, pipelining = measure_rtt(proxy.port)
        nominal = 2 * args.delay_ms / 1000
        print(
            f"round trip through the proxy: {1000 * rtt:.1f} ms (nominal {1000 * nominal:.0f} ms), "
            f"sink {sink.kind} advertises PIPELINING: {'yes' if pipelining else 'no'}"
        )
        results["rtt_ms"] = 1000 * rtt
        post = write_post(ws.path("post.md"))
        eml = None
        for connections in counts:
            ideal = connections / (2 * rtt)
            messages = max(int(ideal * args.seconds), connections * 4)
            db = ws.path(f"c{connections}.db")
            env = child_env(
                database_url=db_url(db), smtp_port=proxy.port, smtp_connections=connections
            )
            csv = write_subscribers(ws.path(f"readers-{messages}.csv"), messages)
            import_subscribers(csv, env, ws.dir)
            if eml is None:
                eml = preview(post, env, ws.dir).write_lf(ws.path("message.eml"))
            log(f"{connections} connections: notify, {messages} messages ...")
            with RttProbe(proxy.port) as probe:
                result = notify(post, env, ws.dir).check("notify")
            summary = result.summary
            if summary is None or summary.sent != messages:
                raise BenchError(f"notify did not send all {messages}:\n{result.stdout}")
            label = f"latency, {connections} connections, RTT {1000 * rtt:.1f} ms"
            ideal_label = f"{connections}/(2 x RTT)"
            print(figure(label, "subscribe notify", summary.rate, ideal_label, ideal, TARGET))
            print(
                f"  notify: sent {summary.sent} in {summary.elapsed:.1f} s (wall {result.wall:.1f}"
                f" s), CPU {result.cpu_seconds:.1f} s, peak RSS {result.maxrss_mb:.0f} MB; "
                f"RTT during the run {probe.describe()}"
            )
            run: dict[str, object] = {
                "connections": connections,
                "ideal_rate": ideal,
                "notify_rate": summary.rate,
                "rtt_during_run_ms": [1000 * x for x in probe.samples],
                "notify": result.brief(),
            }
            if tools is not None and sink.kind == "smtp-sink":
                base = smtp_source(
                    tools,
                    host="127.0.0.1",
                    port=proxy.port,
                    message_file=eml,
                    messages=max(int(ideal * args.seconds / 2), connections * 2),
                    connections=connections,
                )
                run["smtp_source_rate"] = base.rate
                print(
                    f"  context: smtp-source (no pipelining) through the proxy {base.rate:.0f} "
                    f"msg/s = {base.rate / ideal:.2f}x of {ideal_label}"
                )
            results["runs"].append(run)  # type: ignore[attr-defined]
            sys.stdout.flush()
    path = save_results("latency", results)
    log(f"results: {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
