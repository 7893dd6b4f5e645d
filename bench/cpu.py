"""Where the CPU goes while a ``subscribe`` child runs: per process, from Linux's /proc.

``CpuSampler`` samples, every half second, the CPU time of each process in the child's
session (``Running`` starts each child in its own: uv, the sending process, its render or
signing processes) and of the sink, and the machine's busy, idle and stolen time
(/proc/stat). ``share`` turns the samples taken within a window (the sending pass) into
percentages of one core: 200% is a 2-core machine fully busy. "other" is every other
process on the machine (the machine is shared: other people's benchmarks and tests);
"stolen" is time the virtual machine's host gave to someone else.

    with CpuSampler(child.proc.pid, sink.pid) as cpu:
        result = child.wait()
    print(cpu.share(start, end).line())
"""

from __future__ import annotations

import os
import threading
import time
from dataclasses import dataclass, field

_TICK = os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 100


def _machine() -> tuple[float, float, float]:
    """(busy, idle, stolen) seconds of all cores since boot: stolen is the time a virtual
    machine's host ran something else while this machine had work for its cores."""
    with open("/proc/stat") as stat:
        values = [int(v) for v in stat.readline().split()[1:]]
    idle = values[3] + values[4]  # idle + iowait
    steal = values[7] if len(values) > 7 else 0
    return (sum(values[:7]) - idle) / _TICK, idle / _TICK, steal / _TICK


def _processes(session: int, kinds: dict[int, str]) -> dict[int, tuple[str, float]]:
    """pid -> (kind, CPU seconds) of the processes in ``session``; ``kinds`` caches each
    process's kind (its command line is read once)."""
    found = {}
    for name in os.listdir("/proc"):
        if not name.isdigit():
            continue
        pid = int(name)
        try:
            with open(f"/proc/{name}/stat", "rb") as stat:
                fields = stat.read().rsplit(b")", 1)[1].split()
            if int(fields[3]) != session:
                continue
            if pid not in kinds:
                with open(f"/proc/{name}/cmdline", "rb") as cmdline:
                    kinds[pid] = _kind(cmdline.read().replace(b"\0", b" "))
        except (OSError, IndexError, ValueError):
            continue
        found[pid] = (kinds[pid], (int(fields[11]) + int(fields[12])) / _TICK)
    return found


def _kind(argv: bytes) -> str:
    if b"resource_tracker" in argv:
        return "other of ours"
    if b"multiprocessing" in argv:
        return "worker"  # a render or signing process
    if b"/uv " in argv or argv.startswith(b"uv "):
        return "uv"
    return "main"


@dataclass
class Share:
    seconds: float
    by_kind: dict[str, list[float]] = field(default_factory=dict)  # kind -> % per process
    sink: float = 0.0
    busy: float = 0.0  # the whole machine, % of one core
    idle: float = 0.0
    steal: float = 0.0

    @property
    def ours(self) -> float:
        return sum(sum(v) for v in self.by_kind.values()) + self.sink

    def line(self) -> str:
        parts = []
        for kind in ("main", "worker", "uv", "other of ours"):
            shares = self.by_kind.get(kind)
            if shares:
                label = f"{len(shares)} {kind}s" if kind == "worker" else kind
                each = " + ".join(f"{s:.0f}" for s in sorted(shares, reverse=True))
                parts.append(f"{label} {each}%")
        parts.append(f"sink {self.sink:.0f}%")
        other = max(self.busy - self.ours, 0.0)
        return (
            f"CPU over {self.seconds:.1f} s, % of one core: {', '.join(parts)}; "
            f"other processes {other:.0f}%, idle {self.idle:.0f}%, stolen by the host "
            f"{self.steal:.0f}%"
        )


class CpuSampler:
    def __init__(self, session: int, sink_pid: int | None, interval: float = 0.5) -> None:
        self._session = session
        self._sink = sink_pid
        self._interval = interval
        self._samples: list[tuple[float, tuple[float, float, float], dict[int, tuple[str, float]]]]
        self._samples = []
        self._kinds: dict[int, str] = {}
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _sample(self) -> None:
        procs = _processes(self._session, self._kinds)
        if self._sink is not None:
            try:
                with open(f"/proc/{self._sink}/stat", "rb") as stat:
                    fields = stat.read().rsplit(b")", 1)[1].split()
                procs[-1] = ("sink", (int(fields[11]) + int(fields[12])) / _TICK)
            except (OSError, IndexError, ValueError):
                pass
        self._samples.append((time.monotonic(), _machine(), procs))

    def _run(self) -> None:
        while not self._stop.is_set():
            self._sample()
            self._stop.wait(self._interval)

    def __enter__(self) -> CpuSampler:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()

    def share(self, start: float, end: float) -> Share | None:
        """CPU shares between the samples nearest inside [start, end] (time.monotonic)."""
        window = [s for s in self._samples if start <= s[0] <= end]
        if len(window) < 2:
            return None
        (t0, (busy0, idle0, steal0), first), (t1, (busy1, idle1, steal1), _) = window[0], window[-1]
        seconds = t1 - t0
        share = Share(seconds, busy=100 * (busy1 - busy0) / seconds)
        share.idle = 100 * (idle1 - idle0) / seconds
        share.steal = 100 * (steal1 - steal0) / seconds
        last: dict[int, tuple[str, float]] = {}
        for _, _, procs in window:
            last.update(procs)  # a process that ended in the window: its last figure
        for pid, (kind, cpu) in last.items():
            used = 100 * (cpu - first.get(pid, (kind, 0.0))[1]) / seconds
            if kind == "sink":
                share.sink = used
            elif used >= 0.5:
                share.by_kind.setdefault(kind, []).append(used)
        return share
