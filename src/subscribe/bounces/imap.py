"""Read bounce messages from an IMAP folder, strictly read-only.

The folder is opened with EXAMINE and bodies are fetched with BODY.PEEK[], so nothing is
deleted, moved or even marked as seen: a message we cannot classify stays exactly where it
was for a human to look at.
"""

from __future__ import annotations

import imaplib
import re
import ssl
from collections.abc import Iterator

from subscribe.config import Settings
from subscribe.errors import SubscribeError

_UID = re.compile(rb"UID (\d+)")


def iter_imap(settings: Settings) -> Iterator[tuple[str, bytes]]:
    """(``imap:UID``, raw message) for every message in the bounce folder."""
    host, port = settings.bounce_imap_host, settings.bounce_imap_port
    if not host:
        raise SubscribeError("SUBSCRIBE_BOUNCE_IMAP_HOST is not set (the mailbox --imap reads)")
    try:
        client = _connect(settings)
    except (imaplib.IMAP4.error, OSError, ssl.SSLError) as exc:
        raise SubscribeError(f"cannot reach the IMAP server {host}:{port}: {exc}") from None
    try:
        client.login(
            settings.bounce_imap_username, settings.bounce_imap_password.get_secret_value()
        )
        status, _ = client.select(_quoted(settings.bounce_imap_folder), readonly=True)
        if status != "OK":
            raise SubscribeError(
                f"the IMAP folder {settings.bounce_imap_folder!r} cannot be opened"
            )
        _, found = client.uid("SEARCH", None, "ALL")
        uids = found[0].split() if found and found[0] else []
        for uid in uids:
            _, parts = client.uid("FETCH", uid, "(BODY.PEEK[])")
            for part in parts:
                if isinstance(part, tuple) and _UID.search(part[0]):
                    yield f"imap:{uid.decode()}", part[1]
    except (imaplib.IMAP4.error, OSError, ssl.SSLError) as exc:
        raise SubscribeError(f"cannot read bounces from IMAP {host}:{port}: {exc}") from None
    finally:
        try:
            client.logout()
        except (imaplib.IMAP4.error, OSError, ssl.SSLError):
            client.shutdown()


def _connect(settings: Settings) -> imaplib.IMAP4:
    host, port = settings.bounce_imap_host, settings.bounce_imap_port
    if settings.bounce_imap_security == "tls":
        context = ssl.create_default_context()
        return imaplib.IMAP4_SSL(host, port, ssl_context=context, timeout=30)
    client = imaplib.IMAP4(host, port, timeout=30)
    if settings.bounce_imap_security == "starttls":
        client.starttls(ssl.create_default_context())
    return client


def _quoted(folder: str) -> str:
    return '"' + folder.replace("\\", "\\\\").replace('"', '\\"') + '"'
