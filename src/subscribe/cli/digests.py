"""`subscribe digest`: queue this period's digests and send them."""

from __future__ import annotations

from typing import Annotated

import typer

from .app import _engine, _settings, app, now
from .sending import finish, send_pass


@app.command()
def digest(
    dry_run: Annotated[
        bool, typer.Option("--dry-run", help="Say who would get a digest; send nothing.")
    ] = False,
) -> None:
    """Send daily and weekly readers their digest of the period, once per period.

    A digest lists the posts announced since the reader's last one that match their
    categories, newest first. Run it from cron after SUBSCRIBE_DIGEST_HOUR (`worker` does
    it by itself); running it again in the same period sends nothing new, and a killed
    run is finished by the next `digest` or `resume`.

    Example:

    \b
      subscribe digest --dry-run
      subscribe digest
    """
    from subscribe.posts.digests import digest as run_digest

    settings = _settings()
    engine = _engine(settings)
    outcome = run_digest(
        engine,
        settings,
        now=now,
        dry_run=dry_run,
        send=lambda: send_pass(settings, engine),
    )
    for batch in outcome.batches:
        verb = "would get" if dry_run else "queued for"
        typer.echo(f"{batch.period}: {verb} {batch.readers} readers")
    if outcome.report is not None:
        finish(outcome.report, engine)
