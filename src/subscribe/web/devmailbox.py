"""``/dev/mailbox``: the messages the built-in dev mailbox caught (``subscribe serve --dev``).

Mounted only when the app runs with a dev mailbox; otherwise these routes do not exist.
A message's HTML is shown in a sandboxed ``iframe`` (``srcdoc``, no scripts, no same-origin
rights), and its links are listed apart, so they open in the page, not inside the frame.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from email.message import EmailMessage
from pathlib import Path

from fastapi import APIRouter, HTTPException, Response

from subscribe.devmail import message_parts, read_message
from subscribe.errors import N_

from .context import Ctx

router = APIRouter(prefix="/dev/mailbox")

# What devmail names its files: "<time_ns>-<counter>.eml". Anything else is refused before
# the file system is touched, so "../" and friends never get near a path.
_NAME = re.compile(r"^[0-9]{1,30}-[0-9]{1,12}\.eml$")
_URL = re.compile(r"https?://[^\s<>\"')]+")
MAX_LISTED = 200


@dataclass(frozen=True, slots=True)
class Summary:
    name: str
    subject: str
    to: str
    date: str


def _folder(context: Ctx) -> Path:
    if context.dev_mailbox is None:  # not mounted then; belt and braces
        raise HTTPException(404)
    return context.dev_mailbox


def _message_path(folder: Path, name: str) -> Path:
    path = folder / name
    if not _NAME.fullmatch(name) or path.resolve().parent != folder.resolve():
        raise HTTPException(404, N_("No such message."))
    if not path.is_file():
        raise HTTPException(404, N_("No such message."))
    return path


def _summary(path: Path, message: EmailMessage) -> Summary:
    return Summary(
        name=path.name,
        subject=str(message.get("Subject", "")),
        to=str(message.get("To", "")),
        date=str(message.get("Date", "")),
    )


@router.get("")
def mailbox(context: Ctx) -> Response:
    folder = _folder(context)
    # Names start with the arrival time in nanoseconds: reverse name order is newest first.
    paths = sorted(folder.glob("*.eml"), key=lambda p: p.name, reverse=True)[:MAX_LISTED]
    messages = [_summary(path, read_message(path)) for path in paths if _NAME.fullmatch(path.name)]
    return context.pages.render("mailbox", messages=messages)


@router.get("/{name}")
def mailbox_message(name: str, context: Ctx) -> Response:
    path = _message_path(_folder(context), name)
    message = read_message(path)
    text, html = message_parts(message)
    links = list(dict.fromkeys(_URL.findall(text)))
    return context.pages.render(
        "mailbox_message",
        summary=_summary(path, message),
        message_headers=[(key, str(value)) for key, value in message.items()],
        text=text,
        html=html,
        links=links,
    )
