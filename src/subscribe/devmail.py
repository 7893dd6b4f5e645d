"""The built-in dev mailbox: an aiosmtpd server on a free loopback port that files every
message it receives as an ``.eml`` file, for ``subscribe demo`` and ``serve --dev``."""

from __future__ import annotations

import itertools
import socket
import time
from dataclasses import dataclass
from email import message_from_bytes, policy
from email.message import EmailMessage
from pathlib import Path
from typing import Any

from aiosmtpd.controller import Controller


def free_port(host: str = "127.0.0.1") -> int:
    with socket.socket() as probe:
        probe.bind((host, 0))
        return int(probe.getsockname()[1])


class _FileHandler:
    def __init__(self, folder: Path) -> None:
        self._folder = folder
        self._counter = itertools.count(1)

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        for recipient in envelope.rcpt_tos:
            # What a local delivery agent would add: who it was for, and the return path.
            head = f"Return-Path: <{envelope.mail_from}>\r\nDelivered-To: {recipient}\r\n"
            name = f"{time.time_ns()}-{next(self._counter):06d}.eml"
            (self._folder / name).write_bytes(head.encode() + envelope.original_content)
        return "250 2.0.0 OK: filed"


@dataclass
class DevMailbox:
    """A running dev mailbox; ``stop()`` it when done."""

    host: str
    port: int
    folder: Path
    _controller: Controller

    def stop(self) -> None:
        self._controller.stop()

    def messages(self) -> list[Path]:
        return sorted(self.folder.glob("*.eml"))


def start_dev_mailbox(folder: Path, host: str = "127.0.0.1", port: int = 0) -> DevMailbox:
    folder.mkdir(parents=True, exist_ok=True)
    port = port or free_port(host)
    controller = Controller(
        _FileHandler(folder), hostname=host, port=port, decode_data=False, enable_SMTPUTF8=True
    )
    controller.start()
    return DevMailbox(host, port, folder, controller)


def read_message(path: Path) -> EmailMessage:
    message = message_from_bytes(path.read_bytes(), policy=policy.default)
    assert isinstance(message, EmailMessage)
    return message


def message_parts(message: EmailMessage) -> tuple[str, str]:
    """(text, html) of a message, '' where a part is missing."""
    text_part = message.get_body(("plain",))
    html_part = message.get_body(("html",))
    text = text_part.get_content() if text_part is not None else ""
    html = html_part.get_content() if html_part is not None else ""
    return str(text), str(html)
