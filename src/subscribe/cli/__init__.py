"""The `subscribe` command: thin Typer adapters that parse options, call one use case and print.

``app`` holds the Typer app and what every command shares; each other module registers one
group of commands. Heavy libraries (the web stack, feeds, SMTP) are imported inside the
commands that need them, so `subscribe --help` and `subscribe stats` answer at once.
"""

from __future__ import annotations

from .app import app

# Imported for their commands, in the order `subscribe --help` lists them.
# isort: off
from . import readers, imports, posts, sending, digests, bounces, site, dkim, doctor  # noqa: F401
# isort: on


def main() -> None:
    app()


__all__ = ["app", "main"]
