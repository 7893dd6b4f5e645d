"""An SMTP sink on aiosmtpd: accepts every message and throws it away (advertises PIPELINING).

The fallback for ``smtp-sink`` when Postfix's tools are missing, and the recording sink of
``rate.py``: with ``--log FILE`` it writes one line per message on exit (SIGTERM/SIGINT),
``<unix time> <size in bytes> <recipients>``.

    python bench/aiosink.py --port 2525 [--log arrivals.txt]
"""

from __future__ import annotations

import argparse
import asyncio
import signal
import time
from pathlib import Path
from typing import Any

from aiosmtpd.smtp import SMTP


class DiscardingHandler:
    def __init__(self) -> None:
        self.arrivals: list[tuple[float, int, str]] = []

    async def handle_EHLO(
        self, server: Any, session: Any, envelope: Any, hostname: str, responses: list[str]
    ) -> list[str]:
        session.host_name = hostname
        responses.insert(-1, "250-PIPELINING")  # aiosmtpd reads pipelined commands in order
        return responses

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        size = len(envelope.original_content or b"")
        self.arrivals.append((time.time(), size, ",".join(envelope.rcpt_tos)))
        return "250 2.0.0 Ok: discarded"


async def serve(host: str, port: int, log: Path | None) -> None:
    handler = DiscardingHandler()
    loop = asyncio.get_running_loop()
    server = await loop.create_server(
        lambda: SMTP(handler, hostname="bench-sink", decode_data=False),
        host,
        port,
    )
    stop = asyncio.Event()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, stop.set)
    await stop.wait()
    server.close()
    if log is not None:
        with log.open("w") as out:
            for at, size, rcpts in handler.arrivals:
                out.write(f"{at:.6f} {size} {rcpts}\n")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--log", type=Path)
    args = parser.parse_args()
    asyncio.run(serve(args.host, args.port, args.log))


if __name__ == "__main__":
    main()
