"""Digests against posts: a daily digest to N readers vs a single-post ``notify`` to the
same N, side by side in one run, into one sink; and a post's enqueue when every reader has
chosen categories.

* ``notify`` of one post to N readers on cadence ``post`` (enqueue + send);
* the same N on cadence ``daily``, the same post announced (queues nothing for them), then
  ``subscribe digest``: queue one digest each (one INSERT ... SELECT) + send.
  Target: digest wall time <= 1.2x notify's, peak RSS < 200 MB. The CPU ratio and the load
  average at the start of each run are printed too: on a shared machine the wall ratio
  says as much about the neighbours as about the code;
* N readers who each chose one of two categories, ``notify --category python``: the time
  until it prints ``announced: ... queued`` (target < 15 s at 1M).

``--send`` caps the messages each run sends (SUBSCRIBE_DAILY_LIMIT; 0: all), so that a 1M
run measures the whole enqueue and the rate on the full ledger without sending a million
twice.

    uv run python bench/digest.py [--readers 1000000] [--send 0] [--smoke]
"""

from __future__ import annotations

import argparse
import os
import sqlite3
import sys

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
    postfix_tools,
    run_subscribe,
    save_results,
    write_post,
    write_subscribers,
)
from tools import Sink

RATIO_TARGET = 1.2
RSS_TARGET_MB = 200.0
ENQUEUE_TARGET_S = 15.0


def verdict(ok: bool) -> str:
    return "[met]" if ok else "[NOT met]"


def _sql(db: object, *statements: str) -> None:
    connection = sqlite3.connect(str(db))
    try:
        for statement in statements:
            connection.execute(statement)
        connection.commit()
    finally:
        connection.close()


def _line(label: str, result: Result, load: float) -> str:
    summary = result.summary
    sent = f"sent {summary.sent} in {summary.elapsed:.1f} s, " if summary else ""
    return (
        f"  {label}: {sent}wall {result.wall:.1f} s, CPU {result.cpu_seconds:.1f} s, "
        f"peak RSS {result.maxrss_mb:.0f} MB, load average {load:.2f} at start"
    )


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    common_arguments(parser)
    parser.add_argument("--readers", type=int, default=1_000_000)
    parser.add_argument("--send", type=int, default=0, help="messages per run (0: all)")
    parser.add_argument("--connections", type=int, default=16)
    args = parser.parse_args()
    if args.smoke:
        args.readers, args.send, args.connections = 2000, 0, 4

    info = machine()
    print(machine_line(info), flush=True)
    tools = postfix_tools(args)
    results: dict[str, object] = {"machine": info, "args": vars(args)}
    with Workspace("digest", keep=args.keep) as ws, Sink(tools, python=args.python_sink) as sink:
        log(f"sink: {sink.kind} on {sink.host}:{sink.port}; workspace {ws.dir}")
        post = write_post(ws.path("post.md"))
        csv = write_subscribers(ws.path("readers.csv"), args.readers)
        settings: dict[str, object] = {
            "smtp_port": sink.port,
            "smtp_connections": args.connections,
        }
        if args.send:
            settings["daily_limit"] = args.send
        template = ws.path("template.db")
        import_subscribers(csv, child_env(database_url=db_url(template), **settings), ws.dir)
        expected = args.send or args.readers

        # 1. one post, one email each
        posts_db = clone_db(template, ws.path("posts.db"))
        env = child_env(database_url=db_url(posts_db), **settings)
        log(f"notify to {args.readers} readers ...")
        single_load = os.getloadavg()[0]
        single = notify(post, env, ws.dir, timeout=3600).check("notify")
        if single.summary is None or single.summary.sent != expected:
            raise BenchError(f"notify sent too little:\n{single.stdout}")

        # 2. the same readers on a daily digest: the post waits for `digest`
        digest_db = clone_db(template, ws.path("digest.db"))
        _sql(digest_db, "UPDATE subscriber SET cadence = 'daily'")
        env = child_env(database_url=db_url(digest_db), **settings)
        queued = notify(post, env, ws.dir).check("notify (digest readers)")
        if queued.announced is None or queued.announced[1] != 0:
            raise BenchError(f"digest readers got the post one by one:\n{queued.stdout}")
        log(f"digest to {args.readers} readers ...")
        digest_load = os.getloadavg()[0]
        digest = run_subscribe(["digest"], env, ws.dir, timeout=3600).check("digest")
        if digest.summary is None or digest.summary.sent != expected:
            raise BenchError(f"digest sent too little:\n{digest.stdout}")
        ratio = digest.wall / single.wall
        print(
            f"digest: {args.readers} readers, digest {digest.wall:.1f} s vs notify "
            f"{single.wall:.1f} s wall: {ratio:.2f}x (target <= {RATIO_TARGET}x) "
            f"{verdict(ratio <= RATIO_TARGET)}; CPU {digest.cpu_seconds / single.cpu_seconds:.2f}x"
        )
        print(
            f"digest: peak RSS digest {digest.maxrss_mb:.0f} MB, notify {single.maxrss_mb:.0f} MB "
            f"(target < {RSS_TARGET_MB:.0f} MB) {verdict(digest.maxrss_mb < RSS_TARGET_MB)}"
        )
        print(_line("notify", single, single_load))
        print(_line("digest", digest, digest_load))

        # 3. enqueue when every reader chose a category
        chosen_db = clone_db(template, ws.path("chosen.db"))
        _sql(
            chosen_db,
            "INSERT INTO subscriber_category (subscriber_id, category)"
            " SELECT id, CASE WHEN id % 2 = 0 THEN 'python' ELSE 'rust' END FROM subscriber",
        )
        env = child_env(database_url=db_url(chosen_db), **{**settings, "daily_limit": 1})
        log(f"notify --category python to {args.readers} readers with choices ...")
        chosen_load = os.getloadavg()[0]
        chosen = run_subscribe(
            ["notify", "--post", str(post), "--category", "python", "--yes"], env, ws.dir
        ).check("notify --category")
        announced = chosen.announced
        if announced is None or announced[1] != args.readers // 2:
            raise BenchError(f"the category did not choose half the readers:\n{chosen.stdout}")
        print(
            f"digest: enqueue with category choices, {announced[1]} of {args.readers} queued "
            f"{announced[0]:.1f} s after start (target < {ENQUEUE_TARGET_S:.0f} s) "
            f"{verdict(announced[0] < ENQUEUE_TARGET_S)}, load average {chosen_load:.2f} at start"
        )
        results.update(
            notify=single.brief(),
            digest=digest.brief(),
            chosen=chosen.brief(),
            ratio=ratio,
            load_at_start={"notify": single_load, "digest": digest_load, "chosen": chosen_load},
        )
    path = save_results("digest", results)
    log(f"results: {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
