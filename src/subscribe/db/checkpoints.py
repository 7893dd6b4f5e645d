"""SQLite's WAL checkpoints off the request path, for a long-running `serve`.

By default the connection whose commit takes the write-ahead log past 1,000 pages copies
the log into the database and fsyncs it, inside that commit: in `serve` that is the
sign-up writer or the outbox, and every request of the batch waits (one batch in a few
hundred took ~180 ms where the others took 8). Here the engine's connections never
checkpoint; a thread does, every half second, in PASSIVE mode, which neither waits for
nor blocks the writers. Other processes on the same file (`notify`, cron) keep SQLite's
own checkpoints, and the last connection to close folds the log in as usual.
"""

from __future__ import annotations

import sqlite3
import threading
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Engine

INTERVAL_SECONDS = 0.5


class Checkpointer:
    def __init__(self, engine: Engine, *, interval: float = INTERVAL_SECONDS) -> None:
        self._path = engine.url.database or ""
        self._interval = interval
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="wal-checkpoints", daemon=True)
        sa.event.listen(engine, "connect", _no_auto_checkpoint)
        engine.dispose()  # connections already pooled would checkpoint themselves
        self.passes = 0

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(timeout=10)

    def _run(self) -> None:
        connection = sqlite3.connect(self._path, isolation_level=None, check_same_thread=False)
        try:
            while not self._stop.wait(self._interval):
                try:
                    connection.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchall()
                    self.passes += 1
                except sqlite3.Error:  # busy or away: the next pass tries again
                    continue
        finally:
            connection.close()


def _no_auto_checkpoint(dbapi_connection: Any, _record: Any) -> None:
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA wal_autocheckpoint=0")
    cursor.close()
