"""Reading an import file: its encoding and delimiter decided for the whole file, and every
row read to the end before anything is stored, so a bad byte or broken quoting on the last
line changes nothing and is reported by line and column.

Exports reach us re-saved by spreadsheets: UTF-8 with or without a BOM, UTF-16 with a BOM
(Excel's "Unicode text", tab-separated), Windows-1252 (Excel's plain "CSV" on Windows),
semicolons where the comma is the decimal mark.
"""

from __future__ import annotations

import codecs
import contextlib
import csv
import re
import shutil
import tempfile
import zipfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from subscribe.errors import SubscribeError

DELIMITERS = (",", ";", "\t")
# Excel's first line naming the delimiter, as some tools write it for European Excel.
_SEPARATOR_HINT = re.compile(r"^\"?sep=(.)\"?[,;\t|]*$", re.IGNORECASE)
_SNIFF_BYTES = 1 << 16
# Bytes Windows-1252 leaves undefined: a file holding them is read as Latin-1 instead.
_CP1252_HOLES = frozenset(b"\x81\x8d\x8f\x90\x9d")


class UnreadableFile(SubscribeError):
    """The file cannot be read to its end; nothing was stored."""


@dataclass(frozen=True)
class Member:
    """A file to import: the file given, or one CSV file of a ZIP given."""

    name: str  # as the admin knows it: the path given, or "export.zip:subscribed.csv"
    path: Path  # where to read it
    alone: bool  # the file given itself (its problems are the import's)


# What a ZIP may hold before we refuse it (a "ZIP bomb" is refused, not extracted).
_ZIP_MAX_BYTES = 4 << 30
_ZIP_MAX_MEMBERS = 200
_CSV_SUFFIXES = (".csv", ".tsv", ".txt")


@contextlib.contextmanager
def csv_members(path: Path) -> Iterator[list[Member]]:
    """The CSV files to import: ``path`` itself, or the CSV files inside a ZIP (Mailchimp's
    audience export, Substack's data export), extracted to a temporary folder for the
    import's length. Those that say who left (``unsubscribed``, ``cleaned``) come last, so
    that they are applied to the readers the others add."""
    with open_binary(path) as handle:
        magic = handle.read(4)
    if magic != b"PK\x03\x04":
        yield [Member(str(path), path, alone=True)]
        return
    try:
        archive = zipfile.ZipFile(path)
    except (zipfile.BadZipFile, OSError) as exc:
        raise UnreadableFile(
            f"{path} is a spreadsheet, not CSV (or a ZIP that cannot be read: {exc}): "
            "save it as CSV (UTF-8) first"
        ) from None
    with archive, tempfile.TemporaryDirectory(prefix="subscribe-import-") as folder:
        infos = [i for i in archive.infolist() if not i.is_dir()]
        names = {i.filename for i in infos}
        if "[Content_Types].xml" in names:
            raise UnreadableFile(f"{path} is a spreadsheet, not CSV: save it as CSV (UTF-8) first")
        wanted = [
            i
            for i in infos
            if i.filename.lower().endswith(_CSV_SUFFIXES)
            and not any(part.startswith((".", "__MACOSX")) for part in i.filename.split("/"))
        ]
        if not wanted:
            raise UnreadableFile(f"{path} is a ZIP with no CSV file in it")
        if len(wanted) > _ZIP_MAX_MEMBERS or sum(i.file_size for i in wanted) > _ZIP_MAX_BYTES:
            raise UnreadableFile(f"{path}: a ZIP this large is not imported; unpack it first")
        wanted.sort(key=lambda i: (_leaving_file(i.filename), i.filename))
        members = []
        for number, info in enumerate(wanted):
            target = Path(folder) / f"{number}.csv"
            try:
                with archive.open(info) as source, target.open("wb") as out:
                    shutil.copyfileobj(source, out)
            except (zipfile.BadZipFile, OSError, RuntimeError, EOFError) as exc:
                raise UnreadableFile(f"{path}: {info.filename} cannot be unpacked: {exc}") from None
            members.append(Member(f"{path.name}:{info.filename}", target, alone=len(wanted) == 1))
        yield members


def _leaving_file(name: str) -> bool:
    base = name.rsplit("/", 1)[-1].lower()
    return any(word in base for word in ("unsub", "clean", "bounce", "complain", "blocklist"))


