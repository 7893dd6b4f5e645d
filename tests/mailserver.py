"""A real SMTP server for tests: aiosmtpd on 127.0.0.1, a random port, recording what it got.

``RecordingHandler`` keeps every accepted message; ``rules`` let a test make the server
answer a given recipient with a chosen reply (4xx, 5xx) instead. ``pipelining=True``
advertises PIPELINING (aiosmtpd reads commands in order, so pipelined clients work).
"""

from __future__ import annotations

import threading
from dataclasses import dataclass, field
from email import message_from_bytes, policy
from email.message import EmailMessage
from typing import Any

from aiosmtpd.controller import Controller

from subscribe.devmail import free_port


@dataclass
class Received:
    mail_from: str
    rcpt_tos: list[str]
    data: bytes

    def message(self) -> EmailMessage:
        parsed = message_from_bytes(self.data, policy=policy.default)
        assert isinstance(parsed, EmailMessage)
        return parsed


def ehlo_responses(
    session: Any, hostname: str, responses: list[str], *, pipelining: bool
) -> list[str]:
    """aiosmtpd's EHLO answer, with PIPELINING advertised when asked (aiosmtpd reads
    commands in order, so a pipelining client works with it)."""
    session.host_name = hostname
    if pipelining:
        responses.insert(-1, "250-PIPELINING")
    return responses


@dataclass
class RecordingHandler:
    messages: list[Received] = field(default_factory=list)
    # recipient address (lowercased) -> SMTP reply to give at RCPT, e.g. "450 4.2.1 try later"
    rcpt_replies: dict[str, str] = field(default_factory=dict)
    data_replies: dict[str, str] = field(default_factory=dict)
    pipelining: bool = False
    lock: threading.Lock = field(default_factory=threading.Lock)
    # (address, port) of every client connection that said EHLO: how many a run opened.
    peers: set[tuple[str, int]] = field(default_factory=set)

    async def handle_EHLO(
        self, server: Any, session: Any, envelope: Any, hostname: str, responses: list[str]
    ) -> list[str]:
        with self.lock:
            self.peers.add(tuple(session.peer[:2]))
        return ehlo_responses(session, hostname, responses, pipelining=self.pipelining)

    async def handle_RCPT(
        self, server: Any, session: Any, envelope: Any, address: str, rcpt_options: list[str]
    ) -> str:
        reply = self.rcpt_replies.get(address.lower())
        if reply:
            return reply
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        for rcpt in envelope.rcpt_tos:
            reply = self.data_replies.get(rcpt.lower())
            if reply:
                return reply
        with self.lock:
            self.messages.append(
                Received(envelope.mail_from, list(envelope.rcpt_tos), envelope.original_content)
            )
        return "250 2.0.0 OK queued"

    def recipients(self) -> list[str]:
        with self.lock:
            return [rcpt for m in self.messages for rcpt in m.rcpt_tos]


class SMTPServer:
    def __init__(
        self, handler: RecordingHandler | None = None, port: int = 0, **options: Any
    ) -> None:
        """``options`` go to aiosmtpd's SMTP: ``tls_context`` (offer STARTTLS),
        ``authenticator`` and ``auth_require_tls`` (offer AUTH)..."""
        self.handler = handler or RecordingHandler()
        self.host = "127.0.0.1"
        self.port = port or free_port()
        self._options = options
        self._controller: Controller | None = None

    def start(self) -> SMTPServer:
        self._controller = Controller(
            self.handler, hostname=self.host, port=self.port, decode_data=False, **self._options
        )
        self._controller.start()
        return self

    def stop(self) -> None:
        if self._controller is not None:
            self._controller.stop()
            self._controller = None

    @property
    def messages(self) -> list[Received]:
        return self.handler.messages
