"""Other tools' exports, recognised by their header row, and what each row says of its
reader: the address, the name, whether the source holds them as subscribed, pending, gone
or undeliverable, and the dates it kept.

The header names are matched loosely (case, BOM, spaces, ``_`` and ``-`` ignored), since
spreadsheets re-save them in every way. A status the source uses but we do not know is never
guessed at: the row is skipped and listed, because guessing "subscribed" mails people who left.
"""

from __future__ import annotations

import enum
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass

from subscribe.errors import SubscribeError


class Standing(enum.StrEnum):
    """What the source says of a reader, before ``--confirmed`` is applied."""

    SUBSCRIBED = "subscribed"
    PENDING = "pending"  # signed up, never confirmed
    LEFT = "left"  # unsubscribed, disabled, blocklisted, complained
    UNDELIVERABLE = "undeliverable"  # cleaned, bounced


# Words the tools write in their status columns, loosely keyed like the headers.
_WORDS = {
    Standing.SUBSCRIBED: "subscribed confirmed active enabled regular premium paid free comped "
    "complimentary gifted trialed trialing churned pastdue optedin optin vip member",
    Standing.PENDING: "pending unconfirmed unactivated validating needsattention "
    "awaitingconfirmation",
    Standing.LEFT: "unsubscribed inactive disabled blocklisted blacklisted blocked removed "
    "complained spam spammy optedout optout deleted archived nonsubscribed notsubscribed "
    "transactional donotemail",
    Standing.UNDELIVERABLE: "cleaned bounced undeliverable invalid hardbounce bounce",
}
_VOCABULARY: Mapping[str, Standing] = {
    word: standing for standing, words in _WORDS.items() for word in words.split()
}
_TRUE = frozenset({"true", "yes", "y", "t", "1"})
_FALSE = frozenset({"false", "no", "n", "f", "0"})


def loose(name: str) -> str:
    return re.sub(r"[\s_\-.]+", "", name.lstrip("\ufeff").strip().casefold())


# Address columns of generic files and of tools that localise their headers.
_EMAIL_COLUMNS = (
    "email",
    "emailaddress",
    "e-mail",
    "mail",
    "subscriberemail",
    "emailadresse",
    "adresseemail",
    "adressee-mail",
    "correoelectrónico",
    "endereçodeemail",
    "adresemail",
)


class Row:
    """One record, read by the loose names of its header."""

    __slots__ = ("_fields", "_index")

    def __init__(self, index: Mapping[str, int], fields: Sequence[str]) -> None:
        self._index = index
        self._fields = fields

    def get(self, *names: str) -> str:
        """The first non-empty cell among the columns ``names``."""
        for name in names:
            position = self._index.get(name)
            if position is not None and position < len(self._fields):
                value = self._fields[position].strip()
                if value:
                    return value
        return ""


@dataclass(frozen=True)
class ExportFormat:
    name: str  # as given to --format and written in the consent record
    title: str
    identifies: Callable[[frozenset[str]], bool]
    email: tuple[str, ...]
    standing: Callable[[Row, frozenset[str]], Standing | str]  # str: why it is unknown
    names: tuple[tuple[str, ...], ...] = (("name",), ("firstname", "lastname"))
    created: tuple[str, ...] = ("createdat", "created", "createdon", "signupdate", "date")
    confirmed: tuple[str, ...] = ("confirmedat", "subscribedat", "optintime")
    left: tuple[str, ...] = ("unsubscribedat", "unsubscribedon")
    ip: tuple[str, ...] = ("ip", "ipaddress", "signupip")
    single_column: bool = False  # one address per line, whatever the header says
    # Reader choices, in our own export only (older exports have neither column).
    cadence: tuple[str, ...] = ()
    categories: tuple[str, ...] = ()
    # A reader's language, where a source has one (ours; a CSV's "language" or "locale").
    language: tuple[str, ...] = ("language", "lang", "locale", "preferredlanguage")

    def name_of(self, row: Row) -> str:
        for columns in self.names:
            parts = [row.get(column) for column in columns]
            if any(parts):
                return " ".join(part for part in parts if part)
        return ""