@dataclass(frozen=True)
class TextShape:
    encoding: str  # a Python codec name
    delimiter: str
    note: str = ""  # what was assumed, for the admin ("" when nothing was)


def open_binary(path: Path):  # type: ignore[no-untyped-def]
    try:
        return path.open("rb")
    except OSError as exc:
        raise SubscribeError(f"cannot read {path}: {exc.strerror}") from None


def inspect(path: Path, *, encoding: str | None = None) -> TextShape:
    """Decide the encoding and the delimiter from the bytes of the whole file."""
    with open_binary(path) as handle:
        head = handle.read(_SNIFF_BYTES)
    if not head.strip():
        raise UnreadableFile(f"{path} is empty")
    if head.startswith(b"PK\x03\x04") or head.startswith(b"\xd0\xcf\x11\xe0"):
        raise UnreadableFile(f"{path} is a spreadsheet, not CSV: save it as CSV (UTF-8) first")
    if encoding:
        try:
            name, note = codecs.lookup(encoding).name, ""
        except LookupError:
            raise SubscribeError(f"unknown encoding {encoding!r}") from None
    else:
        name, note = _decide_encoding(path, head)
    return TextShape(encoding=name, delimiter=_sniff_delimiter(head, name), note=note)


def _decide_encoding(path: Path, head: bytes) -> tuple[str, str]:
    if head.startswith(codecs.BOM_UTF8):
        return _check_utf8(path, bom=True)
    if head.startswith((codecs.BOM_UTF32_LE, codecs.BOM_UTF32_BE)):  # before UTF-16's: FF FE
        return "utf-32", ""
    if head.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
        return "utf-16", ""
    if b"\x00" in head:
        sample = head[:200]
        if sample[1::2].count(0) > len(sample) // 4:
            return "utf-16-le", "read as UTF-16 (little-endian, no BOM)"
        if sample[0::2].count(0) > len(sample) // 4:
            return "utf-16-be", "read as UTF-16 (big-endian, no BOM)"
        line = head[: head.index(b"\x00")].count(b"\n") + 1
        raise UnreadableFile(f"{path}: line {line}: a NUL byte; this is not a text file")
    return _check_utf8(path, bom=False)


def _check_utf8(path: Path, *, bom: bool) -> tuple[str, str]:
    """UTF-8 if every non-ASCII line is UTF-8; Windows-1252 if none is; refused if mixed."""
    utf8_lines = 0
    first_bad: tuple[int, int] | None = None
    bad_bytes: set[int] = set()
    with open_binary(path) as handle:
        for number, raw in enumerate(_physical_lines(handle), start=1):
            if raw.isascii():
                continue
            try:
                raw.decode("utf-8")
            except UnicodeDecodeError as exc:
                if first_bad is None:
                    column = len(raw[: exc.start].decode("utf-8", "replace")) + 1
                    first_bad = (number, column - (1 if bom and number == 1 else 0))
                bad_bytes.update(byte for byte in raw if byte >= 0x80)
                if utf8_lines:
                    break
                continue
            utf8_lines += 1
            if first_bad is not None:
                break
    if first_bad is None:
        return ("utf-8-sig" if bom else "utf-8"), ""
    line, column = first_bad
    if bom or utf8_lines:
        raise UnreadableFile(
            f"{path}: line {line}, column {column}: a byte that is not UTF-8 in a file that "
            "is otherwise UTF-8; fix that line, or give --encoding"
        )
    if bad_bytes & _CP1252_HOLES:
        return "latin-1", f"read as Latin-1: not UTF-8 (first at line {line}); --encoding overrides"
    return "cp1252", (
        f"read as Windows-1252: not UTF-8 (first at line {line}); --encoding overrides"
    )


def _physical_lines(handle) -> Iterator[bytes]:  # type: ignore[no-untyped-def]
    """Lines as a text editor counts them: LF, CRLF, or CR alone (old Mac spreadsheets)."""
    first = handle.read(_SNIFF_BYTES)
    handle.seek(0)
    if b"\n" not in first and b"\r" in first:
        yield from handle.read().split(b"\r")
        return
    yield from handle


def is_preamble(fields: list[str]) -> bool:
    """A record before the header: a blank line, or Excel's ``sep=;`` delimiter hint."""
    text = "".join(fields).strip()
    return not text or _SEPARATOR_HINT.match(",".join(fields).strip()) is not None


