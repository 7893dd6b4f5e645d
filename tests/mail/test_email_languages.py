"""Emails in the reader's language: complete catalogs, every template rendered in every
language, the same headers (plus Content-Language), Babel dates and correct plurals."""

from __future__ import annotations

import email.policy
from datetime import UTC, datetime
from email import message_from_bytes
from email.message import EmailMessage
from pathlib import Path

import catalogs
import pytest
from clihelp import run, settings_env
from conftest import make_settings
from mailserver import SMTPServer

from subscribe.config import SHIPPED_LANGUAGES, Settings
from subscribe.content import PostSpec
from subscribe.errors import ConfigError
from subscribe.mail import transactional
from subscribe.mail.dates import format_date
from subscribe.mail.digests import digest_context
from subscribe.mail.envelopes import PostContent, post_builder
from subscribe.mail.environment import make_environment
from subscribe.mail.render import MessageBuilder, Recipient
from subscribe.mail.transactional import Addressee, Transactional
from subscribe.mail.translations import translations
from subscribe.readers.tokens import tokens_for

POST = PostSpec(
    key="https://blog.example/p",
    title="A post",
    url="https://blog.example/p",
    summary="What it says.",
    published_at=datetime(2026, 12, 1, 9, 0, tzinfo=UTC),
    categories=("Python",),
)
READER = Recipient(
    "reader@example.org",
    "Zoë",
    "https://news.example/unsubscribe/t",
    "<1@b>",
    "https://news.example/preferences/t",
)


def parse(raw: bytes) -> EmailMessage:
    message = message_from_bytes(raw, policy=email.policy.strict)
    assert isinstance(message, EmailMessage)
    return message


@pytest.fixture
def settings(sqlite_url: str) -> Settings:
    return make_settings(sqlite_url)


# -- the catalogs -----------------------------------------------------------------------


def test_every_language_but_english_ships_a_catalog() -> None:
    assert set(catalogs.shipped_catalogs()) == set(SHIPPED_LANGUAGES) - {"en"}


@pytest.mark.parametrize("language", sorted(set(SHIPPED_LANGUAGES) - {"en"}))
def test_catalog_is_complete(language: str) -> None:
    """No message missing, fuzzy or untranslated; placeholders and tags as the msgid's;
    every plural form written (Polish: three)."""
    catalog = catalogs.read(catalogs.shipped_catalogs()[language])
    assert catalogs.problems(catalogs.extracted(), catalog) == []


def test_the_check_finds_what_is_wrong() -> None:
    """The completeness check itself: a gap of each kind is reported."""
    template = catalogs.extracted()
    catalog = catalogs.read(catalogs.shipped_catalogs()["pl"])
    plural = next(m for m in catalog if m.pluralizable and m.id)
    plural.string = (plural.string[0], plural.string[1], "")
    catalog.delete("Saved.")
    catalog["Save"].flags.add("fuzzy")
    catalog["Hi %(name)s,"].string = "Cześć,"
    catalog["Subscribe again"].string = "<b>Zapisz się ponownie</b>"
    found = "\n".join(catalogs.problems(template, catalog))
    for expected in ("untranslated", "missing 'Saved.'", "fuzzy 'Save'", "placeholders", "tags"):
        assert expected in found


# -- every email, every language --------------------------------------------------------

KINDS = ("confirmation", "welcome", "address_change", "post", "digest")


def _email(settings: Settings, kind: str, language: str) -> bytes:
    tokens = tokens_for(settings)
    reader = Addressee(7, "reader@example.org", "reader@example.org", "Zoë", language)
    emails = Transactional(settings, tokens)
    if kind == "confirmation":
        return emails.confirmation(reader, key="confirm:1").data
    if kind == "welcome":
        return emails.welcome(reader, [], key="welcome:1").data
    if kind == "address_change":
        return emails.address_change(reader, "new@example.org", key="address:1").data
    if kind == "post":
        return post_builder(settings, POST, language).build(READER)
    posts = [
        PostContent(i, f"k{i}", f"Post {i}", f"https://blog.example/{i}", "", "", None)
        for i in (1, 2, 3)
    ]
    context = digest_context(settings, "daily:2026-12-08", posts, language)
    env = make_environment(settings.templates_dir, language)
    return MessageBuilder(settings, env, "email/digest", context).build(READER)


