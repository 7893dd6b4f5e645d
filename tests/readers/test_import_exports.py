"""More tools' exports (tests/readers/exports/), in the shapes and with the quirks real files
have: Kit, MailerLite, Brevo, MailPoet, Mailjet, EmailOctopus, Sendy, Campaign Monitor,
AWeber, Substack's dashboard, older Ghost, WordPress.com/Jetpack, Mailchimp audiences in
German, French and Spanish and with an "Email Marketing Status", and a hand-kept sheet from
European Excel. Each goes through the real CLI into SQLite and PostgreSQL: who is stored with
which status, name and dates; who is skipped and why; nobody who left is confirmed."""

from __future__ import annotations

import zipfile
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import pytest
from clihelp import run
from sqlalchemy.engine import Engine
from sqlmodel import Session, select

from subscribe.db.models import Subscriber
from subscribe.readers.timestamps import NotADate, parse_timestamp

pytestmark = pytest.mark.usefixtures("cli_env")

EXPORTS = Path(__file__).parent / "exports"


def at(text: str) -> datetime:
    return datetime.fromisoformat(text).astimezone(UTC)


@dataclass(frozen=True)
class Reader:
    status: str  # as stored with --confirmed
    name: str = ""
    created: str | None = None  # None: not checked
    confirmed: str | None = None
    left: str | None = None
    ip: str | None = None


@dataclass(frozen=True)
class Export:
    format: str
    readers: dict[str, Reader]  # every row stored, by the address as stored
    skipped: tuple[str, ...] = ()  # "line N: ..." fragments of what is listed as skipped
    already_present: int = 0  # the same address again in the file
    note: str = ""  # what the encoding guess says


