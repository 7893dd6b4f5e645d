"""DKIM signatures made by spawned signing processes (``SigningRenderer``) verify as those
made inline do, and a signing process that dies leaves the run signing by itself."""

from __future__ import annotations

import asyncio
import multiprocessing
from collections.abc import Iterator
from pathlib import Path

import dkim
import pytest
from conftest import make_settings
from dnsserver import DNSTestServer, dns_server
from mailserver import SMTPServer

from subscribe.mail import dkim_keys
from subscribe.mail.envelopes import PostContent, RenderItem
from subscribe.mail.render import smtp_unstuff
from subscribe.readers.tokens import tokens_for
from subscribe.sending import render_process
from subscribe.sending.render_process import (
    InlineRenderer,
    ProcessRenderer,
    SigningRenderer,
    make_renderer,
)

pytestmark = pytest.mark.timeout(120)

POST = PostContent(7, "https://blog.example/p", "Signed in two processes", "https://blog.example/p",
                   "A summary.", "<p>Body</p>", None)  # fmt: skip


@pytest.fixture
def key(tmp_path: Path) -> Path:
    path = tmp_path / "dkim.pem"
    dkim_keys.write_private_key(path, dkim_keys.generate_key("rsa"))
    return path


@pytest.fixture
def dns(key: Path) -> Iterator[DNSTestServer]:
    record = dkim_keys.record_value(dkim_keys.load_private_key(key, "rsa"))
    with dns_server({("s1._domainkey.blog.example", "TXT"): [record]}) as server:
        yield server


def items(count: int, start: int = 0) -> list[RenderItem]:
    return [
        (
            i,
            POST.id,
            i,
            f"r{i}@example.org",
            f"r{i}@example.org",
            f"Reader {i}" if i % 2 else "",
            "",
        )
        for i in range(start, start + count)
    ]


def started(renderer: SigningRenderer) -> SigningRenderer:
    for process in renderer._started:
        assert process.result(timeout=60), "a signing process did not start"
    return renderer


async def render_all(
    renderer: SigningRenderer | ProcessRenderer | InlineRenderer, batches: int
) -> list[bytes]:
    renderer.add_post(POST)
    wires = []
    for n in range(batches):
        wires += [wire for _, _, wire, _ in await renderer.render(items(renderer.batch, n * 100))]
    return wires


@pytest.fixture
def renderer(tmp_path: Path, key: Path) -> Iterator[SigningRenderer]:
    settings = make_settings(
        f"sqlite:///{tmp_path / 's.db'}", dkim_selector="s1", dkim_private_key_file=str(key)
    )
    renderer = started(SigningRenderer(settings, tokens_for(settings)))
    yield renderer
    renderer.close()


def assert_verified(wires: list[bytes], dns: DNSTestServer) -> None:
    for wire in wires:
        message = smtp_unstuff(wire) if wire.endswith(b"\r\n.\r\n") else wire
        assert dkim.verify(message, dnsfunc=dns.txt)


def test_the_signing_processes_sign_every_message(
    renderer: SigningRenderer, dns: DNSTestServer
) -> None:
    wires = asyncio.run(render_all(renderer, 4))
    assert not renderer._broken
    assert renderer.signed_here == 0
    assert len(wires) == 4 * renderer.batch
    assert_verified(wires, dns)


def test_a_killed_signing_process_leaves_the_signing_here(
    renderer: SigningRenderer, dns: DNSTestServer
) -> None:

    async def run() -> list[bytes]:
        first = await render_all(renderer, 1)
        children = multiprocessing.active_children()
        assert children
        children[0].kill()
        children[0].join(10)
        return first + await render_all(renderer, 2)

    wires = asyncio.run(run())
    assert renderer._broken
    assert renderer.signed_here == 2 * renderer.batch
    assert len(wires) == 3 * renderer.batch
    assert_verified(wires, dns)


