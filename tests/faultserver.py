"""A fault-injecting SMTP server for tests: aiosmtpd on 127.0.0.1 and a random port.

``FaultServer`` records accepted messages like ``mailserver.SMTPServer`` and can be told, at
any moment from the test's thread, to misbehave::

    server = FaultServer().start()
    server.handler.at_rcpt("a@example.org", "450 4.2.1 try later")     # 4xx/5xx at RCPT
    server.handler.at_data("b@example.org", "451 4.3.0 no")            # reply to DATA, no 354
    server.handler.at_dot("c@example.org", "550 5.1.1 no such user")  # reply after the dot
    server.handler.drop_at_rcpt("d@example.org", times=1)   # close the connection at RCPT
    server.handler.drop_after_dot("e@example.org")          # take the whole message, then
                                                            # close without answering
    server.handler.at_mail("421 4.3.2 busy", times=2)       # 421 at MAIL, then close
    server.handler.greeting = "421 4.3.2 busy"              # greet with 421, then close
    server.handler.stall_at_rcpt("f@example.org", 2.0)      # answer RCPT 2 s late
    server.handler.stall_after_dot("g@example.org", 2.0)    # take it, answer 2 s late
    server.handler.close_after = 3                          # 3 messages per connection, then
    server.handler.close_mode = "mail"                      #  421 at the next MAIL and close
    server.handler.reply_delay = 0.01                       # sleep before MAIL/RCPT/DATA replies
    server.handler.dot_delay = 0.005                        # sleep before the final reply
    server.go_down_after(3)   # after 3 messages in all: close, refuse connections ...
    server.restart()          # ... until the relay is back on the same port
    ...
    server.stop()

A message dropped after the dot is kept in ``handler.maybe_received`` (the relay may or may
not deliver it; the client cannot know), never in ``handler.messages``.

Constructor switches: ``pipelining`` (advertise PIPELINING), ``coalesce`` (hold the MAIL and
RCPT replies and write them with the DATA reply in one packet: only for pipelining clients),
``auth_fails`` (advertise AUTH PLAIN LOGIN over plaintext and answer 535 to every login),
``tls_context`` (offer STARTTLS with that certificate; without it STARTTLS is not offered)
and ``implicit_tls`` (TLS from the first byte, for ``smtp_security=tls``).

``refused_port()`` is a port nothing listens on (connection refused) and ``SilentServer`` a
listening socket that accepts connections and never says a word (connect timeout).
"""

from __future__ import annotations

import asyncio
import socket
import ssl
import subprocess
import threading
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from aiosmtpd.controller import Controller
from aiosmtpd.smtp import SMTP, AuthResult
from mailserver import Received, ehlo_responses

from subscribe.devmail import free_port
from subscribe.sending.sender import Envelope

Stage = Literal["MAIL", "RCPT", "DATA", "DOT"]
CloseMode = Literal["mail", "after", "silent"]
DROP = None  # a fault whose reply is DROP closes the connection instead of answering


@dataclass
class Fault:
    stage: Stage
    reply: str | None  # None: close the connection without answering
    recipients: frozenset[str] | None = None  # lowercased; None: every recipient
    times: int | None = None  # how often it fires; None: every time
    close: bool = False  # close the connection right after the reply (a 421)
    delay: float = 0.0  # a stall: wait this long, then answer as usual (reply is ignored)
    fired: int = 0

    def applies(self, stage: Stage, recipients: Iterable[str]) -> bool:
        if self.stage != stage or (self.times is not None and self.fired >= self.times):
            return False
        return self.recipients is None or any(r.lower() in self.recipients for r in recipients)


