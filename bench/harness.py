"""Shared by the benchmark scripts: workspaces, test data, and running ``subscribe`` as users do.

``subscribe`` always runs as its CLI in a child process (``uv run --project ROOT subscribe
...``), configured only through ``SUBSCRIBE_*`` variables, in a throwaway working directory
(so no developer's ``.env`` leaks in). For each run we keep the wall-clock time, every
stdout line with the moment it arrived, the child's peak RSS and CPU time (``os.wait4``
covers ``uv`` and the Python process under it), and the summary line that ``notify`` and
``resume`` print (``sent N, ... in X s``).

Children run with ``PYTHONPYCACHEPREFIX=bench/.tools/pycache`` and without
``PYTHONDONTWRITEBYTECODE``: a user's install has compiled bytecode, and recompiling every
module on each start would add seconds to each command's start-up (never to its send rate).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import random
import re
import shutil
import signal
import sqlite3
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path

from tools import BENCH, TOOLS_DIR, PostfixTools, find_postfix

ROOT = BENCH.parent
RESULTS = BENCH / "results"
PYCACHE = TOOLS_DIR / "pycache"
SUBSCRIBE = ["uv", "run", "--project", str(ROOT), "subscribe"]

SITE = {
    "SUBSCRIBE_SECRET_KEY": "bench-secret-key-not-for-production",
    "SUBSCRIBE_BASE_URL": "https://news.blog.example",
    "SUBSCRIBE_SITE_NAME": "Bench Blog",
    "SUBSCRIBE_SITE_URL": "https://blog.example",
    "SUBSCRIBE_MAIL_FROM": "Bench Blog <news@blog.example>",
    "SUBSCRIBE_SMTP_SECURITY": "none",
    "SUBSCRIBE_SMTP_HOST": "127.0.0.1",
}
POST_URL = "https://blog.example/posts/sending-at-scale"
# Paragraphs of generated Markdown that make a new-post email of ~10 KB (checked at run time).
POST_PARAGRAPHS = 11


class BenchError(RuntimeError):
    pass


def log(message: str) -> None:
    """Progress notes go to stderr; stdout carries only the figure lines."""
    print(f"  . {message}", file=sys.stderr, flush=True)


def common_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--smoke", action="store_true", help="a tiny size that runs in seconds")
    parser.add_argument("--keep", action="store_true", help="keep the workspace (databases, CSV)")
    parser.add_argument(
        "--no-fetch",
        action="store_true",
        help="do not apt-get download Postfix's tools when missing (use the aiosmtpd sink)",
    )
    parser.add_argument(
        "--python-sink", action="store_true", help="use the aiosmtpd sink even if smtp-sink exists"
    )


def postfix_tools(args: argparse.Namespace) -> PostfixTools | None:
    """Smoke runs never download; full runs fetch the tools once into bench/.tools."""
    tools = find_postfix(fetch=not (args.no_fetch or args.smoke), log=log)
    if tools is None:
        log("smtp-source/smtp-sink not available: aiosmtpd sink, no smtp-source baseline")
    return tools


# -- the machine ----------------------------------------------------------------------------


def machine() -> dict[str, object]:
    model = ""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    try:
        memory = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30
    except (ValueError, OSError):
        memory = 0.0
    revision = subprocess.run(
        ["git", "-C", str(ROOT), "rev-parse", "--short", "HEAD"], capture_output=True, text=True
    ).stdout.strip()
    return {
        "date": datetime.now(UTC).isoformat(timespec="seconds"),
        "cpus": os.cpu_count(),
        "cpu_model": model,
        "memory_gib": round(memory, 1),
        "os": platform.platform(),
        "python": platform.python_version(),
        "git": revision,
        "load_at_start": [round(x, 2) for x in os.getloadavg()],
    }


def machine_line(info: dict[str, object]) -> str:
    load = info["load_at_start"]
    return (
        f"machine: {info['cpus']} cpus ({info['cpu_model']}), {info['memory_gib']} GiB, "
        f"python {info['python']}, git {info['git']}, load average {load[0]} at start"  # type: ignore[index]
    )


def save_results(name: str, data: dict[str, object]) -> Path:
    RESULTS.mkdir(parents=True, exist_ok=True)
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
    path = RESULTS / f"{name}-{stamp}.json"
    path.write_text(json.dumps(data, indent=2, default=str) + "\n")
    return path


def figure(
    label: str,
    ours_label: str,
    ours: float,
    base_label: str,
    base: float,
    target: float,
    *,
    unit: str = "msg/s",
) -> str:
    """One result line: both rates, their ratio, and the target."""
    ratio = ours / base if base else 0.0
    verdict = "met" if ratio >= target else "NOT met"
    shown = f"{ratio:.3f}" if abs(ratio - target) < 0.01 else f"{ratio:.2f}"  # no 0.50 < 0.5
    return (
        f"{label}: {ours_label} {ours:.0f} {unit}, {base_label} {base:.0f} {unit} "
        f"-> {shown}x (target {target:g}x) [{verdict}]"
    )


# -- workspaces and test data ----------------------------------------------------------------


class Workspace:
    """A throwaway folder for databases, CSV files and posts; removed unless ``keep``."""

    def __init__(self, name: str, *, keep: bool = False) -> None:
        self.dir = Path(tempfile.mkdtemp(prefix=f"subscribe-bench-{name}-"))
        self.keep = keep

    def path(self, name: str) -> Path:
        return self.dir / name

    def close(self) -> None:
        if self.keep:
            log(f"workspace kept: {self.dir}")
        else:
            shutil.rmtree(self.dir, ignore_errors=True)

    def __enter__(self) -> Workspace:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def write_subscribers(path: Path, count: int, *, start: int = 0) -> Path:
    """``email,name`` rows: distinct addresses over many domains; one in ten has no name."""
    with path.open("w", newline="") as out:
        out.write("email,name\n")
        rows = []
        for i in range(start, start + count):
            name = "" if i % 10 == 9 else f"Reader {i}"
            rows.append(f"reader.{i}@mail{i % 997}.example.org,{name}\n")
            if len(rows) >= 50_000:
                out.writelines(rows)
                rows.clear()
        out.writelines(rows)
    return path


_TEXT = (
    "the a of to and in sending mail message reader post queue relay sqlite python "
    "connection latency throughput ledger render template subscriber newsletter batch "
    "commit pipeline server client round trip measure profile every one million"
)


def write_post(path: Path, *, paragraphs: int = POST_PARAGRAPHS, url: str = POST_URL) -> Path:
    """A Markdown post with front matter (``--post FILE.md``), deterministic text."""
    rng = random.Random(20261126)
    vocabulary = _TEXT.split()
    blocks = []
    for i in range(paragraphs):
        if i and i % 4 == 0:
            blocks.append(f"## Part {i // 4}")
        words = [rng.choice(vocabulary) for _ in range(64)]
        words[7] = f"*{words[7]}*"
        words[30] = f"[{words[30]}](https://blog.example/notes/{i})"
        words[50] = f"`{words[50]}`"
        blocks.append(" ".join(words).capitalize() + ".")
        if i == 2:
            blocks.append("\n".join(f"- item {n}: {rng.choice(vocabulary)}" for n in range(5)))
    front = (
        "---\n"
        "title: Sending a newsletter at scale\n"
        f"url: {url}\n"
        "summary: How a small blog sends one email to each of a million readers.\n"
        "date: 2026-11-26\n"
        "---\n\n"
    )
    path.write_text(front + "\n\n".join(blocks) + "\n", encoding="utf-8")
    return path


def checkpoint(db: Path) -> None:
    """Fold the WAL into the main file, so that copying the file copies the database."""
    connection = sqlite3.connect(db)
    try:
        connection.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    finally:
        connection.close()


def clone_db(template: Path, dest: Path) -> Path:
    checkpoint(template)
    for suffix in ("", "-wal", "-shm"):
        Path(f"{dest}{suffix}").unlink(missing_ok=True)
    shutil.copyfile(template, dest)
    return dest


def db_url(db: Path) -> str:
    return f"sqlite:///{db}"


# -- running subscribe -----------------------------------------------------------------------

_SUMMARY = re.compile(
    r"sent (\d+), skipped (\d+), deferred (\d+), failed (\d+)(?:, ambiguous (\d+))? "
    r"in ([\d.]+) s"
)
_ANNOUNCED = re.compile(r"^announced: .* \((\d+) queued\)$")


def child_env(**settings: object) -> dict[str, str]:
    """The environment of a subscribe child: SITE plus ``settings`` as SUBSCRIBE_* variables."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("SUBSCRIBE_")}
    env.pop("PYTHONDONTWRITEBYTECODE", None)
    env["PYTHONPYCACHEPREFIX"] = str(PYCACHE)
    env.update(SITE)
    env.update({f"SUBSCRIBE_{key.upper()}": str(value) for key, value in settings.items()})
    return env


