"""The engine, schema migrations and the subscriber/post queries.

Query functions take the session (or connection) first and everything else by keyword.
Lists are walked with keyset pagination: a million subscribers never sit in memory at once.
The delivery ledger's queries live in ``ledger.py``.
"""

from __future__ import annotations

import functools
import re
import threading
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection, Engine
from sqlmodel import Session, col, func, select

from subscribe.errors import ConfigError

from .models import (
    FeedEntry,
    Post,
    Subscriber,
    SubscriberStatus,
    Suppression,
    UTCDateTime,
    subscriber_table,
)

MIGRATIONS = Path(__file__).parent / "migrations"
SQLITE_BUSY_TIMEOUT_MS = 30_000


def make_engine(url: str) -> Engine:
    try:
        parsed = sa.engine.make_url(url)
    except sa.exc.ArgumentError:
        raise ConfigError(f"SUBSCRIBE_DATABASE_URL: not a database URL: {url!r}") from None
    if parsed.get_backend_name() == "sqlite":
        return _sqlite_engine(url)
    if parsed.get_backend_name() == "postgresql":
        # A database host that stops answering must not hang a page or a run for minutes.
        return sa.create_engine(url, pool_pre_ping=True, connect_args={"connect_timeout": 10})
    raise ConfigError(
        "SUBSCRIBE_DATABASE_URL: only sqlite:/// and postgresql+psycopg:// are supported"
    )


def _sqlite_engine(url: str) -> Engine:
    engine = sa.create_engine(url, connect_args={"check_same_thread": False, "timeout": 30})

    @sa.event.listens_for(engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: Any) -> None:
        # We issue BEGIN ourselves (below), so the driver must not start transactions.
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA synchronous=NORMAL")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.execute(f"PRAGMA busy_timeout={SQLITE_BUSY_TIMEOUT_MS}")
        cursor.close()

    gate = _write_gate(url)

    @sa.event.listens_for(engine, "begin")
    def _on_begin(connection: Connection) -> None:
        # Claims take the write lock up front (BEGIN IMMEDIATE): two senders racing for the
        # same rows then queue on the busy timeout instead of failing on lock upgrade.
        immediate = connection.get_execution_options().get("immediate", False)
        if immediate:
            connection.info["gated"] = gate.acquire(timeout=SQLITE_BUSY_TIMEOUT_MS / 1000)
        try:
            connection.exec_driver_sql("BEGIN IMMEDIATE" if immediate else "BEGIN")
        except BaseException:
            _open_gate(connection, gate)
            raise

    @sa.event.listens_for(engine, "commit")
    @sa.event.listens_for(engine, "rollback")
    def _on_end(connection: Connection) -> None:
        _open_gate(connection, gate)

    return engine


# Writers of one process queue on a lock of their own before BEGIN IMMEDIATE. SQLite's busy
# handler polls, sleeping up to 100 ms between tries, so sixteen sign-ups waiting on it
# took turns slowly (p99 of seconds); a lock hands over at once. Other processes still wait
# on SQLite's own busy timeout. One gate per database file, shared by this process's
# engines; a thread that already holds it (a write inside a write) waits out the timeout
# and then goes on to SQLite, as before.
_write_gates: dict[str, threading.Lock] = {}
_write_gates_lock = threading.Lock()


def _write_gate(url: str) -> threading.Lock:
    database = sa.engine.make_url(url).database or ""
    key = str(Path(database).resolve()) if database not in ("", ":memory:") else url
    with _write_gates_lock:
        return _write_gates.setdefault(key, threading.Lock())


def _open_gate(connection: Connection, gate: threading.Lock) -> None:
    if connection.info.pop("gated", False):
        gate.release()


@contextmanager
def sqlite_write_gate(engine: Engine) -> Iterator[None]:
    """Hold the process's write gate around writes that do not go through BEGIN IMMEDIATE
    (the ledger's raw group commits); on PostgreSQL it does nothing."""
    if engine.dialect.name != "sqlite":
        yield
        return
    gate = _write_gate(str(engine.url))
    acquired = gate.acquire(timeout=SQLITE_BUSY_TIMEOUT_MS / 1000)
    try:
        yield
    finally:
        if acquired:
            gate.release()