@dataclass
class FaultHandler:
    messages: list[Received] = field(default_factory=list)
    maybe_received: list[Received] = field(default_factory=list)
    faults: list[Fault] = field(default_factory=list)
    pipelining: bool = False
    close_after: int | None = None  # messages per connection
    close_mode: CloseMode = "mail"
    close_reply: str = "421 4.7.0 too many messages on this connection, closing"
    reply_delay: float = 0.0  # seconds before each MAIL / RCPT / DATA reply
    dot_delay: float = 0.0  # seconds before the reply to the end of data
    down_after: int | None = None  # accepted messages in all, then the relay goes away
    greeting: str = ""  # instead of "220 ...": e.g. "421 4.3.2 busy" (then the relay closes)
    on_down: Any = None  # set by FaultServer: stops listening (runs on the server's loop)
    connections: int = 0  # connections opened (not counting the controller's own probe)
    commands: list[str] = field(default_factory=list)  # MAIL / RCPT / DATA / AUTH / STARTTLS
    errors: list[BaseException] = field(default_factory=list)  # exceptions in a session
    lock: threading.Lock = field(default_factory=threading.Lock)

    # -- switching faults on and off (from the test's thread) ------------------------------

    def add(self, fault: Fault) -> Fault:
        with self.lock:
            self.faults.append(fault)
        return fault

    def _fault(
        self, stage: Stage, address: str | None, reply: str | None, times: int | None, close: bool
    ) -> Fault:
        return self.add(Fault(stage, reply, _recipients(address), times, close))

    def at_mail(self, reply: str, *, times: int | None = None) -> Fault:
        """Answer MAIL with ``reply``; a 421 also closes the connection."""
        return self._fault("MAIL", None, reply, times, reply.startswith("421"))

    def at_rcpt(self, address: str | None, reply: str, *, times: int | None = None) -> Fault:
        return self._fault("RCPT", address, reply, times, reply.startswith("421"))

    def at_data(self, address: str | None, reply: str, *, times: int | None = None) -> Fault:
        """Answer the DATA command with ``reply`` instead of 354."""
        return self._fault("DATA", address, reply, times, reply.startswith("421"))

    def at_dot(self, address: str | None, reply: str, *, times: int | None = None) -> Fault:
        """Take the whole message, then answer ``reply`` instead of 250 (nothing recorded)."""
        return self._fault("DOT", address, reply, times, reply.startswith("421"))

    def drop_at_rcpt(self, address: str | None, *, times: int | None = None) -> Fault:
        return self._fault("RCPT", address, DROP, times, True)

    def drop_after_dot(self, address: str | None, *, times: int | None = None) -> Fault:
        """Read the whole message, then close without answering (kept in maybe_received)."""
        return self._fault("DOT", address, DROP, times, True)

    def stall_at_rcpt(
        self, address: str | None, seconds: float, *, times: int | None = None
    ) -> Fault:
        """Wait ``seconds`` before answering RCPT (as usual): a client timeout before DATA."""
        return self.add(Fault("RCPT", "", _recipients(address), times, delay=seconds))

    def stall_after_dot(
        self, address: str | None, seconds: float, *, times: int | None = None
    ) -> Fault:
        """Accept and record the message, but wait ``seconds`` before saying 250."""
        return self.add(Fault("DOT", "", _recipients(address), times, delay=seconds))

    def clear(self) -> None:
        with self.lock:
            self.faults.clear()
            self.greeting = ""
            self.close_after = None
            self.reply_delay = self.dot_delay = 0.0

    # -- what the server got --------------------------------------------------------------

    def recipients(self) -> list[str]:
        with self.lock:
            return [rcpt for m in self.messages for rcpt in m.rcpt_tos]

    def maybe_recipients(self) -> list[str]:
        with self.lock:
            return [rcpt for m in self.maybe_received for rcpt in m.rcpt_tos]

    def _take(self, stage: Stage, recipients: Iterable[str]) -> Fault | None:
        recipients = list(recipients)
        with self.lock:
            for fault in self.faults:
                if fault.applies(stage, recipients):
                    fault.fired += 1
                    return fault
        return None

    # -- aiosmtpd hooks (run on the server's thread) ----------------------------------------

    async def handle_EHLO(
        self, server: Any, session: Any, envelope: Any, hostname: str, responses: list[str]
    ) -> list[str]:
        return ehlo_responses(session, hostname, responses, pipelining=self.pipelining)

    def _connection_full(self, server: FaultSMTP) -> bool:
        return self.close_after is not None and server.messages_here >= self.close_after

    async def handle_exception(self, error: Exception) -> str:
        # Kept for the test to look at, instead of aiosmtpd's logged traceback (a client
        # that gives up on the TLS handshake ends the session this way).
        with self.lock:
            self.errors.append(error)
        return f"500 Error: ({error.__class__.__name__}) {error}"

    async def handle_MAIL(
        self, server: FaultSMTP, session: Any, envelope: Any, address: str, options: list[str]
    ) -> str:
        if self.close_mode == "mail" and self._connection_full(server):
            server.close_after_reply = True
            return self.close_reply
        fault = self._take("MAIL", [])
        if fault is not None and fault.reply is not None:
            server.close_after_reply = fault.close
            return fault.reply
        envelope.mail_from = address
        envelope.mail_options.extend(options)
        return "250 OK"

    async def handle_RCPT(
        self, server: FaultSMTP, session: Any, envelope: Any, address: str, options: list[str]
    ) -> str:
        fault = self._take("RCPT", [address])
        if fault is not None and fault.delay:
            server.pending_delay = fault.delay
        elif fault is not None:
            if fault.reply is None:
                server.drop_instead_of_reply = True
                return "250 never sent"
            server.close_after_reply = fault.close
            return fault.reply
        envelope.rcpt_tos.append(address)
        envelope.rcpt_options.extend(options)
        return "250 OK"

    async def handle_DATA(self, server: FaultSMTP, session: Any, envelope: Any) -> str:
        received = Received(envelope.mail_from, list(envelope.rcpt_tos), envelope.original_content)
        fault = self._take("DOT", envelope.rcpt_tos)
        if fault is not None and fault.delay:
            server.pending_delay = fault.delay
        elif fault is not None:
            if fault.reply is None:
                with self.lock:
                    self.maybe_received.append(received)
                server.drop_instead_of_reply = True
                return "250 never sent"
            server.close_after_reply = fault.close
            return fault.reply
        with self.lock:
            self.messages.append(received)
            going_down = self.down_after is not None and len(self.messages) >= self.down_after
        server.messages_here += 1
        if going_down:
            self.down_after = None
            server.close_after_reply = True
            self.on_down()
        if self._connection_full(server):
            if self.close_mode == "after":
                server.unsolicited_after_reply = self.close_reply
                server.close_after_reply = True
            elif self.close_mode == "silent":
                server.close_after_reply = True
        return "250 2.0.0 OK queued"