EXPECTED: dict[str, Export] = {
    "kit_subscribers.csv": Export(
        "kit",
        {
            "kai@example.org": Reader(
                "confirmed", "Kai", "2023-04-01T09:00:00Z", "2023-04-01T09:00:00Z"
            ),
            "lena@example.org": Reader("unsubscribed", "Lena", "2022-01-10T12:00:00Z"),
            "mo@example.org": Reader("bounced", "Mo"),
            "nia@example.org": Reader("unsubscribed", "Nia"),  # complained
            "oren@example.org": Reader("unsubscribed", "Oren"),  # inactive: never confirmed
            "pia@example.org": Reader("confirmed", "Pia", "2020-03-03T03:03:03Z"),  # cold
        },
        skipped=("line 8: quinn@example.org: unknown status 'paused_for_review'",),
    ),
    "mailerlite_subscribers.csv": Export(
        "mailerlite",
        {
            "ruth@example.org": Reader(
                "confirmed",
                "Ruth Rivers",
                "2022-05-05T10:00:00Z",
                "2022-05-05T10:05:00Z",
                ip="192.0.2.1",
            ),
            "sol@example.org": Reader(
                "unsubscribed", "Sol", "2021-01-01T00:00:00Z", left="2023-03-03T03:03:03Z"
            ),
            "tara@example.org": Reader("pending", "Tara", "2024-04-04T04:04:04Z"),
            "ugo@example.org": Reader("bounced", "Ugo"),
            "vera@example.org": Reader("bounced", "Vera"),  # junk
        },
    ),
    "brevo_contacts.csv": Export(
        "brevo",
        {
            "wanda@example.fr": Reader("confirmed", "Wanda Lefèvre", "2022-09-01T08:00:00Z"),
            "xavier@example.fr": Reader(
                "unsubscribed",
                "Xavier Dupré",
                "2021-01-01T10:00:00Z",
                left="2023-06-30T18:00:00Z",
            ),
            # Only their SMS is blacklisted: their email is not.
            "yves@example.fr": Reader("confirmed", "Yves", "2023-02-02T12:00:00Z"),
        },
        skipped=("line 5: zelie@example.fr: EMAIL_BLACKLISTED is 'peut-être', not yes or no",),
        note="read as Windows-1252",
    ),
    "mailpoet_subscribers.txt": Export(
        "mailpoet",
        {
            "zack@example.com": Reader(
                "confirmed",
                "Zack Zeller",
                "2022-02-01T09:00:00Z",
                "2022-02-02T10:00:00Z",
                ip="192.0.2.5",
            ),
            # Subscribed to the list, unsubscribed from everything: unsubscribed.
            "amy@example.com": Reader("unsubscribed", "Amy", "2021-01-01T09:00:00Z"),
            "bea@example.com": Reader("pending", "Bea", "2024-01-01T00:00:00Z"),
            "cal@example.com": Reader("unsubscribed", "Cal"),  # inactive
            "dee@example.com": Reader("bounced", "Dee"),
        },
    ),
    "mailjet_contacts.csv": Export(
        "mailjet",
        {
            "eli@example.net": Reader(
                "confirmed", "Eli", "2021-05-05T10:00:00Z", "2021-05-05T10:00:00Z"
            ),
            "fay@example.net": Reader("unsubscribed", "Fay"),  # excluded from campaigns
            "gus@example.net": Reader("pending", "Gus"),  # opt-in pending
            "hal@example.net": Reader("unsubscribed", "Hal", left="2023-01-01T00:00:00Z"),
        },
    ),
    "emailoctopus_contacts.csv": Export(
        "csv",
        {
            "ivo@example.com": Reader("confirmed", "Ivo Ilić", "2022-03-03T03:03:03Z"),
            "jan@example.com": Reader("unsubscribed", "Jan"),
            "kat@example.com": Reader("pending", "Kat", "2024-05-05T05:05:05Z"),
            "lou@example.com": Reader("bounced", "Lou"),
        },
    ),
    "sendy_subscribers.csv": Export(
        "csv",
        {
            "abe@example.com": Reader("confirmed", "Abe Sendy", "2023-01-05T10:00:00Z"),
            "bo@example.com": Reader("unsubscribed", "Bo"),
            "cy@example.com": Reader("pending", "Cy", "2023-03-07T21:15:00Z"),
            "di@example.com": Reader("bounced", "Di"),
            "ed@example.com": Reader("bounced", "Ed"),  # soft bounced: never confirmed
            "flo@example.com": Reader("unsubscribed", "Flo"),  # marked as spam
        },
    ),
    "campaign_monitor_subscribers.csv": Export(
        "csv",
        {
            "gil@example.com": Reader("confirmed", "Gil Green", "2019-11-11T11:11:11Z"),
            "hana@example.com": Reader("pending", "Hana"),
            "ike@example.com": Reader("unsubscribed", "Ike"),
            "joy@example.com": Reader("bounced", "Joy"),
            "ken@example.com": Reader("unsubscribed", "Ken"),  # deleted
        },
    ),
    "aweber_subscribers.tsv": Export(
        "csv",
        {
            "lia@example.com": Reader(
                "confirmed", "Lia Long", "2022-07-07T07:07:07-04:00", ip="203.0.113.9"
            ),
            # Twice, under two spellings: the row that says they left wins.
            "max@example.com": Reader("unsubscribed", "Max", left="2023-09-09T09:09:09-04:00"),
            "ned.a@example.com": Reader("pending", "Ned"),
        },
        already_present=1,
    ),
    "substack_subscribers_dashboard.csv": Export(
        "substack",
        {
            "oona@example.org": Reader("confirmed", "Oona", "2023-01-01T00:00:00Z"),
            "pete@example.org": Reader("confirmed", "Pete"),
            "quy@example.org": Reader("confirmed", "Quy"),
            "rosa@example.org": Reader("confirmed", "Rosa"),
            "stan@example.org": Reader("confirmed", "Stan", "2021-05-05T00:00:00Z"),
        },
    ),
    "ghost_members_legacy.csv": Export(
        "ghost",
        {
            "tia@example.org": Reader(
                "confirmed", "Tia", "2020-08-08T08:08:08Z", "2020-08-08T08:08:08Z"
            ),
            "uri@example.org": Reader("unsubscribed", "Uri"),
            "val@example.org": Reader("unsubscribed", "Val", left="2021-01-01T00:00:00Z"),
        },
    ),
    "jetpack_subscribers.csv": Export(
        "csv",
        {
            "wil@example.org": Reader("confirmed", "", "2023-06-01T12:00:00Z"),
            "xia@example.org": Reader("confirmed"),
            "yul@example.org": Reader("unsubscribed"),
            "zed@example.org": Reader("pending"),  # not confirmed
        },
    ),
    "jetpack_followers_excel.csv": Export(
        "addresses",
        {"anders@example.org": Reader("confirmed"), "Berit@example.org": Reader("confirmed")},
        already_present=1,
    ),
    "mailchimp_de_subscribed_members.csv": Export(
        "mailchimp",
        {
            "juergen@example.de": Reader(
                "confirmed", "Jürgen Groß", "2020-01-15T08:00:00Z", "2020-01-15T08:03:00Z"
            ),
            "ute@example.de": Reader("confirmed", "Ute Weiß", "2021-02-16T09:00:00Z"),
        },
        note="read as Windows-1252",
    ),
    "mailchimp_fr_unsubscribed_members.csv": Export(
        "mailchimp",
        {
            "amelie@example.fr": Reader(
                "unsubscribed",
                "Amélie Poulain",
                "2019-05-05T10:00:00Z",
                left="2022-12-24T18:00:00Z",
            )
        },
    ),
    "mailchimp_es_cleaned_members.csv": Export(
        "mailchimp",
        {"nacho@example.es": Reader("bounced", "Ignacio Núñez", left="2021-07-07T07:07:07Z")},
    ),
    "mailchimp_contacts_marketing_status.csv": Export(
        "mailchimp",
        {
            "olga@example.com": Reader(
                "confirmed", "Olga Orlova", "2022-10-10T10:10:10Z", "2022-10-10T10:11:00Z"
            ),
            # Unsubscribed from email, subscribed to SMS: unsubscribed here.
            "pavel@example.com": Reader("unsubscribed", "Pavel", left="2023-04-04T04:04:04Z"),
            "rita@example.com": Reader("unsubscribed", "Rita"),  # non-subscribed
            "sven@example.com": Reader("bounced", "Sven"),
            "tove@example.com": Reader("pending", "Tove"),
            "ulf@example.com": Reader("unsubscribed", "Ulf"),  # archived
        },
    ),
    "mailchimp_subscribed_members_us_excel.csv": Export(
        "mailchimp",
        {
            # 3/4/2019 is March the 4th: the file's 11/30/2020 shows it writes month first.
            "vic@example.com": Reader(
                "confirmed", "Vic Vance", "2019-03-04T09:05:00Z", "2019-03-04T09:07:00Z"
            ),
            "wyn@example.com": Reader(
                "confirmed", "Wyn", "2020-11-30T23:59:00Z", "2020-12-01T00:01:00Z"
            ),
        },
        note="dates such as 03/04/2019 read month first, as '11/30/2020 23:59' on line 3",
    ),
    "uk_sheet.csv": Export(
        "csv",
        {
            "xan@example.co.uk": Reader("confirmed", "Xan Xu", "2019-04-03T00:00:00Z"),
            "yas@example.co.uk": Reader("confirmed", "Yas Young", "2020-12-25T00:00:00Z"),
        },
        note="read day first, as '25/12/2020' on line 3 shows",
    ),
    "excel_semicolon_list.csv": Export(
        "csv",
        {
            "ANNA@example.de": Reader("unsubscribed", "Anna Bär", "2021-03-15T10:00:00Z"),
            "bernd@example.de": Reader("confirmed", "Bernd Köhler", "2022-04-01T09:30:00Z"),
        },
        already_present=1,
        note="read as Windows-1252",
    ),
}