@dataclass
class Summary:
    sent: int
    skipped: int
    deferred: int
    failed: int
    ambiguous: int
    elapsed: float  # the sending pass, by subscribe's own clock (0.1 s resolution)

    @property
    def rate(self) -> float:
        return self.sent / self.elapsed if self.elapsed else 0.0


@dataclass
class Result:
    argv: list[str]
    returncode: int
    started: float  # time.monotonic() at spawn
    wall: float
    maxrss_mb: float
    cpu_seconds: float
    lines: list[tuple[float, str]] = field(default_factory=list)  # (seconds after spawn, text)
    stderr: str = ""

    @property
    def ended(self) -> float:
        return self.started + self.wall

    @property
    def stdout(self) -> str:
        return "\n".join(text for _, text in self.lines)

    @property
    def summary(self) -> Summary | None:
        for _, text in self.lines:
            match = _SUMMARY.search(text)
            if match:
                numbers = [int(g or 0) for g in match.groups()[:5]]
                return Summary(*numbers, elapsed=float(match.group(6)))
        return None

    @property
    def summary_at(self) -> float | None:
        """time.monotonic() when the summary line arrived: the end of the sending pass."""
        for at, text in self.lines:
            if _SUMMARY.search(text):
                return self.started + at
        return None

    @property
    def announced(self) -> tuple[float, int] | None:
        """(seconds after spawn, deliveries queued) of notify's 'announced' line."""
        for at, text in self.lines:
            match = _ANNOUNCED.match(text)
            if match:
                return at, int(match.group(1))
        return None

    def check(self, what: str) -> Result:
        if self.returncode != 0:
            raise BenchError(
                f"{what} exited {self.returncode}:\n{self.stdout}\n{self.stderr.strip()[-2000:]}"
            )
        return self

    def brief(self) -> dict[str, object]:
        data = asdict(self)
        data.pop("lines")
        data["stdout"] = self.stdout
        data["stderr"] = self.stderr[-2000:]
        return data


