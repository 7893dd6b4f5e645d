"""A TCP proxy on loopback that delays every chunk by a fixed time in each direction.

Whatever arrives on one side is written to the other side ``delay`` after it arrived, in
order: bandwidth is untouched, only latency is added (``--delay-ms 10`` makes a 20 ms round
trip). Plain asyncio protocols and one timer per chunk keep its own overhead small. Prints
``ready <port>`` when listening and runs until SIGTERM/SIGINT.

    python bench/latency_proxy.py --target 127.0.0.1:2525 --delay-ms 10 [--port 0]
"""

from __future__ import annotations

import argparse
import asyncio
import signal
import socket
from collections import deque


class _Side(asyncio.Protocol):
    """One socket of a proxied pair; what it receives goes to ``peer``, ``delay`` later."""

    def __init__(self, delay: float) -> None:
        self.delay = delay
        self.loop = asyncio.get_running_loop()
        self.transport: asyncio.Transport | None = None
        self.peer: _Side | None = None
        self._pending: deque[tuple[float, bytes | None]] = deque()  # None: end of stream

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self.transport = transport
        sock = transport.get_extra_info("socket")
        if sock is not None:
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

    def _later(self, data: bytes | None) -> None:
        due = self.loop.time() + self.delay
        self._pending.append((due, data))
        self.loop.call_at(due, self._flush)

    def data_received(self, data: bytes) -> None:
        self._later(data)

    def eof_received(self) -> bool:
        self._later(None)
        return True  # keep our side open until the peer has been told

    def connection_lost(self, exc: Exception | None) -> None:
        self._later(None)

    def _flush(self) -> None:
        peer = self.peer
        if peer is None or peer.transport is None:
            self.loop.call_later(0.001, self._flush)  # the other side is still connecting
            return
        now = self.loop.time()
        while self._pending and self._pending[0][0] <= now:
            _, data = self._pending.popleft()
            if peer.transport.is_closing():
                self._pending.clear()
                return
            if data is None:
                peer.transport.close()
                if self.transport is not None:
                    self.transport.close()
                self._pending.clear()
                return
            peer.transport.write(data)


async def serve(port: int, target: tuple[str, int], delay: float) -> None:
    loop = asyncio.get_running_loop()
    connecting: set[asyncio.Task[None]] = set()

    def accept() -> _Side:
        client = _Side(delay)

        async def connect() -> None:
            try:
                _, server = await loop.create_connection(lambda: _Side(delay), *target)
            except OSError:
                if client.transport is not None:
                    client.transport.close()
                return
            client.peer, server.peer = server, client

        task = loop.create_task(connect())
        connecting.add(task)
        task.add_done_callback(connecting.discard)
        return client

    listener = await loop.create_server(accept, "127.0.0.1", port, backlog=512)
    bound = listener.sockets[0].getsockname()[1]
    print(f"ready {bound}", flush=True)
    stop = asyncio.Event()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, stop.set)
    await stop.wait()
    listener.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--target", required=True, help="host:port to forward to")
    parser.add_argument("--delay-ms", type=float, default=10.0, help="added each way")
    parser.add_argument("--port", type=int, default=0)
    args = parser.parse_args()
    host, _, port = args.target.rpartition(":")
    asyncio.run(serve(args.port, (host, int(port)), args.delay_ms / 1000))


if __name__ == "__main__":
    main()
