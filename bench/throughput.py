"""Target 1: ``subscribe notify`` end to end into smtp-sink, side by side with its baselines.

For each connection count C, in one run, into one ``smtp-sink``:

* ``smtp-source -d -s C``: Postfix's C client sends N copies of subscribe's own ~10 KB
  message over C persistent connections (it does not pipeline);
* ``subscribe notify --post post.md --yes`` with ``SUBSCRIBE_SMTP_CONNECTIONS=C`` on a fresh
  SQLite database of N confirmed readers: claim, render, send, record in the ledger;
* two ``subscribe resume`` processes side by side with C/2 connections each, on a fresh
  copy whose deliveries were enqueued by a ``notify`` stopped at once by
  ``SUBSCRIBE_DAILY_LIMIT=1`` (the product has no ``--workers`` option yet);

then the plain loop, smtplib + one ``EmailMessage`` per reader on one connection.

subscribe's rate is the sending pass by its own clock (``sent N ... in X s``: from the
first claim to the last ledger write, without interpreter start-up and enqueueing; for two
processes, from the earlier start to the later end). Wall-clock figures come with it.

With ``--dkim``, only ``notify`` runs, with DKIM signing off and on (RSA-2048 and the
optional ed25519 signature, ``--dkim-ed25519``), alternating off/on/off/on into the same
sink on fresh copies of the database; the ratio uses the mean of each pair (target 0.5x).
Each run's CPU is shown per process (sending process, signing or render processes, sink,
the rest of the machine and idle: ``cpu.py``). ``--baseline DIR`` runs another checkout's
subscribe (say, main's) in turn with this one's, for a before/after in one run.

    uv run python bench/throughput.py [--messages 20000] [--connections 4,16,64] [--smoke]
    uv run python bench/throughput.py --dkim [--messages 20000] [--connections 64]
        [--baseline ../main]
"""

from __future__ import annotations

import argparse
import itertools
import sys
from dataclasses import asdict
from pathlib import Path

from cpu import CpuSampler
from harness import (
    BenchError,
    Result,
    Running,
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
    preview,
    python_helper,
    run_subscribe,
    save_results,
    write_post,
    write_subscribers,
)
from tools import Sink, smtp_source

TARGET_VS_SOURCE = 0.5
TARGET_VS_SMTPLIB = 10.0
TARGET_DKIM_VS_OFF = 0.5


def detail(label: str, result: Result, messages: int, sink_cpu: float) -> str:
    summary = result.summary
    assert summary is not None
    announced = result.announced
    before = f", start-up+enqueue {announced[0]:.1f} s" if announced else ""
    return (
        f"  {label}: sent {summary.sent} in {summary.elapsed:.1f} s (wall {result.wall:.1f} s"
        f"{before}), CPU {result.cpu_seconds:.1f} s = {1000 * result.cpu_seconds / messages:.2f}"
        f" ms/msg incl. start-up, peak RSS {result.maxrss_mb:.0f} MB, sink CPU "
        f"{1000 * sink_cpu / messages:.2f} ms/msg"
    )


def expect_all_sent(result: Result, messages: int, what: str) -> None:
    summary = result.check(what).summary
    if summary is None or summary.sent != messages:
        raise BenchError(f"{what}: expected {messages} sent, got:\n{result.stdout}")


