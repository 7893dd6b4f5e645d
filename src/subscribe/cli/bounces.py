"""Bounce handling: judge bounce messages by their reason, and mark the addresses that are gone."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Annotated

import typer

from subscribe.errors import SubscribeError

from .app import _engine, _settings, bounces_app, now, warn

MboxOption = Annotated[Path | None, typer.Option("--mbox", help="An mbox file of bounces.")]
MaildirOption = Annotated[
    Path | None, typer.Option("--maildir", help="A Maildir folder of bounces.")
]


def _read_box(mbox: Path | None, maildir: Path | None) -> list[tuple[str, bytes]]:
    import mailbox

    from subscribe.bounces.parse import iter_maildir, iter_mbox

    try:
        if mbox is not None:
            return list(iter_mbox(mbox))
        if maildir is not None:
            return list(iter_maildir(Path(str(maildir))))
    except (OSError, mailbox.Error) as exc:
        raise SubscribeError(f"cannot read {mbox or maildir}: {exc}") from None
    return []


@bounces_app.command("process")
def bounces_process(
    mbox: MboxOption = None,
    maildir: MaildirOption = None,
    imap: Annotated[
        bool,
        typer.Option("--imap", help="The IMAP folder set by SUBSCRIBE_BOUNCE_IMAP_* (read-only)."),
    ] = False,
) -> None:
    """Read bounces and complaints, judge each bounce by its reason, and act on the readers.

    Bounces are matched to deliveries through the VERP return path (set
    SUBSCRIBE_BOUNCE_ADDRESS) or the original Message-ID. An address that is gone marks the
    reader bounced at once; a full or suspended mailbox counts (5 in a row, less than 30
    days apart and with no delivery in between, mark the reader bounced); a refusal about
    the sender (blocklists, SPF/DKIM/DMARC, spam verdicts...) never touches the reader and
    is listed by reason and domain. A complaint (a feedback-loop "this is spam" report)
    unsubscribes the reader. Nothing is deleted or moved: messages that are not bounces, or
    match nothing, are listed for a human to look at.

    Examples:

    \b
      subscribe bounces process --maildir ~/Maildir/.bounces
      subscribe bounces process --imap
    """
    from subscribe.bounces.handling import process_bounces
    from subscribe.bounces.imap import iter_imap
    from subscribe.readers.tokens import tokens_for

    if [mbox is not None, maildir is not None, imap].count(True) != 1:
        raise SubscribeError("give one of --mbox FILE, --maildir DIR or --imap")
    settings = _settings()
    tokens = tokens_for(settings)
    messages = list(iter_imap(settings)) if imap else _read_box(mbox, maildir)
    run = process_bounces(_engine(settings), settings, tokens, messages, now=now())
    for address in run.newly_bounced:
        typer.echo(f"bounced: {address}")
    for address in run.complaints:
        typer.echo(f"unsubscribed after a complaint: {address}")
    for key in run.not_bounces:
        typer.echo(f"left in place, not a bounce: {key}")
    for key in run.unmatched:
        typer.echo(f"left in place, matches no delivery: {key}")
    if run.sender_refusals:
        typer.echo("refused for reasons about the sender (fix the sending setup, not the list):")
    for (reason, domain), n in sorted(run.sender_refusals.items(), key=lambda i: (-i[1], i[0])):
        typer.echo(f"  {n} x {reason} at {domain}")
    typer.echo(
        f"{len(messages)} messages: {run.removals} addresses gone, {run.counted} counted, "
        f"{run.ignored} about the sender, {len(run.complaints)} complaints; "
        f"{len(run.newly_bounced)} subscribers marked bounced, "
        f"{len(run.not_bounces) + len(run.unmatched)} left for review"
    )


@bounces_app.command("classify")
def bounces_classify(
    files: Annotated[
        list[Path] | None, typer.Argument(help="Messages to judge, one per file (.eml).")
    ] = None,
    json_lines: Annotated[
        bool, typer.Option("--json", help="One JSON object per bounced recipient.")
    ] = False,
    mbox: MboxOption = None,
    maildir: MaildirOption = None,
) -> None:
    """Show what the rules make of bounce messages; needs no database and changes nothing.

    One line per bounced recipient: file, address, kind (hard/soft), status, reason and
    action (remove, count or ignore). With --json, one JSON object per line with exactly
    those keys. Complaints and messages that are not bounces are noted on stderr.

    Examples:

    \b
      subscribe bounces classify bounce.eml
      subscribe bounces classify --json --maildir ~/Maildir/.bounces
    """
    import json

    from subscribe.bounces.classify import classify

    if not files and mbox is None and maildir is None:
        raise SubscribeError("give one or more FILEs, --mbox FILE or --maildir DIR")
    messages = [*_read_files(files or []), *_read_box(mbox, None), *_read_box(None, maildir)]
    for verdict in classify(messages, bounce_address=_bounce_address()):
        if verdict.note:
            warn(f"{verdict.file}: {verdict.note}")
        for row in verdict.rows:
            if json_lines:
                typer.echo(json.dumps(row.as_dict(), ensure_ascii=False))
            else:
                fields = (row.address or "-", row.kind, row.status or "-", row.reason, row.action)
                typer.echo("\t".join((row.file, *fields)))


def _bounce_address() -> str:
    """SUBSCRIBE_BOUNCE_ADDRESS, so that classify judges as `bounces process` does (VERP
    tokens, a refusal naming our own return path); "" when the settings do not load: a
    dry run needs none of the rest."""
    from subscribe.config import load_settings
    from subscribe.errors import ConfigError

    try:
        return load_settings().bounce_address
    except ConfigError:
        return ""


def _read_files(files: list[Path]) -> Iterator[tuple[str, bytes]]:
    for path in files:
        try:
            yield str(path), path.read_bytes()
        except OSError as exc:
            raise SubscribeError(f"cannot read {path}: {exc.strerror or exc}") from None
