"""`subscribe dkim keygen`: a new DKIM private key, and the DNS record that publishes it."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from .app import _Group, _settings, _Typer, app

dkim_app = _Typer(cls=_Group, help="DKIM signing keys.", no_args_is_help=True)
app.add_typer(dkim_app, name="dkim")


@dkim_app.command("keygen")
def keygen(
    selector: Annotated[
        str | None,
        typer.Option("--selector", help="The selector (default: SUBSCRIBE_DKIM_SELECTOR, or s1)."),
    ] = None,
    out: Annotated[
        Path | None,
        typer.Option("--out", help="Where to write the key (default: dkim-SELECTOR.pem)."),
    ] = None,
    ed25519: Annotated[
        bool,
        typer.Option("--ed25519", help="An ed25519 key (the optional second signature)."),
    ] = False,
) -> None:
    """Write a new private key (mode 0600, never over an existing file) and print the DNS
    TXT record to publish. RSA 2048-bit unless --ed25519.

    Example:

    \b
      subscribe dkim keygen --selector news2026
      # publish the record it prints, then set
      # SUBSCRIBE_DKIM_SELECTOR=news2026 SUBSCRIBE_DKIM_PRIVATE_KEY_FILE=dkim-news2026.pem
    """
    from subscribe.config import load_settings
    from subscribe.mail import dkim_keys

    settings = load_settings(dkim_selector=selector) if selector else _settings()
    chosen = settings.dkim_selector or "s1"
    if ed25519:
        chosen = settings.dkim_ed25519_selector or f"{chosen}-ed25519"
    path = out or Path(f"dkim-{chosen}.pem")
    key = dkim_keys.generate_key("ed25519" if ed25519 else "rsa")
    dkim_keys.write_private_key(path, key)
    name = f"{chosen}._domainkey.{settings.dkim_signing_domain}"
    variable = "DKIM_ED25519_KEY_FILE" if ed25519 else "DKIM_PRIVATE_KEY_FILE"
    typer.echo(f"wrote {path} (keep it secret; SUBSCRIBE_{variable}={path})")
    typer.echo(f"publish this TXT record at {name}:")
    typer.echo(dkim_keys.zone_line(name, dkim_keys.record_value(key)))
