"""The servers and reference clients the benchmarks measure against.

* Postfix's benchmark pair, ``smtp-source`` (a C client) and ``smtp-sink`` (a C server that
  accepts and discards). Found in ``bench/.tools/`` or on PATH; otherwise fetched from
  Debian's package with ``apt-get download postfix`` and unpacked with ``dpkg -x`` into
  ``bench/.tools/`` (git-ignored). No Postfix daemon is installed or run.
* ``Sink``: an SMTP server on a free loopback port, ``smtp-sink`` when available, else the
  aiosmtpd sink in ``aiosink.py`` (slower, but it needs nothing outside the project).
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

BENCH = Path(__file__).resolve().parent
TOOLS_DIR = BENCH / ".tools"
POSTFIX_DIR = TOOLS_DIR / "postfix"


@dataclass(frozen=True)
class PostfixTools:
    smtp_source: Path
    smtp_sink: Path
    env: dict[str, str] = field(default_factory=dict)  # LD_LIBRARY_PATH for unpacked libraries

    def run_env(self) -> dict[str, str]:
        return {**os.environ, **self.env}


def _works(tools: PostfixTools) -> bool:
    """The binaries start (shared libraries found): both print a usage line and exit 1."""
    try:
        result = subprocess.run(
            [str(tools.smtp_sink)], env=tools.run_env(), capture_output=True, timeout=10
        )
    except OSError:
        return False
    return b"usage" in result.stderr


def _unpacked() -> PostfixTools | None:
    sbin = POSTFIX_DIR / "usr" / "sbin"
    if not (sbin / "smtp-source").exists():
        return None
    libdir = POSTFIX_DIR / "usr" / "lib" / "postfix"
    previous = os.environ.get("LD_LIBRARY_PATH", "")
    env = {"LD_LIBRARY_PATH": f"{libdir}:{previous}" if previous else str(libdir)}
    return PostfixTools(sbin / "smtp-source", sbin / "smtp-sink", env)


def _on_path() -> PostfixTools | None:
    search = os.pathsep.join([os.environ.get("PATH", ""), "/usr/sbin", "/usr/local/sbin"])
    source = shutil.which("smtp-source", path=search)
    sink = shutil.which("smtp-sink", path=search)
    if source and sink:
        return PostfixTools(Path(source), Path(sink))
    return None


def fetch_postfix(log=print) -> bool:
    """``apt-get download postfix`` + ``dpkg -x`` into bench/.tools/postfix (no daemon)."""
    if not (shutil.which("apt-get") and shutil.which("dpkg")):
        log("postfix tools: apt-get/dpkg not available, cannot fetch them")
        return False
    download = TOOLS_DIR / "download"
    download.mkdir(parents=True, exist_ok=True)
    for attempt in range(2):
        result = subprocess.run(
            ["apt-get", "download", "postfix"], cwd=download, capture_output=True, text=True
        )
        if result.returncode == 0:
            break
        if attempt == 0 and os.geteuid() == 0:
            log("postfix tools: apt-get download failed, running apt-get update once")
            subprocess.run(["apt-get", "update", "-q"], capture_output=True)
            continue
        log(f"postfix tools: apt-get download postfix failed: {result.stderr.strip()[-300:]}")
        return False
    debs = sorted(download.glob("postfix_*.deb"))
    if not debs:
        return False
    POSTFIX_DIR.mkdir(parents=True, exist_ok=True)
    subprocess.run(["dpkg", "-x", str(debs[-1]), str(POSTFIX_DIR)], check=True)
    log(f"postfix tools: unpacked {debs[-1].name} into {POSTFIX_DIR}")
    return True


def find_postfix(*, fetch: bool = True, log=print) -> PostfixTools | None:
    """smtp-source/smtp-sink from bench/.tools, PATH, or (``fetch``) Debian's package."""
    for candidate in (_unpacked(), _on_path()):
        if candidate is not None and _works(candidate):
            return candidate
    if fetch and fetch_postfix(log):
        candidate = _unpacked()
        if candidate is not None and _works(candidate):
            return candidate
    return None