def _status(row: Row, *columns: str) -> Standing | str:
    value = row.get(*columns)
    if not value:
        return "no status"
    return _VOCABULARY.get(loose(value), f"unknown status {value!r}")


def _flag(value: str) -> bool | None:
    text = value.strip().casefold()
    return True if text in _TRUE else False if text in _FALSE else None


def _mailchimp(row: Row, header: frozenset[str]) -> Standing | str:
    # The audience export is three files; which one this is shows in its columns, and a
    # merged file still has the dates filled in only on the rows they concern.
    if "status" in header or "memberstatus" in header:
        return _status(row, "status", "memberstatus")
    if row.get("cleantime") or ("cleantime" in header and "unsubtime" not in header):
        return Standing.UNDELIVERABLE
    if row.get("unsubtime") or "unsubtime" in header:
        return Standing.LEFT
    return Standing.SUBSCRIBED


def _ghost(row: Row, header: frozenset[str]) -> Standing | str:
    if row.get("deletedat"):
        return Standing.LEFT
    subscribed = _flag(row.get("subscribedtoemails", "subscribed"))
    if subscribed is None:
        return f"subscribed_to_emails is {row.get('subscribedtoemails')!r}, not true or false"
    return Standing.SUBSCRIBED if subscribed else Standing.LEFT


def _substack(row: Row, header: frozenset[str]) -> Standing | str:
    disabled = _flag(row.get("emaildisabled") or "false")
    if disabled is None:
        return f"email_disabled is {row.get('emaildisabled')!r}, not true or false"
    return Standing.LEFT if disabled else Standing.SUBSCRIBED


def _buttondown(row: Row, header: frozenset[str]) -> Standing | str:
    if row.get("unsubscriptiondate"):
        return Standing.LEFT
    return _status(row, "subscribertype", "type", "status")


def _by_status_column(row: Row, header: frozenset[str]) -> Standing | str:
    return _status(row, "status")


def _generic(row: Row, header: frozenset[str]) -> Standing | str:
    if "status" in header:
        return _status(row, "status")
    if row.get("unsubscribedat", "unsubscribedon"):
        return Standing.LEFT
    for column, leaving in (("subscribed", False), ("unsubscribed", True)):
        if column in header:
            flag = _flag(row.get(column))
            if flag is None:
                return f"{column} is {row.get(column)!r}, not true or false"
            return Standing.LEFT if flag is leaving else Standing.SUBSCRIBED
    return Standing.SUBSCRIBED


def _subscribed(row: Row, header: frozenset[str]) -> Standing | str:
    return Standing.SUBSCRIBED


def _has(*names: str) -> Callable[[frozenset[str]], bool]:
    return lambda header: all(name in header for name in names)


def _has_email(header: frozenset[str]) -> bool:
    return any(column in header for column in _EMAIL_COLUMNS)


_MAILCHIMP_MARKS = ("optintime", "confirmtime", "unsubtime", "cleantime", "memberrating", "leid")
_BEEHIIV_MARKS = ("firstname", "lastname", "utmsource", "referringsite", "subscriptiontier")

