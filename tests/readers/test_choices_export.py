"""Reader choices leave with `export`, show in `list` and come back with `import`; an
older export without the columns still imports."""

from __future__ import annotations

from pathlib import Path

import pytest
from clihelp import run
from sqlalchemy.engine import Engine
from sqlmodel import Session

from subscribe.config import Settings
from subscribe.db.models import Cadence, utcnow
from subscribe.readers import preferences, subscribers

pytestmark = pytest.mark.usefixtures("cli_env")


def test_export_list_and_import_round_trip_cadence_categories_and_language(
    engine: Engine, settings: Settings, tmp_path: Path
) -> None:
    with Session(engine) as session:
        reader = subscribers.add(
            session, settings, email="ann@example.org", confirmed=True, language="pl", now=utcnow()
        ).subscriber
        assert reader.id is not None
        preferences.set_categories(session, reader.id, ["Python", "Data, science"])
        preferences.change_cadence(session, reader, Cadence.WEEKLY, now=utcnow())
        session.commit()
        subscribers.add(session, settings, email="bo@example.org", confirmed=True, now=utcnow())
    listed = run("list")
    assert "ann@example.org\tconfirmed\t\tweekly\tData, science,Python\tpl" in listed.output
    exported = run("export")
    assert exported.exit_code == 0, exported.output
    assert exported.output.splitlines()[0].endswith(",cadence,categories,language")
    assert '"Data, science|Python"' in exported.output
    path = tmp_path / "export.csv"
    path.write_text(exported.output)
    for address in ("ann@example.org", "bo@example.org"):
        assert run("remove", address).exit_code == 0
    # Erased readers are suppressed: bring them back under new addresses, same file shape.
    path.write_text(exported.output.replace("ann@", "ann2@").replace("bo@", "bo2@"))
    imported = run("import", str(path))
    assert imported.exit_code == 0, imported.output
    with Session(engine) as session:
        again = subscribers.find(session, email="ann2@example.org")
        assert again.cadence == "weekly" and again.id is not None and again.language == "pl"
        assert preferences.categories_of(session, again.id) == ["Data, science", "Python"]
        assert subscribers.find(session, email="bo2@example.org").cadence == "post"
        assert subscribers.find(session, email="bo2@example.org").language == ""


def test_an_export_from_before_choices_still_imports(
    engine: Engine, settings: Settings, tmp_path: Path
) -> None:
    path = tmp_path / "old.csv"
    path.write_text(
        "email,name,status,created_at,confirmed_at,unsubscribed_at\n"
        "old@example.org,Old,confirmed,2024-01-01T00:00:00+00:00,2024-01-01T00:00:00+00:00,\n"
    )
    result = run("import", str(path))
    assert result.exit_code == 0, result.output
    with Session(engine) as session:
        old = subscribers.find(session, email="old@example.org")
        assert old.cadence == "post" and old.id is not None
        assert preferences.categories_of(session, old.id) == []


def test_other_tools_language_columns_import_and_unknown_ones_are_kept_as_tags(
    engine: Engine, settings: Settings, tmp_path: Path
) -> None:
    path = tmp_path / "with-locale.csv"
    path.write_text(
        "Email,Name,Status,Locale\n"
        "de@example.org,De,subscribed,de_AT\n"
        "pt@example.org,Pt,subscribed,pt-br\n"
        "xx@example.org,Xx,subscribed,not a language\n"
        "none@example.org,None,subscribed,\n"
    )
    imported = run("import", str(path), "--confirmed")
    assert imported.exit_code == 0, imported.output
    with Session(engine) as session:
        found = {
            email: subscribers.find(session, email=email).language
            for email in ("de@example.org", "pt@example.org", "xx@example.org", "none@example.org")
        }
    # As the source spells it (the nearest on offer is chosen per email: de-AT -> de).
    assert found == {
        "de@example.org": "de-AT",
        "pt@example.org": "pt-BR",
        "xx@example.org": "",
        "none@example.org": "",
    }
    assert run("add", "new@example.org", "--language", "klingon").exit_code != 0


def test_cli_add_refuses_a_language_not_on_offer_in_one_line() -> None:
    result = run("add", "kl@example.org", "--confirmed", "--language", "tlh")
    assert result.exit_code != 0 and "unknown language 'tlh'" in result.output
    assert "Traceback" not in result.output