def two_processes(
    ws: Workspace, template, post, port: int, connections: int, messages: int, sink: Sink
) -> tuple[float, list[Result], float]:
    """Enqueue with notify (daily limit 1: one message goes), then two resume side by side."""
    db = clone_db(template, ws.path(f"two-{connections}.db"))
    url = db_url(db)
    enqueue_env = child_env(database_url=url, smtp_port=port, smtp_connections=1, daily_limit=1)
    notify(post, enqueue_env, ws.dir).check("notify (enqueue)")
    env = child_env(database_url=url, smtp_port=port, smtp_connections=max(connections // 2, 1))
    cpu_before = sink.cpu_seconds()
    children = [Running(["resume"], env, ws.dir) for _ in range(2)]
    results = [child.wait() for child in children]
    sink_cpu = sink.cpu_seconds() - cpu_before
    sent = 0
    for result in results:
        summary = result.check("resume").summary
        assert summary is not None
        sent += summary.sent
    if sent != messages - 1:
        raise BenchError(f"two resume processes sent {sent}, expected {messages - 1}")
    # Each pass ended when its process printed the summary; it began `elapsed` before.
    end = max(r.ended for r in results)
    start = min(r.ended - r.summary.elapsed for r in results)  # type: ignore[union-attr]
    return sent / (end - start), results, sink_cpu


def dkim_comparison(
    ws: Workspace,
    template,
    post,
    sink: Sink,
    counts: list[int],
    messages: int,
    ed25519: bool,
    baseline: Path | None = None,
) -> list[dict[str, object]]:
    """notify with DKIM off and on, alternating, per connection count; with ``baseline``,
    the same runs of that checkout's subscribe in turn with this one's."""
    keys = {"dkim_selector": "bench", "dkim_private_key_file": ws.path("dkim-rsa.pem")}
    setup = child_env()
    run_subscribe(
        ["dkim", "keygen", "--out", str(keys["dkim_private_key_file"])], setup, ws.dir
    ).check("dkim keygen")
    if ed25519:
        keys["dkim_ed25519_key_file"] = ws.path("dkim-ed.pem")
        out = str(keys["dkim_ed25519_key_file"])
        run_subscribe(["dkim", "keygen", "--ed25519", "--out", out], setup, ws.dir).check(
            "dkim keygen --ed25519"
        )
    # (label, command): this checkout's subscribe, and the baseline checkout's if given.
    projects: list[tuple[str, list[str] | None]] = [("", None)]
    if baseline is not None:
        command = ["uv", "run", "--project", str(baseline), "subscribe"]
        projects.append((f"{baseline.resolve().name}: ", command))
    runs = []
    for connections in counts:
        rates = {(label, mode): [] for label, _ in projects for mode in ("off", "on")}
        lines: list[str] = []
        shares: list[dict[str, object]] = []
        for round_ in range(2):
            for (label, command), mode in itertools.product(projects, ("off", "on")):
                db = clone_db(template, ws.path(f"dkim-{mode}-{connections}-{round_}.db"))
                env = child_env(
                    database_url=db_url(db),
                    smtp_port=sink.port,
                    smtp_connections=connections,
                    **(keys if mode == "on" else {}),
                )
                log(f"{connections} connections: {label}notify, DKIM {mode} ...")
                argv = ["notify", "--post", str(post), "--yes"]
                child = Running(argv, env, ws.dir, command=command)
                with CpuSampler(child.proc.pid, sink.pid) as cpu:
                    result = child.wait()
                expect_all_sent(result, messages, f"{label}notify (DKIM {mode})")
                assert result.summary is not None and result.summary_at is not None
                rate = result.summary.rate
                rates[label, mode].append(rate)
                end = result.summary_at
                share = cpu.share(end - result.summary.elapsed, end)
                if share is not None:
                    lines.append(
                        f"  {label}DKIM {mode}, run {round_ + 1}: {rate:.0f} msg/s, {share.line()}"
                    )
                    shares.append({"project": label, "mode": mode, "rate": rate, **asdict(share)})
        signatures = "rsa-sha256 + ed25519-sha256" if ed25519 else "rsa-sha256"
        for label, _ in projects:
            on, off = rates[label, "on"], rates[label, "off"]
            print(
                figure(
                    f"{label}throughput with DKIM ({signatures}), {connections} connections",
                    "notify DKIM on",
                    sum(on) / len(on),
                    "notify DKIM off",
                    sum(off) / len(off),
                    TARGET_DKIM_VS_OFF,
                )
            )
            spread_on = ", ".join(f"{r:.0f}" for r in on)
            spread_off = ", ".join(f"{r:.0f}" for r in off)
            print(f"  runs: DKIM off {spread_off} msg/s, DKIM on {spread_on} msg/s")
        if lines:
            print("\n".join(lines))
        sys.stdout.flush()
        runs.append(
            {
                "connections": connections,
                "dkim_on": rates["", "on"],
                "dkim_off": rates["", "off"],
                "baseline": {mode: rates[label, mode] for label, mode in rates if label},
                "cpu": shares,
            }
        )
    return runs


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    common_arguments(parser)
    parser.add_argument("--messages", type=int, default=50_000, help="readers (and messages)")
    parser.add_argument("--connections", default="4,16,64", help="comma-separated counts")
    parser.add_argument("--smtplib-seconds", type=float, default=10.0)
    parser.add_argument("--one-process", action="store_true", help="skip the 2-process runs")
    parser.add_argument("--dkim", action="store_true", help="notify with DKIM off vs on only")
    parser.add_argument("--dkim-ed25519", action="store_true", help="add the ed25519 signature")
    parser.add_argument(
        "--baseline",
        type=Path,
        metavar="DIR",
        help="--dkim: also run the subscribe of the checkout in DIR, in turn with this one",
    )
    args = parser.parse_args()
    if args.smoke:
        args.messages, args.connections, args.smtplib_seconds = 300, "4", 1.0
    if args.dkim and args.connections == parser.get_default("connections"):
        args.connections = "64"
    counts = [int(c) for c in args.connections.split(",")]
    messages = args.messages

    info = machine()
    print(machine_line(info), flush=True)
    tools = postfix_tools(args)
    results: dict[str, object] = {"machine": info, "messages": messages, "runs": []}
    runs: list[dict[str, object]] = results["runs"]  # type: ignore[assignment]
    with (
        Workspace("throughput", keep=args.keep) as ws,
        Sink(tools, python=args.python_sink) as sink,
    ):
        log(f"sink: {sink.kind} on {sink.host}:{sink.port}; workspace {ws.dir}")
        csv = write_subscribers(ws.path("readers.csv"), messages)
        post = write_post(ws.path("post.md"))
        template = ws.path("template.db")
        setup_env = child_env(database_url=db_url(template), smtp_port=sink.port)
        imported = import_subscribers(csv, setup_env, ws.dir)
        log(f"imported {messages} readers in {imported.wall:.1f} s")
        message = preview(post, setup_env, ws.dir)
        eml = message.write_lf(ws.path("message.eml"))
        print(f"message: {message.size} bytes (subscribe preview of the post), sink {sink.kind}")
        results["message_bytes"] = message.size
        if args.dkim:
            results["dkim"] = dkim_comparison(
                ws, template, post, sink, counts, messages, args.dkim_ed25519, args.baseline
            )
            log(f"results: {save_results('throughput-dkim', results)}")
            return 0
        best: tuple[float, int] = (0.0, 0)

        for connections in counts:

            def baseline(connections: int = connections) -> float:
                if tools is None or sink.kind != "smtp-sink":
                    return 0.0
                return smtp_source(
                    tools,
                    host=sink.host,
                    port=sink.port,
                    message_file=eml,
                    messages=messages,
                    connections=connections,
                ).rate

            # The machine is shared: smtp-source runs before and after subscribe, and the
            # ratio uses the mean of the two.
            base_rates = [baseline()]
            db = clone_db(template, ws.path(f"one-{connections}.db"))
            env = child_env(
                database_url=db_url(db), smtp_port=sink.port, smtp_connections=connections
            )
            log(f"{connections} connections: notify ...")
            cpu_before = sink.cpu_seconds()
            one = notify(post, env, ws.dir)
            sink_cpu = sink.cpu_seconds() - cpu_before
            expect_all_sent(one, messages, "notify")
            assert one.summary is not None
            if not args.one_process and connections >= 2:
                log(f"{connections} connections: 2 x resume ...")
                rate2, pair, sink_cpu2 = two_processes(
                    ws, template, post, sink.port, connections, messages, sink
                )
            base_rates.append(baseline())
            base_rate = sum(base_rates) / len(base_rates)
            rate = one.summary.rate
            best = max(best, (rate, connections))
            label = f"throughput, {connections} connections, 1 process"
            if base_rate:
                print(
                    figure(
                        label, "subscribe notify", rate, "smtp-source", base_rate, TARGET_VS_SOURCE
                    )
                )
            else:
                print(f"{label}: subscribe notify {rate:.0f} msg/s, smtp-source n/a (no tools)")
            print(detail("notify", one, messages, sink_cpu), flush=True)
            if base_rate:
                spread = ", ".join(f"{r:.0f}" for r in base_rates)
                print(f"  smtp-source: {spread} msg/s (before, after)")
            run: dict[str, object] = {
                "connections": connections,
                "smtp_source_rates": base_rates,
                "notify_rate": rate,
                "notify": one.brief(),
            }
            if not args.one_process and connections >= 2:
                label = f"throughput, {connections} connections, 2 processes"
                ours = "subscribe resume x2"
                if base_rate:
                    print(figure(label, ours, rate2, "smtp-source", base_rate, TARGET_VS_SOURCE))
                else:
                    print(f"{label}: {ours} {rate2:.0f} msg/s, smtp-source n/a (no tools)")
                for n, result in enumerate(pair, 1):
                    print(detail(f"resume {n}", result, messages // 2, sink_cpu2 / 2))
                run["two_process_rate"] = rate2
                run["two_process"] = [r.brief() for r in pair]
            runs.append(run)
            sys.stdout.flush()

        log("smtplib + EmailMessage loop ...")
        out = python_helper(
            "smtplib_loop.py",
            "--port",
            str(sink.port),
            "--csv",
            str(csv),
            "--eml",
            str(ws.path("preview") / "preview.eml"),
            "--seconds",
            str(args.smtplib_seconds),
        )
        sent, seconds, size = out.split()
        loop_rate = int(sent) / float(seconds)
        results["smtplib_rate"] = loop_rate
        print(
            figure(
                "throughput vs plain loop",
                f"subscribe notify ({best[1]} conn)",
                best[0],
                "smtplib+EmailMessage (1 conn)",
                loop_rate,
                TARGET_VS_SMTPLIB,
            )
        )
        print(f"  smtplib loop: {sent} messages of ~{size} bytes in {float(seconds):.1f} s")
    path = save_results("throughput", results)
    log(f"results: {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
