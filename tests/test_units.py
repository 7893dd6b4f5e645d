"""Addresses, tokens, settings and sources: the small pieces, on their own."""

from __future__ import annotations

import textwrap
import time
from pathlib import Path

import pytest
from itsdangerous import URLSafeSerializer

from subscribe.config import load_settings
from subscribe.errors import ConfigError, InvalidAddress, SourceError, TokenExpired, TokenInvalid
from subscribe.posts.sources import from_flags, from_markdown, read_feed
from subscribe.readers.addresses import normalize, to_ascii
from subscribe.readers.tokens import Tokens, TokenSubject, key_digest


@pytest.mark.parametrize(
    ("raw", "display", "key"),
    [
        ("  Alice@Example.ORG ", "Alice@example.org", "alice@example.org"),
        ("bob@BÜCHER.de", "bob@bücher.de", "bob@xn--bcher-kva.de"),
        (
            "first.last+tag@sub.example.co.uk",
            "first.last+tag@sub.example.co.uk",
            "first.last+tag@sub.example.co.uk",
        ),
    ],
)
def test_addresses_normalise(raw: str, display: str, key: str) -> None:
    address = normalize(raw)
    assert (address.display, address.key) == (display, key)
    assert to_ascii(address.display) == address.ascii


@pytest.mark.parametrize(
    "raw",
    [
        "",
        "   ",
        "plain",
        "a@b",
        "a@@example.org",
        "x@example..org",
        "a" * 65 + "@example.org",
        "u@" + ("d" * 60 + ".") * 5 + "org",
        "ünï@example.org",
        "a b@example.org",
    ],
)
def test_addresses_refused(raw: str) -> None:
    with pytest.raises(InvalidAddress):
        normalize(raw)


def test_tokens_per_purpose_expiry_and_rotation() -> None:
    tokens = Tokens(["old-key", "new-key"], confirm_max_age=1)
    confirm = tokens.confirm_token(7, "a@example.org")
    unsubscribe = tokens.unsubscribe_token(7, "a@example.org")
    assert tokens.read_confirm(confirm).subscriber_id == 7
    assert tokens.read_unsubscribe(unsubscribe).subscriber_id == 7
    with pytest.raises(TokenInvalid):
        tokens.read_unsubscribe(confirm)  # signed for another purpose
    with pytest.raises(TokenInvalid):
        tokens.read_confirm(unsubscribe)
    with pytest.raises(TokenInvalid):
        tokens.read_unsubscribe(
            unsubscribe[:-2] + ("A" if unsubscribe[-2] != "A" else "B") + unsubscribe[-1]
        )
    # Rotation: tokens signed with the old key still verify once a newer key is added.
    old_only = Tokens(["old-key"], confirm_max_age=10)
    assert (
        tokens.read_unsubscribe(old_only.unsubscribe_token(3, "b@example.org")).subscriber_id == 3
    )
    # ...and a token from a key that was dropped does not.
    with pytest.raises(TokenInvalid):
        Tokens(["new-key"], confirm_max_age=10).read_unsubscribe(old_only.unsubscribe_token(3, "b"))
    time.sleep(2.1)
    with pytest.raises(TokenExpired) as expired:
        tokens.read_confirm(confirm)
    assert expired.value.subject == TokenSubject(7, key_digest("a@example.org"))
    assert tokens.read_unsubscribe(unsubscribe).subscriber_id == 7  # never expires


def test_token_payload_is_small_and_holds_no_address() -> None:
    token = Tokens(["k"], confirm_max_age=10).unsubscribe_token(123456, "someone@example.org")
    assert "someone" not in URLSafeSerializer("k", salt="unsubscribe").loads(token).__repr__()
    assert len(token) < 60


def test_settings_errors_name_the_variable(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SUBSCRIBE_SEND_RATE", "-3")
    with pytest.raises(ConfigError, match=r"^SUBSCRIBE_SEND_RATE: "):
        load_settings()
    with pytest.raises(ConfigError, match="SUBSCRIBE_SECRET_KEY is not set"):
        load_settings(send_rate=0).secret_keys()
    keys = ["a" * 16, "b" * 16]
    assert load_settings(send_rate=0, secret_key=", ".join(keys)).secret_keys() == keys


def test_flags_source() -> None:
    spec = from_flags(title="  Hello\nworld ", url="https://e.org/x")
    assert (spec.key, spec.title) == ("https://e.org/x", "Hello world")
    with pytest.raises(SourceError):
        from_flags(title="", url="https://e.org/")


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ("no front matter", "no front matter"),
        ("---\ntitle: [unclosed\n---\n", "not valid YAML"),
        ("---\nurl: https://e.org/\n---\nbody", "needs a title"),
        ("---\ntitle: T\n---\nbody", "url must be an http"),
        ("---\ntitle: T\nurl: https://e.org/\ndate: yesterday\n---\n", "not an ISO date"),
    ],
)
def test_markdown_source_errors(tmp_path: Path, content: str, message: str) -> None:
    path = tmp_path / "p.md"
    path.write_text(content)
    with pytest.raises(SourceError, match=message):
        from_markdown(path)


def test_markdown_source(tmp_path: Path) -> None:
    path = tmp_path / "p.md"
    path.write_text(
        textwrap.dedent("""\
        ---
        title: A post
        url: https://e.org/a
        date: 2026-11-20T10:00:00+01:00
        ---
        Para with <b>raw html</b> and a [link](https://e.org/l).
        """)
    )
    spec = from_markdown(path)
    assert spec.published_at is not None and spec.published_at.utcoffset() is not None
    assert "&lt;b&gt;raw html&lt;/b&gt;" in spec.body_html
    assert spec.summary.startswith("Para with <b>raw html</b>")  # text, for the text part