def stored(engine: Engine) -> dict[str, Subscriber]:
    with Session(engine) as session:
        return {s.email: s for s in session.exec(select(Subscriber)).all()}


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_each_export_keeps_statuses_names_and_dates(engine: Engine, name: str) -> None:
    expected = EXPECTED[name]
    path = EXPORTS / name
    dry = run("import", str(path), "--confirmed", "--dry-run", "--no-confirmation-email")
    assert dry.exit_code == 0, dry.output
    assert f"format: {expected.format} " in dry.stdout
    assert f"would import {len(expected.readers)}" in dry.stdout
    assert stored(engine) == {}  # a dry run stores nothing

    result = run("import", str(path), "--confirmed", "--no-confirmation-email")
    assert result.exit_code == 0, result.output
    assert f"imported {len(expected.readers)} (" in result.stdout
    assert f"already present {expected.already_present}," in result.stdout
    assert f"skipped {len(expected.skipped)}" in result.stdout
    for problem in expected.skipped:
        assert problem in result.stderr
    assert "Traceback" not in result.output
    if expected.note:
        assert expected.note in result.stderr
    else:
        assert "read as" not in result.stderr and " read " not in result.stderr
    rows = stored(engine)
    assert sorted(rows) == sorted(expected.readers)
    for email, want in expected.readers.items():
        reader = rows[email]
        assert (reader.status, reader.name) == (want.status, want.name), email
        assert reader.consent_source == f"import:{expected.format}", email
        if want.created:
            assert reader.created_at == at(want.created), email
        if want.confirmed:
            assert reader.confirmed_at == at(want.confirmed), email
        if want.left:
            assert reader.unsubscribed_at == at(want.left), email
        if want.ip is not None:
            assert reader.consent_ip == want.ip, email
        if want.status in ("unsubscribed", "bounced"):
            assert reader.unsubscribed_at is not None, email
        if want.status == "pending":
            assert reader.confirmed_at is None, email


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_without_confirmed_nobody_is_confirmed_and_who_left_stays_gone(
    engine: Engine, name: str
) -> None:
    expected = EXPECTED[name]
    result = run("import", str(EXPORTS / name), "--no-confirmation-email")
    assert result.exit_code == 0, result.output
    rows = stored(engine)
    assert sorted(rows) == sorted(expected.readers)
    for email, want in expected.readers.items():
        status = "pending" if want.status == "confirmed" else want.status
        assert rows[email].status == status, email
        if status == "pending":
            assert rows[email].confirmed_at is None, email


