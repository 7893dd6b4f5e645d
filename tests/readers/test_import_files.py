"""Import files as spreadsheets save them: encodings and delimiters decided for the whole
file, and a file that cannot be read to its end changes nothing and says where."""

from __future__ import annotations

import codecs
from pathlib import Path

import pytest
from clihelp import run
from sqlalchemy.engine import Engine
from sqlmodel import Session, select

from subscribe.db.models import Subscriber

pytestmark = pytest.mark.usefixtures("cli_env")


def names(engine: Engine) -> dict[str, str]:
    with Session(engine) as session:
        return {s.email: s.name for s in session.exec(select(Subscriber)).all()}


def many_rows(count: int) -> str:
    return "".join(f"reader{n}@example.org,Reader {n}\n" for n in range(count))


READERS = "email;name\nanna@example.org;Anna Müller\nbjörn@example.de;Björn Ærø\n"
STORED = {"anna@example.org": "Anna Müller"}  # björn@: a non-ASCII local part is refused


@pytest.mark.parametrize(
    ("data", "note"),
    [
        (READERS.encode("utf-8"), ""),
        (codecs.BOM_UTF8 + READERS.encode("utf-8"), ""),  # Excel's "CSV UTF-8"
        (READERS.encode("cp1252"), "read as Windows-1252"),  # Excel's "CSV" on Windows
        (
            codecs.BOM_UTF16_LE + READERS.replace(";", "\t").encode("utf-16-le"),
            "",
        ),  # "Unicode text"
        (READERS.replace(";", "\t").encode("utf-16-be"), "read as UTF-16 (big-endian"),
        (READERS.replace("\n", "\r").encode("cp1252"), "read as Windows-1252"),  # old Mac
        (READERS.replace(";", ",").replace("\n", "\r\n").encode("utf-8"), ""),
    ],
    ids=["utf8", "utf8-bom", "cp1252", "utf16-bom-tab", "utf16be-no-bom", "cr-only", "crlf"],
)
def test_encodings_and_delimiters(engine: Engine, tmp_path: Path, data: bytes, note: str) -> None:
    path = tmp_path / "readers.csv"
    path.write_bytes(data)
    result = run("import", str(path), "--confirmed")
    assert result.exit_code == 0, result.output
    assert names(engine) == STORED
    assert "line 3: 'björn@example.de'" in result.stderr  # line numbers hold in every shape
    if note:
        assert note in result.stderr
    else:
        assert "read as" not in result.stderr


def test_a_bad_byte_near_the_end_of_a_utf8_file_changes_nothing(
    engine: Engine, tmp_path: Path
) -> None:
    path = tmp_path / "big.csv"
    good = "email,name\n" + "zoë@example.org,Zoë\n".replace("zoë@", "zoe@") + many_rows(12_000)
    path.write_bytes(good.encode() + b"late@example.org,Ren\xe9e\n" + b"last@example.org,x\n")
    result = run("import", str(path), "--confirmed")
    assert result.exit_code == 1
    assert f"line {12_003}, column 21: a byte that is not UTF-8" in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1
    assert names(engine) == {}
    # Told how the file is written, it goes in whole.
    forced = run("import", str(path), "--confirmed", "--encoding", "latin-1")
    assert forced.exit_code == 0 and "imported 12003" in forced.stdout


@pytest.mark.parametrize(
    ("tail", "where"),
    [
        (
            'late@example.org,"Renée\nlast@example.org,x\n',
            "line 12002, column 18: a quote that is never closed",
        ),
        ('late@example.org,"Renée" R\n', "line 12002, column 25: ' ' after a closing quote"),
    ],
    ids=["unclosed", "after-closing-quote"],
)
def test_broken_quoting_near_the_end_changes_nothing(
    engine: Engine, tmp_path: Path, tail: str, where: str
) -> None:
    path = tmp_path / "broken.csv"
    path.write_text("email,name\n" + many_rows(12_000) + tail, encoding="utf-8")
    result = run("import", str(path), "--confirmed")
    assert result.exit_code == 1
    assert where in result.stderr and "nothing was imported" in result.stderr
    assert names(engine) == {}


def test_a_quoted_field_over_several_lines_keeps_the_line_numbers(
    engine: Engine, tmp_path: Path
) -> None:
    path = tmp_path / "notes.csv"
    path.write_text('email,name,notes\nann@example.org,Ann,"two\nlines"\nnot-an-address,Bo,\n')
    result = run("import", str(path), "--confirmed")
    assert result.exit_code == 0, result.output
    assert "line 4: 'not-an-address'" in result.stderr and "imported 1" in result.stdout


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (b"", "is empty"),
        (b"\n\n", "is empty"),
        (b"PK\x03\x04\x14\x00\x06\x00", "is a spreadsheet, not CSV"),
        (b"email\nann@example.org\n\x00\x01bad\n", "line 3: a NUL byte"),
        (b"email\n", "has no rows"),
    ],
    ids=["empty", "blank", "xlsx", "nul", "header-only"],
)
def test_files_that_are_not_csv_are_one_line(tmp_path: Path, data: bytes, message: str) -> None:
    path = tmp_path / "odd.csv"
    path.write_bytes(data)
    result = run("import", str(path))
    if message == "has no rows":
        assert result.exit_code == 0 and "imported 0" in result.stdout
        return
    assert result.exit_code == 1 and message in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1 and "Traceback" not in result.output


def test_an_unknown_encoding_is_one_line(tmp_path: Path) -> None:
    path = tmp_path / "readers.csv"
    path.write_text("email\nann@example.org\n")
    result = run("import", str(path), "--encoding", "klingon-8")
    assert result.exit_code == 1 and "unknown encoding 'klingon-8'" in result.stderr
