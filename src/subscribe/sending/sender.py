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
import ssl
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Protocol

import aiosmtplib
from aiosmtplib.response import SMTPResponse

from subscribe.config import Settings
from subscribe.errors import (
    AmbiguousDelivery,
    ConnectionDropped,
    PermanentDeliveryError,
    RelayFatal,
    RelayUnavailable,
    TransientDeliveryError,
)
from subscribe.mail.render import smtp_data, smtp_unstuff

from .smtp_protocol import PipelineProtocol


class Envelope:
    """One message for one recipient: the return path, the recipient, and the message,
    as plain CRLF bytes or already in DATA's wire form (dot-stuffed, ending in the lone
    dot line). Either form is made from the other on first use; the sending path asks
    for ``wire``, so a message rendered straight to it is never stuffed at send time."""

    __slots__ = ("_message", "_wire", "mail_from", "recipient")

    def __init__(self, mail_from: str, recipient: str, message: bytes) -> None:
        self.mail_from = mail_from
        self.recipient = recipient
        self._message: bytes | None = message
        self._wire: bytes | None = None

    @classmethod
    def from_wire(cls, mail_from: str, recipient: str, wire: bytes) -> Envelope:
        envelope = cls.__new__(cls)
        envelope.mail_from = mail_from
        envelope.recipient = recipient
        envelope._message = None
        envelope._wire = wire
        return envelope

    @property
    def message(self) -> bytes:
        """CRLF line endings, not dot-stuffed."""
        if self._message is None:
            assert self._wire is not None
            self._message = smtp_unstuff(self._wire)
        return self._message

    @property
    def wire(self) -> bytes:
        if self._wire is None:
            assert self._message is not None
            self._wire = smtp_data(self._message)
        return self._wire

    def __repr__(self) -> str:
        size = len(self._wire if self._wire is not None else self._message or b"")
        return f"Envelope({self.mail_from!r}, {self.recipient!r}, {size} bytes)"


# Asked once the server has accepted an envelope: the message the caller will send next on
# this sender, if it already has one, so that a pipelining connection can start on it early.
NextEnvelope = Callable[[], "Envelope | None"]


class Sender(Protocol):
    async def send(self, envelope: Envelope, then: NextEnvelope | None = None) -> None:
        """Deliver one message or raise a ``DeliveryError`` subclass saying what happened."""

    async def close(self) -> None: ...


SenderFactory = Callable[[], Sender]


def _rejection(
    stage: str, response: SMTPResponse
) -> TransientDeliveryError | PermanentDeliveryError:
    text = f"{stage}: {response.code} {response.message}".replace("\n", " ")
    if 400 <= response.code < 500:
        return TransientDeliveryError(text, response.code)
    return PermanentDeliveryError(text, response.code, reply=response.message)