def _recipients(address: str | None) -> frozenset[str] | None:
    return frozenset({address.lower()}) if address is not None else None


def _always_fail(*_args: Any) -> AuthResult:
    return AuthResult(success=False, handled=False)


class FaultSMTP(SMTP):
    """aiosmtpd's SMTP with the hooks a fault needs: drop instead of answering, close after
    answering, sleep before answering, and hold replies to send several in one packet."""

    event_handler: FaultHandler

    def __init__(self, handler: FaultHandler, *, coalesce: bool = False, **kwargs: Any) -> None:
        super().__init__(handler, **kwargs)
        self.coalesce = coalesce
        self.messages_here = 0
        self.drop_instead_of_reply = False
        self.close_after_reply = False
        self.unsolicited_after_reply = ""
        self.pending_delay = 0.0
        self._stage = ""
        self._held: list[bytes] = []

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        if self.transport is None:  # not the STARTTLS upgrade of an existing connection
            with self.event_handler.lock:
                self.event_handler.connections += 1
        super().connection_made(transport)

    def _log(self, command: str) -> None:
        with self.event_handler.lock:
            self.event_handler.commands.append(command)

    async def smtp_MAIL(self, arg: str | None) -> None:
        self._stage = "MAIL"
        self._log("MAIL")
        await super().smtp_MAIL(arg)

    async def smtp_RCPT(self, arg: str | None) -> None:
        self._stage = "RCPT"
        self._log("RCPT")
        await super().smtp_RCPT(arg)

    async def smtp_DATA(self, arg: str) -> None:
        self._stage = "DATA"
        self._log("DATA")
        assert self.envelope is not None
        if self.envelope.rcpt_tos:
            fault = self.event_handler._take("DATA", self.envelope.rcpt_tos)
            if fault is not None and fault.reply and not fault.delay:
                self.close_after_reply = fault.close
                await self.push(fault.reply)
                self._set_rset_state()
                return
        await super().smtp_DATA(arg)

    async def smtp_AUTH(self, arg: str) -> None:
        self._stage = "AUTH"
        self._log("AUTH")
        await super().smtp_AUTH(arg)

    async def smtp_STARTTLS(self, arg: str) -> None:
        self._stage = "STARTTLS"
        self._log("STARTTLS")
        await super().smtp_STARTTLS(arg)

    async def smtp_RSET(self, arg: str) -> None:
        self._stage = "RSET"
        await super().smtp_RSET(arg)

    async def smtp_EHLO(self, hostname: str) -> None:
        self._stage = "EHLO"
        await super().smtp_EHLO(hostname)

    async def smtp_NOOP(self, arg: str) -> None:
        self._stage = "NOOP"
        await super().smtp_NOOP(arg)

    async def smtp_QUIT(self, arg: str) -> None:
        self._stage = "QUIT"
        await super().smtp_QUIT(arg)

    async def push(self, status: Any) -> None:
        handler = self.event_handler
        text = status if isinstance(status, str) else status.decode("ascii")
        if not self._stage and text.startswith("220 ") and handler.greeting:
            text = handler.greeting
            self.close_after_reply = not text.startswith("2")
        final = self._stage == "DATA" and not text.startswith("354")
        if self._stage in ("MAIL", "RCPT", "DATA"):
            delay = handler.dot_delay if final else handler.reply_delay
            delay, self.pending_delay = delay + self.pending_delay, 0.0
            if delay:
                await asyncio.sleep(delay)
        if self.drop_instead_of_reply:
            self.drop_instead_of_reply = False
            self._close()
            return
        line = text.encode("utf-8") + b"\r\n"
        if self.coalesce and self._stage in ("MAIL", "RCPT") and not self.close_after_reply:
            self._held.append(line)
            return
        held, self._held = b"".join(self._held), []
        if self.transport is None or self.transport.is_closing():
            return
        self._writer.write(held + line)
        await self._writer.drain()
        if self.close_after_reply:
            self.close_after_reply = False
            if self.unsolicited_after_reply:
                self._writer.write(self.unsolicited_after_reply.encode("ascii") + b"\r\n")
                self.unsolicited_after_reply = ""
                await self._writer.drain()
            self._close()

    def _close(self) -> None:
        if self.transport is not None:
            self.transport.close()


