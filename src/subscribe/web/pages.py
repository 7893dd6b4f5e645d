"""Render the web pages from ``templates/web/`` (a site's ``SUBSCRIBE_TEMPLATES_DIR`` first),
in the visitor's language.

The same Jinja2 environments as the emails: autoescaped HTML, and ``StrictUndefined``, so
a template that names a variable the page does not pass fails a test instead of rendering
a blank. A page is in the language a route names (the reader's own, behind a link of
ours), else in the request's (``RequestLanguage``: ``?lang=``, then Accept-Language),
else the site's.
"""

from __future__ import annotations

import urllib.parse
from collections.abc import Mapping
from contextvars import ContextVar
from typing import Any

from fastapi.responses import HTMLResponse
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from subscribe.config import Settings
from subscribe.mail.environment import make_environment
from subscribe.mail.translations import locale, translations
from subscribe.readers import languages

# The language the request asked for ("" for none on offer), for pages no reader's
# language decides: set per request, and by a route once it knows better.
REQUEST_LANGUAGE: ContextVar[str] = ContextVar("request_language", default="")


class Pages:
    def __init__(self, settings: Settings, *, dev_mailbox: bool) -> None:
        self._settings = settings
        # What every page may show: the blog's name and address, and where our routes live.
        self._common: dict[str, Any] = {
            "site_name": settings.site_name,
            "site_url": settings.site_url,
            "base_url": settings.base_url,
            "dev_mailbox": dev_mailbox,
            # (tag, the language's name in itself) for the preferences page's choice.
            "languages": [
                (tag, _capitalised(locale(tag).display_name or tag)) for tag in settings.languages
            ],
        }

    def language(self, language: str = "") -> str:
        """The language named, else the request's, else the site's."""
        return language or REQUEST_LANGUAGE.get() or self._settings.language

    def gettext(self, message: str, language: str = "") -> str:
        """A message of ours (an error's, a JSON answer's) in the page's language: plain
        text, escaped where a template shows it."""
        found = translations(self._settings.templates_dir, self.language(language))
        return found.gettext(message)

    def html(self, template: str, /, *, language: str = "", **context: Any) -> str:
        env = make_environment(self._settings.templates_dir, self.language(language))
        return env.get_template(f"web/{template}.html").render({**self._common, **context})

    def render(
        self,
        template: str,
        /,
        *,
        status: int = 200,
        headers: Mapping[str, str] | None = None,
        language: str = "",
        **context: Any,
    ) -> HTMLResponse:
        language = self.language(language)
        response = HTMLResponse(
            self.html(template, language=language, **context), status_code=status, headers=headers
        )
        response.headers["Content-Language"] = language
        return response


def _capitalised(name: str) -> str:
    return name[:1].upper() + name[1:]


class RequestLanguage:
    """Sets ``REQUEST_LANGUAGE`` from ``?lang=`` or Accept-Language (pure ASGI, so the
    route and the error handlers see it), and adds Accept-Language to ``Vary``: the same
    URL answers in several languages."""

    def __init__(self, app: ASGIApp, settings: Settings) -> None:
        self._app = app
        self._settings = settings

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self._app(scope, receive, send)
            return
        query = urllib.parse.parse_qs(scope.get("query_string", b"").decode("latin-1"))
        accept = next(
            (v.decode("latin-1") for k, v in scope["headers"] if k == b"accept-language"), ""
        )
        chosen = languages.asked(
            self._settings, query=(query.get("lang") or [""])[-1], accept=accept
        )

        async def send_varying(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = [(k, v) for k, v in message.get("headers", []) if k != b"vary"]
                vary = [v.decode("latin-1") for k, v in message.get("headers", []) if k == b"vary"]
                vary.append("Accept-Language")
                message["headers"] = [*headers, (b"vary", ", ".join(vary).encode("latin-1"))]
            await send(message)

        token = REQUEST_LANGUAGE.set(chosen)
        try:
            await self._app(scope, receive, send_varying)
        finally:
            REQUEST_LANGUAGE.reset(token)
