"""Target 5: ``subscribe worker`` processes sharing one post's deliveries on PostgreSQL.

A throwaway PostgreSQL server (``tests/pgserver.py``: initdb + pg_ctl into a temp dir, as
an unprivileged user when run as root) holds the ledger. The post is enqueued once into a
template database (by a ``notify`` whose relay is unreachable: everything stays queued,
nothing is sent), and every run starts from a copy of it (``CREATE DATABASE ... TEMPLATE``).

Figures, side by side in one run:

- rate of 1 worker and of 2 workers (``worker --until-idle``, C/2 connections each) into
  ``smtp-sink``; the ratio 2 workers / 1 worker (informational: on one small machine that
  also runs PostgreSQL and the sink, it shows that sharing costs nothing, not scaling);
- the same total rate against SQLite ``notify`` with C connections, for reference;
- exactly once: 2 workers into the recording sink (``recsink.py``); every reader must be
  received exactly once (missing 0, duplicates 0) and the ledger must say ``sent`` for all.

    uv run python bench/workers.py [--readers 20000] [--connections 64] [--smoke]
"""

from __future__ import annotations

import argparse
import sys
from collections import Counter

import psycopg
from harness import (
    BENCH,
    BenchError,
    Result,
    Running,
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
    postfix_tools,
    save_results,
    write_post,
    write_subscribers,
)
from psycopg import sql
from rate import arrivals
from tools import Sink, free_port

sys.path.insert(0, str(BENCH.parent / "tests"))
from pgserver import PostgresServer, start_postgres


def copy_database(server: PostgresServer, template: str, name: str) -> str:
    with psycopg.connect(server.conninfo(), autocommit=True) as conn:
        conn.execute(
            sql.SQL("CREATE DATABASE {} TEMPLATE {}").format(
                sql.Identifier(name), sql.Identifier(template)
            )
        )
    return server.url_for(name)


def sent_in_ledger(server: PostgresServer, name: str) -> Counter[str]:
    with psycopg.connect(server.conninfo(name)) as conn:
        rows = conn.execute("SELECT status, count(*) FROM delivery GROUP BY status").fetchall()
    return Counter({status: count for status, count in rows})