def test_each_sample_is_a_different_shape_of_file() -> None:
    """The quirks the samples are there for, so that a tidied sample fails here."""
    raw = {name: (EXPORTS / name).read_bytes() for name in EXPECTED}
    assert raw["mailpoet_subscribers.txt"].startswith(b"\xff\xfe")  # UTF-16 LE, Excel
    assert raw["mailerlite_subscribers.csv"].startswith(b"\xef\xbb\xbf")  # UTF-8 BOM
    assert raw["jetpack_followers_excel.csv"].startswith(b"\xef\xbb\xbf\r\n")  # blank first
    assert raw["excel_semicolon_list.csv"].startswith(b"sep=;\r\n")
    assert b"\r\n" in raw["kit_subscribers.csv"] and b"\r\n" in raw["brevo_contacts.csv"]
    assert b"\t" in raw["aweber_subscribers.tsv"]
    assert b"Lef\xe8vre" in raw["brevo_contacts.csv"]  # Windows-1252
    assert b"fair,\nsaid" in raw["emailoctopus_contacts.csv"]  # a line break in a field
    assert b",,\n\n" in raw["sendy_subscribers.csv"]  # empty trailing columns, blank lines
    assert raw["campaign_monitor_subscribers.csv"].startswith(b"  Email Address ,")


def test_blank_lines_before_the_header_and_a_comma_separator_hint(
    engine: Engine, tmp_path: Path
) -> None:
    path = tmp_path / "hinted.csv"
    path.write_text('\n\n"sep=,"\nEmail,Status\nann@example.org,Subscribed\nbo@x,Subscribed\n')
    result = run("import", str(path), "--confirmed")
    assert result.exit_code == 0, result.output
    assert "line 6: 'bo@x'" in result.stderr  # line numbers count the lines skipped
    assert {email: s.status for email, s in stored(engine).items()} == {
        "ann@example.org": "confirmed"
    }