@pytest.mark.parametrize("language", SHIPPED_LANGUAGES)
@pytest.mark.parametrize("kind", KINDS)
def test_every_email_in_every_language(settings: Settings, kind: str, language: str) -> None:
    raw = _email(settings, kind, language)
    message = parse(raw)
    english = parse(_email(settings, kind, "en"))
    assert sorted(message.keys()) == sorted(english.keys())  # the same headers
    assert message["Content-Language"] == language
    html = message.get_body(("html",)).get_content()
    text = message.get_body(("plain",)).get_content()
    assert f'<html lang="{language}" dir="ltr">' in html
    if language != "en":
        shown = html + text + str(message["Subject"])
        assert catalogs.english_left(language, shown) == [], f"English in the {kind} email"


@pytest.mark.parametrize("language", SHIPPED_LANGUAGES)
def test_post_emails_keep_the_compiled_fast_path(settings: Settings, language: str) -> None:
    """Translated templates still compile to one spliced layout per post and language
    (a fallback to a full render per reader would cost ~10x)."""
    builder = post_builder(settings, POST, language)
    assert builder._variant(True) is not None and builder._variant(False) is not None


@pytest.mark.parametrize("language", SHIPPED_LANGUAGES)
@pytest.mark.parametrize("kind", ["confirmation", "welcome"])
def test_confirmations_and_welcomes_are_spliced_too(
    settings: Settings, kind: str, language: str
) -> None:
    """Compiled once per language and kept across passes: a sign-up burst in `serve`
    makes each email from the layout, not by a full render."""
    _email(settings, kind, language)
    template = "email/confirm" if kind == "confirmation" else "email/welcome"
    [builder] = [
        b
        for (_, name, lang, _), (s, b) in transactional._BUILDERS.items()
        if name == template and lang == language and s is settings
    ]
    assert builder._variant(True) is not None and builder._variant(False) is not None
    _email(settings, kind, language)  # another pass, another Transactional: the same builder
    assert (
        sum(
            1
            for (_, name, lang, _), (s, _b) in transactional._BUILDERS.items()
            if name == template and lang == language and s is settings
        )
        == 1
    )


# -- values in the reader's language ----------------------------------------------------


def test_dates_in_the_readers_language_and_the_sites_time_zone() -> None:
    late = datetime(2026, 12, 1, 23, 30, tzinfo=UTC)
    assert format_date(late, "en") == "December 1, 2026"
    assert format_date(late, "de") == "1. Dezember 2026"
    assert format_date(late, "pl") == "1 grudnia 2026"
    assert format_date(late, "pt-BR") == "1 de dezembro de 2026"
    assert format_date(late, "fr", "Europe/Paris") == "2 décembre 2026"


@pytest.mark.parametrize(("count", "words"), [(2, "2 nowe wpisy"), (5, "5 nowych wpisów")])
def test_polish_digest_subjects_use_the_right_plural(
    settings: Settings, count: int, words: str
) -> None:
    posts = [
        PostContent(i, f"k{i}", f"Post {i}", f"https://blog.example/{i}", "", "", None)
        for i in range(1, count + 1)
    ]
    context = digest_context(settings, "daily:2026-12-08", posts, "pl")
    subject = (
        make_environment(None, "pl")
        .get_template("email/digest.subject.txt")
        .render({**context, "subscriber": {"name": "", "email": "r@example.org"}})
    )
    assert words in subject, subject


@pytest.mark.parametrize(("count", "form"), [(1, 0), (2, 1), (4, 1), (5, 2), (12, 2), (22, 1)])
def test_polish_catalog_has_three_plural_forms(count: int, form: int) -> None:
    polish = translations(None, "pl")
    one, many = "%(count)s new post, %(date)s", "%(count)s new posts, %(date)s"
    forms = [polish.ngettext(one, many, n) for n in (1, 2, 5)]
    assert len(set(forms)) == 3
    assert polish.ngettext(one, many, count) == forms[form]


