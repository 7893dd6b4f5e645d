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
    ConfigError,
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
    (TokenExpired, 410),
    (TokenInvalid, 400),
    (RateLimited, 429),
    (NotFound, 404),
    (InvalidChoice, 400),
    (ConfigError, 500),
]

_HTTP_MESSAGES = {
    404: "There is no page at this address.",
    405: "This page cannot be used that way.",
}
# Page headings in plain words; other statuses use the standard phrase.
_TITLES = {
    404: "Page not found",
    413: "Too much data",
    422: "Please check the address",
    429: "Too many requests",
    500: "Something went wrong",
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
    if wants_json(request):
        return JSONResponse({"ok": False, "message": message}, status, headers=dict(headers or {}))
    return get_context(request).pages.render(
        "error",
        status=status,
        headers=headers,
        title=title or _TITLES.get(status, HTTPStatus(status).phrase),
        message=message,
        offer_signup=offer_signup,
    )


def domain_error_response(request: Request, exc: SubscribeError) -> Response:
    status = status_for(exc)
    message = str(exc)
    if isinstance(exc, ConfigError):
        # Our mistake, not the visitor's; the details are for the log only.
        logger.error("configuration error while serving %s: %s", request.url.path, exc)
        message = "This service is not configured correctly. Please try again later."
    headers = {"Retry-After": str(RETRY_AFTER_SECONDS)} if isinstance(exc, RateLimited) else None
    # A broken or stale link: the way forward is to subscribe again from the form.
    offer_signup = isinstance(exc, TokenError)
    return error_response(
        request,
        status=status,
        message=message,
        title="This link does not work" if offer_signup else "",
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
    return error_response(request, status=400, message="The request is not valid.")


def install(app: FastAPI) -> None:
    app.add_exception_handler(SubscribeError, _on_domain_error)
    app.add_exception_handler(StarletteHTTPException, _on_http_error)
    app.add_exception_handler(RequestValidationError, _on_validation_error)