def test_a_leaving_column_wins_over_a_status_that_says_subscribed(
    engine: Engine, tmp_path: Path
) -> None:
    """Yes/no columns are read with the status: someone the file says unsubscribed,
    bounced or blocklisted in any column is never confirmed; a "no" there says nothing."""
    path = tmp_path / "flags.csv"
    path.write_text(
        "email,status,unsubscribed,bounced,accepts_email_marketing\n"
        "ann@example.org,subscribed,no,no,yes\n"
        "ben@example.org,subscribed,yes,,\n"
        "cat@example.org,subscribed,,true,\n"
        "dan@example.org,subscribed,2023-01-02 03:04:05,,\n"
        "eve@example.org,subscribed,,,no\n"
        "fay@example.org,subscribed,perhaps,,\n"
        "gil@example.org,,,,yes\n"
    )
    result = run("import", str(path), "--confirmed")
    assert result.exit_code == 0, result.output
    assert "line 7: fay@example.org: unsubscribed is 'perhaps', not yes or no" in result.stderr
    rows = stored(engine)
    assert {email: s.status for email, s in rows.items()} == {
        "ann@example.org": "confirmed",
        "ben@example.org": "unsubscribed",
        "cat@example.org": "bounced",
        "dan@example.org": "unsubscribed",
        "eve@example.org": "unsubscribed",
        "gil@example.org": "confirmed",
    }


def test_an_sms_status_is_not_an_email_status(engine: Engine, tmp_path: Path) -> None:
    path = tmp_path / "contacts.csv"
    path.write_text(
        "Email,SMS Marketing Status,State\n"
        "ann@example.org,unsubscribed,CA\n"  # State: a region, not a status
        "ben@example.org,subscribed,NY\n"
    )
    result = run("import", str(path), "--confirmed")
    assert result.exit_code == 0, result.output
    assert {email: s.status for email, s in stored(engine).items()} == {
        "ann@example.org": "confirmed",
        "ben@example.org": "confirmed",
    }


def test_hand_edited_headers_two_address_columns_and_quotes_after_a_space(
    engine: Engine, tmp_path: Path
) -> None:
    """ "E-mail" and "Email" are both read (the first with something in it), and quotes a
    hand-edited file put after a space are not part of the name or the address."""
    path = tmp_path / "edited.csv"
    path.write_text(
        ' "E-mail" , "Email" , "Name" \n,ann@example.org, "Ann ""A"" Ash"\nbo@example.org,,Bo\n'
    )
    result = run("import", str(path), "--confirmed")
    assert result.exit_code == 0, result.output
    rows = stored(engine)
    assert {email: s.name for email, s in rows.items()} == {
        "ann@example.org": 'Ann "A" Ash',
        "bo@example.org": "Bo",
    }


def test_a_reason_in_brackets_and_addresses_copied_with_a_name(
    engine: Engine, tmp_path: Path
) -> None:
    """ "Unsubscribed (by admin)" is unsubscribed; "Subscribed (unconfirmed)" is not guessed.
    "Ada <ada@...>" and "mailto:" links are the address (and the name, when none is given)."""
    path = tmp_path / "copied.csv"
    path.write_text(
        "Email,Status\n"
        '"Ada Lovelace <ada@example.org>",Subscribed\n'
        "mailto:bob@example.org,Unsubscribed (by admin)\n"
        "cy@example.org,Subscribed (unconfirmed)\n"
        "<dee@example.org>,Bounced (hard)\n"
    )
    result = run("import", str(path), "--confirmed")
    assert result.exit_code == 0, result.output
    assert "line 4: cy@example.org: unknown status 'Subscribed (unconfirmed)'" in result.stderr
    rows = stored(engine)
    assert {email: (s.status, s.name) for email, s in rows.items()} == {
        "ada@example.org": ("confirmed", "Ada Lovelace"),
        "bob@example.org": ("unsubscribed", ""),
        "dee@example.org": ("bounced", ""),
    }


@pytest.mark.parametrize(
    ("header", "name"),
    [
        ('"Indirizzo email",Nome,Cognome', "Ada Rossi"),  # Italian
        ('"Endereço de email",Nome,Sobrenome', "Ada Rossi"),  # Portuguese
        ("E-mailadres,Voornaam,Achternaam", "Ada Rossi"),  # Dutch
        ('"Adres e-mail",Imię,Nazwisko', "Ada Rossi"),  # Polish
        ("E-postadress,Förnamn,Efternamn", ""),  # Swedish: the address only
    ],
)
def test_mailchimp_audiences_in_other_languages(
    engine: Engine, tmp_path: Path, header: str, name: str
) -> None:
    path = tmp_path / "members.csv"
    path.write_text(
        f"{header},OPTIN_TIME,CONFIRM_TIME,LEID\n"
        'ada@example.org,Ada,Rossi,"2020-01-01 10:00:00","2020-01-01 10:05:00",1\n'
    )
    result = run("import", str(path), "--confirmed")
    assert result.exit_code == 0, result.output
    reader = stored(engine)["ada@example.org"]
    assert (reader.status, reader.name, reader.consent_source) == (
        "confirmed",
        name,
        "import:mailchimp",
    )
    assert reader.confirmed_at == at("2020-01-01T10:05:00Z")


