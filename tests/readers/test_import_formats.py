"""Other tools' exports, in the shapes they write them (tests/readers/exports/): the format is
found from the header row, statuses and dates are honoured, and nobody who left is confirmed."""

from __future__ import annotations

import io
from datetime import UTC, datetime
from pathlib import Path

import pytest
from clihelp import run
from sqlalchemy.engine import Engine
from sqlmodel import Session, select

from subscribe.config import Settings
from subscribe.db.models import Subscriber

pytestmark = pytest.mark.usefixtures("cli_env")

EXPORTS = Path(__file__).parent / "exports"


def at(text: str) -> datetime:
    return datetime.fromisoformat(text).astimezone(UTC)


# file -> (format, {address: (status with --confirmed, name, created_at, confirmed_at,
# unsubscribed_at)}); None: not checked. Rows not listed must not be stored.
EXPECTED: dict[str, tuple[str, dict[str, tuple[str, str, str | None, str | None, str | None]]]] = {
    "mailchimp_subscribed_members.csv": (
        "mailchimp",
        {
            "ada@example.org": (
                "confirmed",
                "Ada Lovelace",
                "2019-03-14 17:22:05Z",
                "2019-03-14 17:25:41Z",
                None,
            ),
            "Grace.Hopper@example.com": (
                "confirmed",
                "Grace Hopper",
                "2020-07-01 08:00:00Z",
                "2020-07-01 08:00:00Z",
                None,
            ),
            "zoe@example.net": ("confirmed", "Zoë Ünal", "2021-11-30 23:59:59Z", None, None),
        },
    ),
    "mailchimp_unsubscribed_members.csv": (
        "mailchimp",
        {
            "bob@example.org": (
                "unsubscribed",
                "Bob Builder",
                "2018-05-02 09:10:11Z",
                "2018-05-02 09:12:00Z",
                "2022-02-02 12:00:00Z",
            ),
            "carol@example.org": ("unsubscribed", "Carol", None, None, "2023-10-10 10:10:10Z"),
        },
    ),
    "mailchimp_cleaned_members.csv": (
        "mailchimp",
        {"dave@example.org": ("bounced", "Dave", None, None, "2020-04-04 04:04:04Z")},
    ),
    "ghost_members.csv": (
        "ghost",
        {
            "erin@example.org": (
                "confirmed",
                "Erin Example",
                "2023-03-14 10:20:30Z",
                "2023-03-14 10:20:30Z",
                None,
            ),
            "frank@example.org": ("unsubscribed", "Frank", "2022-12-01 08:00:00Z", None, None),
            "gina@example.org": ("confirmed", 'Gina "G" Lopez', None, None, None),
        },
    ),
    "substack_subscribers.csv": (
        "substack",
        {
            "hank@example.org": ("confirmed", "", "2021-06-07 15:04:05.123Z", None, None),
            "ivy@example.org": ("confirmed", "", "2020-02-29 12:00:00Z", None, None),
            "jack@example.org": ("unsubscribed", "", "2019-09-09 09:09:09Z", None, None),
        },
    ),
    "listmonk_subscribers.csv": (
        "listmonk",
        {
            "kim@example.org": ("confirmed", "Kim", "2021-05-04 04:41:12.345678Z", None, None),
            "lee@example.org": ("unsubscribed", "Lee", None, None, "2022-08-08 08:08:08Z"),
            "mia@example.org": ("unsubscribed", "Mia", None, None, "2020-04-04 04:04:04Z"),
        },
    ),
    "buttondown_subscribers.csv": (
        "buttondown",
        {
            "ned@example.org": (
                "confirmed",
                "",
                "2022-01-02 03:04:05.678901Z",
                "2022-01-02 03:05:00Z",
                None,
            ),
            "ola@example.org": ("pending", "", "2022-02-03 04:05:06Z", None, None),
            "pat@example.org": ("unsubscribed", "", None, None, "2023-05-06 07:08:09Z"),
            "quin@example.org": ("confirmed", "", None, None, None),
            "rae@example.org": ("bounced", "", None, None, None),
            "sam@example.org": ("unsubscribed", "", None, None, None),
        },
    ),
    "beehiiv_subscribers.csv": (
        "beehiiv",
        {
            "tess@example.org": ("confirmed", "Tess Trueman", "2024-01-15 12:30:00Z", None, None),
            "uma@example.org": ("unsubscribed", "Uma", None, None, None),
            "vic@example.org": ("pending", "", None, None, None),
        },
    ),
    "jetpack_followers.csv": (
        "addresses",
        {
            "wes@example.org": ("confirmed", "", None, None, None),
            "xena@example.org": ("confirmed", "", None, None, None),
            "yuri@example.org": ("confirmed", "", None, None, None),
        },
    ),
}


