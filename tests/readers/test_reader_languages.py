"""Choosing a reader's language: the form's field, ?lang=, Accept-Language, the site's."""

from __future__ import annotations

import pytest
from conftest import make_settings

from subscribe.config import Settings, language_tag
from subscribe.errors import ConfigError
from subscribe.readers.languages import accepted, choose, of_reader, on_offer

OFFERED = ("en", "de", "fr", "es", "pt-BR", "pl")


@pytest.mark.parametrize(
    ("header", "expected"),
    [
        ("de", "de"),
        ("de-AT,de;q=0.9,en;q=0.8", "de"),
        ("fr-CH, fr;q=0.9, en;q=0.8, de;q=0.7, *;q=0.5", "fr"),
        ("da, en-GB;q=0.8, en;q=0.7", "en"),  # Danish is not on offer: the next one
        ("en;q=0.5, pl;q=0.9", "pl"),  # by q-value, not by position
        ("pt-PT", "pt-BR"),  # the nearest on offer
        ("PT-br", "pt-BR"),
        ("zh-CN, ja", None),
        ("*", None),
        ("de;q=0, fr;q=0.1", "fr"),  # q=0 refuses
        ("es;q=abc, pl", "pl"),  # a broken q-value counts as refused
        ("", None),
        (";;,, ,q=1", None),
        ("x" * 5000, None),
    ],
)
def test_accept_language(header: str, expected: str | None) -> None:
    assert accepted(header, OFFERED) == expected


def test_equal_q_values_keep_the_headers_order() -> None:
    assert accepted("pl;q=0.8, de;q=0.8", OFFERED) == "pl"


@pytest.mark.parametrize(
    ("value", "expected"),
    [("de", "de"), ("de_DE", "de"), ("pt", "pt-BR"), ("it", None), ("<script>", None), ("", None)],
)
def test_on_offer(value: str, expected: str | None) -> None:
    assert on_offer(value, OFFERED) == expected


@pytest.fixture
def settings(sqlite_url: str) -> Settings:
    return make_settings(sqlite_url, language="fr")


def test_field_then_query_then_browser_then_site(settings: Settings) -> None:
    assert choose(settings, field="pl", query="de", accept="es") == "pl"
    assert choose(settings, field="xx", query="de", accept="es") == "de"  # unknown: next
    assert choose(settings, query="de", accept="es") == "de"
    assert choose(settings, accept="es-MX,es;q=0.9") == "es"
    assert choose(settings, accept="ja") == "fr"
    assert choose(settings) == "fr"


def test_stored_languages(settings: Settings) -> None:
    assert of_reader(settings, "") == "fr"  # from before languages: the site's
    assert of_reader(settings, "de-AT") == "de"  # as an import kept it
    assert of_reader(settings, "it") == "fr"  # no longer (or never) on offer


def test_language_tags_are_canonical_and_checked(sqlite_url: str) -> None:
    assert language_tag("pt_br") == "pt-BR"
    assert language_tag("zh-hant-tw") == "zh-Hant-TW"
    assert language_tag("en\r\nBcc: x") is None  # never into a header
    assert make_settings(sqlite_url, language="PT-br").language == "pt-BR"
    # A locale as the system writes it finds the nearest language on offer.
    assert make_settings(sqlite_url, language="de_DE").language == "de"
    assert make_settings(sqlite_url, language="pt-PT").language == "pt-BR"
    assert make_settings(sqlite_url, language="en-GB").language == "en"
    with pytest.raises(ConfigError, match="SUBSCRIBE_LANGUAGE: 'xx' has no catalog"):
        make_settings(sqlite_url, language="xx")
    with pytest.raises(ConfigError, match="SUBSCRIBE_LANGUAGE: 'en us' is not a language tag"):
        make_settings(sqlite_url, language="en us")