def test_slashed_dates_are_read_only_when_the_file_shows_its_order(
    engine: Engine, tmp_path: Path
) -> None:
    """A file whose dates go both ways (13/01 and 01/13) shows no order: nothing guessed."""
    path = tmp_path / "mixed.csv"
    path.write_text(
        "email,created_at\n"
        "ann@example.org,13/01/2020\n"
        "ben@example.org,01/13/2020\n"
        "cat@example.org,2020-01-13\n"
    )
    result = run("import", str(path), "--confirmed")
    assert result.exit_code == 0, result.output
    assert "line 2: '13/01/2020' is not a date" in result.stderr
    assert "line 3: '01/13/2020' is not a date" in result.stderr
    assert " read " not in result.stderr
    assert stored(engine)["cat@example.org"].created_at == at("2020-01-13T00:00:00Z")


@pytest.mark.parametrize(
    "data",
    [
        "email,name\nann@example.org,Änn\n".encode("utf-32"),  # its BOM starts like UTF-16's
        "sep=|\nemail|name\nann@example.org|Änn\n".encode(),
    ],
    ids=["utf32-bom", "pipe-hint"],
)
def test_rarer_shapes_utf32_and_a_pipe_separator(
    engine: Engine, tmp_path: Path, data: bytes
) -> None:
    path = tmp_path / "rare.csv"
    path.write_bytes(data)
    result = run("import", str(path), "--confirmed")
    assert result.exit_code == 0, result.output
    assert {email: s.name for email, s in stored(engine).items()} == {"ann@example.org": "Änn"}


def test_a_long_unknown_status_is_cut_in_its_message(engine: Engine, tmp_path: Path) -> None:
    path = tmp_path / "long.csv"
    path.write_text("email,status\nann@example.org," + "z" * 5000 + "\n")
    result = run("import", str(path), "--confirmed")
    assert result.exit_code == 0, result.output
    (line,) = result.stderr.strip().splitlines()
    assert line.startswith("line 2: ann@example.org: unknown status 'zzz") and len(line) < 200
    assert stored(engine) == {}


def test_an_address_book_state_is_a_region_not_kits_state(engine: Engine, tmp_path: Path) -> None:
    path = tmp_path / "book.csv"
    path.write_text(
        "Email Address,First Name,City,State,Created At\n"
        "ann@example.org,Ann,Portland,OR,2020-01-01\n"
    )
    result = run("import", str(path), "--confirmed", "--dry-run")
    assert result.exit_code == 0, result.output
    assert "format: csv " in result.stdout and "would import 1 (confirmed 1)" in result.stdout


@pytest.mark.parametrize(
    ("text", "iso"),
    [
        ("2023/05/12 10:00", "2023-05-12T10:00:00Z"),
        ("2023/5/2", "2023-05-02T00:00:00Z"),
        ("Jan 5, 2023 10:00 AM", "2023-01-05T10:00:00Z"),
        ("Jan 5, 2023 at 3:04 PM", "2023-01-05T15:04:00Z"),
        ("5 January 2023", "2023-01-05T00:00:00Z"),
        ("January 5, 2023", "2023-01-05T00:00:00Z"),
        ("2023-05-12 10:00:00 -0500", "2023-05-12T15:00:00Z"),
        ("2023-05-12T10:00:00.000+0000", "2023-05-12T10:00:00Z"),
    ],
)
def test_more_date_shapes(text: str, iso: str) -> None:
    assert parse_timestamp(text) == at(iso)