def stored(engine: Engine) -> dict[str, Subscriber]:
    with Session(engine) as session:
        return {s.email: s for s in session.exec(select(Subscriber)).all()}


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_each_export_keeps_its_statuses_names_and_dates(engine: Engine, name: str) -> None:
    fmt, readers = EXPECTED[name]
    dry = run("import", str(EXPORTS / name), "--confirmed", "--dry-run", "--no-confirmation-email")
    assert dry.exit_code == 0, dry.output
    assert f"format: {fmt} " in dry.stdout and f"would import {len(readers)}" in dry.stdout
    assert stored(engine) == {}  # a dry run stores nothing

    result = run("import", str(EXPORTS / name), "--confirmed", "--no-confirmation-email")
    assert result.exit_code == 0, result.output
    assert f"imported {len(readers)} (" in result.stdout and "skipped 0" in result.stdout
    rows = stored(engine)
    assert sorted(rows) == sorted(readers)
    for email, (status, person, created, confirmed, left) in readers.items():
        reader = rows[email]
        assert (reader.status, reader.name) == (status, person), email
        assert reader.consent_source == f"import:{fmt}"
        if created:
            assert reader.created_at == at(created), email
        if confirmed:
            assert reader.confirmed_at == at(confirmed), email
        if left:
            assert reader.unsubscribed_at == at(left), email
        if status in ("unsubscribed", "bounced"):
            assert reader.unsubscribed_at is not None, email
        if status == "pending":
            assert reader.confirmed_at is None, email


def test_nobody_who_left_is_confirmed_and_statuses_are_counted(engine: Engine) -> None:
    result = run("import", str(EXPORTS / "buttondown_subscribers.csv"), "--confirmed")
    assert result.exit_code == 0, result.output
    assert (
        "imported 6 (bounced 1, confirmed 2, pending 1, unsubscribed 2), already present 0, "
        "suppressed (removed earlier) 0, skipped 0"
    ) in result.stdout
    # Without --confirmed the subscribed ones are pending too; the others still left.
    again = run("import", str(EXPORTS / "ghost_members.csv"), "--no-confirmation-email")
    assert "imported 3 (pending 2, unsubscribed 1)" in again.stdout


def test_the_mailchimp_files_in_turn_unsubscribe_who_left_since(
    engine: Engine, tmp_path: Path
) -> None:
    """The audience is exported again a year on: who unsubscribed since is unsubscribed here,
    but not someone who subscribed again here after leaving over there."""
    subscribed = tmp_path / "subscribed.csv"
    subscribed.write_text(
        '"Email Address","First Name",OPTIN_TIME,CONFIRM_TIME\n'
        'bob@example.org,Bob,"2018-05-02 09:10:11","2018-05-02 09:12:00"\n'
    )
    assert run("import", str(subscribed), "--confirmed").exit_code == 0
    assert run("add", "carol@example.org", "--confirmed").exit_code == 0  # here, today
    result = run("import", str(EXPORTS / "mailchimp_unsubscribed_members.csv"), "--confirmed")
    assert result.exit_code == 0, result.output
    assert "unsubscribed as the source says they left 1" in result.stdout
    rows = stored(engine)
    assert rows["bob@example.org"].status == "unsubscribed"
    assert rows["bob@example.org"].unsubscribed_at == at("2022-02-02 12:00:00Z")
    assert rows["carol@example.org"].status == "confirmed"


