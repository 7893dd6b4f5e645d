"""aiosmtplib's protocol, taught to read pipelined replies in bulk and to time out cheaply.

aiosmtplib connects, says EHLO, upgrades with STARTTLS and logs in; from then on the mail
transactions are ours (``sender.SMTPSender``). The stock protocol parses one reply per
``data_received`` and hands it over through a fresh future and ``asyncio.wait_for`` per
reply, which costs more than the rest of a transaction's own work when a run moves
thousands of messages a second. ``PipelineProtocol`` takes over the same protocol object
(same transport, same state: only the reading differs) and, in transaction mode:

- parses every complete reply in each packet into a queue, so three pipelined answers
  arriving together wake the sender once;
- keeps one deadline per connection that each step moves forward (a float store), checked
  by a single timer that re-arms itself lazily, instead of a timer handle per reply.

Unsolicited bytes are kept, not dropped: the sender checks ``has_unread`` before a
transaction and reconnects rather than pair a stale reply with a new command.
"""

from __future__ import annotations

import asyncio
from collections import deque

from aiosmtplib.errors import SMTPServerDisconnected
from aiosmtplib.protocol import MAX_RESPONSE_LENGTH, SMTPProtocol
from aiosmtplib.response import SMTPResponse


class MalformedReply(ConnectionError):
    """The server sent something that is not an SMTP reply: the session is unusable."""


class PipelineProtocol(SMTPProtocol):
    """``SMTPProtocol`` plus a transaction mode (see the module docstring)."""

    # Set by ``adopt``: the instance is aiosmtplib's own, already connected.
    _transaction_mode: bool
    _replies: deque[SMTPResponse]
    _continued: list[bytes]
    _wanted: int
    _waiter: asyncio.Future[None] | None
    _deadline: float | None
    _timer: asyncio.TimerHandle | None
    _failure: BaseException | None

    @classmethod
    def adopt(cls, protocol: SMTPProtocol) -> PipelineProtocol:
        """Switch a connected aiosmtplib protocol to transaction mode, in place."""
        protocol.__class__ = cls
        assert isinstance(protocol, PipelineProtocol)
        protocol._transaction_mode = True
        protocol._replies = deque()
        protocol._continued = []
        protocol._wanted = 0
        protocol._waiter = None
        protocol._deadline = None
        protocol._timer = None
        protocol._failure = None
        if protocol.transport is not None:
            # uvloop's transports cache the protocol's bound methods: hand the protocol
            # over again so that they pick up this class's data_received.
            protocol.transport.set_protocol(protocol)
        return protocol

    def leave_transaction_mode(self) -> None:
        """Hand reading back to aiosmtplib (for QUIT); only with nothing left unread."""
        self._stop_timer()
        self._transaction_mode = False

    # -- reading -------------------------------------------------------------------------

    def data_received(self, data: bytes) -> None:
        if not self._transaction_mode:
            super().data_received(data)
            return
        buffer = self._buffer
        buffer.extend(data)
        if len(buffer) > MAX_RESPONSE_LENGTH:
            self._fail(MalformedReply("the server's reply is too long"))
            return
        try:
            self._parse()
        except MalformedReply as exc:
            self._fail(exc)
            return
        waiter = self._waiter
        if waiter is not None and len(self._replies) >= self._wanted:
            self._waiter = None
            if not waiter.done():
                waiter.set_result(None)

    def _parse(self) -> None:
        """Move every complete reply from the byte buffer to the reply queue: the complete
        lines are cut off in one piece and split once (most packets hold only those)."""
        buffer = self._buffer
        end = buffer.rfind(b"\n")
        if end < 0:
            return
        lines = bytes(buffer[:end]).split(b"\n")
        del buffer[: end + 1]
        continued = self._continued
        for line in lines:
            try:
                code = int(line[:3])
            except ValueError:
                del buffer[:]
                raise MalformedReply(
                    f"malformed SMTP reply: {line[:80].decode('utf-8', 'replace')!r}"
                ) from None
            continued.append(line[4:].strip(b" \t\r\n"))
            if line[3:4] != b"-":
                text = (continued[0] if len(continued) == 1 else b"\n".join(continued)).decode(
                    "utf-8", "surrogateescape"
                )
                continued.clear()
                self._replies.append(SMTPResponse(code, text))

    def has_unread(self) -> bool:
        return bool(self._replies or self._buffer or self._continued)

    async def replies(self, count: int) -> list[SMTPResponse]:
        """The next ``count`` replies, waiting for the server only when they are not in yet."""
        if len(self._replies) < count:
            if self._failure is not None:
                raise self._failure
            waiter = self._loop.create_future()
            self._waiter = waiter
            self._wanted = count
            try:
                await waiter
            finally:
                self._waiter = None
        popleft = self._replies.popleft
        return [popleft() for _ in range(count)]

    # -- the connection's end -------------------------------------------------------------

    def connection_lost(self, exc: Exception | None) -> None:
        super().connection_lost(exc)
        if self._transaction_mode:
            lost = SMTPServerDisconnected("Connection lost")
            lost.__cause__ = exc
            self._fail(lost)
            self._stop_timer()

    def eof_received(self) -> bool:
        if self._transaction_mode:
            self._fail(SMTPServerDisconnected("Unexpected EOF received"))
        return super().eof_received()

    def _fail(self, exc: BaseException) -> None:
        """Every later read raises ``exc``; the waiting one now. Closes the connection."""
        if self._failure is None:
            self._failure = exc
        waiter = self._waiter
        self._waiter = None
        if waiter is not None and not waiter.done():
            waiter.set_exception(exc)
        if self.transport is not None and not self.transport.is_closing():
            self.transport.close()

    # -- the deadline ---------------------------------------------------------------------

    def arm(self, timeout: float) -> None:
        """The current step must be answered within ``timeout`` seconds from now."""
        self._deadline = deadline = self._loop.time() + timeout
        if self._timer is None:
            self._timer = self._loop.call_at(deadline, self._check_deadline)

    def disarm(self) -> None:
        """Nothing is awaited. The timer stays: it finds no deadline when it fires and
        stops, so a busy connection does not create and cancel a timer per message."""
        self._deadline = None

    def _stop_timer(self) -> None:
        self._deadline = None
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None

    def _check_deadline(self) -> None:
        self._timer = None
        deadline = self._deadline
        if deadline is None:
            return
        if self._loop.time() < deadline:  # moved on since: sleep until the new deadline
            self._timer = self._loop.call_at(deadline, self._check_deadline)
            return
        self._deadline = None
        self._fail(TimeoutError("the server did not answer in time"))
