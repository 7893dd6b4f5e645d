"""Security headers on every response, as ASGI middleware (it also covers error pages).

A route may set its own value for any of these; the middleware only fills in what is missing.
"""

from __future__ import annotations

from collections.abc import Sequence
from urllib.parse import urlsplit

from starlette.datastructures import MutableHeaders
from starlette.types import ASGIApp, Message, Receive, Scope, Send

# Pages whose URL carries a token (or shows mail full of them): the token must not leak
# to another site through the Referer header when a visitor follows a link from there.
TOKEN_PATH_PREFIXES = ("/confirm/", "/unsubscribe/", "/dev/")


def origin_of(url: str) -> str:
    """``scheme://host[:port]`` of a URL as a browser writes an Origin; '' if there is none."""
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        return ""
    default_port = 443 if parts.scheme == "https" else 80
    port = f":{parts.port}" if parts.port and parts.port != default_port else ""
    return f"{parts.scheme}://{parts.hostname}{port}".lower()


def content_security_policy(form_origins: Sequence[str], *, frames: bool = False) -> str:
    """No scripts, no external anything; forms may post to us (and to the blog)."""
    form_action = " ".join(["'self'", *dict.fromkeys(o for o in form_origins if o)])
    directives = [
        "default-src 'none'",
        "style-src 'unsafe-inline'",
        "img-src 'self' data:",
        f"form-action {form_action}",
        "frame-ancestors 'none'",
        "base-uri 'none'",
    ]
    if frames:
        directives.append("frame-src 'self'")
    return "; ".join(directives)


class SecurityHeaders:
    def __init__(self, app: ASGIApp, *, csp: str) -> None:
        self._app = app
        self._csp = csp

    def _defaults(self, path: str) -> list[tuple[str, str]]:
        token_page = path.startswith(TOKEN_PATH_PREFIXES)
        return [
            ("X-Content-Type-Options", "nosniff"),
            ("Content-Security-Policy", self._csp),
            ("X-Frame-Options", "DENY"),
            # Our own form still tells us which page it was on (the consent record).
            ("Referrer-Policy", "no-referrer" if token_page else "same-origin"),
            # Pages show addresses and carry tokens: no shared cache may keep them.
            ("Cache-Control", "no-store"),
            *([("X-Robots-Tag", "noindex")] if token_page else []),
        ]

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self._app(scope, receive, send)
            return
        defaults = self._defaults(scope["path"])

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = MutableHeaders(scope=message)
                for name, value in defaults:
                    headers.setdefault(name, value)
            await send(message)

        await self._app(scope, receive, send_with_headers)