class Running:
    """A ``subscribe`` child: its output read as it comes, reaped with ``os.wait4``."""

    def __init__(
        self, args: list[str], env: dict[str, str], cwd: Path, *, command: list[str] | None = None
    ) -> None:
        self.argv = [*(SUBSCRIBE if command is None else command), *args]
        self.started = time.monotonic()
        self.proc = subprocess.Popen(
            self.argv,
            env=env,
            cwd=cwd,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            start_new_session=True,  # its own process group: uv and the Python under it
        )
        self.lines: list[tuple[float, str]] = []
        self._stderr: list[str] = []
        self._readers = [
            threading.Thread(target=self._read_stdout, daemon=True),
            threading.Thread(target=self._read_stderr, daemon=True),
        ]
        for reader in self._readers:
            reader.start()

    def _read_stdout(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            self.lines.append((time.monotonic() - self.started, line.rstrip("\n")))

    def _read_stderr(self) -> None:
        assert self.proc.stderr is not None
        for line in self.proc.stderr:
            self._stderr.append(line)

    def signal(self, signum: int) -> None:
        if self.proc.returncode is None:
            os.killpg(self.proc.pid, signum)

    def wait(self, timeout: float = 900) -> Result:
        deadline = self.started + timeout
        terminated = False
        while True:
            pid, status, usage = os.wait4(self.proc.pid, os.WNOHANG)
            if pid:
                break
            now = time.monotonic()
            if now > deadline:
                # Too long: ask politely (subscribe finishes what is in flight), then insist.
                self.signal(signal.SIGKILL if terminated else signal.SIGTERM)
                deadline = now + (3600 if terminated else 15)
                terminated = True
            time.sleep(0.005)
        wall = time.monotonic() - self.started
        code = os.waitstatus_to_exitcode(status)
        self.proc.returncode = code
        for reader in self._readers:
            reader.join(timeout=5)
        return Result(
            argv=self.argv,
            returncode=code,
            started=self.started,
            wall=wall,
            maxrss_mb=usage.ru_maxrss / 1024,
            cpu_seconds=usage.ru_utime + usage.ru_stime,
            lines=self.lines,
            stderr="".join(self._stderr),
        )


def run_subscribe(
    args: list[str],
    env: dict[str, str],
    cwd: Path,
    *,
    timeout: float = 900,
    command: list[str] | None = None,
) -> Result:
    """``subscribe ARGS`` (or ``command ARGS``) to the end; see ``Running``."""
    return Running(args, env, cwd, command=command).wait(timeout)


def import_subscribers(csv: Path, env: dict[str, str], cwd: Path) -> Result:
    return run_subscribe(["import", str(csv), "--confirmed"], env, cwd).check("subscribe import")


def notify(post: Path, env: dict[str, str], cwd: Path, *, timeout: float = 900) -> Result:
    return run_subscribe(["notify", "--post", str(post), "--yes"], env, cwd, timeout=timeout)


@dataclass
class Message:
    """The new-post email as rendered for the first subscriber (``subscribe preview``)."""

    eml: bytes
    html: str

    @property
    def size(self) -> int:
        return len(self.eml)

    def write_lf(self, path: Path) -> Path:
        """For ``smtp-source -F``: LF line endings (it appends CRLF to each line itself)."""
        path.write_bytes(self.eml.replace(b"\r\n", b"\n"))
        return path


def preview(post: Path, env: dict[str, str], cwd: Path) -> Message:
    out = cwd / "preview"
    run_subscribe(["preview", "--post", str(post), "--out", str(out)], env, cwd).check(
        "subscribe preview"
    )
    return Message((out / "preview.eml").read_bytes(), (out / "preview.html").read_text())


def python_helper(script: str, *args: str, timeout: float = 600) -> str:
    """Run a bench helper with this interpreter; its stdout."""
    result = subprocess.run(
        [sys.executable, str(BENCH / script), *args],
        capture_output=True,
        text=True,
        timeout=timeout,
    )
    if result.returncode != 0:
        raise BenchError(f"{script} failed:\n{result.stderr[-2000:]}")
    return result.stdout
