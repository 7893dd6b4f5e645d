"""A minimal recording SMTP sink: accepts everything, notes when each message arrived.

For ``rate.py``: pacing is judged from arrival times at the server, so the server must not
be the bottleneck. aiosmtpd spends ~1.4 ms of CPU a message; this plain asyncio protocol
(EHLO with PIPELINING, MAIL, RCPT, DATA, RSET, NOOP, QUIT; no checks at all) a small
fraction of that. On SIGTERM/SIGINT it writes one line per message to ``--log``:
``<unix time> <size in bytes> <recipients>``.

    python bench/recsink.py --port 2525 --log arrivals.txt
"""

from __future__ import annotations

import argparse
import asyncio
import signal
import time
from pathlib import Path

Arrival = tuple[float, int, str]


class _Session(asyncio.Protocol):
    def __init__(self, arrivals: list[Arrival]) -> None:
        self._arrivals = arrivals
        self._buffer = bytearray()
        self._in_data = False
        self._size = 0
        self._rcpts: list[str] = []
        self._transport: asyncio.Transport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self._transport = transport
        transport.write(b"220 recsink ESMTP\r\n")

    def data_received(self, data: bytes) -> None:
        self._buffer += data
        replies = []
        while True:
            if self._in_data:
                end = self._buffer.find(b"\r\n.\r\n")
                if end < 0:
                    # Keep the last bytes: the terminator may straddle two reads.
                    keep = len(self._buffer) - 4
                    if keep > 0:
                        self._size += keep
                        del self._buffer[:keep]
                    break
                self._size += end + 2
                del self._buffer[: end + 5]
                self._in_data = False
                self._arrivals.append((time.time(), self._size, ",".join(self._rcpts)))
                replies.append(b"250 2.0.0 Ok: discarded\r\n")
                continue
            end = self._buffer.find(b"\r\n")
            if end < 0:
                break
            line = bytes(self._buffer[:end])
            del self._buffer[: end + 2]
            verb = line[:4].upper()
            if verb == b"EHLO":
                replies.append(b"250-recsink\r\n250-PIPELINING\r\n250-8BITMIME\r\n250 SIZE 0\r\n")
            elif verb == b"HELO":
                replies.append(b"250 recsink\r\n")
            elif verb == b"MAIL":
                self._rcpts = []
                replies.append(b"250 2.1.0 Ok\r\n")
            elif verb == b"RCPT":
                address = line.partition(b":")[2].strip().strip(b"<>").split(b">")[0]
                self._rcpts.append(address.decode("ascii", "replace"))
                replies.append(b"250 2.1.5 Ok\r\n")
            elif verb == b"DATA":
                self._in_data = True
                replies.append(b"354 End data with <CR><LF>.<CR><LF>\r\n")
                # A message may start right here: "\r\n.\r\n" needs the line break before it.
                self._buffer[:0] = b"\r\n"
                self._size = -2
            elif verb == b"QUIT":
                replies.append(b"221 2.0.0 Bye\r\n")
                assert self._transport is not None
                self._transport.write(b"".join(replies))
                self._transport.close()
                return
            else:  # RSET, NOOP and anything else
                replies.append(b"250 2.0.0 Ok\r\n")
        if replies and self._transport is not None:
            self._transport.write(b"".join(replies))


async def serve(host: str, port: int, log: Path) -> None:
    arrivals: list[Arrival] = []
    loop = asyncio.get_running_loop()
    server = await loop.create_server(lambda: _Session(arrivals), host, port, backlog=512)
    stop = asyncio.Event()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, stop.set)
    await stop.wait()
    server.close()
    with log.open("w") as out:
        out.writelines(f"{at:.6f} {size} {rcpts}\n" for at, size, rcpts in arrivals)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--log", type=Path, required=True)
    args = parser.parse_args()
    asyncio.run(serve(args.host, args.port, args.log))


if __name__ == "__main__":
    main()
