"""The Jinja2 environments of emails and pages: the site's templates first, then ours,
one environment per language.

Per language, a template name (``email/confirm.html``) is looked up as the site's
``email/de/confirm.html``, then the site's ``email/confirm.html``, then ours; the strings
of ours go through the language's catalog (``mail.translations``). Every template sees
``lang`` (the BCP 47 tag, for ``lang=`` and ``Content-Language``) and ``text_dir``.
"""

from __future__ import annotations

import functools
from pathlib import Path

import jinja2


def _shipped_templates() -> Path:
    """``templates/`` inside an installed wheel, else at the root of the checkout."""
    package = Path(__file__).resolve().parent.parent
    installed = package / "templates"
    return installed if installed.is_dir() else package.parent.parent / "templates"


SHIPPED_TEMPLATES = _shipped_templates()


class _LanguageFolderLoader(jinja2.FileSystemLoader):
    """A site's templates for one language: ``email/x.html`` is read from ``email/de/x.html``."""

    def __init__(self, root: Path, language: str) -> None:
        super().__init__(str(root))
        self._language = language

    def get_source(
        self, environment: jinja2.Environment, template: str
    ) -> tuple[str, str | None, object]:
        folder, slash, name = template.rpartition("/")
        localised = f"{folder}/{self._language}/{name}" if slash else f"{self._language}/{name}"
        return super().get_source(environment, localised)  # type: ignore[return-value]

    def list_templates(self) -> list[str]:
        return []


@functools.cache
def make_environment(templates_dir: Path | None, language: str = "en") -> jinja2.Environment:
    """Site templates first, then the shipped ones; HTML autoescaped; typos fail loudly.
    One environment per (templates, language), shared: rendering never changes it."""
    from .translations import text_direction, translations  # Babel: only once rendering

    loaders: list[jinja2.BaseLoader] = []
    if templates_dir:
        loaders.append(_LanguageFolderLoader(templates_dir, language))
        loaders.append(jinja2.FileSystemLoader(str(templates_dir)))
    loaders.append(jinja2.FileSystemLoader(str(SHIPPED_TEMPLATES)))
    env = jinja2.Environment(
        loader=jinja2.ChoiceLoader(loaders),
        autoescape=jinja2.select_autoescape(
            enabled_extensions=("html", "htm", "xml"),
            default_for_string=False,
            default=False,
        ),
        undefined=jinja2.StrictUndefined,
        keep_trailing_newline=True,
        extensions=["jinja2.ext.i18n"],
        # Templates are read once per process: a stat() per page and per email cost ~3% of
        # a sign-up's CPU in `serve`. A site that edits its templates restarts `serve`.
        auto_reload=False,
    )
    # Whitespace inside {% trans %} is folded, so a message wrapped over lines is one msgid.
    env.policies["ext.i18n.trimmed"] = True
    env.install_gettext_translations(  # type: ignore[attr-defined]
        translations(templates_dir, language), newstyle=True
    )
    env.globals["lang"] = language
    env.globals["text_dir"] = text_direction(language)
    return env
