"""Render the web pages from ``templates/web/`` (a site's ``SUBSCRIBE_TEMPLATES_DIR`` first).

The same Jinja2 environment as the emails: autoescaped HTML, and ``StrictUndefined``, so a
template that names a variable the page does not pass fails a test instead of rendering a
blank.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import jinja2
from fastapi.responses import HTMLResponse

from subscribe.config import Settings


class Pages:
    def __init__(self, settings: Settings, env: jinja2.Environment, *, dev_mailbox: bool) -> None:
        self._env = env
        # What every page may show: the blog's name and address, and where our routes live.
        self._common: dict[str, Any] = {
            "site_name": settings.site_name,
            "site_url": settings.site_url,
            "base_url": settings.base_url,
            "dev_mailbox": dev_mailbox,
        }

    def html(self, template: str, /, **context: Any) -> str:
        return self._env.get_template(f"web/{template}.html").render({**self._common, **context})

    def render(
        self,
        template: str,
        /,
        *,
        status: int = 200,
        headers: Mapping[str, str] | None = None,
        **context: Any,
    ) -> HTMLResponse:
        return HTMLResponse(self.html(template, **context), status_code=status, headers=headers)
