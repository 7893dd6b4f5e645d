"""Start and stop a throwaway PostgreSQL server for tests.

Usage::

    reason = postgres_available()
    if reason is not None:
        pytest.skip(reason)
    server = start_postgres(tmp_path)
    try:
        url = server.create_database("app")  # postgresql+psycopg://postgres@127.0.0.1:PORT/app
        ...
    finally:
        server.stop()

The server is created with ``initdb`` in a fresh temporary directory, listens on
127.0.0.1 only (on a random free port, plus a unix socket inside the temporary
directory), uses ``trust`` authentication for the superuser ``postgres`` and has
durability switched off (``fsync``, ``synchronous_commit``, ``full_page_writes``)
because the data is thrown away anyway.

PostgreSQL refuses to run as root. When the tests run as root (as they do in CI),
``initdb`` and ``pg_ctl`` are run as an unprivileged user via ``runuser`` (or
``setpriv``): the existing ``nobody`` user, or else a ``pgtest`` system user that
is created on demand. The temporary directory is chowned to that user, and when
``base_dir`` is not reachable for it (pytest's ``tmp_path`` lives below a 0700
root-owned directory) the server directory is placed in the system temp dir.
"""

from __future__ import annotations

import contextlib
import glob
import os
import pwd
import shutil
import socket
import stat
import subprocess
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

import psycopg
from psycopg import sql

# Binaries needed to run a server.
_BINARIES = ("initdb", "pg_ctl", "postgres")
# Database superuser created by initdb (independent of the OS user running it).
_SUPERUSER = "postgres"
_HOST = "127.0.0.1"
# Unprivileged OS users to run the server as when we are root, in order of preference;
# the last one is created with useradd if none of them exists.
_RUN_AS_CANDIDATES = ("nobody", "pgtest")
# Seconds to wait for initdb and for the server to accept connections.
_INITDB_TIMEOUT = 120
_START_TIMEOUT = 30
# A unix socket path ("<dir>/.s.PGSQL.<port>") must fit in sun_path (108 bytes).
_MAX_SOCKET_DIR_LEN = 80

_PG_CONF_EXTRA = """
# --- added by tests/pgserver.py: throwaway test server ---
listen_addresses = '127.0.0.1'
port = {port}
unix_socket_directories = '{socket_dir}'
fsync = off
synchronous_commit = off
full_page_writes = off
max_connections = 100
logging_collector = off
"""


def _find_bin_dir() -> Path | None:
    """Directory holding initdb, pg_ctl and postgres, or None.

    PATH is tried first; otherwise the newest /usr/lib/postgresql/<version>/bin.
    """
    found = [shutil.which(name) for name in _BINARIES]
    if all(found):
        # Resolve symlinks (e.g. /usr/local/bin/initdb -> /usr/lib/postgresql/15/bin)
        # so all three binaries come from the same installation.
        dirs = {Path(p).resolve().parent for p in found if p}
        if len(dirs) == 1:
            return dirs.pop()
        return Path(found[0]).resolve().parent if found[0] else None

    def version_key(path: str) -> tuple[int, ...]:
        version = Path(path).parent.name
        return tuple(int(part) for part in version.split(".") if part.isdigit())

    for bin_dir in sorted(glob.glob("/usr/lib/postgresql/*/bin"), key=version_key, reverse=True):
        if all(os.access(Path(bin_dir, name), os.X_OK) for name in _BINARIES):
            return Path(bin_dir)
    return None


def _privilege_tool() -> list[str] | None:
    """Command prefix (without the user name) used to drop root privileges."""
    if shutil.which("runuser"):
        return ["runuser", "-u"]
    if shutil.which("setpriv"):
        return ["setpriv"]  # completed in _as_user()
    return None


def postgres_available() -> str | None:
    """Return None if a test server can be started here, else a one-line reason."""
    if _find_bin_dir() is None:
        return (
            "PostgreSQL server binaries (initdb, pg_ctl, postgres) not found on PATH "
            "or in /usr/lib/postgresql/*/bin"
        )
    if os.geteuid() == 0:
        if _privilege_tool() is None:
            return "running as root but neither runuser nor setpriv is available"
        if not _existing_run_as_user() and not shutil.which("useradd"):
            return "running as root, no unprivileged user (nobody/pgtest) and no useradd"
    return None


def _existing_run_as_user() -> str | None:
    for name in _RUN_AS_CANDIDATES:
        with contextlib.suppress(KeyError):
            pwd.getpwnam(name)
            return name
    return None


