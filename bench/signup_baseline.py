"""The sign-up baseline of ``signup.py``: the same stack doing one INSERT per request.

FastAPI + uvicorn + SQLAlchemy on a SQLite file in WAL mode (or a PostgreSQL database):
``POST /subscribe`` reads the form's ``email`` and inserts it, nothing else (no validation,
no email, no rate limit). What ``subscribe serve`` does on top of that is what the ratio
measures.

    python bench/signup_baseline.py --port 8001 --database /tmp/baseline.db
    python bench/signup_baseline.py --port 8001 --database postgresql+psycopg://...
"""

from __future__ import annotations

import argparse

import sqlalchemy as sa
import uvicorn
from fastapi import FastAPI, Request
from fastapi.responses import HTMLResponse
from starlette.concurrency import run_in_threadpool


def make_app(database: str) -> FastAPI:
    if "://" in database:
        engine = sa.create_engine(database, pool_size=20)
    else:
        engine = sa.create_engine(
            f"sqlite:///{database}", connect_args={"check_same_thread": False}
        )

        @sa.event.listens_for(engine, "connect")
        def _wal(dbapi_connection: object, _record: object) -> None:
            cursor = dbapi_connection.cursor()  # type: ignore[attr-defined]
            cursor.execute("PRAGMA journal_mode=WAL")
            cursor.execute("PRAGMA busy_timeout=30000")
            cursor.close()

    metadata = sa.MetaData()
    table = sa.Table(
        "signup",
        metadata,
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("email", sa.String(320), unique=True),
    )
    metadata.create_all(engine)
    app = FastAPI()

    def insert(email: str) -> None:
        with engine.begin() as connection:
            connection.execute(table.insert().values(email=email))

    @app.post("/subscribe")
    async def subscribe(request: Request) -> HTMLResponse:
        form = await request.form()
        await run_in_threadpool(insert, str(form.get("email", "")))
        return HTMLResponse("<p>Check your inbox.</p>")

    return app


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--database", required=True)
    args = parser.parse_args()
    uvicorn.run(make_app(args.database), host="127.0.0.1", port=args.port, log_level="warning")


if __name__ == "__main__":
    main()
