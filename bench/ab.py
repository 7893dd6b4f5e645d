"""A/B: notify's rate into smtp-sink with different SUBSCRIBE_* settings, interleaved.

    uv run python bench/ab.py --messages 20000 --connections 64 render_process=off render_process=on

Each variant runs ``--reps`` times, alternating, on clones of one imported database, so
that a shared machine's drift hits every variant alike. Prints each run and the medians.
"""

from __future__ import annotations

import argparse
import statistics

from harness import (
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
    write_post,
    write_subscribers,
)
from tools import Sink


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    common_arguments(parser)
    parser.add_argument("--messages", type=int, default=20_000)
    parser.add_argument("--connections", type=int, default=64)
    parser.add_argument("--reps", type=int, default=3)
    parser.add_argument("variants", nargs="+", help="KEY=VALUE[,KEY=VALUE] per variant")
    args = parser.parse_args()
    if args.smoke:
        args.messages, args.reps = 300, 1
    variants = [
        dict(pair.split("=", 1) for pair in variant.split(",")) if variant != "-" else {}
        for variant in args.variants
    ]
    print(machine_line(machine()), flush=True)
    tools = postfix_tools(args)
    rates: dict[int, list[float]] = {n: [] for n in range(len(variants))}
    with Workspace("ab", keep=args.keep) as ws, Sink(tools, python=args.python_sink) as sink:
        csv = write_subscribers(ws.path("readers.csv"), args.messages)
        post = write_post(ws.path("post.md"))
        template = ws.path("template.db")
        import_subscribers(csv, child_env(database_url=db_url(template)), ws.dir)
        for rep in range(args.reps):
            for n, variant in enumerate(variants):
                db = clone_db(template, ws.path(f"run-{rep}-{n}.db"))
                env = child_env(
                    database_url=db_url(db),
                    smtp_port=sink.port,
                    smtp_connections=args.connections,
                    **variant,
                )
                log(f"rep {rep}, variant {args.variants[n]} ...")
                result = notify(post, env, ws.dir).check("notify")
                assert result.summary is not None
                rates[n].append(result.summary.rate)
                print(
                    f"  {args.variants[n]}: {result.summary.rate:.0f} msg/s "
                    f"(CPU {result.cpu_seconds:.1f} s, wall {result.wall:.1f} s)",
                    flush=True,
                )
    for n, label in enumerate(args.variants):
        print(f"ab: {label}: median {statistics.median(rates[n]):.0f} msg/s over {len(rates[n])}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
