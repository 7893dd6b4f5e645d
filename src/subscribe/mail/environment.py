"""The Jinja2 environment of emails and pages: the site's templates first, then ours."""

from __future__ import annotations

from pathlib import Path

import jinja2


def _shipped_templates() -> Path:
    """``templates/`` inside an installed wheel, else at the root of the checkout."""
    package = Path(__file__).resolve().parent.parent
    installed = package / "templates"
    return installed if installed.is_dir() else package.parent.parent / "templates"


SHIPPED_TEMPLATES = _shipped_templates()


def make_environment(templates_dir: Path | None) -> jinja2.Environment:
    """Site templates first, then the shipped ones; HTML autoescaped; typos fail loudly."""
    loaders: list[jinja2.BaseLoader] = []
    if templates_dir:
        loaders.append(jinja2.FileSystemLoader(str(templates_dir)))
    loaders.append(jinja2.FileSystemLoader(str(SHIPPED_TEMPLATES)))
    return jinja2.Environment(
        loader=jinja2.ChoiceLoader(loaders),
        autoescape=jinja2.select_autoescape(
            enabled_extensions=("html", "htm", "xml"),
            default_for_string=False,
            default=False,
        ),
        undefined=jinja2.StrictUndefined,
        keep_trailing_newline=True,
    )
