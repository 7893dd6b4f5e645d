"""Helpers for the web tests: the app behind httpx's ASGI transport, or on a real uvicorn server.

With ``asgi_client`` a request returns once the app is completely done, background tasks
included, so a confirmation email has already reached the SMTP server. With
``running_server`` (a real socket, as in production) emails arrive a moment after the
response: poll for them with ``wait_for``.
"""

from __future__ import annotations

import re
import socket
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from email.message import EmailMessage
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, TypeVar
from urllib.parse import urlsplit

import httpx
import uvicorn
from fastapi import FastAPI
from sqlalchemy.engine import Engine
from sqlmodel import Session

from subscribe.config import Settings
from subscribe.db import store
from subscribe.db.models import Subscriber
from subscribe.readers.addresses import address_key
from subscribe.web import create_app

T = TypeVar("T")
TEST_CLIENT_IP = "203.0.113.7"  # TEST-NET-3: the socket address the ASGI transport reports
_URL = re.compile(r"https?://[^\s<>\"')]+")


@contextmanager
def open_app(settings: Settings, **kwargs: Any) -> Iterator[FastAPI]:
    """The app, with its engine disposed afterwards (no lifespan runs on the ASGI transport)."""
    app = create_app(settings, **kwargs)
    try:
        yield app
    finally:
        app.state.web.engine.dispose()


def asgi_client(
    app: FastAPI, *, client_ip: str = TEST_CLIENT_IP, base_url: str = "http://testserver"
) -> httpx.AsyncClient:
    transport = httpx.ASGITransport(app=app, client=(client_ip, 40000))
    return httpx.AsyncClient(transport=transport, base_url=base_url)


@contextmanager
def running_server(make_app: Callable[[str], FastAPI]) -> Iterator[str]:
    """Serve ``make_app(base_url)`` with uvicorn in a thread on a free loopback port.

    The socket is bound first, so the app can be built knowing its own URL (links in
    emails point at it) and no other process can take the port in between.
    """
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", 0))
    try:
        base_url = f"http://127.0.0.1:{sock.getsockname()[1]}"
        app = make_app(base_url)
        server = uvicorn.Server(uvicorn.Config(app, log_level="warning", lifespan="on"))
        thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
        thread.start()
        try:
            wait_for(lambda: server.started, timeout=10, what="uvicorn to start")
            yield base_url
        finally:
            server.should_exit = True
            thread.join(timeout=10)
    finally:
        sock.close()


def wait_for(predicate: Callable[[], T], *, timeout: float = 10.0, what: str = "condition") -> T:
    deadline = time.monotonic() + timeout
    while True:
        result = predicate()
        if result:
            return result
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout} s waiting for {what}")
        time.sleep(0.02)


def text_of(message: EmailMessage) -> str:
    part = message.get_body(("plain",))
    assert part is not None, "the message has no text part"
    return str(part.get_content())


def link_in(message: EmailMessage, route: str) -> str:
    """The first URL in the message's text part whose path starts with ``route``."""
    for url in _URL.findall(text_of(message)):
        if urlsplit(url).path.startswith(route):
            return url
    raise AssertionError(f"no {route} link in:\n{text_of(message)}")


def path_of(url: str) -> str:
    return urlsplit(url).path


def find_subscriber(engine: Engine, email: str) -> Subscriber | None:
    with Session(engine) as session:
        return store.subscriber_by_key(session, email_key=address_key(email))


def anonymise(body: bytes, *addresses: str) -> bytes:
    """The body with each address replaced, to compare pages for different addresses."""
    for address in addresses:
        body = body.replace(address.encode(), b"ADDRESS")
    return body


def screenshot_dir() -> Path:
    folder = Path(__file__).parent / "artifacts"
    folder.mkdir(exist_ok=True)
    return folder


@contextmanager
def plain_http_server(handler: type[BaseHTTPRequestHandler]) -> Iterator[str]:
    """A standard-library HTTP server on a free loopback port, in a thread; yields its URL."""
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()
