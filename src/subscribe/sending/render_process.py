"""Rendering beside the sending loop: inline, or in a second process for big runs.

A sending process is CPU-bound on one core (the GIL), and about a third of its time per
message is making the message (template fill, token, Message-ID). With
SUBSCRIBE_RENDER_PROCESS=on, a big run moves that work to a render process, so sending and
rendering each get a core; shipping 10 KB a message between processes costs CPU, so it
pays only where a core would otherwise idle (not with the relay on the same small box).

The process is spawned (a fresh interpreter: nothing of the parent's database connections
or threads is inherited), gets the settings once, holds an ``EnvelopeFactory``, and
answers batches of plain tuples. It never touches the database: the sending process
claims, records and releases, so stopping or killing either one changes nothing in the
ledger's guarantees.
"""

from __future__ import annotations

import asyncio
import contextlib
import multiprocessing
import os
import signal
from collections import deque
from concurrent.futures import ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from multiprocessing.connection import Connection
from typing import Protocol

from subscribe.config import Settings
from subscribe.mail.dkim import Unsigned
from subscribe.mail.dkim_keys import dkim_signer
from subscribe.mail.envelopes import EnvelopeFactory, PostContent, RenderedItem, RenderItem
from subscribe.readers.tokens import Tokens, tokens_for

# Below this many due deliveries a second interpreter's start-up (~1 s of CPU) does not pay.
RENDER_PROCESS_MIN_MESSAGES = 5000
# An RSA-2048 signature costs ~0.8 ms of CPU, three times the rest of a message: with DKIM
# on, a signing process pays from a much smaller run.
SIGNING_PROCESS_MIN_MESSAGES = 1000
REPLY_POLL_SECONDS = 0.001


class Renderer(Protocol):
    batch: int  # deliveries per render call
    ahead: int  # render calls in flight at once

    def add_post(self, post: PostContent) -> None: ...

    async def render(self, items: list[RenderItem]) -> list[RenderedItem]: ...

    def close(self) -> None: ...


class InlineRenderer:
    """Renders in the sending process, a slice at a time between the loop's other work."""

    batch = 16
    ahead = 1

    def __init__(self, settings: Settings, tokens: Tokens) -> None:
        self._factory = EnvelopeFactory(settings, tokens)

    def add_post(self, post: PostContent) -> None:
        self._factory.add_post(post)

    async def render(self, items: list[RenderItem]) -> list[RenderedItem]:
        return self._factory.render(items)

    def close(self) -> None:
        return None


# -- the render process ---------------------------------------------------------------------

_factory: EnvelopeFactory | None = None  # in the render process: set by _start


def _start(settings: Settings) -> None:
    global _factory
    # Ctrl-C reaches the whole process group: the sending process decides what stops.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    _factory = EnvelopeFactory(settings, tokens_for(settings))


def _render(posts: list[PostContent], items: list[RenderItem]) -> list[RenderedItem]:
    assert _factory is not None
    for post in posts:
        _factory.add_post(post)
    return _factory.render(items)


def _ready() -> bool:
    return _factory is not None


class ProcessRenderer:
    """Renders in a spawned process; posts travel with the first batch that needs them.

    A new interpreter takes a second or so to start: until it has, batches are rendered
    inline, so the run starts sending at once."""

    batch = 100
    ahead = 4

    def __init__(self, settings: Settings, tokens: Tokens) -> None:
        self._pool = ProcessPoolExecutor(
            max_workers=1,
            mp_context=multiprocessing.get_context("spawn"),
            initializer=_start,
            initargs=(settings,),
        )
        self._started = self._pool.submit(_ready)
        self._broken = False
        self._inline = InlineRenderer(settings, tokens)
        self._unsent: list[PostContent] = []

    def add_post(self, post: PostContent) -> None:
        self._inline.add_post(post)
        self._unsent.append(post)

    async def render(self, items: list[RenderItem]) -> list[RenderedItem]:
        if self._broken or not self._started.done():
            return await self._inline.render(items)
        posts, self._unsent = self._unsent, []
        loop = asyncio.get_running_loop()
        try:
            return await loop.run_in_executor(self._pool, _render, posts, items)
        except BrokenProcessPool:
            # The render process died (killed, out of memory): carry on without it.
            self._broken = True
            return await self._inline.render(items)

    def close(self) -> None:
        self._pool.shutdown(wait=False, cancel_futures=True)


# -- the signing process --------------------------------------------------------------------