@contextmanager
def write_session(engine: Engine) -> Iterator[Session]:
    """A session whose transactions take SQLite's write lock up front (BEGIN IMMEDIATE).

    Use cases read, then write: under a deferred BEGIN two processes doing that at once
    (the web app and a CLI command, say) can fail with "database is locked" instead of
    waiting their turn. PostgreSQL ignores the option.
    """
    connection = engine.connect().execution_options(immediate=True)
    with connection, Session(bind=connection) as session:
        yield session


@functools.cache
def placeholders(dialect: str, template: str) -> str:
    # Named parameters: sqlite3 takes :name, psycopg %(name)s.
    style = ":{}" if dialect == "sqlite" else "%({})s"
    names = re.findall(r"\{(\w+)\}", template)
    return template.format(**{name: style.format(name) for name in names})


def driver_sql(connection: Connection, template: str) -> str:
    """SQL written with {name} placeholders, in the connection's driver's own style.

    For the few statements on hot paths that run through the driver directly."""
    return placeholders(connection.dialect.name, template)


def pipelined(
    connection: Connection, statement: str, rows: Sequence[Mapping[str, object]]
) -> list[tuple[object, ...] | None]:
    """PostgreSQL: one statement for each row of parameters, sent together (psycopg's
    pipelined executemany: one round trip, not one a row), each row's first result row
    (or None) back in order. The statement is in the driver's style (``driver_sql``)."""
    if not rows:
        return []
    dbapi_error = connection.dialect.loaded_dbapi.Error
    cursor = connection.connection.cursor()
    try:
        cursor.executemany(statement, rows, returning=True)
        found = []
        while True:
            found.append(cursor.fetchone())
            if not cursor.nextset():
                break
        return found
    except dbapi_error as exc:
        # As SQLAlchemy would raise it: callers (and the pool, for a lost connection)
        # see sqlalchemy.exc errors whichever way a statement went.
        gone = connection.dialect.is_disconnect(exc, connection.connection, cursor)
        if gone:
            connection.invalidate(exc)
        raise sa.exc.DBAPIError.instance(
            statement, None, exc, dbapi_error, connection_invalidated=gone
        ) from exc
    finally:
        cursor.close()


def driver_time(connection: Connection, value: datetime) -> object:
    """A timestamp as the driver takes it for our UTC columns (SQLite: naive UTC)."""
    return driver_time_converter(connection)(value)


def driver_time_converter(connection: Connection) -> Callable[[datetime], object]:
    """``driver_time`` for one connection's dialect, looked up once (an import converts
    three timestamps a row: building the processor each time cost 6 us)."""
    if connection.dialect.name == "sqlite":
        return _sqlite_time
    process = UTCDateTime().bind_processor(connection.dialect)
    return process if process else lambda value: value


def _sqlite_time(value: datetime) -> str:
    """What UTCDateTime and sqlite3's adapter make of a time, at a third of their cost."""
    if value.tzinfo is not UTC:
        if value.tzinfo is None:
            raise ValueError("naive datetime given to a UTC column")
        value = value.astimezone(UTC)
    return str(value)[:-6]  # "2019-03-14 17:22:05[.123456]" without its "+00:00"


def is_sqlite(bind: Engine | Connection | Session) -> bool:
    dialect = bind.get_bind().dialect if isinstance(bind, Session) else bind.dialect
    return dialect.name == "sqlite"


# -- migrations ---------------------------------------------------------------------------


# Alembic costs ~0.2 s to import, more than the rest of a command like `stats`: it is
# imported only to migrate. Whether that is needed is one query and a directory listing.


def _alembic_config(connection: Connection) -> Any:
    from alembic.config import Config

    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    config.attributes["connection"] = connection
    return config


def shipped_head() -> str:
    """The newest migration shipped: revisions are numbered, and each file is named after
    its revision (``0003_partial_delivery_indexes.py``); a test holds Alembic to it."""
    return max(path.name.split("_", 1)[0] for path in (MIGRATIONS / "versions").glob("[0-9]*.py"))


def current_revision(engine: Engine) -> tuple[str | None, str]:
    """(revision in the database, newest revision shipped)."""
    with engine.connect() as connection:
        current = None
        if sa.inspect(connection).has_table("alembic_version"):
            current = connection.exec_driver_sql("SELECT version_num FROM alembic_version").scalar()
    return current, shipped_head()