def test_feed_errors(tmp_path: Path) -> None:
    bad = tmp_path / "bad.xml"
    bad.write_text("<html><body>not a feed")
    with pytest.raises(SourceError, match="not an RSS or Atom feed"):
        read_feed(str(bad))
    with pytest.raises(SourceError, match="cannot fetch"):
        read_feed("http://127.0.0.1:9/feed.xml")


def test_env_example_documents_every_setting() -> None:
    from subscribe.config import Settings

    documented = (Path(__file__).parent.parent / ".env.example").read_text()
    for name in Settings.model_fields:
        assert f"SUBSCRIBE_{name.upper()}=" in documented, name


def test_every_command_has_help_with_an_example_and_a_readme_entry() -> None:
    from typer.main import get_command

    from subscribe.cli import app

    readme = (Path(__file__).parent.parent / "README.md").read_text()
    group = get_command(app)
    names = []
    for name, command in group.commands.items():  # type: ignore[attr-defined]
        if hasattr(command, "commands"):
            names += [(f"{name} {sub}", c) for sub, c in command.commands.items()]
        else:
            names.append((name, command))
    for name, command in names:
        assert command.help and "Example" in command.help, name
        assert f"subscribe {name}" in readme, name


def test_a_run_builds_only_the_command_it_names_and_says_the_same() -> None:
    from typer.main import get_command
    from typer.testing import CliRunner

    from subscribe.cli import _for_command, app

    runner = CliRunner()
    names = list(get_command(app).commands)  # type: ignore[attr-defined]
    assert {"stats", "notify", "db", "bounces"} <= set(names)
    for name in names:
        narrowed = _for_command([name, "--help"])
        assert narrowed is not app and len(get_command(narrowed).commands) == 1  # type: ignore[attr-defined]
        alone = runner.invoke(narrowed, [name, "--help"])
        whole = runner.invoke(app, [name, "--help"])
        assert alone.exit_code == whole.exit_code == 0 and alone.output == whole.output, name
    # No command named, an option first, or a misspelt one: the whole app, so the help
    # and the suggestions list every command.
    for args in ([], ["--help"], ["--version"], ["stat"]):
        assert _for_command(args) is app
    misspelt = runner.invoke(_for_command(["stat"]), ["stat"])
    assert misspelt.exit_code == 2 and "stats" in misspelt.output


@pytest.mark.parametrize("keys", [["only"], ["old", "new"]])
def test_fast_tokens_are_exactly_what_itsdangerous_writes(keys: list[str]) -> None:
    tokens = Tokens(keys, confirm_max_age=10)
    for subscriber_id, key in [(1, "a@example.org"), (987654321, "Z@xn--bcher-kva.de")]:
        expected = URLSafeSerializer(keys, salt="unsubscribe").dumps(
            [subscriber_id, key_digest(key)]
        )
        assert tokens.unsubscribe_token(subscriber_id, key) == expected
        assert tokens.read_unsubscribe(expected).subscriber_id == subscriber_id
    for delivery_id in (1, 2**40):
        expected = URLSafeSerializer(keys, salt="bounce").dumps(delivery_id)
        assert tokens.bounce_token(delivery_id) == expected
        assert tokens.read_bounce(expected) == delivery_id


def test_the_fast_address_path_agrees_with_email_validator() -> None:
    import random

    from subscribe.readers import addresses

    rng = random.Random(11)
    pieces = ["a", "Z", "0", ".", "-", "_", "+", "'", "xn--", "--", "é", "@", " ", "!", "test"]
    samples = [
        "Alice@Example.ORG",
        "a.b@c.d",
        "x@localhost.test",
        "x@a.onion",
        "a..b@c.org",
        ".a@b.org",
        "a.@b.org",
        "a@-b.org",
        "a@b-.org",
        "a@b.o",
        "a@b.123",
        "a@xn--bcher-kva.de",
        "a@ab--cd.org",
        "a" * 64 + "@b.org",
        "a" * 65 + "@b.org",
    ]
    for _ in range(3000):
        local = "".join(rng.choice(pieces) for _ in range(rng.randrange(1, 6)))
        domain = ".".join(
            "".join(rng.choice(pieces[:8]) for _ in range(rng.randrange(1, 4)))
            for _ in range(rng.randrange(1, 4))
        )
        samples.append(f"{local}@{domain}{rng.choice(['', '.org', '.test', '.c0m', '.io'])}")
    plain_chars = "abcXYZ0189._+-'"
    for _ in range(1000):  # mostly plain addresses, with the odd dot or dash out of place
        local = "".join(rng.choice(plain_chars) for _ in range(rng.randrange(1, 20)))
        labels = ["".join(rng.choice("ab9-") for _ in range(rng.randrange(1, 8))) for _ in "xy"]
        samples.append(f"{local}@{'.'.join(labels)}.{rng.choice(['org', 'Com', 'io', 'test'])}")
    agreed = 0
    for sample in samples:
        fast = addresses._plain(sample)
        if fast is None:
            continue  # the full validator decides these
        try:
            full = addresses._validated(sample)
        except InvalidAddress:
            raise AssertionError(
                f"fast path accepts what email-validator refuses: {sample!r}"
            ) from None
        assert fast == full, sample
        agreed += 1
    assert agreed > 200  # the comparison really ran on many addresses