# In the order they are tried: the most specific signatures first.
FORMATS: tuple[ExportFormat, ...] = (
    ExportFormat(
        "mailchimp",
        "Mailchimp audience export",
        lambda h: "emailaddress" in h and any(m in h for m in _MAILCHIMP_MARKS),
        email=("emailaddress", "email"),
        standing=_mailchimp,
        names=(("firstname", "lastname"), ("fname", "lname"), ("name",)),
        created=("optintime", "confirmtime"),
        confirmed=("confirmtime", "optintime"),
        left=("unsubtime", "cleantime"),
        ip=("confirmip", "optinip"),
    ),
    ExportFormat(
        "ghost",
        "Ghost members export",
        _has("email", "subscribedtoemails"),
        email=("email",),
        standing=_ghost,
        confirmed=("createdat",),
        left=("deletedat", "updatedat"),
    ),
    ExportFormat(
        "substack",
        "Substack subscribers export",
        lambda h: "email" in h and ("emaildisabled" in h or "activesubscription" in h),
        email=("email",),
        standing=_substack,
        confirmed=("createdat",),
    ),
    ExportFormat(
        "listmonk",
        "listmonk subscribers export",
        _has("uuid", "email", "status", "attributes"),
        email=("email",),
        standing=_by_status_column,
        confirmed=("createdat",),
        left=("updatedat",),
    ),
    ExportFormat(
        "buttondown",
        "Buttondown subscribers export",
        lambda h: "email" in h and ("subscribertype" in h or "creationdate" in h),
        email=("email",),
        standing=_buttondown,
        created=("creationdate",),
        confirmed=("subscriptiondate", "creationdate"),
        left=("unsubscriptiondate",),
    ),
    ExportFormat(
        "subscribe",
        "subscribe export",
        _has("email", "name", "status", "createdat", "confirmedat", "unsubscribedat"),
        email=("email",),
        standing=_by_status_column,
        confirmed=("confirmedat",),
        cadence=("cadence",),
        categories=("categories",),
    ),
    ExportFormat(
        "beehiiv",
        "beehiiv subscribers export",
        lambda h: "email" in h and "status" in h and any(m in h for m in _BEEHIIV_MARKS),
        email=("email",),
        standing=_by_status_column,
        confirmed=("createdat",),
    ),
    ExportFormat(
        "csv",
        "CSV with an email column",
        _has_email,
        email=_EMAIL_COLUMNS,
        standing=_generic,
    ),
    ExportFormat(
        "addresses",
        "a list of addresses, one per line",
        lambda h: False,  # chosen when the first line is an address, or by --format
        email=("email",),
        standing=_subscribed,
        names=(),
        single_column=True,
    ),
)
FORMAT_NAMES = tuple(f.name for f in FORMATS)
_BY_NAME = {f.name: f for f in FORMATS}


@dataclass(frozen=True)
class Layout:
    """A file's format and where its columns are."""

    format: ExportFormat
    header: frozenset[str]
    index: Mapping[str, int]
    has_header_row: bool
    # The header as written, for the mapping --dry-run prints.
    written: Mapping[str, str]

    def row(self, fields: Sequence[str]) -> Row:
        return Row(self.index, fields)

    def mapping(self) -> list[str]:
        """ "Email Address -> email"-style lines: which column feeds which field."""
        fmt = self.format
        if fmt.single_column:
            return ["column 1 -> email"]
        fields = {"email": fmt.email, "created_at": fmt.created, "confirmed_at": fmt.confirmed}
        fields |= {"unsubscribed_at": fmt.left, "consent_ip": fmt.ip}
        lines = []
        for field, columns in fields.items():
            found = [self.written[c] for c in columns if c in self.index]
            if found:
                lines.append(f"{' or '.join(found)} -> {field}")
        for columns in fmt.names:
            found = [self.written[c] for c in columns if c in self.index]
            if found:
                lines.append(f"{' + '.join(found)} -> name")
                break
        return lines


def layout_for(header_fields: Sequence[str], *, forced: str | None = None) -> Layout:
    """The format of a file from its first record (which may be an address, not a header)."""
    names = [loose(field) for field in header_fields]
    header = frozenset(name for name in names if name)
    index: dict[str, int] = {}
    for position, name in enumerate(names):
        index.setdefault(name, position)
    written = {loose(f): f.lstrip("\ufeff").strip() for f in header_fields}
    bare = len(header_fields) == 1 and "@" in header_fields[0]
    if forced is not None:
        chosen = _BY_NAME.get(forced)
        if chosen is None:
            raise SubscribeError(
                f"unknown format {forced!r}; choose from {', '.join(FORMAT_NAMES)}"
            )
        if not chosen.single_column and not any(c in header for c in chosen.email):
            wanted = " or ".join(chosen.email[:2])
            raise SubscribeError(f"the header row has no {wanted} column for --format {forced}")
    elif bare:
        chosen = _BY_NAME["addresses"]
    else:
        chosen = next((f for f in FORMATS if f.identifies(header)), None)
        if chosen is None:
            raise SubscribeError(
                "the first line is not a header row with an email column (such as 'email' or "
                "'Email Address'), nor an address"
            )
    if chosen.single_column:
        index = {"email": 0}
    return Layout(chosen, header, index, has_header_row=not bare, written=written)