# -- ports and processes ---------------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def wait_for_banner(host: str, port: int, timeout: float = 15.0) -> None:
    deadline = time.monotonic() + timeout
    while True:
        try:
            with socket.create_connection((host, port), timeout=2) as sock:
                if sock.recv(512).startswith(b"220"):
                    sock.sendall(b"QUIT\r\n")
                    return
        except OSError:
            pass
        if time.monotonic() > deadline:
            raise RuntimeError(f"no SMTP server answered on {host}:{port}")
        time.sleep(0.05)


def process_cpu_seconds(pid: int) -> float:
    """User + system CPU time of a running process (Linux /proc), 0 when unknown."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as stat:
            fields = stat.read().rsplit(b")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    except (OSError, IndexError, ValueError):
        return 0.0


class Sink:
    """An SMTP server that accepts and discards, on 127.0.0.1 and a free port.

    ``smtp-sink`` when Postfix's tools are there, else ``aiosink.py`` (aiosmtpd). Both
    advertise PIPELINING. With ``log``, ``recsink.py`` records arrival time, size and
    recipients of every message, for the benchmarks that check pacing and duplicates.
    """

    def __init__(
        self, tools: PostfixTools | None, *, log: Path | None = None, python: bool = False
    ) -> None:
        self.host = "127.0.0.1"
        self.port = free_port()
        self._log = log
        self._tools = None if (python or log is not None) else tools
        self.kind = "smtp-sink" if self._tools else "recsink" if log else "aiosmtpd"
        self._proc: subprocess.Popen[bytes] | None = None

    def start(self) -> Sink:
        if self._tools is not None:
            argv = [str(self._tools.smtp_sink)]
            if os.geteuid() == 0:
                argv += ["-u", "nobody"]  # smtp-sink refuses to run as root otherwise
            argv += [f"{self.host}:{self.port}", "256"]
            env = self._tools.run_env()
        elif self._log is not None:
            argv = [sys.executable, str(BENCH / "recsink.py"), "--port", str(self.port)]
            argv += ["--log", str(self._log)]
            env = dict(os.environ)
        else:
            argv = [sys.executable, str(BENCH / "aiosink.py"), "--port", str(self.port)]
            env = dict(os.environ)
        self._proc = subprocess.Popen(
            argv, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
        )
        wait_for_banner(self.host, self.port)
        return self

    @property
    def pid(self) -> int:
        assert self._proc is not None
        return self._proc.pid

    def cpu_seconds(self) -> float:
        return process_cpu_seconds(self.pid) if self._proc else 0.0

    def stop(self) -> None:
        if self._proc is None:
            return
        self._proc.terminate()
        try:
            self._proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self._proc.kill()
            self._proc.wait()
        self._proc = None

    def __enter__(self) -> Sink:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


@dataclass(frozen=True)
class SourceResult:
    messages: int
    connections: int
    seconds: float

    @property
    def rate(self) -> float:
        return self.messages / self.seconds if self.seconds else 0.0


def smtp_source(
    tools: PostfixTools,
    *,
    host: str,
    port: int,
    message_file: Path,
    messages: int,
    connections: int,
    timeout: float = 600,
) -> SourceResult:
    """``smtp-source -d -s C -m N -F FILE``: N messages over C persistent connections.

    ``message_file`` holds the whole message (headers and body) with LF line endings;
    smtp-source adds CRLF and dot-stuffs. It does not pipeline (see its man page).
    """
    argv = [
        str(tools.smtp_source),
        "-d",
        "-s",
        str(connections),
        "-m",
        str(messages),
        "-F",
        str(message_file),
        "-M",
        "bench.example",
        "-f",
        "news@blog.example",
        "-t",
        "reader@example.org",
        f"{host}:{port}",
    ]
    started = time.perf_counter()
    subprocess.run(argv, env=tools.run_env(), check=True, capture_output=True, timeout=timeout)
    return SourceResult(messages, connections, time.perf_counter() - started)
