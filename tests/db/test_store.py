"""The store: migrations from an empty file, SQLite pragmas, the demo on embedded defaults."""

from __future__ import annotations

import os
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest
import sqlalchemy as sa
from clihelp import run

from subscribe.db import store
from subscribe.errors import ConfigError


def test_every_command_migrates_a_fresh_sqlite_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    db = tmp_path / "fresh.db"
    monkeypatch.setenv("SUBSCRIBE_DATABASE_URL", f"sqlite:///{db}")
    result = run("stats")
    assert result.exit_code == 0, result.output
    with sqlite3.connect(db) as connection:
        tables = {row[0] for row in connection.execute("select name from sqlite_master")}
        revision = connection.execute("select version_num from alembic_version").fetchone()
        journal = connection.execute("pragma journal_mode").fetchone()[0]
    assert {"subscriber", "post", "delivery", "feedentry", "suppression"} <= tables
    assert revision == (store.shipped_head(),)
    assert journal == "wal"


def test_the_shipped_head_is_alembics_head() -> None:
    """`open_store` decides whether to migrate without importing Alembic; Alembic agrees."""
    from alembic.config import Config
    from alembic.script import ScriptDirectory

    config = Config()
    config.set_main_option("script_location", str(store.MIGRATIONS))
    assert store.shipped_head() == ScriptDirectory.from_config(config).get_current_head()


def test_the_migrations_build_the_schema_the_models_declare(database_url: str) -> None:
    """Tables, columns and indexes (the partial ones too) match; Alembic would add nothing."""
    from alembic.autogenerate import compare_metadata
    from alembic.migration import MigrationContext
    from sqlmodel import SQLModel

    from subscribe.db import models

    models.declare_partial_indexes()
    engine = store.open_store(database_url)
    try:
        with engine.connect() as connection:
            context = MigrationContext.configure(connection, opts={"compare_type": False})
            assert compare_metadata(context, SQLModel.metadata) == []
    finally:
        engine.dispose()


def test_a_file_that_is_not_sqlite_is_a_one_line_error(tmp_path: Path) -> None:
    junk = tmp_path / "junk.db"
    junk.write_bytes(b"this is a text file, not a database\n" * 100)
    with pytest.raises(ConfigError, match="cannot open the database"):
        store.open_store(f"sqlite:///{junk}")
    assert junk.read_bytes().startswith(b"this is a text file")