class _Controller(Controller):
    def __init__(self, handler: FaultHandler, *, coalesce: bool, **kwargs: Any) -> None:
        self._coalesce = coalesce
        super().__init__(handler, **kwargs)

    def factory(self) -> FaultSMTP:
        return FaultSMTP(self.handler, coalesce=self._coalesce, **self.SMTP_kwargs)


class FaultServer:
    def __init__(
        self,
        handler: FaultHandler | None = None,
        *,
        pipelining: bool = False,
        coalesce: bool = False,
        auth_fails: bool = False,
        tls_context: ssl.SSLContext | None = None,
        implicit_tls: bool = False,
        port: int = 0,
    ) -> None:
        self.handler = handler or FaultHandler()
        self.handler.pipelining = pipelining
        self.host = "127.0.0.1"
        self.port = port or free_port()
        self._coalesce = coalesce
        self._auth_fails = auth_fails
        self._tls_context = tls_context
        self._implicit_tls = implicit_tls
        self._controller: _Controller | None = None

    def start(self) -> FaultServer:
        kwargs: dict[str, Any] = {"decode_data": False, "hostname": self.host, "port": self.port}
        if self._auth_fails:
            kwargs.update(auth_require_tls=False, authenticator=_always_fail)
        if self._tls_context is not None:
            if self._implicit_tls:
                kwargs["ssl_context"] = self._tls_context
            else:
                kwargs["tls_context"] = self._tls_context
        self._controller = _Controller(self.handler, coalesce=self._coalesce, **kwargs)
        self._controller.start()
        with self.handler.lock:  # forget the controller's own start-up probe
            self.handler.connections = 0
            self.handler.commands.clear()
        return self

    def stop(self) -> None:
        if self._controller is not None:
            self._controller.stop()
            self._controller = None

    def go_down_after(self, messages: int) -> None:
        """After ``messages`` accepted messages in all, close that connection and stop
        listening (new connections are refused) until ``restart()``."""
        self.handler.on_down = self._stop_listening
        self.handler.down_after = messages

    def _stop_listening(self) -> None:
        assert self._controller is not None and self._controller.server is not None
        self._controller.server.close()

    def restart(self) -> FaultServer:
        """The relay is back, on the same port, with the same record of messages."""
        self.stop()
        return self.start()

    @property
    def messages(self) -> list[Received]:
        return self.handler.messages


