"""Run the `subscribe` CLI in-process with settings passed through SUBSCRIBE_* variables."""

from __future__ import annotations

import pytest
from click.testing import Result
from typer.testing import CliRunner

from subscribe.cli import app
from subscribe.config import Settings


def settings_env(monkeypatch: pytest.MonkeyPatch, settings: Settings) -> None:
    """Export a Settings object the way a user would configure the CLI."""
    for name, value in settings.model_dump().items():
        if value is None:
            continue
        if hasattr(value, "get_secret_value"):
            value = value.get_secret_value()
        monkeypatch.setenv(f"SUBSCRIBE_{name.upper()}", str(value))


def run(*args: str, input: str | None = None) -> Result:
    return CliRunner().invoke(app, list(args), input=input)