def test_our_own_export_round_trips_into_an_empty_database(
    engine: Engine, settings: Settings, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    source = EXPORTS / "buttondown_subscribers.csv"
    assert run("import", str(source), "--confirmed", "--no-confirmation-email").exit_code == 0
    assert run("add", "new@example.org", "--confirmed", "--name", 'Né, "the" new').exit_code == 0
    first = run("export")
    assert first.exit_code == 0 and first.stdout.count("\n") == 8
    path = tmp_path / "export.csv"
    path.write_text(first.stdout)
    monkeypatch.setenv("SUBSCRIBE_DATABASE_URL", f"sqlite:///{tmp_path / 'empty.db'}")
    result = run("import", str(path), "--confirmed", "--no-confirmation-email")
    assert result.exit_code == 0, result.output
    assert "imported 7 (" in result.stdout
    assert run("export").stdout == first.stdout


def test_header_names_ignore_case_spaces_and_a_bom(engine: Engine, tmp_path: Path) -> None:
    path = tmp_path / "shouting.csv"
    path.write_bytes("\ufeffE-MAIL , First_Name,LAST NAME\r\nann@example.org,Ann,Ash\r\n".encode())
    result = run("import", str(path), "--confirmed")
    assert result.exit_code == 0, result.output
    assert stored(engine)["ann@example.org"].name == "Ann Ash"


def test_an_unknown_status_is_skipped_never_guessed(engine: Engine, tmp_path: Path) -> None:
    path = tmp_path / "statuses.csv"
    path.write_text("email,status\nann@example.org,subscribed\nben@example.org,on_hold\n")
    result = run("import", str(path), "--confirmed")
    assert result.exit_code == 0, result.output
    assert "line 3: ben@example.org: unknown status 'on_hold'" in result.stderr
    assert sorted(stored(engine)) == ["ann@example.org"]


def test_format_can_be_forced_and_a_wrong_one_is_one_line(engine: Engine, tmp_path: Path) -> None:
    path = tmp_path / "plain.csv"
    path.write_text("Subscriber;Since\nann@example.org;2020\n")
    detected = run("import", str(path))
    assert detected.exit_code == 1 and "not a header row with an email column" in detected.stderr
    wrong = run("import", str(path), "--format", "listmonk")
    assert wrong.exit_code == 1 and "no email column for --format listmonk" in wrong.stderr
    unknown = run("import", str(path), "--format", "mailchump")
    assert unknown.exit_code == 1 and "unknown format 'mailchump'" in unknown.stderr
    assert len(unknown.stderr.strip().splitlines()) == 1
    assert stored(engine) == {}
    forced = run("import", str(path), "--format", "addresses", "--confirmed")
    assert forced.exit_code == 0 and "imported 1 (confirmed 1)" in forced.stdout


def test_dates_that_cannot_be_read_keep_the_reader_with_a_warning(
    engine: Engine, tmp_path: Path
) -> None:
    path = tmp_path / "dates.csv"
    path.write_text("email,created_at\nann@example.org,03/04/2019\nben@example.org,2019-04-03\n")
    result = run("import", str(path), "--confirmed")
    assert result.exit_code == 0, result.output
    assert "line 2: '03/04/2019' is not a date" in result.stderr
    rows = stored(engine)
    assert rows["ben@example.org"].created_at == at("2019-04-03T00:00:00Z")
    assert rows["ann@example.org"].created_at.year >= 2026


def test_dry_run_shows_the_column_mapping(engine: Engine) -> None:
    path = EXPORTS / "mailchimp_subscribed_members.csv"
    result = run("import", str(path), "--dry-run")
    assert result.exit_code == 0, result.output
    out = io.StringIO(result.stdout).read()
    assert "format: mailchimp (Mailchimp audience export)" in out
    assert "Email Address -> email" in out and "First Name + Last Name -> name" in out
    assert "OPTIN_TIME or CONFIRM_TIME -> created_at" in out
    assert "would import 3 (pending 3)" in out


def test_the_format_option_names_every_format() -> None:
    from subscribe.cli.imports import FORMATS_HELP
    from subscribe.readers.import_formats import FORMATS

    for export_format in FORMATS:
        assert export_format.name in FORMATS_HELP, export_format.name