def _run_as_user() -> str | None:
    """OS user to run the server as: None (= ourselves) unless we are root."""
    if os.geteuid() != 0:
        return None
    name = _existing_run_as_user()
    if name is not None:
        return name
    name = _RUN_AS_CANDIDATES[-1]
    result = subprocess.run(
        ["useradd", "--system", "--no-create-home", "--shell", "/usr/sbin/nologin", name],
        capture_output=True,
        text=True,
        check=False,
    )
    # Exit code 9: the user already exists (created concurrently by another worker).
    if result.returncode not in (0, 9):
        raise RuntimeError(f"useradd {name} failed: {result.stderr.strip()}")
    return name


def _as_user(user: str | None, argv: list[str]) -> list[str]:
    """Prefix argv so that it runs as user (no-op when user is None)."""
    if user is None:
        return argv
    tool = _privilege_tool()
    if tool is None:
        raise RuntimeError("running as root but neither runuser nor setpriv is available")
    if tool[0] == "runuser":
        return [*tool, user, "--", *argv]
    entry = pwd.getpwnam(user)
    return [
        "setpriv",
        f"--reuid={entry.pw_uid}",
        f"--regid={entry.pw_gid}",
        "--clear-groups",
        "--",
        *argv,
    ]


def _reachable_by(path: Path, user: str | None) -> bool:
    """True if user can traverse every ancestor directory of path."""
    if user is None:
        return True
    entry = pwd.getpwnam(user)
    for parent in path.resolve().parents:
        st = parent.stat()
        if st.st_uid == entry.pw_uid:
            ok = bool(st.st_mode & stat.S_IXUSR)
        elif st.st_gid == entry.pw_gid:
            ok = bool(st.st_mode & stat.S_IXGRP)
        else:
            ok = bool(st.st_mode & stat.S_IXOTH)
        if not ok:
            return False
    return True


def _make_root_dir(base_dir: Path, user: str | None) -> Path:
    """Create the server's private directory, owned by user.

    Prefer a directory below base_dir; fall back to the system temp dir when
    base_dir is not traversable by user or its path is too long for a unix socket.
    """
    base_dir = Path(base_dir)
    base_dir.mkdir(parents=True, exist_ok=True)
    candidates = [base_dir.resolve(), Path(tempfile.gettempdir()).resolve()]
    for base in candidates:
        if len(str(base)) + 12 > _MAX_SOCKET_DIR_LEN or not _reachable_by(base / "x", user):
            continue
        root = Path(tempfile.mkdtemp(prefix="pg-", dir=base))
        if user is not None:
            entry = pwd.getpwnam(user)
            os.chown(root, entry.pw_uid, entry.pw_gid)
        return root
    raise RuntimeError(
        f"no directory usable by {user or 'the current user'} for the PostgreSQL data "
        f"(tried {', '.join(map(str, candidates))})"
    )


