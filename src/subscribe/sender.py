"""Sending: the ``Sender`` protocol, the SMTP implementation and an in-memory fake.

One ``Sender`` is one connection's worth of sending; the notifier runs several side by side.
``SMTPSender`` lets aiosmtplib connect, say EHLO, upgrade with STARTTLS and log in, then
talks the mail transaction itself on aiosmtplib's protocol object: MAIL, RCPT and DATA as
separate steps (so it knows whether DATA had begun when a connection breaks), written in
one go when the server advertises PIPELINING (RFC 2920) and one at a time when it does not.
The message arrives already rendered; it is dot-stuffed once here, with no regex passes.
"""

from __future__ import annotations

import asyncio
import contextlib
import re
import ssl
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Protocol

import aiosmtplib
from aiosmtplib.protocol import SMTPProtocol
from aiosmtplib.response import SMTPResponse

from .config import Settings
from .errors import (
    AmbiguousDelivery,
    ConnectionDropped,
    PermanentDeliveryError,
    RelayFatal,
    RelayUnavailable,
    TransientDeliveryError,
)
from .render import smtp_data

_ENHANCED_STATUS = re.compile(r"^([245])\.(\d{1,3})\.(\d{1,3})\b")


@dataclass(frozen=True, slots=True)
class Envelope:
    mail_from: str
    recipient: str
    message: bytes  # CRLF line endings, not dot-stuffed


class Sender(Protocol):
    async def send(self, envelope: Envelope) -> None:
        """Deliver one message or raise a ``DeliveryError`` subclass saying what happened."""

    async def close(self) -> None: ...


SenderFactory = Callable[[], Sender]


def is_bad_mailbox(code: int, message: str) -> bool:
    """5.1.x names a mailbox that does not exist; a bare 550 usually means the same."""
    enhanced = _ENHANCED_STATUS.match(message)
    if enhanced:
        return enhanced.group(1) == "5" and enhanced.group(2) == "1"
    return code == 550


def _rejection(
    stage: str, response: SMTPResponse
) -> TransientDeliveryError | PermanentDeliveryError:
    text = f"{stage}: {response.code} {response.message}".replace("\n", " ")
    if 400 <= response.code < 500:
        return TransientDeliveryError(text, response.code)
    return PermanentDeliveryError(
        text, response.code, bad_mailbox=is_bad_mailbox(response.code, response.message)
    )


class _BufferedProtocol(SMTPProtocol):
    """aiosmtplib's protocol, made to keep every byte the server sends.

    Pipelined answers arrive several to a packet; the stock protocol parses one response per
    ``data_received`` and drops data that comes while a parsed response waits to be read.
    Here everything is buffered, and a read first looks at what is already buffered.
    """

    def data_received(self, data: bytes) -> None:
        if self._response_waiter is None:
            return
        if self._response_waiter.done():
            self._buffer.extend(data)
            return
        self._response_pending = True
        super().data_received(data)

    async def read_response(self, timeout: float | None = None) -> SMTPResponse:
        if self._response_waiter is not None and not self._response_waiter.done():
            buffered = self._read_response_from_buffer()
            if buffered is not None:
                return buffered
        return await super().read_response(timeout=timeout)


class _SMTP(aiosmtplib.SMTP):
    async def _create_connection(self, timeout: float | None) -> SMTPResponse:
        response = await super()._create_connection(timeout)
        # Swap in the buffering subclass before any command is pipelined (same state,
        # only two methods differ), rather than copying aiosmtplib's connection set-up.
        assert self.protocol is not None
        self.protocol.__class__ = _BufferedProtocol
        return response