def upgrade(engine: Engine) -> None:
    from alembic import command

    with engine.begin() as connection:
        command.upgrade(_alembic_config(connection), "head")


def open_store(url: str, *, auto_upgrade: bool = True) -> Engine:
    """The engine, with the schema brought up to date when that is safe to do unasked.

    A fresh database (any kind) and SQLite files are upgraded in place; a PostgreSQL
    database shared with other machines waits for an explicit ``subscribe db upgrade``.
    """
    engine = make_engine(url)
    try:
        current, head = current_revision(engine)
    except sa.exc.DatabaseError as exc:  # unreachable, or a file that is not SQLite
        raise ConfigError(f"SUBSCRIBE_DATABASE_URL: cannot open the database: {exc.orig}") from None
    if current != head:
        if auto_upgrade and (current is None or is_sqlite(engine)):
            upgrade(engine)
        else:
            raise ConfigError("the database schema is out of date: run `subscribe db upgrade`")
    return engine


def insert_ignoring_duplicates(bind: Engine | Connection | Session, table: sa.Table) -> Any:
    """An INSERT that skips rows hitting a unique key (both dialects spell it differently)."""
    # Imported here: the PostgreSQL dialect costs a SQLite-only command ~30 ms to load.
    if is_sqlite(bind):
        from sqlalchemy.dialects import sqlite as dialect
    else:
        from sqlalchemy.dialects import postgresql as dialect
    return dialect.insert(table).on_conflict_do_nothing()


# -- subscribers --------------------------------------------------------------------------


def subscriber_by_key(session: Session, *, email_key: str) -> Subscriber | None:
    return session.exec(select(Subscriber).where(Subscriber.email_key == email_key)).first()


def iter_subscribers(
    session: Session, *, status: SubscriberStatus | None = None, page_size: int = 1000
) -> Iterator[Subscriber]:
    """Every subscriber in id order, a page at a time (keyset pagination, no OFFSET)."""
    last_id = 0
    while True:
        query = select(Subscriber).where(col(Subscriber.id) > last_id)
        if status is not None:
            query = query.where(Subscriber.status == status)
        page = session.exec(query.order_by(col(Subscriber.id)).limit(page_size)).all()
        if not page:
            return
        yield from page
        last_id = page[-1].id or 0
        session.expunge_all()  # keep memory flat on long walks


def count_by_status(engine: Engine) -> dict[str, int]:
    # Core, not the ORM: `stats` makes no other ORM query, and the first one configures
    # every mapper (~15 ms of a command that should answer at once).
    column = subscriber_table.c.status
    with engine.connect() as connection:
        rows = connection.execute(sa.select(column, sa.func.count()).group_by(column)).all()
    counts = {status.value: 0 for status in SubscriberStatus}
    counts.update({str(status): n for status, n in rows})
    return counts


def count_confirmed(session: Session) -> int:
    query = select(func.count()).where(Subscriber.status == SubscriberStatus.CONFIRMED)
    return session.exec(query).one()


def is_suppressed(session: Session, *, address_hashes: Sequence[str]) -> bool:
    query = select(Suppression.id).where(col(Suppression.address_hash).in_(address_hashes))
    return session.exec(query).first() is not None


# -- posts and feeds ----------------------------------------------------------------------


def post_by_key(session: Session, *, key: str) -> Post | None:
    return session.exec(select(Post).where(Post.key == key)).first()


def latest_posts(session: Session, *, limit: int = 5) -> Sequence[Post]:
    query = select(Post).order_by(col(Post.published_at).desc(), col(Post.id).desc())
    return session.exec(query.limit(limit)).all()


def seen_entry_keys(session: Session, *, feed: str) -> set[str]:
    return set(session.exec(select(FeedEntry.entry_key).where(FeedEntry.feed == feed)).all())


def mark_entries_seen(session: Session, *, feed: str, keys: Sequence[str], now: datetime) -> None:
    table: sa.Table = FeedEntry.__table__  # type: ignore[attr-defined]
    rows = [{"feed": feed, "entry_key": key, "seen_at": now} for key in keys]
    if rows:
        session.execute(insert_ignoring_duplicates(session, table), rows)