def _signing_main(conn: Connection, settings: Settings) -> None:
    """The signing process: batches of ``Unsigned`` in, their signature fields out."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signer = dkim_signer(settings)
    assert signer is not None
    conn.send("ready")
    while True:
        try:
            batch = conn.recv()
        except (EOFError, OSError):
            return
        if batch is None:
            return
        conn.send([b"" if u is None else signer.header(u) for u in batch])


class SigningRenderer:
    """Renders here and has DKIM signatures made by a spawned signing process as well, which
    gets and returns a few hundred bytes a message (not the 10 KB a render process would).

    Signing is most of a signed message's CPU, so both processes sign: each batch is split,
    the signing process gets its share over a pipe while this one signs the rest. Up to
    ``IN_FLIGHT`` batches queue up in the pipe (replies come back in order), so the signing
    process keeps busy while this one sends; the share grows while it keeps up and shrinks
    while it falls behind (the machine is shared: neither can count on a whole core). A
    plain pipe, not a ProcessPoolExecutor: its feeder threads would wait for the GIL, which
    an RSA signature holds. A process that has not started yet, or has died, leaves all of
    it to this one, so the run goes on either way."""

    batch = 48
    ahead = 4
    SHARE_STEP = 0.05
    IN_FLIGHT = 2  # batches at the signing process: ~130 KB out, ~50 KB of replies

    def __init__(self, settings: Settings, tokens: Tokens) -> None:
        self._factory = EnvelopeFactory(settings, tokens)
        signer = self._factory.signer
        assert signer is not None
        self._signer = signer
        context = multiprocessing.get_context("spawn")
        self._conn, child = context.Pipe()
        self._process = context.Process(
            target=_signing_main, args=(child, settings), daemon=True, name="subscribe-dkim"
        )
        self._process.start()
        child.close()
        self._ready = False
        self._broken = False
        self._waiting: deque[asyncio.Future[list[bytes]]] = deque()  # in the pipe's order
        self.share = 0.5  # of each batch, for the signing process

    def add_post(self, post: PostContent) -> None:
        self._factory.add_post(post)

    def _sign_here(self, batch: list[Unsigned | None]) -> list[bytes]:
        return [b"" if u is None else self._signer.header(u) for u in batch]

    def _usable(self) -> bool:
        if not self._ready and not self._broken:
            try:
                if self._conn.poll():
                    self._ready = self._conn.recv() == "ready"
            except (EOFError, OSError):
                self._broken = True
        return self._ready and not self._broken

    def _drain(self) -> None:
        """Hand each reply that has arrived to the batch waiting for it."""
        try:
            while self._waiting and self._conn.poll():
                self._waiting.popleft().set_result(self._conn.recv())
        except (EOFError, OSError):  # the signing process died (killed, out of memory)
            self._give_up()

    def _give_up(self) -> None:
        self._broken = True
        while self._waiting:
            self._waiting.popleft().set_exception(EOFError())

    async def render(self, items: list[RenderItem]) -> list[RenderedItem]:
        prepared = self._factory.render_unsigned(items)
        headers = await self._signatures([u for _, u in prepared])
        return [
            (return_path, recipient, header + wire, mid)
            for ((return_path, recipient, wire, mid), _), header in zip(
                prepared, headers, strict=True
            )
        ]

    async def _signatures(self, unsigned: list[Unsigned | None]) -> list[bytes]:
        if not self._usable():
            return self._sign_here(unsigned)
        self._drain()
        if len(self._waiting) >= self.IN_FLIGHT:
            # Both sides write to a socket with a bounded buffer: with more in flight the
            # signing process could block on its replies while this one blocks sending.
            return self._sign_here(unsigned)
        cut = round(len(unsigned) * self.share)
        theirs: asyncio.Future[list[bytes]] = asyncio.get_running_loop().create_future()
        try:
            self._conn.send(unsigned[:cut])
        except OSError:
            self._give_up()
            return self._sign_here(unsigned)
        self._waiting.append(theirs)
        ours = self._sign_here(unsigned[cut:])
        self._drain()
        # Done with all it had while this process signed its part: it has time to spare;
        # more than this batch still to do: it falls behind. One batch in hand is right.
        if not self._waiting:
            self.share = min(self.share + self.SHARE_STEP, 0.95)
        elif len(self._waiting) > 1:
            self.share = max(self.share - self.SHARE_STEP, 0.05)
        try:
            return await self._reply(theirs) + ours
        except EOFError:
            return self._sign_here(unsigned[:cut]) + ours

    async def _reply(self, theirs: asyncio.Future[list[bytes]]) -> list[bytes]:
        """Wait for a batch's signatures, reading the pipe between other work. Polled, not
        ``loop.add_reader``: uvloop's reader missed replies here and left a run hanging."""
        while True:
            self._drain()
            if theirs.done():
                return theirs.result()
            await asyncio.sleep(REPLY_POLL_SECONDS)

    def close(self) -> None:
        with contextlib.suppress(OSError):
            self._conn.send(None)
        self._conn.close()
        self._process.join(timeout=2)
        if self._process.is_alive():
            self._process.kill()


def make_renderer(settings: Settings, tokens: Tokens, due: int) -> Renderer:
    """A render process when it is asked for, the run is big enough and there is a core
    for it (the process makes its tokens from the same settings); with DKIM on, else a
    signing process for runs big enough."""
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    if (cores or 1) > 1:
        if settings.render_process == "on" and due >= RENDER_PROCESS_MIN_MESSAGES:
            return ProcessRenderer(settings, tokens)
        if due >= SIGNING_PROCESS_MIN_MESSAGES and dkim_signer(settings) is not None:
            return SigningRenderer(settings, tokens)
    return InlineRenderer(settings, tokens)