# -- a site's own words -----------------------------------------------------------------


def _site_catalog(folder: Path, name: str, messages: dict[str, str]) -> None:
    """``folder/locales/NAME`` as a translator's tool writes one: a header, then pairs."""
    (folder / "locales").mkdir(exist_ok=True)
    pairs = "".join(f'\nmsgid "{msgid}"\nmsgstr "{msgstr}"\n' for msgid, msgstr in messages.items())
    header = 'msgid ""\nmsgstr ""\n"Content-Type: text/plain; charset=utf-8\\n"\n'
    (folder / "locales" / name).write_text(header + pairs, encoding="utf-8")


def test_a_site_replaces_one_message_and_one_template_per_language(
    tmp_path: Path, sqlite_url: str
) -> None:
    _site_catalog(
        tmp_path,
        "de.po",
        {
            "Yes, subscribe me": "Ja, ich will!",
            # A typo in a placeholder: dropped (shipped German instead), never a KeyError.
            "Hi %(name)s,": "Servus %(nmae)s,",
        },
    )
    (tmp_path / "email" / "de").mkdir(parents=True)
    (tmp_path / "email" / "de" / "confirm.subject.txt").write_text("Bitte bestätigen\n")
    settings = make_settings(sqlite_url, templates_dir=tmp_path)
    german = parse(_email(settings, "confirmation", "de"))
    assert german["Subject"] == "Bitte bestätigen"
    html = german.get_body(("html",)).get_content()
    assert "Ja, ich will!" in html
    assert "Servus" not in html and "Hallo Zoë," in html
    assert "Bestätige" in html or "bestätigen" in html  # the rest: the shipped catalog
    french = parse(_email(settings, "confirmation", "fr"))
    assert french["Subject"] != "Bitte bestätigen"  # only German was overridden


def test_a_regional_site_catalog_falls_back_to_the_shipped_language(
    tmp_path: Path, sqlite_url: str
) -> None:
    """``locales/de_CH.po`` (any spelling of the tag) adds Swiss German: what it leaves
    out comes from the shipped German, not from English."""
    _site_catalog(tmp_path, "de_CH.po", {"Yes, subscribe me": "Ja, gärn!"})
    settings = make_settings(sqlite_url, templates_dir=tmp_path, language="de-CH")
    assert "de-CH" in settings.languages
    html = parse(_email(settings, "confirmation", "")).get_body(("html",)).get_content()
    assert "Ja, gärn!" in html and 'lang="de-CH"' in html
    german = translations(None, "de").gettext("Confirm your subscription")
    assert german in html


def test_a_site_adds_a_language_with_its_own_catalog(tmp_path: Path, sqlite_url: str) -> None:
    _site_catalog(tmp_path, "it.po", {"Confirm your subscription": "Conferma la tua iscrizione"})
    settings = make_settings(sqlite_url, templates_dir=tmp_path, language="it")
    assert "it" in settings.languages
    html = parse(_email(settings, "confirmation", "")).get_body(("html",)).get_content()
    assert "Conferma la tua iscrizione" in html and 'lang="it"' in html
    with pytest.raises(ConfigError, match="SUBSCRIBE_LANGUAGE"):
        make_settings(sqlite_url, language="it")  # no catalog without the site's


# -- the test email ---------------------------------------------------------------------


def test_send_test_writes_in_the_language_asked_for(
    monkeypatch: pytest.MonkeyPatch, sqlite_url: str, smtp_server: SMTPServer
) -> None:
    settings_env(monkeypatch, make_settings(sqlite_url, smtp_server))
    assert run("send-test", "me@example.org", "--language", "de-AT").exit_code == 0
    [received] = smtp_server.messages
    message = message_from_bytes(received.data, policy=email.policy.strict)
    assert message["Content-Language"] == "de"
    assert "hat einen neuen Beitrag" in message.get_body(("plain",)).get_content()  # type: ignore[union-attr]
    refused = run("send-test", "me@example.org", "--language", "xx")
    assert refused.exit_code == 1 and "unknown language 'xx'" in refused.output
    assert len(smtp_server.messages) == 1
