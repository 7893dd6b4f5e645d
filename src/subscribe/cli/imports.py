"""`subscribe import`: other tools' exports, their statuses honoured."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from .app import _deliver_messages, _engine, _mail_settings, app, now, warn

if TYPE_CHECKING:
    from subscribe.readers.imports import ImportReport

SHOWN_PROBLEMS = 50
FORMATS_HELP = (
    "Override the format found from the header row: subscribe, mailchimp, ghost, substack, "
    "listmonk, buttondown, beehiiv, kit, mailerlite, brevo, mailjet, mailpoet, csv (any file "
    "with an email column), addresses (one per line)."
)


@app.command("import")
def import_(
    file: Annotated[
        Path, typer.Argument(metavar="FILE", help="An export of this or another tool (CSV).")
    ],
    confirmed: Annotated[
        bool,
        typer.Option(
            "--confirmed",
            help="Readers the file calls subscribed are imported confirmed (you hold their "
            "consent). People who left stay unsubscribed, undeliverable ones bounced.",
        ),
    ] = False,
    no_confirmation_email: Annotated[
        bool,
        typer.Option(
            "--no-confirmation-email",
            help="Import pending readers without emailing them (they can confirm on the form).",
        ),
    ] = False,
    format: Annotated[str | None, typer.Option("--format", help=FORMATS_HELP)] = None,
    encoding: Annotated[
        str | None,
        typer.Option("--encoding", help="The file's encoding, when the guess is wrong."),
    ] = None,
    dry_run: Annotated[
        bool,
        typer.Option(
            "--dry-run", help="Show the format, the columns used and the counts; store nothing."
        ),
    ] = False,
) -> None:
    """Import readers from an export: ours, Mailchimp (a CSV or its ZIP), Ghost, Substack,
    listmonk, Buttondown, beehiiv, Kit, MailerLite, Brevo, Mailjet, MailPoet, any CSV with
    an email column (EmailOctopus, Sendy, Campaign Monitor...), or one address per line.

    The file is read to its end before anything is stored. Without --confirmed every new
    reader is pending and gets a confirmation email.

    Examples:

    \b
      subscribe import subscribed_members_export.csv --dry-run
      subscribe import readers.csv --confirmed
    """
    from subscribe.readers import imports

    settings = _mail_settings()
    engine = _engine(settings)
    report = imports.import_csv(
        engine,
        settings,
        path=file,
        confirmed=confirmed,
        now=now(),
        confirmation_emails=not no_confirmation_email,
        format=format,
        encoding=encoding,
        dry_run=dry_run,
    )
    if report.encoding_note:
        warn(f"{file}: {report.encoding_note}")
    _print_problems(report)
    if dry_run:
        typer.echo(f"format: {report.format} ({report.title})")
        for line in report.mapping:
            typer.echo(f"  {line}")
    typer.echo(_summary(report))
    if report.confirmations_queued:
        trouble = _deliver_messages(settings, engine)
        count = report.confirmations_queued
        typer.echo(
            f"confirmation emails: {count} queued; the next `subscribe serve`, `worker` or "
            f"`resume` sends what is left ({trouble})"
            if trouble
            else f"confirmation emails: {count} sent"
        )


def _print_problems(report: ImportReport) -> None:
    for kind, problems in (("skipped", report.invalid), ("warning", report.warnings)):
        for line, message in problems[:SHOWN_PROBLEMS]:
            warn(f"line {line}: {message}")
        if len(problems) > SHOWN_PROBLEMS:
            warn(f"... and {len(problems) - SHOWN_PROBLEMS} more ({kind})")


def _summary(report: ImportReport) -> str:
    verb = "would import" if report.dry_run else "imported"
    statuses = ", ".join(f"{status} {n}" for status, n in sorted(report.imported.items()) if n)
    parts = [f"{verb} {report.added}" + (f" ({statuses})" if statuses else "")]
    parts.append(f"already present {report.already_present}")
    if report.departed:
        left = "would be unsubscribed" if report.dry_run else "unsubscribed"
        parts.append(f"{left} as the source says they left {report.departed}")
    parts.append(f"suppressed (removed earlier) {report.suppressed}")
    parts.append(f"skipped {len(report.invalid)}")
    return ", ".join(parts)
