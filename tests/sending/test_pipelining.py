"""The SMTP transaction path at the packet level: envelopes pipelined behind the previous
body (RFC 2920), bulk reply reading, and what happens with stray or malformed replies.

Two servers: ``faultserver.FaultServer`` (aiosmtpd, reads commands in order) for what gets
delivered, and ``ScriptedServer`` below, a few lines of asyncio that answer with a fixed
script and log what arrived when, for what a normal server cannot show: whether the next
MAIL came in before the previous message's final reply went out.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from types import SimpleNamespace

import pytest
from conftest import make_settings
from faultserver import FaultServer, numbered_envelope

from subscribe.config import Settings
from subscribe.errors import ConnectionDropped, PermanentDeliveryError, TransientDeliveryError
from subscribe.sending.sender import Envelope, SMTPSender

pytestmark = pytest.mark.timeout(30)


def _envelope(number: int) -> Envelope:
    return numbered_envelope(number, "hello\r\n.a line with a dot\r\n")


@pytest.fixture
def relay(tmp_path: Path) -> Iterator[tuple[FaultServer, Settings]]:
    """A FaultServer that advertises PIPELINING, and settings that send to it."""
    server = FaultServer(pipelining=True).start()
    try:
        yield server, make_settings(f"sqlite:///{tmp_path / 'unused.db'}", server)
    finally:
        server.stop()


def _sender(tmp_path: Path, host: str, port: int, **overrides: object) -> SMTPSender:
    where = SimpleNamespace(host=host, port=port)
    return SMTPSender(make_settings(f"sqlite:///{tmp_path / 'unused.db'}", where, **overrides))  # type: ignore[arg-type]


# -- a scripted server ---------------------------------------------------------------------


@dataclass
class ScriptedServer:
    """Answers EHLO with PIPELINING, 250 to MAIL and RCPT, 354 to DATA and, after
    ``dot_delay`` seconds, 250 to the end of data; replies go out in order. Logs, for each
    MAIL, how many end-of-data replies had been written before it arrived. ``stray`` is
    written, unasked, after the first message's final reply; ``rcpt_reply`` replaces the
    RCPT answer."""

    dot_delay: float = 0.0
    stray: bytes = b""
    rcpt_reply: bytes = b"250 ok\r\n"
    mail_log: list[tuple[str, int]] = field(default_factory=list)
    messages: list[bytes] = field(default_factory=list)
    connections: int = 0
    port: int = 0

    async def start(self) -> asyncio.Server:
        server = await asyncio.start_server(self._session, "127.0.0.1", 0)
        self.port = server.sockets[0].getsockname()[1]
        return server

    async def _session(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.connections += 1
        replies: asyncio.Queue[tuple[float, bytes]] = asyncio.Queue()
        finals_written = 0

        async def answer() -> None:
            nonlocal finals_written
            while True:
                delay, reply = await replies.get()
                if delay:
                    await asyncio.sleep(delay)
                writer.write(reply)
                if delay or reply.startswith(b"250 queued"):
                    finals_written += 1
                    if finals_written == 1 and self.stray:
                        writer.write(self.stray)

        answering = asyncio.create_task(answer())
        writer.write(b"220 scripted ESMTP\r\n")
        try:
            while line := await reader.readline():
                verb = line[:4].upper()
                if verb in (b"EHLO", b"HELO"):
                    replies.put_nowait((0.0, b"250-scripted\r\n250 PIPELINING\r\n"))
                elif verb == b"MAIL":
                    self.mail_log.append((line.decode().strip(), finals_written))
                    replies.put_nowait((0.0, b"250 ok\r\n"))
                elif verb == b"RCPT":
                    replies.put_nowait((0.0, self.rcpt_reply))
                elif verb == b"DATA":
                    replies.put_nowait((0.0, b"354 go on\r\n"))
                    body = bytearray()
                    while (part := await reader.readline()) not in (b".\r\n", b""):
                        body += part
                    self.messages.append(bytes(body))
                    replies.put_nowait((self.dot_delay, b"250 queued\r\n"))
                elif verb in (b"RSET", b"NOOP"):
                    replies.put_nowait((0.0, b"250 ok\r\n"))
                elif verb == b"QUIT":
                    replies.put_nowait((0.0, b"221 bye\r\n"))
                    await asyncio.sleep(0.05)
                    break
        finally:
            answering.cancel()
            writer.close()


def _run_scripted(script: ScriptedServer, talk) -> None:  # type: ignore[no-untyped-def]
    async def main() -> None:
        server = await script.start()
        try:
            await talk()
        finally:
            server.close()

    asyncio.run(main())


# -- the next envelope rides behind the body ---------------------------------------------------


def test_the_next_envelope_goes_out_before_the_previous_final_reply(tmp_path: Path) -> None:
    script = ScriptedServer(dot_delay=0.2)
    envelopes = [_envelope(n) for n in range(3)]

    async def talk() -> None:
        sender = _sender(tmp_path, "127.0.0.1", script.port)
        try:
            await sender.send(envelopes[0], lambda: envelopes[1])
            await sender.send(envelopes[1], lambda: envelopes[2])
            await sender.send(envelopes[2], lambda: None)
        finally:
            await sender.close()

    _run_scripted(script, talk)
    # Each MAIL after the first arrived while the previous final reply was still held back.
    assert script.mail_log == [
        ("MAIL FROM:<news@blog.example>", 0),
        ("MAIL FROM:<news@blog.example>", 0),
        ("MAIL FROM:<news@blog.example>", 1),
    ]
    assert len(script.messages) == 3 and script.connections == 1
    assert script.messages[0].endswith(b"hello\r\n..a line with a dot\r\n")


def test_without_a_next_message_nothing_is_sent_ahead(tmp_path: Path) -> None:
    script = ScriptedServer(dot_delay=0.1)

    async def talk() -> None:
        sender = _sender(tmp_path, "127.0.0.1", script.port)
        try:
            await sender.send(_envelope(0), lambda: None)
            await sender.send(_envelope(1))
        finally:
            await sender.close()

    _run_scripted(script, talk)
    assert [finals for _, finals in script.mail_log] == [0, 1]


def test_stopping_with_an_envelope_sent_ahead_hangs_up_without_a_message(
    relay: tuple[FaultServer, Settings],
) -> None:
    server, settings = relay

    async def talk() -> None:
        sender = SMTPSender(settings)
        try:
            await sender.send(_envelope(0), lambda: _envelope(1))
        finally:
            await sender.close()  # r1's envelope is out, its body never comes
        second = SMTPSender(settings)
        try:
            await second.send(_envelope(1))
        finally:
            await second.close()

    asyncio.run(talk())
    handler = server.handler
    assert handler.recipients() == ["r0@example.org", "r1@example.org"]
    assert handler.commands.count("RCPT") == 3  # r0, r1 sent ahead, r1 again
    assert handler.errors == []


def test_a_different_message_after_an_envelope_sent_ahead_starts_afresh(
    relay: tuple[FaultServer, Settings],
) -> None:
    # The server may already be waiting for r1's body: r2 must not be written into it.
    server, settings = relay

    async def talk() -> None:
        sender = SMTPSender(settings)
        try:
            await sender.send(_envelope(0), lambda: _envelope(1))
            await sender.send(_envelope(2))
        finally:
            await sender.close()

    asyncio.run(talk())
    assert server.handler.recipients() == ["r0@example.org", "r2@example.org"]
    assert server.handler.connections == 2
    assert [m.data for m in server.handler.messages] == [_envelope(n).message for n in (0, 2)]


@pytest.mark.parametrize(
    "fault",
    ["rcpt 550", "rcpt 450", "data 554", "dot 550 of the previous", "drop at rcpt"],
)
def test_refusals_of_an_envelope_sent_ahead(
    relay: tuple[FaultServer, Settings], fault: str
) -> None:
    server, settings = relay
    handler = server.handler
    expected: type[Exception] | None
    if fault == "rcpt 550":
        handler.at_rcpt("r1@example.org", "550 5.1.1 no such user", times=1)
        expected, delivered = PermanentDeliveryError, [0, 2, 3]
    elif fault == "rcpt 450":
        handler.at_rcpt("r1@example.org", "450 4.2.1 busy", times=1)
        expected, delivered = TransientDeliveryError, [0, 2, 3]
    elif fault == "data 554":
        handler.at_data("r1@example.org", "554 5.7.1 not from you", times=1)
        expected, delivered = PermanentDeliveryError, [0, 2, 3]
    elif fault == "dot 550 of the previous":
        handler.at_dot("r0@example.org", "550 5.7.1 content refused", times=1)
        expected, delivered = None, [1, 2, 3]
    else:
        handler.drop_at_rcpt("r1@example.org", times=1)
        expected, delivered = ConnectionDropped, [0, 2, 3]
    outcomes: list[str] = []
    envelopes = [_envelope(n) for n in range(5)]

    async def talk() -> None:
        sender = SMTPSender(settings)
        try:
            for number in range(4):
                try:
                    await sender.send(envelopes[number], lambda n=number: envelopes[n + 1])
                    outcomes.append("sent")
                except Exception as exc:
                    outcomes.append(type(exc).__name__)
        finally:
            await sender.close()

    asyncio.run(talk())
    if expected is None:
        assert outcomes == ["PermanentDeliveryError", "sent", "sent", "sent"]
    else:
        assert outcomes == ["sent", expected.__name__, "sent", "sent"]
    assert handler.recipients() == [f"r{n}@example.org" for n in delivered]
    assert handler.errors == []


# -- replies nobody asked for, replies that are not replies --------------------------------------


def test_a_stray_reply_between_messages_means_a_fresh_connection(tmp_path: Path) -> None:
    script = ScriptedServer(stray=b"250 nobody asked\r\n")

    async def talk() -> None:
        sender = _sender(tmp_path, "127.0.0.1", script.port)
        try:
            await sender.send(_envelope(0))
            await asyncio.sleep(0.1)  # the stray reply is in
            await sender.send(_envelope(1))
        finally:
            await sender.close()

    _run_scripted(script, talk)
    assert len(script.messages) == 2
    assert script.connections == 2  # not paired with the next MAIL: reconnected instead


def test_a_malformed_reply_breaks_the_connection_before_data(tmp_path: Path) -> None:
    script = ScriptedServer(rcpt_reply=b"hello, this is not SMTP\r\n")

    async def talk() -> None:
        sender = _sender(tmp_path, "127.0.0.1", script.port)
        try:
            with pytest.raises(ConnectionDropped, match="malformed SMTP reply"):
                await sender.send(_envelope(0))
        finally:
            await sender.close()

    _run_scripted(script, talk)
    assert script.messages == []
