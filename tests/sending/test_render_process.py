"""Rendering in a second process (SUBSCRIBE_RENDER_PROCESS): the same messages as inline.

A run with ``render_process="on"`` spawns the render process for real and sends into a real
SMTP server; the messages must be what an inline run produces for the same readers (same
Message-IDs, same decoded text, unsubscribe tokens that this process verifies), and each
reader gets exactly one.
"""

from __future__ import annotations

import asyncio
import email.policy
import os
from email import message_from_bytes
from email.message import EmailMessage
from pathlib import Path

import pytest
from conftest import make_settings
from faultserver import FaultServer, announce_post, seed_subscribers

from subscribe.db import store
from subscribe.mail.envelopes import PostContent
from subscribe.mail.render import smtp_unstuff
from subscribe.readers.tokens import tokens_for
from subscribe.sending import render_process, runs
from subscribe.sending.render_process import InlineRenderer, ProcessRenderer, make_renderer
from subscribe.sending.sender import smtp_sender_factory

pytestmark = pytest.mark.timeout(120)

READERS = 240  # a few render batches of 100, and the inline warm-up before the process is up


@pytest.fixture
def eager_process(monkeypatch: pytest.MonkeyPatch) -> list[ProcessRenderer]:
    """The render process for any run size, and up before the run renders anything (else
    a small run may finish on the inline warm-up alone). Lists the renderers made."""
    made: list[ProcessRenderer] = []
    original = ProcessRenderer.__init__

    def init(self: ProcessRenderer, *args: object, **kwargs: object) -> None:
        original(self, *args, **kwargs)  # type: ignore[arg-type]
        for started in self._started:
            started.result(timeout=60)
        made.append(self)

    monkeypatch.setattr(render_process, "RENDER_PROCESS_MIN_MESSAGES", 0)
    monkeypatch.setattr(ProcessRenderer, "__init__", init)
    return made


def _run(tmp_path: Path, render_process: str) -> dict[str, EmailMessage]:
    server = FaultServer(pipelining=True).start()
    settings = make_settings(
        f"sqlite:///{tmp_path / f'{render_process}.db'}",
        server,
        render_process=render_process,
        smtp_connections=4,
        secret_key="one key for both runs, so tokens compare",
    )
    engine = store.open_store(settings.database_url)
    try:
        seed_subscribers(engine, READERS)
        announce_post(engine)
        report = runs.send_due(
            engine,
            settings,
            sender_factory=smtp_sender_factory(settings),
            tokens=tokens_for(settings),
        )
        assert report.sent == READERS
        messages = {}
        for received in server.handler.messages:
            message = message_from_bytes(received.data, policy=email.policy.strict)
            assert isinstance(message, EmailMessage)
            [rcpt] = received.rcpt_tos
            assert rcpt not in messages  # exactly once
            messages[rcpt] = message
        return messages
    finally:
        engine.dispose()
        server.stop()


def test_render_process_sends_what_inline_rendering_sends(
    tmp_path: Path, eager_process: list[ProcessRenderer]
) -> None:
    inline = _run(tmp_path, "off")
    assert eager_process == []
    spawned = _run(tmp_path, "on")
    assert len(eager_process) == 1 and not eager_process[0]._broken
    assert sorted(spawned) == sorted(inline) and len(spawned) == READERS
    tokens = tokens_for(
        make_settings("sqlite://", None, secret_key="one key for both runs, so tokens compare")
    )
    for rcpt, message in spawned.items():
        twin = inline[rcpt]
        for header in ("From", "To", "Subject", "Message-ID", "List-Unsubscribe", "List-Id"):
            assert message[header] == twin[header], header
        for kind in ("plain", "html"):
            body, twin_body = message.get_body((kind,)), twin.get_body((kind,))
            assert body is not None and twin_body is not None
            assert body.get_content() == twin_body.get_content()
        token = str(message["List-Unsubscribe"]).split("/unsubscribe/")[1].split(">")[0]
        assert tokens.read_unsubscribe(token).subscriber_id > 0


def test_the_render_process_renders_what_the_inline_renderer_renders(tmp_path: Path) -> None:
    # The end-to-end run above may finish on the inline warm-up alone on a fast machine;
    # here the process is waited for, so its own output is what gets compared.
    settings = make_settings(f"sqlite:///{tmp_path / 'x.db'}", None, render_process="on")
    tokens = tokens_for(settings)
    post = PostContent(7, "https://blog.example/p", "Title", "https://blog.example/p", "", "", None)
    items = [
        (n, 7, 100 + n, f"reader{n}@example.org", f"reader{n}@example.org", name, language)
        for n, (name, language) in enumerate(
            [("", ""), ("Ann", "de"), ("Zoë <Q>", "pl"), (".dot", "pt-BR")]
        )
    ]
    process = ProcessRenderer(settings, tokens)
    inline = InlineRenderer(settings, tokens)
    try:
        process.add_post(post)
        inline.add_post(post)
        assert process._started[0].result(timeout=60)  # the interpreter is up
        spawned = asyncio.run(process.render(items))
        expected = asyncio.run(inline.render(items))
    finally:
        process.close()
    assert len(spawned) == len(items)
    for (path, rcpt, wire, mid), (path2, rcpt2, wire2, mid2) in zip(spawned, expected, strict=True):
        assert (path, rcpt, mid) == (path2, rcpt2, mid2)
        ours, theirs = (
            message_from_bytes(smtp_unstuff(w), policy=email.policy.strict) for w in (wire, wire2)
        )
        assert ours["To"] == theirs["To"] and ours["List-Unsubscribe"] == theirs["List-Unsubscribe"]
        assert ours.get_body(("plain",)).get_content() == theirs.get_body(("plain",)).get_content()


def test_a_process_only_when_asked_and_for_big_runs(tmp_path: Path) -> None:
    settings = make_settings(f"sqlite:///{tmp_path / 'x.db'}", None, render_process="on")
    tokens = tokens_for(settings)
    small = make_renderer(settings, tokens, 100)
    assert isinstance(small, InlineRenderer)
    off = make_renderer(settings.model_copy(update={"render_process": "off"}), tokens, 10**6)
    assert isinstance(off, InlineRenderer)
    big = make_renderer(settings, tokens, 10**6)
    try:
        assert isinstance(big, ProcessRenderer) == (len(os.sched_getaffinity(0)) > 1)
    finally:
        big.close()
