"""`subscribe serve`: uvicorn in front of the web app, with the dev mailbox on request."""

from __future__ import annotations

import tempfile
from pathlib import Path

import uvicorn

from subscribe.config import Settings
from subscribe.devmail import start_dev_mailbox


def serve_forever(settings: Settings, *, host: str, port: int, dev: bool) -> None:
    from subscribe.web import create_app

    mailbox = None
    if dev:
        folder = Path(tempfile.mkdtemp(prefix="subscribe-mailbox-"))
        mailbox = start_dev_mailbox(folder)
        settings = settings.model_copy(
            update={
                "smtp_host": mailbox.host,
                "smtp_port": mailbox.port,
                "smtp_security": "none",
                "smtp_username": "",
                # Links in the captured emails must open in the developer's browser.
                "base_url": f"http://{_browsable(host)}:{port}",
            }
        )
        print(f"dev mailbox: smtp://{mailbox.host}:{mailbox.port}, messages at /dev/mailbox")
    try:
        app = create_app(
            settings, dev_mailbox=mailbox.folder if mailbox else None, long_running=True
        )
        uvicorn.run(app, host=host, port=port, proxy_headers=False, log_level="info")
    finally:
        if mailbox is not None:
            mailbox.stop()


def _browsable(host: str) -> str:
    """A wildcard listen address is no address to put in a link: use loopback instead."""
    if host in ("0.0.0.0", ""):
        return "127.0.0.1"
    if host in ("::", "[::]"):
        return "[::1]"
    return f"[{host}]" if ":" in host and not host.startswith("[") else host