def refused_port() -> int:
    """A loopback port nobody listens on: connecting is refused."""
    return free_port()


class SilentServer:
    """Accepts TCP connections (the kernel does, from the backlog) and never answers."""

    def __init__(self) -> None:
        self.host = "127.0.0.1"
        self._socket = socket.socket()
        self._socket.bind((self.host, 0))
        self._socket.listen(64)
        self.port = int(self._socket.getsockname()[1])

    def stop(self) -> None:
        self._socket.close()


def self_signed_context(folder: Path) -> ssl.SSLContext | None:
    """A server context with a throwaway self-signed certificate (None without openssl)."""
    cert, key = folder / "cert.pem", folder / "key.pem"
    try:
        subprocess.run(
            [
                *("openssl", "req", "-x509", "-nodes", "-days", "1", "-subj", "/CN=localhost"),
                *("-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256"),
                *("-addext", "subjectAltName=IP:127.0.0.1,DNS:localhost"),
                *("-keyout", str(key), "-out", str(cert)),
            ],
            check=True,
            capture_output=True,
            timeout=30,
        )
    except (OSError, subprocess.SubprocessError):
        return None
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(cert, key)
    return context


# -- helpers shared by the sending-under-faults tests ---------------------------------------


def seed_subscribers(engine: Any, count: int, *, start: int = 0) -> list[str]:
    """``count`` confirmed subscribers r<N>@example.org, inserted in one executemany."""
    from subscribe.db import bulk
    from subscribe.db.models import utcnow

    now = utcnow()
    emails = [f"r{n:05d}@example.org" for n in range(start, start + count)]
    rows = [
        {
            "email": email,
            "email_key": email,
            "name": "",
            "status": "confirmed",
            "created_at": now,
            "confirmed_at": now,
            "consent_source": "test",
            "consent_ip": "",
            "consent_user_agent": "",
            "consent_at": now,
            "confirmation_day": "",
            "confirmations_that_day": 0,
            "bounce_count": 0,
        }
        for email in emails
    ]
    with engine.begin() as connection:
        bulk.insert_subscribers(connection, rows=rows)
    return emails


def announce_post(engine: Any, url: str = "https://blog.example/faults") -> int:
    """Register a post and enqueue its deliveries, as `notify` does; returns the post id."""
    from sqlmodel import Session

    from subscribe.db.models import utcnow
    from subscribe.posts.announce import register_post
    from subscribe.posts.sources import from_flags

    with Session(engine) as session:
        announcement = register_post(
            session, from_flags(title="Sending under faults", url=url), now=utcnow()
        )
        assert announcement.post.id is not None
        return announcement.post.id


def settings_env(settings: Any) -> dict[str, str]:
    """The SUBSCRIBE_* environment that makes the CLI (or a subprocess) see ``settings``."""
    from pydantic import SecretStr

    env = {}
    for name, value in settings.model_dump().items():
        if value is None:
            continue
        if isinstance(value, SecretStr):
            value = value.get_secret_value()
        elif isinstance(value, bool):
            value = "true" if value else "false"
        env[f"SUBSCRIBE_{name.upper()}"] = str(value)
    return env


def numbered_envelope(number: int, body: str) -> Envelope:
    """A small message from news@blog.example to r<number>@example.org, for sender tests."""
    message = (
        f"From: news@blog.example\r\nTo: r{number}@example.org\r\nSubject: n{number}\r\n"
        f"Message-ID: <{number}@blog.example>\r\n\r\n{body}"
    ).encode()
    return Envelope("news@blog.example", f"r{number}@example.org", message)
