"""Target 3: a million subscribers on SQLite.

In one run, into one sink:

* ``subscribe import readers.csv --confirmed`` of a 1,000,000-row CSV (target < 60 s);
* a reference list of 10,000 readers: ``notify`` sends to all of them (its send rate);
* the 1M list: ``notify`` enqueues one delivery per reader (target < 15 s: the time until it
  prints ``announced: ... (1000000 queued)``, start-up included, and the start-up of the
  10k run for comparison) and sends. Sending all of a million takes longer than a benchmark
  should, so by default ``SUBSCRIBE_DAILY_LIMIT`` stops it cleanly after ``--send`` messages
  (100,000): the rate at 1M is measured on those, with the whole ledger in place; ``--send 0``
  sends them all. Peak RSS is that of the whole ``notify`` process (target < 200 MB);
  throughput at 1M within 20% of that at 10k.

    uv run python bench/million.py [--readers 1000000] [--send 100000] [--smoke]
"""

from __future__ import annotations

import argparse
import sys
import time

from harness import (
    BenchError,
    Result,
    Workspace,
    child_env,
    clone_db,
    common_arguments,
    db_url,
    figure,
    import_subscribers,
    log,
    machine,
    machine_line,
    notify,
    postfix_tools,
    save_results,
    write_post,
    write_subscribers,
)
from tools import Sink

IMPORT_TARGET_S = 60.0
ENQUEUE_TARGET_S = 15.0
RSS_TARGET_MB = 200.0
RATE_TARGET = 0.8


def verdict(ok: bool) -> str:
    return "[met]" if ok else "[NOT met]"


def details(label: str, result: Result) -> str:
    summary = result.summary
    sent = f"sent {summary.sent} in {summary.elapsed:.1f} s, " if summary else ""
    stopped = [text for _, text in result.lines if text.startswith("stopped early")]
    return (
        f"  {label}: {sent}wall {result.wall:.1f} s, CPU {result.cpu_seconds:.1f} s, "
        f"peak RSS {result.maxrss_mb:.0f} MB" + (f"; {stopped[0]}" if stopped else "")
    )


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    common_arguments(parser)
    parser.add_argument("--readers", type=int, default=1_000_000)
    parser.add_argument("--reference", type=int, default=10_000, help="the small list")
    parser.add_argument("--send", type=int, default=100_000, help="messages at 1M (0: all)")
    parser.add_argument("--connections", type=int, default=16)
    args = parser.parse_args()
    if args.smoke:
        args.readers, args.reference, args.send, args.connections = 3000, 300, 1000, 4

    info = machine()
    print(machine_line(info), flush=True)
    tools = postfix_tools(args)
    results: dict[str, object] = {"machine": info, "args": vars(args)}
    with (
        Workspace("million", keep=args.keep) as ws,
        Sink(tools, python=args.python_sink) as sink,
    ):
        log(f"sink: {sink.kind} on {sink.host}:{sink.port}; workspace {ws.dir}")
        post = write_post(ws.path("post.md"))
        started = time.perf_counter()
        big_csv = write_subscribers(ws.path("readers.csv"), args.readers)
        log(f"wrote {args.readers} rows in {time.perf_counter() - started:.1f} s")
        small_csv = write_subscribers(ws.path("reference.csv"), args.reference)
        settings = {"smtp_port": sink.port, "smtp_connections": args.connections}

        # 1. import
        big_env = child_env(database_url=db_url(ws.path("big.db")), **settings)
        imported = import_subscribers(big_csv, big_env, ws.dir)
        if f"imported {args.readers} " not in imported.stdout:
            raise BenchError(f"import did not take every row:\n{imported.stdout}")
        print(
            f"million: import of {args.readers} rows {imported.wall:.1f} s "
            f"(target < {IMPORT_TARGET_S:.0f} s) {verdict(imported.wall < IMPORT_TARGET_S)}"
        )
        print(details("import", imported))
        results["import"] = imported.brief()

        # 2. the reference list, sent before and after the big one (the machine is shared)
        small_template = ws.path("small.db")
        import_subscribers(
            small_csv, child_env(database_url=db_url(small_template), **settings), ws.dir
        )

        def reference(n: int) -> Result:
            db = clone_db(small_template, ws.path(f"small-{n}.db"))
            log(f"notify to {args.reference} readers ...")
            result = notify(post, child_env(database_url=db_url(db), **settings), ws.dir)
            summary = result.check("notify (reference)").summary
            if summary is None or summary.sent != args.reference:
                raise BenchError(f"reference notify did not send everything:\n{result.stdout}")
            return result

        small = reference(1)
        small_announced = small.announced
        assert small_announced is not None

        # 3. the big list
        if args.send:
            big_env["SUBSCRIBE_DAILY_LIMIT"] = str(args.send)
        log(f"notify to {args.readers} readers, sending {args.send or 'all'} ...")
        big = notify(post, big_env, ws.dir, timeout=3600).check("notify (1M)")
        big_summary = big.summary
        announced = big.announced
        expected = args.send or args.readers
        if big_summary is None or big_summary.sent != expected or announced is None:
            raise BenchError(f"notify at {args.readers} sent too little:\n{big.stdout}")
        results["big"] = big.brief()
        small_after = reference(2)
        results["reference"] = [small.brief(), small_after.brief()]
        small_rates = [r.summary.rate for r in (small, small_after)]  # type: ignore[union-attr]
        small_rate = sum(small_rates) / 2
        enqueue_at, queued = announced
        print(
            f"million: enqueue of {queued} deliveries {enqueue_at:.1f} s after start "
            f"(start-up of the {args.reference} run: {small_announced[0]:.1f} s) "
            f"(target < {ENQUEUE_TARGET_S:.0f} s) {verdict(enqueue_at < ENQUEUE_TARGET_S)}"
        )
        print(
            f"million: peak RSS of notify at {args.readers} {big.maxrss_mb:.0f} MB "
            f"(at {args.reference}: {small.maxrss_mb:.0f} MB) "
            f"(target < {RSS_TARGET_MB:.0f} MB) {verdict(big.maxrss_mb < RSS_TARGET_MB)}"
        )
        print(
            figure(
                f"million: throughput, {args.connections} connections",
                f"at {args.readers} ({big_summary.sent} sent)",
                big_summary.rate,
                f"at {args.reference} (mean of before/after)",
                small_rate,
                RATE_TARGET,
            )
        )
        print(details(f"notify at {args.reference}, before", small))
        print(details(f"notify at {args.reference}, after", small_after))
        print(details(f"notify at {args.readers}", big))
    path = save_results("million", results)
    log(f"results: {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