@pytest.mark.parametrize("text", ["05/12/2023", "12-05-2023", "Smarch 5, 2023", "soon"])
def test_ambiguous_or_unreadable_dates_are_not_guessed(text: str) -> None:
    with pytest.raises(NotADate):
        parse_timestamp(text)


def test_mailchimps_zip_is_its_three_files_with_who_left_applied_last(engine: Engine) -> None:
    """Mailchimp's audience export is a ZIP of the subscribed, unsubscribed and cleaned
    files (and a Mac's __MACOSX folder): imported as one, the leaving files last."""
    path = EXPORTS / "mailchimp_audience_export.zip"
    result = run("import", str(path), "--confirmed", "--no-confirmation-email")
    assert result.exit_code == 0, result.output
    assert "imported 6 (bounced 1, confirmed 3, unsubscribed 2)" in result.stdout
    assert "read subscribed_members_export_4f2a9c.csv, cleaned_" in result.stderr
    rows = stored(engine)
    assert {email: s.status for email, s in rows.items()} == {
        "ada@example.org": "confirmed",
        "Grace.Hopper@example.com": "confirmed",
        "zoe@example.net": "confirmed",
        "bob@example.org": "unsubscribed",
        "carol@example.org": "unsubscribed",
        "dave@example.org": "bounced",
    }
    assert rows["bob@example.org"].unsubscribed_at == at("2022-02-02 12:00:00Z")
    assert {s.consent_source for s in rows.values()} == {"import:mailchimp"}


def test_substacks_data_export_zip_passes_over_its_posts(engine: Engine) -> None:
    result = run("import", str(EXPORTS / "substack_export.zip"), "--confirmed")
    assert result.exit_code == 0, result.output
    assert "passed over posts.csv (no email column)" in result.stderr
    assert "imported 3 (confirmed 2, unsubscribed 1)" in result.stdout


def test_a_zip_with_a_bad_member_changes_nothing_and_says_which(
    engine: Engine, tmp_path: Path
) -> None:
    path = tmp_path / "export.zip"
    with zipfile.ZipFile(path, "w") as archive:
        archive.writestr("a_subscribed.csv", "email,status\nann@example.org,subscribed\n")
        archive.writestr(
            "b_subscribed.csv", b"email,name\nbo@example.org,Zo\xc3\xab\ncy@example.org,Ren\xe9e\n"
        )
    result = run("import", str(path), "--confirmed")
    assert result.exit_code == 1
    (line,) = result.stderr.strip().splitlines()
    assert (
        line.startswith("error: export.zip:b_subscribed.csv: line 3, column 19:")
        and "not UTF-8" in line
    )
    assert stored(engine) == {}


def test_a_zip_says_which_of_its_files_a_skipped_line_is_in(engine: Engine, tmp_path: Path) -> None:
    path = tmp_path / "export.zip"
    with zipfile.ZipFile(path, "w") as archive:
        archive.writestr("one.csv", "email,status\nann@example.org,subscribed\n")
        archive.writestr("two.csv", "email,status\nbo@example.org,on_hold\n")
    result = run("import", str(path), "--confirmed")
    assert result.exit_code == 0, result.output
    assert "line 2: two.csv: bo@example.org: unknown status 'on_hold'" in result.stderr
    assert sorted(stored(engine)) == ["ann@example.org"]


@pytest.mark.parametrize(
    ("members", "message"),
    [
        ({"[Content_Types].xml": "<Types/>", "xl/workbook.xml": "<w/>"}, "is a spreadsheet"),
        ({"readme.md": "hello"}, "is a ZIP with no CSV file in it"),
        ({"posts.csv": "title,url\nHello,https://blog.example.org/\n"}, "an email column"),
    ],
    ids=["xlsx", "no-csv", "no-email-column"],
)
def test_zips_we_cannot_use_are_one_line(
    engine: Engine, tmp_path: Path, members: dict[str, str], message: str
) -> None:
    path = tmp_path / "export.zip"
    with zipfile.ZipFile(path, "w") as archive:
        for name, text in members.items():
            archive.writestr(name, text)
    result = run("import", str(path), "--confirmed")
    assert result.exit_code == 1 and message in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1 and "Traceback" not in result.output
