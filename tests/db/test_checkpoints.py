"""serve's WAL checkpoints: its connections never checkpoint in a commit; a thread does."""

from __future__ import annotations

from pathlib import Path

from webserver import wait_for

from subscribe.db import store
from subscribe.db.checkpoints import Checkpointer


def _wal_pages(path: Path) -> int:
    wal = path.with_name(path.name + "-wal")
    return wal.stat().st_size // 4096 if wal.exists() else 0


def _write(engine: object, rows: int) -> None:
    with store.write_session(engine) as session:  # type: ignore[arg-type]
        connection = session.connection()
        for n in range(rows):
            connection.exec_driver_sql(
                "INSERT INTO rateevent (bucket, at) VALUES (?, '2026-12-01 00:00:00')",
                (f"b{n}" + "x" * 150,),
            )
        session.commit()


def test_commits_leave_the_log_to_the_checkpoint_thread(tmp_path: Path) -> None:
    path = tmp_path / "subscribe.db"
    engine = store.open_store(f"sqlite:///{path}")
    checkpointer = Checkpointer(engine, interval=3600)  # started later: nothing runs yet
    try:
        with engine.connect() as connection:
            assert connection.exec_driver_sql("PRAGMA wal_autocheckpoint").scalar() == 0
        for _ in range(20):
            _write(engine, 500)
        # SQLite would have checkpointed at 1,000 pages; nothing did, so the log grew.
        grown = _wal_pages(path)
        assert grown > 1000
        checkpointer._interval = 0.05
        checkpointer.start()
        wait_for(lambda: checkpointer.passes >= 2, what="two checkpoint passes")
        with engine.connect() as connection:
            busy, log, done = connection.exec_driver_sql("PRAGMA wal_checkpoint(PASSIVE)").one()
        assert busy == 0 and log == done  # every frame already copied into the database
        _write(engine, 500)  # and the log is reused from its start, not grown further
        assert _wal_pages(path) <= grown
    finally:
        checkpointer.stop()
        engine.dispose()
