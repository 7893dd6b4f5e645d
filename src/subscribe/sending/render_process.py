"""Rendering beside the sending loop: inline, or in other processes for big runs.

A sending process is CPU-bound on one core (the GIL), and about a third of its time per
message is making the message (template fill, token, Message-ID). With
SUBSCRIBE_RENDER_PROCESS=on, a big run moves that work to a render process, so sending and
rendering each get a core; shipping 10 KB a message between processes costs CPU, so it
pays only where a core would otherwise idle (not with the relay on the same small box).

With DKIM on, an RSA-2048 signature (~0.8 ms of CPU) is three times all the rest of a
message, so a signed run goes as fast as the machine's cores sign: there is one signing
process per core, which get a few hundred bytes a message and return the signatures
(``SigningRenderer``), or with SUBSCRIBE_RENDER_PROCESS=on one render process per core,
which sign what they render.

The process is spawned (a fresh interpreter: nothing of the parent's database connections
or threads is inherited), gets the settings once, holds an ``EnvelopeFactory``, and
answers batches of plain tuples. It never touches the database: the sending process
claims, records and releases, so stopping or killing either one changes nothing in the
ledger's guarantees.
"""

from __future__ import annotations

import asyncio
import multiprocessing
import os
import signal
from concurrent.futures import ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from typing import Protocol

from subscribe.config import Settings
from subscribe.mail import signing
from subscribe.mail.dkim import Unsigned
from subscribe.mail.dkim_keys import dkim_signer
from subscribe.mail.envelopes import EnvelopeFactory, PostContent, RenderedItem, RenderItem
from subscribe.readers.tokens import Tokens, tokens_for

# Below this many due deliveries a second interpreter's start-up (~1 s of CPU) does not pay.
RENDER_PROCESS_MIN_MESSAGES = 5000
# An RSA-2048 signature costs ~0.8 ms of CPU, three times the rest of a message: with DKIM
# on, signing processes pay from a much smaller run.
SIGNING_PROCESS_MIN_MESSAGES = 1000
# One sending process feeds ~3,000 messages a second to sign: as many cores as that needs.
MAX_SIGNING_PROCESSES = 4


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
    """Renders in spawned processes (one, or with DKIM on one per core: they sign too);
    each batch carries the posts it needs, which each process compiles once.

    A new interpreter takes a second or so to start: until one has, batches are rendered
    inline, so the run starts sending at once."""

    batch = 100
    ahead = 4

    def __init__(self, settings: Settings, tokens: Tokens, processes: int = 1) -> None:
        self._pool = ProcessPoolExecutor(
            max_workers=processes,
            mp_context=multiprocessing.get_context("spawn"),
            initializer=_start,
            initargs=(settings,),
        )
        # One call each: the pool spawns a process per call while none is idle, so all
        # start at once (it would otherwise spawn them one by one, as batches queue up).
        self._started = [self._pool.submit(_ready) for _ in range(processes)]
        self.ahead = max(self.ahead, 2 * processes)
        self._broken = False
        self._inline = InlineRenderer(settings, tokens)
        self._posts: dict[int, PostContent] = {}

    def add_post(self, post: PostContent) -> None:
        self._inline.add_post(post)
        self._posts[post.id] = post

    async def render(self, items: list[RenderItem]) -> list[RenderedItem]:
        if self._broken or not any(started.done() for started in self._started):
            return await self._inline.render(items)
        # Whichever process gets the batch: a post it has compiled already is skipped.
        posts = [self._posts[post_id] for post_id in {item[1] for item in items}]
        loop = asyncio.get_running_loop()
        try:
            return await loop.run_in_executor(self._pool, _render, posts, items)
        except BrokenProcessPool:
            # A render process died (killed, out of memory): carry on without them.
            self._broken = True
            return await self._inline.render(items)

    def close(self) -> None:
        self._pool.shutdown(wait=False, cancel_futures=True)


# -- the signing processes ------------------------------------------------------------------


class SigningRenderer:
    """Renders here and has the DKIM signatures made by spawned signing processes, one per
    core, which get and return a few hundred bytes a message (not the 10 KB a render
    process would).

    This process signs nothing once they are up: it renders and sends (~0.3 ms a message),
    and all the CPU left is the signing processes', which take batches from one queue.
    However the machine is shared (a local relay, other programs), the kernel keeps them
    busy, and no share of each batch has to be guessed (with this process signing a share,
    its event loop held its SMTP lanes for ~20 ms at a time, and the share lagged). Up to
    ``ahead`` batches are in flight, so that each process has its next batch waiting while
    it signs one. Until the first has started (~0.5 s), or once one has died, this
    process signs by itself: the run goes on either way."""

    batch = 32
    ahead = 8  # render calls in flight: at least two per signing process

    def __init__(self, settings: Settings, tokens: Tokens, processes: int = 2) -> None:
        self._factory = EnvelopeFactory(settings, tokens)
        signer = self._factory.signer
        assert signer is not None
        self._signer = signer
        self._pool = ProcessPoolExecutor(
            max_workers=processes,
            mp_context=multiprocessing.get_context("spawn"),
            initializer=signing.start,
            initargs=(settings,),
        )
        # One call each: the pool spawns a process per call while none is idle, so all
        # start at once (it would otherwise spawn them one by one, as batches queue up).
        self._started = [self._pool.submit(signing.ready) for _ in range(processes)]
        self.ahead = max(self.ahead, 2 * processes)
        self._broken = False
        self.signed_here = 0  # messages signed in this process (before start-up, or after)

    def add_post(self, post: PostContent) -> None:
        self._factory.add_post(post)

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
        if not self._broken and any(started.done() for started in self._started):
            loop = asyncio.get_running_loop()
            try:
                return await loop.run_in_executor(self._pool, signing.sign, unsigned)
            except BrokenProcessPool:
                # A signing process died (killed, out of memory): carry on without them.
                self._broken = True
        self.signed_here += len(unsigned)
        return signing.sign_all(self._signer, unsigned)

    def close(self) -> None:
        self._pool.shutdown(wait=False, cancel_futures=True)


def make_renderer(settings: Settings, tokens: Tokens, due: int) -> Renderer:
    """With more than one core, for runs big enough: render processes when asked for, else
    with DKIM on signing processes. With DKIM on there is one process per core (up to
    ``MAX_SIGNING_PROCESSES``): signing is most of the CPU a signed message costs."""
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    cores = cores or 1
    if cores > 1:
        signed = dkim_signer(settings) is not None
        processes = min(cores, MAX_SIGNING_PROCESSES) if signed else 1
        if settings.render_process == "on" and due >= RENDER_PROCESS_MIN_MESSAGES:
            return ProcessRenderer(settings, tokens, processes)
        if signed and due >= SIGNING_PROCESS_MIN_MESSAGES:
            return SigningRenderer(settings, tokens, processes)
    return InlineRenderer(settings, tokens)
