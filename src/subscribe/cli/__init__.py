"""The `subscribe` command: thin Typer adapters that parse options, call one use case and print.

``app`` holds the Typer app and what every command shares; each other module registers one
group of commands. Heavy libraries (the web stack, feeds, SMTP) are imported inside the
commands that need them, so `subscribe --help` and `subscribe stats` answer at once.
"""

from __future__ import annotations

import copy
import sys

import typer
from typer.main import get_command_name

from .app import app

# Imported for their commands, in the order `subscribe --help` lists them.
# isort: off
from . import readers, imports, posts, sending, digests, bounces, site, dkim, doctor  # noqa: F401
# isort: on


def main() -> None:
    _for_command(sys.argv[1:])()


def _for_command(args: list[str]) -> typer.Typer:
    """The app with only the command (or group) that ``args`` name, when they name one.

    Typer builds the Click command of every registered command on each run, reading each
    signature and its annotations: ~25 ms for all of them, paid again by every `stats` or
    cron `notify`. The one being run is all Click needs; anything else (no command, an
    option first, a misspelt name) gets the whole app, so help and suggestions list all.
    """
    name = args[0] if args else ""
    commands = [
        info
        for info in app.registered_commands
        if info.callback is not None
        and (info.name or get_command_name(info.callback.__name__)) == name
    ]
    groups = [info for info in app.registered_groups if info.name == name]
    if not commands and not groups:
        return app
    narrowed = copy.copy(app)
    narrowed.registered_commands, narrowed.registered_groups = commands, groups
    return narrowed


__all__ = ["app", "main"]
