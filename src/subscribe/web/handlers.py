"""Domain errors and HTTP errors become a 4xx page (or JSON) with a plain message.

Never a traceback: a ``SubscribeError`` is something a visitor caused and its message is
written for them; anything else is a bug, which Starlette answers with a bare 500 while
the traceback goes to the log.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from http import HTTPStatus

from fastapi import FastAPI, Request, Response
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from subscribe.errors import (
    N_,
    ConfigError,
    HookInvalid,
    HookRefused,
    HookUnavailable,
    InvalidAddress,
    InvalidChoice,
    NotFound,
    RateLimited,
    SubscribeError,
    TokenError,
    TokenExpired,
    TokenInvalid,
)

from .context import get_context
from .forms import wants_json

logger = logging.getLogger(__name__)

# Most specific first: TokenExpired is also a TokenError.
_STATUS: list[tuple[type[SubscribeError], int]] = [
    (InvalidAddress, 422),
    (HookRefused, 401),
    (HookInvalid, 400),
    (HookUnavailable, 503),
    (TokenExpired, 410),
    (TokenInvalid, 400),
    (RateLimited, 429),
    (NotFound, 404),
    (InvalidChoice, 400),
    (ConfigError, 500),
]

_HTTP_MESSAGES = {
    404: N_("There is no page at this address."),
    405: N_("This page cannot be used that way."),
}
# Page headings in plain words (in the catalogs); other statuses use the standard phrase.
_TITLES = {
    400: N_("This request cannot be used"),
    401: N_("Not allowed"),
    404: N_("Page not found"),
    405: N_("This page cannot be used that way"),
    410: N_("This link has expired"),
    413: N_("Too much data"),
    415: N_("This request cannot be used"),
    422: N_("Please check the address"),
    429: N_("Too many requests"),
    500: N_("Something went wrong"),
    503: N_("Please try again later"),
}

RETRY_AFTER_SECONDS = 60


def status_for(exc: SubscribeError) -> int:
    return next((status for kind, status in _STATUS if isinstance(exc, kind)), 400)


def error_response(
    request: Request,
    *,
    status: int,
    message: str,
    title: str = "",
    offer_signup: bool = False,
    headers: Mapping[str, str] | None = None,
) -> Response:
    """The error page (or JSON) in the request's language: ``message`` and ``title`` are
    catalog messages, shown as they are when the catalog does not know them."""
    pages = get_context(request).pages
    message = pages.gettext(message)
    if wants_json(request):
        return JSONResponse({"ok": False, "message": message}, status, headers=dict(headers or {}))
    return pages.render(
        "error",
        status=status,
        headers=headers,
        title=pages.gettext(title or _TITLES.get(status, HTTPStatus(status).phrase)),
        message=message,
        offer_signup=offer_signup,
    )


def domain_error_response(request: Request, exc: SubscribeError) -> Response:
    status = status_for(exc)
    message = exc.public
    if isinstance(exc, ConfigError):
        # Our mistake, not the visitor's; the details are for the log only.
        logger.error("configuration error while serving %s: %s", request.url.path, exc)
        message = N_("This service is not configured correctly. Please try again later.")
    retry = isinstance(exc, (RateLimited, HookUnavailable))
    headers = {"Retry-After": str(RETRY_AFTER_SECONDS)} if retry else None
    # A broken or stale link: the way forward is to subscribe again from the form.
    offer_signup = isinstance(exc, TokenError)
    return error_response(
        request,
        status=status,
        message=message,
        title=N_("This link does not work") if offer_signup else "",
        offer_signup=offer_signup,
        headers=headers,
    )


def http_error_response(request: Request, exc: StarletteHTTPException) -> Response:
    phrase = HTTPStatus(exc.status_code).phrase
    message = exc.detail if exc.detail and exc.detail != phrase else None
    message = message or _HTTP_MESSAGES.get(exc.status_code, phrase)
    return error_response(
        request, status=exc.status_code, message=str(message), headers=exc.headers
    )


async def _on_domain_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, SubscribeError)
    return domain_error_response(request, exc)


async def _on_http_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, StarletteHTTPException)
    return http_error_response(request, exc)


async def _on_validation_error(request: Request, exc: Exception) -> Response:
    return error_response(request, status=400, message=N_("The request is not valid."))


def install(app: FastAPI) -> None:
    app.add_exception_handler(SubscribeError, _on_domain_error)
    app.add_exception_handler(StarletteHTTPException, _on_http_error)
    app.add_exception_handler(RequestValidationError, _on_validation_error)
