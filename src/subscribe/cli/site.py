"""Running the site: serve, demo, and the database's upkeep."""

from __future__ import annotations

from typing import Annotated

import typer

from .app import _engine, _mail_settings, _settings, app, db_app


@app.command()
def serve(
    host: Annotated[str, typer.Option(help="Address to listen on.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="Port to listen on.", min=1, max=65535)] = 8000,
    dev: Annotated[
        bool, typer.Option("--dev", help="Also run the dev mailbox at /dev/mailbox.")
    ] = False,
) -> None:
    """Run the subscribe, confirm and unsubscribe pages.

    Example:

    \b
      subscribe serve --dev
    """
    from subscribe.web.serve import serve_forever

    settings = _mail_settings()
    serve_forever(settings.for_trial() if dev else settings, host=host, port=port, dev=dev)


@app.command()
def demo() -> None:
    """Show the whole flow on a throwaway database and the built-in dev mailbox.

    Example:

    \b
      subscribe demo
    """
    from .demo import run_demo

    run_demo(typer.echo)


@db_app.command("upgrade")
def db_upgrade() -> None:
    """Apply schema migrations (other commands do this by themselves on SQLite).

    Example:

    \b
      subscribe db upgrade
    """
    from subscribe.db import store

    engine = _engine(_settings(), auto_upgrade=False)
    store.upgrade(engine)
    current, _ = store.current_revision(engine)
    typer.echo(f"database schema at revision {current}")