def _sniff_delimiter(head: bytes, encoding: str) -> str:
    text = head.decode(encoding, "replace").lstrip("\ufeff")
    lines = [line for line in text.splitlines() if line.strip()]
    hint = _SEPARATOR_HINT.match(lines[0].strip()) if lines else None
    if hint:
        return hint.group(1) if hint.group(1) in (*DELIMITERS, "|") else ","
    header = next(iter(lines), "")
    counts = {d: _count_outside_quotes(header, d) for d in DELIMITERS}
    best = max(DELIMITERS, key=lambda d: counts[d])
    return best if counts[best] else ","


def _count_outside_quotes(line: str, delimiter: str) -> int:
    count, quoted = 0, False
    for char in line:
        if char == '"':
            quoted = not quoted
        elif char == delimiter and not quoted:
            count += 1
    return count


def check_readable(path: Path, shape: TextShape) -> None:
    """Read every record once, at the csv module's speed; if that fails, read again with
    the lines kept, to say where (UnreadableFile)."""
    csv.field_size_limit(1 << 20)
    try:
        with path.open(newline="", encoding=shape.encoding, errors="strict") as handle:
            for _ in csv.reader(handle, delimiter=shape.delimiter, strict=True):
                pass
    except (csv.Error, UnicodeDecodeError):
        for _ in rows(path, shape, locate=True):
            pass
        raise UnreadableFile(f"{path} cannot be read to its end; nothing was imported") from None


def rows(path: Path, shape: TextShape, *, locate: bool = False) -> Iterator[tuple[int, list[str]]]:
    """Every record with the line it starts on. With ``locate``, UnreadableFile names the
    line and column where quoting breaks or the bytes are not in the file's encoding."""
    csv.field_size_limit(1 << 20)
    with path.open(newline="", encoding=shape.encoding, errors="strict") as handle:
        lines = _Recorder(handle) if locate else None
        reader = csv.reader(lines or handle, delimiter=shape.delimiter, strict=True)
        start = 1
        while True:
            if lines is not None:
                lines.record.clear()
            try:
                fields = next(reader)
            except StopIteration:
                return
            except csv.Error as exc:
                text = "".join(lines.record) if lines is not None else ""
                raise _quoting_error(path, shape, start, text, exc) from None
            except UnicodeDecodeError:
                raise UnreadableFile(
                    f"{path}: line {reader.line_num + 1}: bytes that are not {shape.encoding}; "
                    "give the right --encoding"
                ) from None
            if start == 1 and fields and fields[0].startswith("\ufeff"):
                fields[0] = fields[0][1:]
            yield start, fields
            start = reader.line_num + 1


class _Recorder:
    """The lines of the record being read, kept to point at a quoting error."""

    def __init__(self, handle) -> None:  # type: ignore[no-untyped-def]
        self.handle = handle
        self.record: list[str] = []

    def __iter__(self) -> _Recorder:
        return self

    def __next__(self) -> str:
        line = next(self.handle)
        self.record.append(line)
        return line


def _quoting_error(
    path: Path, shape: TextShape, start: int, text: str, exc: csv.Error
) -> UnreadableFile:
    offset, problem = _locate_quote_problem(text, shape.delimiter)
    if offset is None:
        return UnreadableFile(f"{path}: line {start}: {exc}; nothing was imported")
    before = text[:offset]
    line = start + before.count("\n") + before.count("\r") - before.count("\r\n")
    column = offset - max(before.rfind("\n"), before.rfind("\r"))
    return UnreadableFile(f"{path}: line {line}, column {column}: {problem}; nothing was imported")


def _locate_quote_problem(text: str, delimiter: str) -> tuple[int | None, str]:
    """Where a record's quoting goes wrong, read as the csv module reads it."""
    state, opened = "start", 0
    for index, char in enumerate(text):
        if state == "start":
            if char == '"':
                state, opened = "quoted", index
            elif char not in (delimiter, "\r", "\n"):
                state = "field"
        elif state == "field":
            if char == delimiter or char in "\r\n":
                state = "start"
        elif state == "quoted":
            if char == '"':
                state = "closing"
        elif char == '"':  # closing: a doubled quote inside a quoted field
            state = "quoted"
        elif char == delimiter or char in "\r\n":
            state = "start"
        else:
            return (
                index,
                f"{char!r} after a closing quote (a quote inside a field is written twice)",
            )
    if state == "quoted":
        return opened, "a quote that is never closed"
    if "\x00" in text:
        return text.index("\x00"), "a NUL byte"
    return None, ""
