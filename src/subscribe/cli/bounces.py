"""Bounce handling: read bounce messages and mark the addresses that are gone."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from subscribe.errors import SubscribeError

from .app import _engine, _settings, bounces_app, now


@bounces_app.command("process")
def bounces_process(
    mbox: Annotated[Path | None, typer.Option("--mbox", help="An mbox file of bounces.")] = None,
    maildir: Annotated[
        Path | None, typer.Option("--maildir", help="A Maildir folder of bounces.")
    ] = None,
    imap: Annotated[
        bool,
        typer.Option("--imap", help="The IMAP folder set by SUBSCRIBE_BOUNCE_IMAP_* (read-only)."),
    ] = False,
) -> None:
    """Read bounce messages (RFC 3464 and common formats) and mark bad addresses bounced.

    Bounces are matched to deliveries through the VERP return path (set
    SUBSCRIBE_BOUNCE_ADDRESS) or the original Message-ID. Nothing is deleted or moved:
    messages that are not bounces, or match nothing, are listed for a human to look at.

    Examples:

    \b
      subscribe bounces process --maildir ~/Maildir/.bounces
      subscribe bounces process --imap
    """
    import mailbox

    from subscribe.bounces.handling import process_bounces
    from subscribe.bounces.imap import iter_imap
    from subscribe.bounces.parse import iter_maildir, iter_mbox
    from subscribe.readers.tokens import tokens_for

    if [mbox is not None, maildir is not None, imap].count(True) != 1:
        raise SubscribeError("give one of --mbox FILE, --maildir DIR or --imap")
    settings = _settings()
    tokens = tokens_for(settings)
    try:
        if imap:
            messages = list(iter_imap(settings))
        elif mbox is not None:
            messages = list(iter_mbox(mbox))
        else:
            messages = list(iter_maildir(Path(str(maildir))))
    except (OSError, mailbox.Error) as exc:
        raise SubscribeError(f"cannot read {mbox or maildir}: {exc}") from None
    run = process_bounces(_engine(settings), settings, tokens, messages, now=now())
    for address in run.newly_bounced:
        typer.echo(f"bounced: {address}")
    for key in run.not_bounces:
        typer.echo(f"left in place, not a bounce: {key}")
    for key in run.unmatched:
        typer.echo(f"left in place, matches no delivery: {key}")
    typer.echo(
        f"{len(messages)} messages: {run.hard} hard and {run.soft} soft bounces, "
        f"{len(run.newly_bounced)} subscribers marked bounced, "
        f"{len(run.not_bounces) + len(run.unmatched)} left for review"
    )
