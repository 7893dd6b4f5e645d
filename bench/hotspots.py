"""Summarise a py-spy raw (collapsed-stack) profile: where the samples go, by function.

``py-spy record --format raw`` writes one line per distinct stack,
``frame;frame;...;leaf count``, each frame ``function (file:line)``. This prints, for the
whole process and per thread kind (the event loop's main thread, worker threads), the
functions with the most samples as the leaf ("self") and anywhere on the stack ("total"),
as a share of that group's samples, plus a few subscribe-level buckets.

    python bench/hotspots.py profile.txt [--top 25]
"""

from __future__ import annotations

import argparse
import re
from collections import Counter
from pathlib import Path

_FRAME = re.compile(r"^(?P<func>.*?) \((?P<file>[^()]*?)(?::(?P<line>\d+))?\)$")

# Coarse buckets: the first matching (function or file fragment) from the leaf upwards.
BUCKETS = [
    ("sqlite/SQLAlchemy (ledger)", ("subscribe/ledger.py",)),
    ("render (MessageBuilder.build)", ("subscribe/render.py",)),
    ("tokens (itsdangerous)", ("itsdangerous/",)),
    ("SMTP send (sender.py, aiosmtplib)", ("subscribe/sender.py", "aiosmtplib/")),
    ("asyncio machinery", ("asyncio/",)),
]


def parse(path: Path) -> list[tuple[list[str], int]]:
    stacks = []
    for line in path.read_text().splitlines():
        if not line.strip():
            continue
        stack, _, count = line.rpartition(" ")
        frames = stack.split(";")
        if frames and frames[0].startswith("process "):
            frames = frames[1:]
        stacks.append((frames, int(count)))
    return stacks


def short(frame: str) -> str:
    match = _FRAME.match(frame)
    if not match:
        return frame
    file = match.group("file")
    for marker in ("site-packages/", "/lib/python3.11/", "src/"):
        if marker in file:
            file = file.split(marker, 1)[1]
    return f"{match.group('func')} ({file})"


def thread_kind(frames: list[str]) -> str:
    if any("_worker (concurrent/futures/thread.py" in f for f in frames[:6]):
        return "worker threads (asyncio.to_thread: claims, commits)"
    if frames and frames[0].startswith("Thread._bootstrap"):
        return "other threads"
    return "main thread (event loop)"


def bucket(frames: list[str]) -> str:
    for frame in reversed(frames):
        for name, needles in BUCKETS:
            if any(n in frame for n in needles):
                return name
    return "other"


# Send-phase components: the first frame from the leaf upwards that contains a needle
# decides (so parseaddr under message_id counts as address parsing, not as message_id).
COMPONENTS = [
    ("unsubscribe token (itsdangerous)", ("Tokens.unsubscribe_token",)),
    ("From address parsing (Settings.mail_from_address)", ("Settings.mail_from_address",)),
    ("render.message_id", ("message_id (subscribe/render.py",)),
    ("render: MessageBuilder.build", ("MessageBuilder.build",)),
    ("dot-stuffing: render.smtp_data", ("smtp_data (subscribe/render.py",)),
    ("SMTP replies: read_response + wait_for", ("read_response",)),
    ("SMTP replies: data_received parsing", ("SMTPProtocol.data_received",)),
    ("socket writes (transport.write)", ("_SelectorSocketTransport.write",)),
    ("SMTPSender.send, own code", ("SMTPSender.send",)),
    ("ledger.record (worker thread)", ("record (subscribe/ledger.py",)),
    ("ledger.claim (worker thread)", ("claim (subscribe/ledger.py",)),
    (
        "thread hand-off (to_thread, futures, wake-ups)",
        ("to_thread", "ThreadPoolExecutor.submit", "call_soon_threadsafe", "_chain_future"),
    ),
    ("group-commit recorder task", ("_Recorder.",)),
    ("asyncio.Queue put/get", ("Queue.put", "Queue.get")),
    ("Notifier._job, other", ("Notifier._job",)),
    ("Notifier lanes/_deliver, other", ("Notifier._deliver", "Notifier._lane")),
    ("Notifier._produce, other", ("Notifier._produce",)),
    ("socket reads (_read_ready)", ("_read_ready",)),
    ("event loop (select, _run_once, handles)", ("_run_once", "EpollSelector.select")),
    ("idle worker threads", ("_worker (concurrent/futures/thread.py",)),
]


def component(frames: list[str]) -> str:
    for frame in reversed(frames):
        for name, needles in COMPONENTS:
            if any(n in frame for n in needles):
                return name
    return "other"


def components(
    stacks: list[tuple[list[str], int]], *, rate: int = 0, messages: int = 0
) -> list[str]:
    """The send phase (stacks under runs.send_due, and worker threads) by component."""
    phase = [
        (frames, count)
        for frames, count in stacks
        if any("send_due (subscribe/sending/runs.py" in f for f in frames)
        or thread_kind(frames).startswith("worker")
    ]
    total = sum(count for _, count in phase)
    if not total:
        return []
    counts: Counter[str] = Counter()
    for frames, count in phase:
        counts[component(frames)] += count
    per_message = rate and messages
    head = f"== send phase by component: {total} samples"
    if per_message:
        head += f" ({1e6 * total / rate / messages:.0f} us per message)"
    lines = [head]
    for name, n in counts.most_common():
        micros = f"  {1e6 * n / rate / messages:6.1f} us/msg" if per_message else ""
        lines.append(f"    {100 * n / total:5.1f}%{micros}  {name}")
    return lines


def report(stacks: list[tuple[list[str], int]], title: str, top: int) -> list[str]:
    total = sum(count for _, count in stacks)
    if not total:
        return [f"{title}: no samples"]
    self_time: Counter[str] = Counter()
    inclusive: Counter[str] = Counter()
    buckets: Counter[str] = Counter()
    for frames, count in stacks:
        names = [short(f) for f in frames]
        if names:
            self_time[names[-1]] += count
        for name in set(names):
            inclusive[name] += count
        buckets[bucket(frames)] += count
    lines = [f"== {title}: {total} samples"]
    lines.append(
        "  buckets (innermost match): "
        + ", ".join(f"{name} {100 * n / total:.0f}%" for name, n in buckets.most_common())
    )
    lines.append("  self:")
    lines += [f"    {100 * n / total:5.1f}%  {name}" for name, n in self_time.most_common(top)]
    lines.append("  total (inclusive):")
    lines += [f"    {100 * n / total:5.1f}%  {name}" for name, n in inclusive.most_common(top)]
    return lines


def summarise(path: Path, top: int = 25, *, rate: int = 0, messages: int = 0) -> list[str]:
    stacks = parse(path)
    lines = components(stacks, rate=rate, messages=messages)
    lines += report(stacks, "whole process", top)
    kinds: dict[str, list[tuple[list[str], int]]] = {}
    for frames, count in stacks:
        kinds.setdefault(thread_kind(frames), []).append((frames, count))
    for kind, group in sorted(kinds.items()):
        lines += report(group, kind, top)
    return lines


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("profile", type=Path)
    parser.add_argument("--top", type=int, default=25)
    parser.add_argument("--rate", type=int, default=0, help="py-spy's samples per second")
    parser.add_argument("--messages", type=int, default=0, help="messages sent in the run")
    args = parser.parse_args()
    lines = summarise(args.profile, args.top, rate=args.rate, messages=args.messages)
    print("\n".join(lines))


if __name__ == "__main__":
    main()