def run_workers(
    ws: Workspace, url: str, port: int, workers: int, connections: int
) -> tuple[float, int, list[Result]]:
    """Start ``workers`` workers side by side; (rate, sent, results). The rate spans the
    earliest pass start to the latest pass end, by the workers' own clocks."""
    env = child_env(
        database_url=url, smtp_port=port, smtp_connections=max(connections // workers, 1)
    )
    children = [Running(["worker", "--until-idle"], env, ws.dir) for _ in range(workers)]
    results = [child.wait() for child in children]
    passes = []  # (start, end, sent) by each child's clock, in seconds after its spawn
    for result in results:
        result.check("worker")
        for at, text in result.lines:
            summary = _summary(text)
            if summary is not None:
                sent, elapsed = summary
                passes.append((result.started + at - elapsed, result.started + at, sent))
    if not passes:
        raise BenchError("the workers printed no pass summary")
    sent = sum(p[2] for p in passes)
    span = max(p[1] for p in passes) - min(p[0] for p in passes)
    return sent / span if span > 0 else 0.0, sent, results


def _summary(text: str) -> tuple[int, float] | None:
    if not text.startswith("sent "):
        return None
    words = text.replace(",", "").split()
    return int(words[1]), float(words[words.index("in") + 1])


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    common_arguments(parser)
    parser.add_argument("--readers", type=int, default=20_000)
    parser.add_argument("--connections", type=int, default=64, help="in all, split by workers")
    args = parser.parse_args()
    if args.smoke:
        args.readers, args.connections = 300, 4
    readers, connections = args.readers, args.connections

    info = machine()
    print(machine_line(info), flush=True)
    tools = postfix_tools(args)
    results: dict[str, object] = {"machine": info, "readers": readers}
    with Workspace("workers", keep=args.keep) as ws:
        server = start_postgres(ws.dir)
        try:
            log(f"postgresql on port {server.port}; workspace {ws.dir}")
            csv = write_subscribers(ws.path("readers.csv"), readers)
            post = write_post(ws.path("post.md"))
            template = "template_ledger"
            url = server.create_database(template)
            import_subscribers(csv, child_env(database_url=url), ws.dir)
            # Enqueue without sending: the relay is unreachable, so notify gives up and
            # leaves every delivery queued (exit 1 is the expected outcome here).
            enqueue = notify(
                post,
                child_env(database_url=url, smtp_port=free_port(), relay_down_timeout=1),
                ws.dir,
            )
            if "deliveries stay queued" not in enqueue.stderr:
                raise BenchError(f"enqueueing failed:\n{enqueue.stderr[-2000:]}")
            log(f"{readers} deliveries queued in {template}")

            with Sink(tools, python=args.python_sink) as sink:
                rates = {}
                for workers in (1, 2):
                    name = f"rate_{workers}"
                    log(f"{workers} worker(s), {connections} connections in all ...")
                    rate, sent, _ = run_workers(
                        ws, copy_database(server, template, name), sink.port, workers, connections
                    )
                    if sent != readers:
                        raise BenchError(f"{workers} worker(s) sent {sent} of {readers}")
                    rates[workers] = rate
                sqlite_db = ws.path("sqlite.db")
                import_subscribers(csv, child_env(database_url=db_url(sqlite_db)), ws.dir)
                sqlite_env = child_env(
                    database_url=db_url(clone_db(sqlite_db, ws.path("sqlite-run.db"))),
                    smtp_port=sink.port,
                    smtp_connections=connections,
                )
                log("SQLite notify for reference ...")
                reference = notify(post, sqlite_env, ws.dir).check("notify (SQLite)")
                assert reference.summary is not None
                sqlite_rate = reference.summary.rate

            log_path = ws.path("arrivals.txt")
            with Sink(None, log=log_path) as recorder:
                log("2 workers into the recording sink ...")
                _, sent, _ = run_workers(
                    ws, copy_database(server, template, "once"), recorder.port, 2, connections
                )
            received = Counter(rcpt for _, rcpt in arrivals(log_path))
            expected = {f"reader.{n}@mail{n % 997}.example.org" for n in range(readers)}
            missing = len(expected - set(received))
            duplicates = sum(n - 1 for n in received.values() if n > 1)
            ledger = sent_in_ledger(server, "once")
        finally:
            server.stop()

    # Informational, not a target: on one 2-core machine that also runs PostgreSQL and the
    # sink, two workers share the same CPUs; what it shows is that sharing the queue
    # (SKIP LOCKED claims, concurrent commits) costs nothing, not that workers scale.
    print(
        f"workers, PostgreSQL, {connections} connections in all ({sink.kind}): "
        f"2 workers {rates[2]:.0f} msg/s, 1 worker {rates[1]:.0f} msg/s "
        f"-> {rates[2] / rates[1]:.2f}x"
    )
    print(
        f"  2 workers {rates[2]:.0f} msg/s vs SQLite notify ({connections} connections) "
        f"{sqlite_rate:.0f} msg/s -> {rates[2] / sqlite_rate:.2f}x"
    )
    once = missing == 0 and duplicates == 0 and ledger == Counter({"sent": readers})
    print(
        f"workers: exactly once, 2 workers into recsink: {len(received)} readers received, "
        f"missing {missing}, duplicates {duplicates}, ledger {dict(ledger)} "
        f"[{'met' if once else 'NOT met'}]"
    )
    results.update(
        rates={str(k): v for k, v in rates.items()},
        sqlite_rate=sqlite_rate,
        missing=missing,
        duplicates=duplicates,
        ledger=dict(ledger),
        sent_once_run=sent,
    )
    log(f"results: {save_results('workers', results)}")
    return 0 if once else 1


if __name__ == "__main__":
    raise SystemExit(main())
