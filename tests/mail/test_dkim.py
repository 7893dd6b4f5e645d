"""DKIM: every kind of email arrives signed, and dkimpy (an independent verifier), asking a
local DNS server for the published keys, accepts it; a changed body or header fails."""

from __future__ import annotations

import asyncio
import re
from collections.abc import Iterator
from pathlib import Path

import dkim
import pytest
from clihelp import run, settings_env
from conftest import make_settings
from dnsserver import DNSTestServer, dns_server
from mailserver import SMTPServer
from sqlmodel import Session

from subscribe.config import Settings
from subscribe.content import PostSpec
from subscribe.db import store
from subscribe.db.models import utcnow
from subscribe.mail import dkim_keys
from subscribe.mail.dkim import (
    DkimKey,
    DkimSigner,
    canonical_body,
    canonical_header,
    signed_header_data,
)
from subscribe.mail.envelopes import post_builder
from subscribe.mail.render import Recipient
from subscribe.readers import subscribers
from subscribe.readers.tokens import tokens_for

SELECTOR = "s2026"
ED_SELECTOR = "s2026-ed25519"
H_TAG = (
    "From:To:Subject:Date:Message-ID:MIME-Version:Content-Type:List-Id:List-Unsubscribe:"
    "List-Unsubscribe-Post:From"
)


