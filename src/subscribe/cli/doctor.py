"""`subscribe doctor`: one line per deliverability check; exit 1 on any failure."""

from __future__ import annotations

from typing import Annotated

import typer

from .app import _settings, app


@app.command("doctor")
def doctor(
    send_to: Annotated[
        str,
        typer.Option("--send-to", metavar="ADDRESS", help="Also send one sample email there."),
    ] = "",
) -> None:
    """Check what decides whether mail lands: settings (secret key, BASE_URL, MAIL_FROM,
    bounces, DKIM key), the relay (STARTTLS and its certificate, AUTH, PIPELINING, SIZE, a
    message of our size) and DNS (MX, SPF, DMARC, the published DKIM key, reverse DNS of
    the relay). One line each, ok / warn / fail with the fix; exit 1 on any fail.

    Example:

    \b
      subscribe doctor
      subscribe doctor --send-to me@example.org
      SUBSCRIBE_DNS_RESOLVER=127.0.0.1:5353 subscribe doctor
    """
    import asyncio

    from subscribe.doctor import Status, run_checks

    checks = asyncio.run(run_checks(_settings(), send_to=send_to.strip()))
    for check in checks:
        typer.echo(check.line())
    failed = sum(c.status == Status.FAIL for c in checks)
    warned = sum(c.status == Status.WARN for c in checks)
    typer.echo(f"{len(checks)} checks: {failed} failed, {warned} warnings")
    if failed:
        raise typer.Exit(1)
