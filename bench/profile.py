"""Profile ``subscribe notify`` (or ``import``) as users run it, and print where the time goes.

Sets up a list of readers and a sink like ``throughput.py``, then runs the command under

* py-spy (default): ``uv run --with py-spy py-spy record --format raw --subprocesses``,
  sampling every thread; ``--gil`` keeps only samples holding the GIL (Python CPU time,
  the event loop's real budget). The raw profile is summarised by ``hotspots.py``;
* cProfile (``--tool cprofile``): the main thread only (the event loop), exact call counts.

Profiles are kept in bench/results/ (raw collapsed stacks: feed them to flamegraph.pl or
speedscope for a picture).

    uv run python bench/profile.py [--command notify|import] [--readers 20000]
        [--connections 16] [--tool py-spy|cprofile] [--gil] [--smoke]
"""

from __future__ import annotations

import argparse
import sys
from datetime import UTC, datetime

from harness import (
    RESULTS,
    ROOT,
    SUBSCRIBE,
    Workspace,
    child_env,
    common_arguments,
    db_url,
    import_subscribers,
    log,
    machine,
    machine_line,
    postfix_tools,
    run_subscribe,
    write_post,
    write_subscribers,
)
from hotspots import summarise
from tools import Sink


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    common_arguments(parser)
    parser.add_argument("--command", choices=("notify", "import"), default="notify")
    parser.add_argument("--readers", type=int, default=20_000)
    parser.add_argument("--connections", type=int, default=16)
    parser.add_argument("--tool", choices=("py-spy", "cprofile"), default="py-spy")
    parser.add_argument("--gil", action="store_true", help="py-spy: GIL-holding samples only")
    parser.add_argument("--rate", type=int, default=250, help="py-spy samples per second")
    parser.add_argument("--top", type=int, default=30)
    parser.add_argument(
        "--set", action="append", default=[], metavar="KEY=VALUE", help="a subscribe setting"
    )
    args = parser.parse_args()
    if args.smoke:
        args.readers, args.connections, args.tool, args.top = 300, 4, "cprofile", 15

    info = machine()
    print(machine_line(info), flush=True)
    tools = postfix_tools(args)
    RESULTS.mkdir(parents=True, exist_ok=True)
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
    suffix = "txt" if args.tool == "py-spy" else "prof"
    out = (
        RESULTS / f"profile-{args.command}-{args.tool}{'-gil' if args.gil else ''}-{stamp}.{suffix}"
    )
    with (
        Workspace("profile", keep=args.keep) as ws,
        Sink(tools, python=args.python_sink) as sink,
    ):
        csv = write_subscribers(ws.path("readers.csv"), args.readers)
        post = write_post(ws.path("post.md"))
        env = child_env(
            database_url=db_url(ws.path("profile.db")),
            smtp_port=sink.port,
            smtp_connections=args.connections,
            **dict(pair.split("=", 1) for pair in args.set),
        )
        if args.command == "notify":
            import_subscribers(csv, env, ws.dir)
            command = ["notify", "--post", str(post), "--yes"]
        else:
            command = ["import", str(csv), "--confirmed"]
        subscribe_script = ROOT / ".venv" / "bin" / "subscribe"
        if args.tool == "py-spy":
            spy = ["--with", "py-spy", "py-spy", "record", "--format", "raw", "--subprocesses"]
            spy += ["--rate", str(args.rate), "-o", str(out)] + (["--gil"] if args.gil else [])
            wrapped = [*spy, "--", "subscribe", *command]
        else:
            wrapped = ["python", "-m", "cProfile", "-o", str(out), str(subscribe_script), *command]
        log(f"profiling: {' '.join(wrapped)}")
        # The same child as every benchmark's, with the profiler in front of subscribe.
        uv_run = SUBSCRIBE[:-1]  # "uv run --project ROOT" without "subscribe"
        result = run_subscribe(wrapped, env, ws.dir, command=uv_run)
        result.check(f"profiled {args.command}")
    print(f"profiled: subscribe {args.command}, {args.readers} readers: {result.stdout.strip()}")
    print(f"profile: {out}")
    if args.tool == "py-spy":
        messages = args.readers if args.command == "notify" else 0
        print("\n".join(summarise(out, args.top, rate=args.rate, messages=messages)))
    else:
        import pstats

        stats = pstats.Stats(str(out))
        stats.sort_stats("tottime").print_stats(args.top)
    return 0


if __name__ == "__main__":
    sys.exit(main())