def test_db_upgrade_command(database_url: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SUBSCRIBE_DATABASE_URL", database_url)
    result = run("db", "upgrade")
    assert result.exit_code == 0, result.output
    head = store.shipped_head()
    assert f"revision {head}" in result.stdout
    engine = store.make_engine(database_url)
    try:
        assert store.current_revision(engine) == (head, head)
        assert "delivery" in sa.inspect(engine).get_table_names()
    finally:
        engine.dispose()


def test_sqlite_connections_wait_for_locks(sqlite_url: str) -> None:
    engine = store.open_store(sqlite_url)
    try:
        with engine.connect() as connection:
            assert connection.exec_driver_sql("pragma busy_timeout").scalar() == 30000
            assert connection.exec_driver_sql("pragma foreign_keys").scalar() == 1
    finally:
        engine.dispose()


def test_unreadable_database_is_a_one_line_error(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("SUBSCRIBE_DATABASE_URL", f"sqlite:///{tmp_path}/missing/dir/x.db")
    result = run("stats")
    assert result.exit_code == 1
    assert "cannot open the database" in result.stderr


def test_demo_runs_on_embedded_defaults(tmp_path: Path) -> None:
    """The README's first command, as a newcomer runs it: a fresh process, no settings."""
    result = subprocess.run(
        [sys.executable, "-c", "from subscribe.cli import main; main()", "demo"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=120,
        env={"PATH": "/usr/bin:/bin", "HOME": str(tmp_path)},
    )
    assert result.returncode == 0, result.stderr
    assert "sent 3, skipped 0, deferred 0, failed 0" in result.stdout
    # Four confirmations, three welcomes, three posts.
    assert "10 messages in the dev mailbox" in result.stdout
    assert "List-Unsubscribe: <http://127.0.0.1:8000/unsubscribe/" in result.stdout


def test_upgrade_keeps_the_data_of_an_older_schema(sqlite_url: str) -> None:
    from alembic import command

    engine = store.make_engine(sqlite_url)
    try:
        with engine.begin() as connection:
            command.upgrade(store._alembic_config(connection), "0001")
            connection.exec_driver_sql(
                "insert into subscriber (email, email_key, name, status, created_at,"
                " consent_source, consent_ip, consent_user_agent, confirmation_day,"
                " confirmations_that_day, bounce_count) values ('a@example.org',"
                " 'a@example.org', 'A', 'confirmed', '2026-01-01', '', '', '', '', 0, 0)"
            )
            connection.exec_driver_sql(
                "insert into post (key, title, url, summary, body_html, created_at)"
                " values ('k', 't', 'https://e.org/', '', '', '2026-01-01')"
            )
            connection.exec_driver_sql(
                "insert into delivery (post_id, subscriber_id, status, attempts, claimed_by,"
                " last_error, message_id, created_at) values (1, 1, 'ambiguous', 1, '', '',"
                " '', '2026-01-01')"
            )
    finally:
        engine.dispose()
    upgraded = store.open_store(sqlite_url)
    try:
        with upgraded.connect() as connection:
            row = connection.exec_driver_sql(
                "select status, attempts, ambiguous_count from delivery"
            ).one()
        assert tuple(row) == ("ambiguous", 1, 0)
    finally:
        upgraded.dispose()


def test_the_wheel_ships_templates_and_migrations(tmp_path: Path) -> None:
    """A built wheel must render emails and migrate a database when installed elsewhere."""
    import shutil
    import zipfile

    from conftest import require_service

    uv = shutil.which("uv")
    require_service(None if uv else "uv is not on the PATH")
    assert uv is not None
    project = Path(__file__).resolve().parents[2]
    subprocess.run(
        [uv, "build", "--wheel", "--out-dir", str(tmp_path), str(project)],
        check=True,
        capture_output=True,
        timeout=300,
    )
    [wheel] = tmp_path.glob("subscribe-*.whl")
    names = set(zipfile.ZipFile(wheel).namelist())
    for kind in ("new_post", "confirm", "welcome"):
        for suffix in ("subject.txt", "txt", "html"):
            assert f"subscribe/templates/email/{kind}.{suffix}" in names
    assert "subscribe/templates/web/subscribe.html" in names
    assert "subscribe/db/migrations/env.py" in names
    shipped = {p.name for p in (project / "src/subscribe/db/migrations/versions").glob("*.py")}
    assert {f"subscribe/db/migrations/versions/{n}" for n in shipped} <= names

    # Installed elsewhere, it finds its own templates and migrations, not the checkout's.
    venv = tmp_path / "venv"
    subprocess.run([uv, "venv", "-q", str(venv)], check=True, timeout=120)
    subprocess.run(
        [uv, "pip", "install", "-q", "--python", str(venv / "bin/python"), str(wheel)],
        check=True,
        timeout=300,
    )
    env = {
        **os.environ,
        "SUBSCRIBE_DATABASE_URL": f"sqlite:///{tmp_path / 'installed.db'}",
        "SUBSCRIBE_SECRET_KEY": "a-secret-key-for-the-wheel-test",
    }
    env.pop("VIRTUAL_ENV", None)
    where = subprocess.run(
        [str(venv / "bin/python"), "-c", _PRINT_TEMPLATES],
        check=True,
        capture_output=True,
        text=True,
        cwd=tmp_path,
        env=env,
        timeout=60,
    ).stdout.strip()
    assert Path(where).is_relative_to(venv), where

    def preview(*options: str) -> str:
        result = subprocess.run(
            [
                str(venv / "bin/subscribe"),
                "preview",
                "--title",
                "Hi",
                "--url",
                "https://b.example/",
                *options,
            ],
            capture_output=True,
            text=True,
            cwd=tmp_path,
            env=env,
            timeout=60,
        )
        assert result.returncode == 0, result.stderr
        return (tmp_path / "preview.html").read_text()

    assert "https://b.example/" in preview()
    # The catalogs travel in the wheel too, and are compiled there on first use.
    polish = preview("--language", "pl")
    assert '<html lang="pl"' in polish and "Przeczytaj" in polish


_PRINT_TEMPLATES = (
    "from subscribe.mail.environment import SHIPPED_TEMPLATES; print(SHIPPED_TEMPLATES)"
)