def test_a_signing_process_only_for_signed_runs_big_enough(
    tmp_path: Path, key: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(render_process.os, "sched_getaffinity", lambda pid: {0, 1}, raising=False)
    plain = make_settings(f"sqlite:///{tmp_path / 'p.db'}")
    signed = make_settings(
        f"sqlite:///{tmp_path / 's.db'}", dkim_selector="s1", dkim_private_key_file=str(key)
    )
    big = render_process.SIGNING_PROCESS_MIN_MESSAGES
    assert isinstance(make_renderer(plain, tokens_for(plain), big), InlineRenderer)
    assert isinstance(make_renderer(signed, tokens_for(signed), big - 1), InlineRenderer)
    renderer = make_renderer(signed, tokens_for(signed), big)
    try:
        assert isinstance(renderer, SigningRenderer)
    finally:
        renderer.close()


def test_one_signing_process_per_core(
    tmp_path: Path, key: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """With DKIM on, signing processes (or render processes, when asked for) are one per
    core, up to a limit."""
    signed = make_settings(
        f"sqlite:///{tmp_path / 's.db'}", dkim_selector="s1", dkim_private_key_file=str(key)
    )
    big = render_process.RENDER_PROCESS_MIN_MESSAGES
    for cores, processes in ((2, 2), (3, 3), (16, render_process.MAX_SIGNING_PROCESSES)):
        monkeypatch.setattr(
            render_process.os,
            "sched_getaffinity",
            lambda pid, n=cores: set(range(n)),
            raising=False,
        )
        for mode, kind in (("off", SigningRenderer), ("on", ProcessRenderer)):
            settings = signed.model_copy(update={"render_process": mode})
            renderer = make_renderer(settings, tokens_for(settings), big)
            try:
                assert isinstance(renderer, kind)
                assert len(renderer._started) == processes
            finally:
                renderer.close()


def test_render_processes_with_dkim_on_sign_what_they_render(
    tmp_path: Path, key: Path, dns: DNSTestServer
) -> None:
    settings = make_settings(
        f"sqlite:///{tmp_path / 's.db'}",
        dkim_selector="s1",
        dkim_private_key_file=str(key),
        render_process="on",
    )
    renderer = ProcessRenderer(settings, tokens_for(settings), 2)
    try:
        for process in renderer._started:
            assert process.result(timeout=60)

        async def concurrently() -> list[bytes]:
            # Batches in flight together, as the notifier has them: both processes get some,
            # and the post comes with each batch, for whichever process has not seen it.
            renderer.add_post(POST)
            batches = [renderer.render(items(renderer.batch, n * 100)) for n in range(6)]
            return [wire for done in await asyncio.gather(*batches) for _, _, wire, _ in done]

        wires = asyncio.run(concurrently())
        assert not renderer._broken
    finally:
        renderer.close()
    assert len(wires) == 6 * renderer.batch
    assert_verified(wires, dns)


def test_a_notify_run_signs_through_the_process_and_finishes(
    tmp_path: Path,
    key: Path,
    dns: DNSTestServer,
    smtp_server: SMTPServer,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Through the CLI, on its event loop (uvloop), with batches in flight to the signing
    process: every reader gets one message, and every message verifies."""
    from clihelp import run, settings_env
    from sqlmodel import Session

    from subscribe.db import store
    from subscribe.db.models import utcnow
    from subscribe.readers import subscribers

    made: list[SigningRenderer] = []
    original = SigningRenderer.__init__

    def init(self: SigningRenderer, *args: object, **kwargs: object) -> None:
        original(self, *args, **kwargs)  # type: ignore[arg-type]
        started(self)  # the process signs from the first batch
        made.append(self)

    monkeypatch.setattr(render_process, "SIGNING_PROCESS_MIN_MESSAGES", 0)
    monkeypatch.setattr(render_process.os, "sched_getaffinity", lambda pid: {0, 1}, raising=False)
    monkeypatch.setattr(SigningRenderer, "__init__", init)
    smtp_server.handler.pipelining = True
    settings = make_settings(
        f"sqlite:///{tmp_path / 'n.db'}",
        smtp_server,
        dkim_selector="s1",
        dkim_private_key_file=str(key),
        smtp_connections=8,
    )
    settings_env(monkeypatch, settings)
    readers = 400
    engine = store.open_store(settings.database_url)
    with Session(engine) as session:
        for i in range(readers):
            subscribers.add(
                session, settings, email=f"r{i}@example.org", confirmed=True, now=utcnow()
            )
    engine.dispose()
    result = run("notify", "--title", "Many", "--url", "https://blog.example/many", "--yes")
    assert result.exit_code == 0, result.output
    assert f"sent {readers}," in result.stdout
    assert made and not made[0]._broken and made[0].signed_here == 0
    assert len(smtp_server.messages) == readers
    assert_verified([m.data for m in smtp_server.messages], dns)
