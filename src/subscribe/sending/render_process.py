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
import multiprocessing
import os
import signal
from concurrent.futures import ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from typing import Protocol

from subscribe.config import Settings
from subscribe.mail.envelopes import EnvelopeFactory, PostContent, RenderedItem, RenderItem
from subscribe.readers.tokens import Tokens, tokens_for

# Below this many due deliveries a second interpreter's start-up (~1 s of CPU) does not pay.
RENDER_PROCESS_MIN_MESSAGES = 5000


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


def make_renderer(settings: Settings, tokens: Tokens, due: int) -> Renderer:
    """A render process when it is asked for, the run is big enough and there is a core
    for it (the process makes its tokens from the same settings)."""
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    if settings.render_process == "on" and due >= RENDER_PROCESS_MIN_MESSAGES and (cores or 1) > 1:
        return ProcessRenderer(settings, tokens)
    return InlineRenderer(settings, tokens)
