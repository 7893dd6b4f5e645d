"""Target 4: ``SUBSCRIBE_SEND_RATE`` pacing and ``SUBSCRIBE_DAILY_LIMIT`` stop-and-continue.

Pacing: for each rate N, ``notify`` sends N x 30 messages with ``SUBSCRIBE_SEND_RATE=N`` into
a recording aiosmtpd sink; the achieved rate is taken from the arrival times at the sink
(messages after the first, over the time from the first to the last arrival) and must be
within 5% of N. The rate over the first 30 s window is printed with it.

Daily limit: with ``SUBSCRIBE_DAILY_LIMIT=L`` and 3L readers, ``notify`` must send exactly L
and exit 0; ``resume`` the same day sends nothing and exits 0; ``resume`` with the limit
raised to 2L (as the next day would allow L more) sends L more; ``resume`` without a limit
sends the rest. The sink must then hold every reader exactly once.

    uv run python bench/rate.py [--rates 100,500] [--seconds 30] [--smoke]
"""

from __future__ import annotations

import argparse
import sqlite3
import sys
from collections import Counter
from pathlib import Path

from harness import (
    BenchError,
    Result,
    Workspace,
    child_env,
    clone_db,
    common_arguments,
    db_url,
    import_subscribers,
    log,
    machine,
    machine_line,
    notify,
    run_subscribe,
    save_results,
    write_post,
    write_subscribers,
)
from tools import Sink

TOLERANCE = 0.05


def arrivals(path: Path) -> list[tuple[float, str]]:
    rows = []
    for line in path.read_text().splitlines():
        at, _size, rcpts = line.split(" ", 2)
        rows.append((float(at), rcpts))
    return rows


def sent(result: Result) -> int:
    summary = result.summary
    if summary is None:
        raise BenchError(f"no summary line in:\n{result.stdout}\n{result.stderr}")
    return summary.sent


def pacing(
    ws: Workspace, db: Path, post: Path, rate: float, seconds: float, conns: int
) -> tuple[float, float, Result, int]:
    log_path = ws.path(f"arrivals-{rate:g}.txt")
    with Sink(None, log=log_path) as sink:
        env = child_env(
            database_url=db_url(db), smtp_port=sink.port, smtp_connections=conns, send_rate=rate
        )
        log(f"SUBSCRIBE_SEND_RATE={rate:g}: notify ...")
        result = notify(post, env, ws.dir).check("notify (rate)")
    times = sorted(at for at, _ in arrivals(log_path))
    if len(times) < 2:
        raise BenchError("the sink recorded fewer than two messages")
    achieved = (len(times) - 1) / (times[-1] - times[0])
    window = [t for t in times if t < times[0] + min(30.0, seconds)]
    window_rate = len(window) / min(30.0, seconds)
    return achieved, window_rate, result, len(times)


def daily_limit(ws: Workspace, post: Path, readers: int, conns: int) -> tuple[str, bool, dict]:
    limit = readers // 3
    csv = write_subscribers(ws.path("daily.csv"), readers, start=10_000_000)
    db = ws.path("daily.db")
    log_path = ws.path("arrivals-daily.txt")
    with Sink(None, log=log_path) as sink:
        base = {"database_url": db_url(db), "smtp_port": sink.port, "smtp_connections": conns}
        import_subscribers(csv, child_env(**base), ws.dir)
        first = notify(post, child_env(**base, daily_limit=limit), ws.dir)
        again = run_subscribe(["resume"], child_env(**base, daily_limit=limit), ws.dir)
        next_day = run_subscribe(["resume"], child_env(**base, daily_limit=2 * limit), ws.dir)
        rest = run_subscribe(["resume"], child_env(**base), ws.dir)
    runs = [first, again, next_day, rest]
    codes = [r.returncode for r in runs]
    counts = [sent(r) for r in runs]
    received = Counter(rcpt for _, rcpt in arrivals(log_path))
    duplicates = sum(n - 1 for n in received.values() if n > 1)
    stopped_cleanly = "daily limit reached" in first.stdout
    ok = (
        codes == [0, 0, 0, 0]
        and counts == [limit, 0, limit, readers - 2 * limit]
        and stopped_cleanly
        and len(received) == readers
        and duplicates == 0
    )
    line = (
        f"rate: daily limit {limit} of {readers} readers: notify sent {counts[0]} "
        f"(exit {codes[0]}{', stopped: daily limit reached' if stopped_cleanly else ''}), "
        f"resume same day {counts[1]} (exit {codes[1]}), resume with limit {2 * limit} "
        f"{counts[2]} (exit {codes[2]}), resume without limit {counts[3]} (exit {codes[3]}); "
        f"sink got {sum(received.values())} messages, {len(received)} distinct readers, "
        f"{duplicates} duplicates -> {'ok' if ok else 'FAILED'}"
    )
    data = {"limit": limit, "readers": readers, "codes": codes, "sent": counts, "ok": ok}
    data["runs"] = [r.brief() for r in runs]
    return line, ok, data


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    common_arguments(parser)
    parser.add_argument("--rates", default="100,500", help="comma-separated SEND_RATE values")
    parser.add_argument("--seconds", type=float, default=30.0)
    parser.add_argument("--connections", type=int, default=8)
    parser.add_argument("--daily-readers", type=int, default=3000)
    args = parser.parse_args()
    if args.smoke:
        args.rates, args.seconds, args.daily_readers = "50", 2.0, 60
    rates = [float(r) for r in args.rates.split(",")]

    info = machine()
    print(machine_line(info), flush=True)
    results: dict[str, object] = {"machine": info, "args": vars(args), "pacing": []}
    ok = True
    with Workspace("rate", keep=args.keep) as ws:
        post = write_post(ws.path("post.md"))
        most = int(max(rates) * args.seconds)
        template = ws.path("template.db")
        csv = write_subscribers(ws.path("readers.csv"), most)
        import_subscribers(csv, child_env(database_url=db_url(template)), ws.dir)
        for rate in rates:
            count = int(rate * args.seconds)
            db = clone_db(template, ws.path(f"rate-{rate:g}.db"))
            # Keep exactly `count` readers confirmed (the rest unsubscribed) without re-import.
            with sqlite3.connect(db) as connection:
                connection.execute(
                    "UPDATE subscriber SET status = 'unsubscribed' WHERE id > ?", (count,)
                )
            achieved, window_rate, result, received = pacing(
                ws, db, post, rate, args.seconds, args.connections
            )
            error = achieved / rate - 1
            met = abs(error) <= TOLERANCE and received == count
            ok &= met
            summary = result.summary
            own = f"{summary.rate:.1f}" if summary else "?"
            print(
                f"rate: SUBSCRIBE_SEND_RATE={rate:g}: achieved {achieved:.1f} msg/s at the sink "
                f"({received} messages; first {min(30.0, args.seconds):g} s window "
                f"{window_rate:.1f} msg/s; subscribe's own figure {own}) -> {error:+.1%} "
                f"(target within 5%) [{'met' if met else 'NOT met'}]",
                flush=True,
            )
            results["pacing"].append(  # type: ignore[attr-defined]
                {"rate": rate, "achieved": achieved, "window": window_rate, "run": result.brief()}
            )
        line, daily_ok, data = daily_limit(ws, post, args.daily_readers, args.connections)
        print(line)
        results["daily_limit"] = data
        ok &= daily_ok
    path = save_results("rate", results)
    log(f"results: {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