class SMTPSender:
    """One persistent SMTP connection, opened on first use and reopened when it breaks."""

    def __init__(self, settings: Settings) -> None:
        self._settings = settings
        self._smtp: aiosmtplib.SMTP | None = None
        self._protocol: PipelineProtocol | None = None
        self._pipelining = False
        # The envelope whose MAIL, RCPT and DATA went out behind the previous message's
        # body; its three replies are read by the ``send`` of that envelope.
        self._ahead: Envelope | None = None
        self.messages_on_connection = 0

    @property
    def pipelining(self) -> bool:
        return self._pipelining

    async def _connect(self) -> PipelineProtocol:
        s = self._settings
        smtp = aiosmtplib.SMTP(
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
        assert smtp.protocol is not None
        self._smtp = smtp
        self._pipelining = smtp.supports_extension("pipelining")
        self._ahead = None
        self.messages_on_connection = 0
        self._protocol = PipelineProtocol.adopt(smtp.protocol)
        return self._protocol

    async def send(self, envelope: Envelope, then: NextEnvelope | None = None) -> None:
        """Deliver ``envelope``. When the server pipelines and ``then`` names the message
        this connection sends next, that message's MAIL, RCPT and DATA go out right behind
        this body, in the same packet (RFC 2920 lets message content open a group); its
        own body still waits for its own ``send``."""
        protocol = self._protocol
        if (
            protocol is None
            or not protocol.is_connected
            or (self._ahead is None and protocol.has_unread())
        ):
            # Unsolicited bytes (a server's idle-timeout 421, say) would be paired with the
            # wrong command: start afresh instead.
            self._drop()
            protocol = await self._connect()
        timeout = self._settings.smtp_timeout
        data_began = False
        protocol.arm(timeout)
        try:
            if self._ahead is envelope:
                self._ahead = None
                responses = await protocol.replies(3)
            else:
                if self._ahead is not None:  # the lane changed its mind: the server may
                    self._drop()  # already wait for a body we will not send
                    protocol = await self._connect()
                    protocol.arm(timeout)
                responses = await self._envelope_replies(protocol, _envelope_commands(envelope))
            if not _usual_envelope_answer(responses):
                await self._refused_envelope(responses, envelope)
            data_began = True
            payload = envelope.wire
            following = then() if then is not None and self._pipelining else None
            if following is not None:
                payload += _envelope_commands(following)
                self._ahead = following
            protocol.arm(timeout)
            protocol.write(payload)
            (final,) = await protocol.replies(1)
        except (
            aiosmtplib.SMTPServerDisconnected,
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
        finally:
            protocol.disarm()
        if final.code == 421:
            # An explicit refusal, not a lost answer: the message was not taken. Reconnect
            # and send it again, like a 421 before DATA.
            self._drop()
            raise ConnectionDropped(f"the relay closed the session: 421 {final.message}", 421)
        if final.code != 250:
            raise _rejection("end of DATA", final)
        self.messages_on_connection += 1

    async def _refused_envelope(self, responses: list[SMTPResponse], envelope: Envelope) -> None:
        """Raise what a refusal of MAIL, RCPT or DATA means, after leaving the session ready
        for the next transaction."""
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

    async def _envelope_replies(
        self, protocol: PipelineProtocol, commands: bytes
    ) -> list[SMTPResponse]:
        """MAIL, RCPT and DATA: written together when pipelining, else one at a time
        (stopping at the first refusal)."""
        if self._pipelining:
            protocol.write(commands)
            return await protocol.replies(3)
        responses: list[SMTPResponse] = []
        for command in commands.splitlines(keepends=True):
            protocol.write(command)
            (response,) = await protocol.replies(1)
            responses.append(response)
            if response.code >= 400:
                break
        return responses

    async def _reset(self, data_response: SMTPResponse | None) -> None:
        """Leave the server ready for the next transaction after a refusal."""
        assert self._protocol is not None
        protocol = self._protocol
        if data_response is not None and data_response.code == 354:
            # A pipelined DATA accepted although no recipient was: send an empty message end.
            protocol.write(b".\r\n")
            await protocol.replies(1)
        protocol.write(b"RSET\r\n")
        await protocol.replies(1)

    @property
    def reusable(self) -> bool:
        """Connected, between transactions, nothing sent ahead or left unread: another pass
        may go on on this connection (the loop in `serve` keeps it open)."""
        smtp, protocol = self._smtp, self._protocol
        return (
            smtp is not None
            and protocol is not None
            and smtp.is_connected
            and self._ahead is None
            and not protocol.has_unread()
        )

    def _drop(self) -> None:
        if self._smtp is not None:
            self._smtp.close()
        self._smtp = None
        self._protocol = None
        self._ahead = None

    async def close(self) -> None:
        smtp, protocol = self._smtp, self._protocol
        # With an envelope sent ahead the server may be waiting for its body, and anything
        # but the body would be taken as message text: just hang up (no message is
        # delivered without its final dot).
        if self.reusable:
            assert smtp is not None and protocol is not None
            protocol.leave_transaction_mode()
            with contextlib.suppress(aiosmtplib.SMTPException, OSError, TimeoutError):
                await asyncio.wait_for(smtp.quit(), timeout=5)
        self._drop()


def _usual_envelope_answer(responses: list[SMTPResponse]) -> bool:
    return (
        len(responses) == 3
        and responses[0].code == 250
        and responses[1].code == 250
        and responses[2].code == 354
    )


def _envelope_commands(envelope: Envelope) -> bytes:
    return (
        f"MAIL FROM:<{envelope.mail_from}>\r\nRCPT TO:<{envelope.recipient}>\r\nDATA\r\n"
    ).encode("ascii")


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

    async def send(self, envelope: Envelope, then: NextEnvelope | None = None) -> None:
        failure = self._outbox.failures.get(envelope.recipient)
        if failure is not None:
            raise failure
        self._outbox.envelopes.append(envelope)

    async def close(self) -> None:
        return None


def smtp_sender_factory(settings: Settings) -> SenderFactory:
    return lambda: SMTPSender(settings)