class SMTPSender:
    """One persistent SMTP connection, opened on first use and reopened when it breaks."""

    def __init__(self, settings: Settings) -> None:
        self._settings = settings
        self._smtp: _SMTP | None = None
        self._pipelining = False
        self.messages_on_connection = 0

    @property
    def pipelining(self) -> bool:
        return self._pipelining

    async def _connect(self) -> _SMTP:
        s = self._settings
        smtp = _SMTP(
            hostname=s.smtp_host,
            port=s.smtp_port,
            use_tls=s.smtp_security == "tls",
            # True: STARTTLS is required, and a server without it is refused (no plaintext).
            start_tls=s.smtp_security == "starttls",
            validate_certs=s.smtp_verify_certs,
            timeout=s.smtp_timeout,
            username=s.smtp_username or None,
            password=s.smtp_password.get_secret_value() or None,
        )
        where = f"{s.smtp_host}:{s.smtp_port}"
        try:
            await smtp.connect(timeout=s.connect_timeout)
            if smtp.is_ehlo_or_helo_needed:
                await smtp.ehlo()
        except aiosmtplib.SMTPAuthenticationError as exc:
            smtp.close()
            raise RelayFatal(
                f"the relay at {where} refused our login: {exc.code} {exc.message}"
            ) from None
        except (ssl.SSLError, ssl.CertificateError) as exc:
            smtp.close()
            raise RelayFatal(f"TLS with the relay at {where} failed: {exc}") from None
        except aiosmtplib.SMTPConnectResponseError as exc:
            smtp.close()
            raise RelayUnavailable(
                f"the relay at {where} turned us away: {exc.code} {exc.message}",
                exc.code,
            ) from None
        except (
            aiosmtplib.SMTPConnectError,
            aiosmtplib.SMTPTimeoutError,
            aiosmtplib.SMTPServerDisconnected,
            OSError,
        ) as exc:
            smtp.close()
            if isinstance(exc.__cause__, ssl.SSLError):  # implicit TLS: a certificate failure
                raise RelayFatal(f"TLS with the relay at {where} failed: {exc.__cause__}") from None
            raise RelayUnavailable(f"cannot reach the relay at {where}: {exc}") from None
        except aiosmtplib.SMTPException as exc:
            smtp.close()
            if "STARTTLS" in str(exc):
                raise RelayFatal(
                    f"the relay at {where} does not offer STARTTLS; refusing to send in plaintext "
                    "(set SUBSCRIBE_SMTP_SECURITY=none only for a relay on this machine)"
                ) from None
            raise RelayFatal(f"the relay at {where} failed the handshake: {exc}") from None
        self._pipelining = smtp.supports_extension("pipelining")
        self.messages_on_connection = 0
        return smtp

    async def send(self, envelope: Envelope) -> None:
        if self._smtp is None or not self._smtp.is_connected:
            self._smtp = await self._connect()
        smtp = self._smtp
        protocol = smtp.protocol
        assert protocol is not None
        timeout = self._settings.smtp_timeout
        commands = [
            f"MAIL FROM:<{envelope.mail_from}>\r\n".encode("ascii"),
            f"RCPT TO:<{envelope.recipient}>\r\n".encode("ascii"),
            b"DATA\r\n",
        ]
        data_began = False
        clock = asyncio.get_running_loop().time
        try:
            # One deadline, moved on for the body: a timer per reply costs more than the
            # rest of the transaction's own work.
            async with asyncio.timeout(timeout) as deadline:
                responses = await self._envelope_replies(protocol, commands)
                mail, rcpt, data = ([*responses, None, None])[:3]  # type: ignore[list-item]
                if any(r is not None and r.code == 421 for r in responses):
                    raise ConnectionDropped(
                        f"the relay closed the session: 421 {responses[-1].message}", 421
                    )
                if mail.code >= 400:
                    await self._reset(data)
                    if mail.code >= 500:
                        raise RelayFatal(
                            f"the relay refused the sender <{envelope.mail_from}>: "
                            f"{mail.code} {mail.message}",
                            mail.code,
                        )
                    raise _rejection("MAIL", mail)
                if rcpt is not None and rcpt.code >= 300:
                    await self._reset(data)
                    raise _rejection("RCPT", rcpt)
                assert data is not None
                if data.code != 354:
                    await self._reset(None)
                    raise _rejection("DATA", data)
                data_began = True
                deadline.reschedule(clock() + timeout)
                protocol.write(smtp_data(envelope.message))
                final = await protocol.read_response()
        except (
            aiosmtplib.SMTPServerDisconnected,
            aiosmtplib.SMTPTimeoutError,
            TimeoutError,
            ConnectionError,
            RuntimeError,
        ) as exc:
            self._drop()
            if data_began:
                raise AmbiguousDelivery(f"the connection broke after DATA began: {exc}") from None
            raise ConnectionDropped(f"the connection broke before DATA: {exc}") from None
        except ConnectionDropped:
            self._drop()
            raise
        if final.code == 421:
            # An explicit refusal, not a lost answer: the message was not taken. Reconnect
            # and send it again, like a 421 before DATA.
            self._drop()
            raise ConnectionDropped(f"the relay closed the session: 421 {final.message}", 421)
        if final.code != 250:
            raise _rejection("end of DATA", final)
        self.messages_on_connection += 1

    async def _envelope_replies(
        self, protocol: SMTPProtocol, commands: list[bytes]
    ) -> list[SMTPResponse]:
        """MAIL, RCPT and DATA: written together when pipelining, else one at a time
        (stopping at the first refusal)."""
        responses: list[SMTPResponse] = []
        if self._pipelining:
            protocol.write(b"".join(commands))
            for _ in commands:
                responses.append(await protocol.read_response())
            return responses
        for command in commands:
            protocol.write(command)
            response = await protocol.read_response()
            responses.append(response)
            if response.code >= 400:
                break
        return responses

    async def _reset(self, data_response: SMTPResponse | None) -> None:
        """Leave the server ready for the next transaction after a refusal."""
        assert self._smtp is not None and self._smtp.protocol is not None
        protocol = self._smtp.protocol
        if data_response is not None and data_response.code == 354:
            # A pipelined DATA accepted although no recipient was: send an empty message end.
            protocol.write(b".\r\n")
            await protocol.read_response(timeout=self._settings.smtp_timeout)
        protocol.write(b"RSET\r\n")
        await protocol.read_response(timeout=self._settings.smtp_timeout)

    def _drop(self) -> None:
        if self._smtp is not None:
            self._smtp.close()
        self._smtp = None

    async def close(self) -> None:
        if self._smtp is not None and self._smtp.is_connected:
            with contextlib.suppress(aiosmtplib.SMTPException, OSError, TimeoutError):
                await asyncio.wait_for(self._smtp.quit(), timeout=5)
        self._drop()


@dataclass
class MemoryOutbox:
    """Where ``MemorySender`` puts messages; share one between senders to see them all."""

    envelopes: list[Envelope] = field(default_factory=list)
    # recipient -> exception to raise instead of delivering (unit tests of the ledger).
    failures: dict[str, Exception] = field(default_factory=dict)


class MemorySender:
    """The in-memory fake for unit tests: passed in, never patched over aiosmtplib."""

    def __init__(self, outbox: MemoryOutbox) -> None:
        self._outbox = outbox

    async def send(self, envelope: Envelope) -> None:
        failure = self._outbox.failures.get(envelope.recipient)
        if failure is not None:
            raise failure
        self._outbox.envelopes.append(envelope)

    async def close(self) -> None:
        return None


def smtp_sender_factory(settings: Settings) -> SenderFactory:
    return lambda: SMTPSender(settings)