def _free_port() -> int:
    """A TCP port on 127.0.0.1 that is free right now (bind to port 0)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((_HOST, 0))
        return int(sock.getsockname()[1])


def _log_tail(logfile: Path, lines: int = 30) -> str:
    try:
        return "\n".join(logfile.read_text(errors="replace").splitlines()[-lines:])
    except OSError as exc:
        return f"(no server log: {exc})"


@dataclass
class PostgresServer:
    """A running throwaway server; call stop() when done."""

    url: str  # SQLAlchemy URL of the "postgres" database
    datadir: Path
    port: int = 0
    user: str = _SUPERUSER  # database superuser
    rootdir: Path | None = None  # temp dir holding datadir, socket and log; removed by stop()
    run_as: str | None = None  # OS user running the server (None = current user)
    bin_dir: Path | None = None
    _stopped: bool = field(default=False, repr=False)

    @property
    def logfile(self) -> Path:
        return (self.rootdir or self.datadir.parent) / "server.log"

    def conninfo(self, dbname: str = "postgres") -> str:
        """libpq connection string (for psycopg.connect)."""
        return f"host={_HOST} port={self.port} user={self.user} dbname={dbname}"

    def url_for(self, dbname: str) -> str:
        return f"postgresql+psycopg://{self.user}@{_HOST}:{self.port}/{dbname}"

    def create_database(self, name: str) -> str:
        """CREATE DATABASE name and return a SQLAlchemy URL for it."""
        # CREATE DATABASE cannot run inside a transaction block, hence autocommit.
        with psycopg.connect(self.conninfo(), autocommit=True) as conn:
            conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
        return self.url_for(name)

    def restart(self, *, down_seconds: float = 0.0) -> None:
        """Stop the server (fast: connections are cut), stay down a while, start it again
        on the same port and data."""
        pg_ctl = str(self.bin_dir / "pg_ctl") if self.bin_dir else "pg_ctl"
        root = self.rootdir or self.datadir.parent
        for argv, pause in (
            ([pg_ctl, "stop", "-D", str(self.datadir), "-m", "fast", "-w"], down_seconds),
            ([pg_ctl, "start", "-D", str(self.datadir), "-l", str(self.logfile), "-w"], 0.0),
        ):
            result = subprocess.run(
                _as_user(self.run_as, argv),
                cwd=root,
                capture_output=True,
                text=True,
                check=False,
                timeout=_START_TIMEOUT + 15,
                start_new_session=True,
            )
            if result.returncode != 0:
                raise RuntimeError(f"{argv[1]} failed: {result.stderr}\n{_log_tail(self.logfile)}")
            time.sleep(pause)

    def stop(self) -> None:
        """Stop the server immediately and delete its directory (idempotent)."""
        if self._stopped:
            return
        self._stopped = True
        pg_ctl = str(self.bin_dir / "pg_ctl") if self.bin_dir else "pg_ctl"
        root = self.rootdir or self.datadir.parent
        if (self.datadir / "postmaster.pid").exists():
            subprocess.run(
                _as_user(self.run_as, [pg_ctl, "stop", "-D", str(self.datadir), "-m", "immediate"]),
                cwd=root,
                capture_output=True,
                check=False,
                timeout=60,
            )
        shutil.rmtree(root, ignore_errors=True)

    def __enter__(self) -> PostgresServer:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.stop()


def start_postgres(base_dir: Path) -> PostgresServer:
    """initdb + start a server in a fresh directory below base_dir (see module doc).

    Raises RuntimeError (with the end of the server log) if it does not start.
    """
    reason = postgres_available()
    if reason is not None:
        raise RuntimeError(reason)
    bin_dir = _find_bin_dir()
    assert bin_dir is not None
    user = _run_as_user()
    root = _make_root_dir(base_dir, user)
    datadir = root / "data"
    logfile = root / "server.log"
    # Run with a cwd the unprivileged user can access (pg_ctl/initdb call getcwd()).
    env = {**os.environ, "LC_ALL": "C", "LANG": "C"}
    env.pop("PGDATA", None)

    def run(argv: list[str], timeout: float) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            _as_user(user, argv),
            cwd=root,
            env=env,
            capture_output=True,
            text=True,
            check=False,
            timeout=timeout,
            # New session: Ctrl-C on the test run does not hit the postmaster first.
            start_new_session=True,
        )

    try:
        init = run(
            [
                str(bin_dir / "initdb"),
                "-D",
                str(datadir),
                "-U",
                _SUPERUSER,
                "--auth=trust",
                "--encoding=UTF8",
                "--no-locale",
                "--no-sync",  # nothing to be durable about
                "--no-instructions",
            ],
            _INITDB_TIMEOUT,
        )
        if init.returncode != 0:
            raise RuntimeError(
                f"initdb failed (exit {init.returncode}):\n{init.stdout}\n{init.stderr}".rstrip()
            )
        conf = datadir / "postgresql.conf"
        base_conf = conf.read_text()
        # Retry a couple of times: the free port may be grabbed by someone else
        # between _free_port() and the server binding it.
        for attempt in range(3):
            port = _free_port()
            conf.write_text(base_conf + _PG_CONF_EXTRA.format(port=port, socket_dir=root))
            started = time.monotonic()
            result = run(
                [
                    str(bin_dir / "pg_ctl"),
                    "start",
                    "-D",
                    str(datadir),
                    "-l",
                    str(logfile),
                    "-w",  # wait until the server accepts connections
                    "-t",
                    str(_START_TIMEOUT),
                    "-s",
                ],
                _START_TIMEOUT + 15,
            )
            if result.returncode == 0:
                break
            tail = _log_tail(logfile)
            # Make sure a half-started server does not linger before retrying.
            if (datadir / "postmaster.pid").exists():
                run([str(bin_dir / "pg_ctl"), "stop", "-D", str(datadir), "-m", "immediate"], 30)
            if attempt == 2 or "could not bind" not in tail:
                raise RuntimeError(
                    f"PostgreSQL did not start within {time.monotonic() - started:.1f}s "
                    f"(pg_ctl exit {result.returncode}): {result.stderr.strip()}\n"
                    f"--- server log tail ({logfile}) ---\n{tail}"
                )
    except BaseException:
        # Never leave a (half-)started server or its files behind.
        if (datadir / "postmaster.pid").exists():
            with contextlib.suppress(Exception):
                run([str(bin_dir / "pg_ctl"), "stop", "-D", str(datadir), "-m", "immediate"], 30)
        shutil.rmtree(root, ignore_errors=True)
        raise

    server = PostgresServer(
        url="",
        datadir=datadir,
        port=port,
        rootdir=root,
        run_as=user,
        bin_dir=bin_dir,
    )
    server.url = server.url_for("postgres")
    return server
