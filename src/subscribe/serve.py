"""`subscribe serve`: uvicorn in front of the web app, with the dev mailbox on request."""

from __future__ import annotations

import tempfile
from pathlib import Path

import uvicorn

from .config import Settings
from .devmail import start_dev_mailbox


def serve_forever(settings: Settings, *, host: str, port: int, dev: bool) -> None:
    from .web import create_app

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
                "base_url": f"http://{host}:{port}",
            }
        )
        print(f"dev mailbox: smtp://{mailbox.host}:{mailbox.port}, messages at /dev/mailbox")
    try:
        app = create_app(settings, dev_mailbox=mailbox.folder if mailbox else None)
        uvicorn.run(app, host=host, port=port, proxy_headers=False, log_level="info")
    finally:
        if mailbox is not None:
            mailbox.stop()