@pytest.fixture(scope="module")
def keys(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    folder = tmp_path_factory.mktemp("keys")
    paths = {"rsa": folder / "rsa.pem", "ed25519": folder / "ed.pem"}
    for kind, path in paths.items():
        dkim_keys.write_private_key(path, dkim_keys.generate_key(kind))
    return paths


def record(path: Path, kind: str) -> str:
    return dkim_keys.record_value(dkim_keys.load_private_key(path, kind))


@pytest.fixture
def dns(keys: dict[str, Path]) -> Iterator[DNSTestServer]:
    zone = {
        (f"{SELECTOR}._domainkey.blog.example", "TXT"): [record(keys["rsa"], "rsa")],
        (f"{ED_SELECTOR}._domainkey.blog.example", "TXT"): [record(keys["ed25519"], "ed25519")],
    }
    with dns_server(zone) as server:
        yield server


@pytest.fixture
def dkim_settings(
    database_url: str, smtp_server: SMTPServer, keys: dict[str, Path], dns: DNSTestServer
) -> Settings:
    return make_settings(
        database_url,
        smtp_server,
        dkim_selector=SELECTOR,
        dkim_private_key_file=str(keys["rsa"]),
        dkim_ed25519_key_file=str(keys["ed25519"]),
        dns_resolver=dns.address,
    )


def signatures(message: bytes) -> list[dict[str, str]]:
    """The tags of each DKIM-Signature, top first."""
    head = message.split(b"\r\n\r\n", 1)[0].decode()
    fields = re.findall(r"^DKIM-Signature:(.*?)(?=^\S)", head + "\r\nX:", flags=re.M | re.S)
    out = []
    for field in fields:
        tags = dict(t.strip().split("=", 1) for t in field.split(";") if "=" in t)
        out.append({k: "".join(v.split()) for k, v in tags.items()})
        assert all(len(line) <= 78 for line in field.split("\r\n")), field
    return out


def verified(message: bytes, dns: DNSTestServer) -> list[bool]:
    """dkimpy's verdict on each signature of the message."""
    verdicts = []
    for i in range(len(signatures(message))):
        try:
            verdicts.append(bool(dkim.DKIM(message).verify(idx=i, dnsfunc=dns.txt)))
        except dkim.ValidationError:  # dkimpy raises for a body hash mismatch
            verdicts.append(False)
    return verdicts


def assert_signed(message: bytes, dns: DNSTestServer) -> None:
    tags = signatures(message)
    assert [t["a"] for t in tags] == ["rsa-sha256", "ed25519-sha256"]
    assert {t["s"] for t in tags} == {SELECTOR, ED_SELECTOR}
    for t in tags:
        assert t["c"] == "relaxed/relaxed" and t["d"] == "blog.example" and t["h"] == H_TAG
    assert verified(message, dns) == [True, True]


def test_every_kind_of_email_arrives_signed(
    dkim_settings: Settings, smtp_server: SMTPServer, dns: DNSTestServer, monkeypatch
) -> None:
    settings_env(monkeypatch, dkim_settings)
    smtp_server.handler.pipelining = True
    engine = store.open_store(dkim_settings.database_url)
    with Session(engine) as session:
        for address, name in [("ann@example.org", "Ann"), ("bob@example.org", "")]:
            subscribers.add(
                session, dkim_settings, email=address, name=name, confirmed=True, now=utcnow()
            )
    engine.dispose()
    kinds = {}
    assert run("add", "cy@example.com", "--name", "Cy").exit_code == 0  # a confirmation
    kinds["confirmation"] = smtp_server.messages[-1].data
    result = run("notify", "--title", "Signed", "--url", "https://blog.example/signed", "--yes")
    assert result.exit_code == 0, result.output
    posts = smtp_server.messages[-2:]
    assert sorted(r for m in posts for r in m.rcpt_tos) == ["ann@example.org", "bob@example.org"]
    kinds["post, named reader"] = next(m.data for m in posts if "ann" in m.rcpt_tos[0])
    kinds["post, unnamed reader"] = next(m.data for m in posts if "bob" in m.rcpt_tos[0])
    assert run("send-test", "me@example.org").exit_code == 0
    kinds["send-test"] = smtp_server.messages[-1].data
    for kind, data in kinds.items():
        assert data.count(b"DKIM-Signature:") == 2, kind
        assert_signed(data, dns)
    # The list headers are covered (RFC 8058 4), in the post and not in the confirmation.
    assert b"List-Unsubscribe-Post: List-Unsubscribe=One-Click" in kinds["post, named reader"]


def test_welcome_email_is_signed(
    dkim_settings: Settings, smtp_server: SMTPServer, dns: DNSTestServer, monkeypatch
) -> None:
    from conftest import send_queued_emails

    from subscribe.readers.subscribers import confirm

    engine = store.open_store(dkim_settings.database_url)
    tokens = tokens_for(dkim_settings)
    with Session(engine) as session:
        reader = subscribers.add(
            session, dkim_settings, email="dee@example.org", now=utcnow()
        ).subscriber
        assert reader.id is not None
        token = tokens.confirm_token(reader.id, reader.email_key)
        confirm(session, subject=tokens.read_confirm(token), now=utcnow())
    asyncio.run(send_queued_emails(engine, dkim_settings))
    engine.dispose()
    welcome = [m.data for m in smtp_server.messages if b"List-Unsubscribe:" in m.data]
    assert welcome, [m.data[:300] for m in smtp_server.messages]
    assert_signed(welcome[-1], dns)


POST = PostSpec(
    key="https://blog.example/p",
    title="A title long enough that the Subject header has to be folded over two lines, ok",
    url="https://blog.example/p",
    summary="Spaces  and\ttabs   inside, trailing spaces   \n\n\n",
    body_html="<p>Body   with  runs of   spaces</p>\n<pre>.dot\t\ttabs</pre>\n\n\n",
)
READER = Recipient("z@example.org", "Zoë  <O'Brien>", "https://x.example/u/t?x=1", "<9@b>")


@pytest.fixture
def builder_settings(sqlite_url: str, keys: dict[str, Path]) -> Settings:
    return make_settings(
        sqlite_url,
        dkim_selector=SELECTOR,
        dkim_private_key_file=str(keys["rsa"]),
        dkim_ed25519_key_file=str(keys["ed25519"]),
    )


def test_spliced_fast_path_signs_what_a_full_render_signs(
    builder_settings: Settings, dns: DNSTestServer
) -> None:
    builder = post_builder(builder_settings, POST)
    assert builder._variant(True) is not None  # the spliced path, not the fallback
    message = builder.build(READER)
    assert_signed(message, dns)
    wire = builder.build_wire(READER)
    assert wire.endswith(b"\r\n.\r\n")
    from subscribe.mail.wire import smtp_unstuff

    assert_signed(smtp_unstuff(wire), dns)
    # A template that transforms fields is rendered in full per reader: signed too.
    builder._splice = False
    assert_signed(builder.build(READER), dns)
    assert_signed(smtp_unstuff(builder.build_wire(READER)), dns)


def test_a_field_that_starts_a_line_with_a_dot_is_stuffed_and_signed(
    builder_settings: Settings, dns: DNSTestServer
) -> None:
    """The wire form of a signed message is stuffed field by field: what DATA carries is
    the message dkimpy verifies, and the same as the message unstuffed."""
    from subscribe.mail.wire import smtp_unstuff

    builder = post_builder(builder_settings, POST)
    dotted = Recipient("d@example.org", ".Dot . Reader", "https://x.example/u/t?x=2", "<8@b>")
    assert builder._variant(True) is not None
    wire = builder.build_wire(dotted)
    assert b"\r\n..Dot . Reader" in wire
    message = smtp_unstuff(wire)
    assert_signed(message, dns)
    body = message.split(b"\r\n\r\n", 1)[1]
    assert body == builder.build(dotted).split(b"\r\n\r\n", 1)[1]


@pytest.mark.parametrize(
    "change",
    [
        (b"Body   with", b"Body  with!"),
        (b"Subject: A title", b"Subject: Another title"),
        (b"List-Unsubscribe: <https://x.example/u/t?x=1>", b"List-Unsubscribe: <https://evil>"),
        (b"List-Unsubscribe-Post: List-Unsubscribe=One-Click", b"List-Unsubscribe-Post: no"),
        (b"\r\nTo: ", b"\r\nFrom: Mallory <m@evil.example>\r\nTo: "),  # a second From
        # Verifiers take the last instance of a header: one added below the real one.
        (b"\r\n\r\n", b"\r\nList-Id: <other.evil.example>\r\n\r\n"),
    ],
    ids=["body", "subject", "list-unsubscribe", "one-click", "added-from", "added-list-id"],
)
def test_a_changed_body_or_header_fails(
    builder_settings: Settings, dns: DNSTestServer, change: tuple[bytes, bytes]
) -> None:
    message = post_builder(builder_settings, POST).build(READER)
    assert verified(message, dns) == [True, True]
    old, new = change
    assert old in message
    assert verified(message.replace(old, new, 1), dns) == [False, False]


def test_relaxed_changes_still_verify(builder_settings: Settings, dns: DNSTestServer) -> None:
    """What relaxed canonicalisation forgives (refolding, space runs, case of names) verifies."""
    message = post_builder(builder_settings, POST).build(READER)
    relaxed = message.replace(b"\r\nSubject: ", b"\r\nsubject:   ", 1)
    relaxed = relaxed.replace(b"Body   with", b"Body with", 1)
    assert verified(relaxed, dns) == [True, True]


@pytest.mark.parametrize(
    "body",
    [
        b"",
        b"\r\n\r\n",
        b"no final line break",
        b"trailing spaces   \r\n\t\r\n\r\n",
        b"tabs\tand  runs \t of  space\r\nline two \r\n",
        b" leading space\r\n\r\nand an empty line in the middle\r\n\r\n\r\n",
    ],
)
def test_canonicalisation_agrees_with_dkimpy(
    body: bytes, keys: dict[str, Path], dns: DNSTestServer
) -> None:
    key = DkimKey(SELECTOR, "blog.example", dkim_keys.load_private_key(keys["rsa"], "rsa"))
    headers = (
        b"From: A <a@blog.example>\r\nTo: b@example.org\r\nSubject:  folded\r\n\t"
        b"subject   with\t tabs  \r\nDate: Mon, 1 Jun 2026 10:00:00 +0000\r\n"
        b"Message-ID: <1@blog.example>\r\n"
    )
    message = DkimSigner([key]).sign(headers + b"\r\n" + body)
    assert verified(message, dns) == [True]
    assert dkim.RelaxedCanonicalization.canonicalize_body(body) == canonical_body(body)


def test_what_is_signed_is_the_signature_field_canonicalised(keys: dict[str, Path]) -> None:
    """The field's canonical form is kept per second: each message's is the field as sent,
    canonicalised, whatever the second (dkimpy checks the same on every signed message)."""
    signer = DkimSigner(
        [
            DkimKey(SELECTOR, "blog.example", dkim_keys.load_private_key(keys["rsa"], "rsa")),
            DkimKey(
                ED_SELECTOR, "blog.example", dkim_keys.load_private_key(keys["ed25519"], "ed25519")
            ),
        ]
    )
    block = b"From: A <a@blog.example>\r\nSubject:  two\t spaces\r\n"
    for now in (1_800_000_000, 1_800_000_001, 1_800_000_000):
        unsigned = signer.prepare(block, "Ym9keQ+/==", now=now)
        for field, data in zip(unsigned.fields, unsigned.data, strict=True):
            assert f"t={now};".encode() in field and b"bh=Ym9keQ+/==;" in field
            name, _, value = field.partition(b":")
            expected = signed_header_data(block) + canonical_header(name, value)
            assert data == expected.removesuffix(b"\r\n")


def test_a_wrong_published_key_fails(
    builder_settings: Settings, dns: DNSTestServer, keys: dict[str, Path]
) -> None:
    other = dkim_keys.record_value(dkim_keys.generate_key("rsa"))
    dns.set(f"{SELECTOR}._domainkey.blog.example", "TXT", other)
    message = post_builder(builder_settings, POST).build(READER)
    assert verified(message, dns) == [False, True]


def test_dkim_off_adds_no_signature(sqlite_url: str) -> None:
    message = post_builder(make_settings(sqlite_url), POST).build(READER)
    assert b"DKIM-Signature" not in message


# -- keys and keygen ------------------------------------------------------------------------


def test_keygen_writes_a_private_key_and_prints_its_record(tmp_path: Path) -> None:
    result = run("dkim", "keygen", "--selector", "news")
    assert result.exit_code == 0, result.output
    path = tmp_path / "dkim-news.pem"
    assert path.stat().st_mode & 0o777 == 0o600
    key = dkim_keys.load_private_key(path, "rsa")
    assert key.key_size == 2048
    assert "news._domainkey.localhost. 3600 IN TXT" in result.stdout
    published = "".join(re.findall(r'"([^"]*)"', result.stdout))
    assert published == dkim_keys.record_value(key)
    # Never over an existing file: one line, non-zero, the key unchanged.
    before = path.read_bytes()
    again = run("dkim", "keygen", "--selector", "news")
    assert again.exit_code == 1
    assert again.stderr.strip().count("\n") == 0 and "exists" in again.stderr
    assert path.read_bytes() == before


def test_keygen_ed25519(tmp_path: Path) -> None:
    result = run("dkim", "keygen", "--selector", "news", "--ed25519", "--out", "ed.pem")
    assert result.exit_code == 0, result.output
    key = dkim_keys.load_private_key(tmp_path / "ed.pem", "ed25519")
    assert dkim_keys.record_value(key) in "".join(re.findall(r'"([^"]*)"', result.stdout))
    assert "news-ed25519._domainkey" in result.stdout


@pytest.mark.parametrize(
    "problem", ["missing", "not-pem", "ed25519-as-rsa", "encrypted", "no-selector"]
)
def test_unusable_key_is_one_line_before_anything_is_sent(
    problem: str,
    sqlite_url: str,
    smtp_server: SMTPServer,
    keys: dict[str, Path],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from cryptography.hazmat.primitives import serialization

    key_file = {
        "missing": tmp_path / "nowhere.pem",
        "ed25519-as-rsa": keys["ed25519"],
        "no-selector": keys["rsa"],
    }.get(problem, tmp_path / "key.pem")
    if problem == "not-pem":
        key_file.write_text("hello\n")
    if problem == "encrypted":
        key = dkim_keys.load_private_key(keys["rsa"], "rsa")
        key_file.write_bytes(
            key.private_bytes(
                serialization.Encoding.PEM,
                serialization.PrivateFormat.PKCS8,
                serialization.BestAvailableEncryption(b"secret"),
            )
        )
    settings = make_settings(
        sqlite_url,
        smtp_server,
        dkim_selector="" if problem == "no-selector" else SELECTOR,
        dkim_private_key_file=str(key_file),
    )
    settings_env(monkeypatch, settings)
    engine = store.open_store(settings.database_url)
    with Session(engine) as session:
        subscribers.add(session, settings, email="a@example.org", confirmed=True, now=utcnow())
    engine.dispose()
    result = run("notify", "--title", "T", "--url", "https://blog.example/t", "--yes")
    assert result.exit_code == 1
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and "SUBSCRIBE_DKIM" in lines[0], result.output
    assert "Traceback" not in result.output
    assert smtp_server.messages == []


def test_a_digest_arrives_signed(
    dkim_settings: Settings, smtp_server: SMTPServer, dns: DNSTestServer
) -> None:
    from datetime import timedelta

    from posts.test_digests import MONDAY_9, _digest, _post, _reader

    from subscribe.db.models import Cadence

    engine = store.open_store(dkim_settings.database_url)
    try:
        _reader(engine, dkim_settings, "daily@example.org", cadence=Cadence.DAILY, at=MONDAY_9)
        _post(engine, "one", at=MONDAY_9 + timedelta(hours=1))
        assert _digest(engine, dkim_settings, MONDAY_9 + timedelta(days=1)) == 1
    finally:
        engine.dispose()
    (received,) = [m for m in smtp_server.messages if m.rcpt_tos == ["daily@example.org"]]
    assert_signed(received.data, dns)
