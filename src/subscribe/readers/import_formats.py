"""Other tools' exports, recognised by their header row, and what each row says of its
reader: the address, the name, whether the source holds them as subscribed, pending, gone
or undeliverable, and the dates it kept.

The header names are matched loosely (case, BOM, spaces, ``_`` and ``-`` ignored), since
spreadsheets re-save them in every way. A status the source uses but we do not know is never
guessed at: the row is skipped and listed, because guessing "subscribed" mails people who left.
"""

from __future__ import annotations

import dataclasses
import functools
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass

from subscribe.errors import SubscribeError

from .import_rows import (
    CONFIRMED_COLUMNS,
    CREATED_COLUMNS,
    EMAIL_COLUMNS,
    IP_COLUMNS,
    KIT_WORDS,
    LEFT_COLUMNS,
    NAME_COLUMNS,
    STATUS_COLUMNS,
    SUBSTACK_WORDS,
    Row,
    Standing,
    generic_standing,
    judge,
    loose,
    read_flag,
    status_of,
    unquoted,
)


@dataclass(frozen=True)
class ExportFormat:
    name: str  # as given to --format and written in the consent record
    title: str
    identifies: Callable[[frozenset[str]], bool]
    email: tuple[str, ...]
    standing: Callable[[Row, frozenset[str]], Standing | str]  # str: why it is unknown
    names: tuple[tuple[str, ...], ...] = NAME_COLUMNS
    created: tuple[str, ...] = CREATED_COLUMNS
    confirmed: tuple[str, ...] = CONFIRMED_COLUMNS
    left: tuple[str, ...] = LEFT_COLUMNS
    ip: tuple[str, ...] = IP_COLUMNS
    single_column: bool = False  # one address per line, whatever the header says
    # Reader choices, in our own export only (older exports have neither column).
    cadence: tuple[str, ...] = ()
    categories: tuple[str, ...] = ()
    # A reader's language, where a source has one (ours; a CSV's "language" or "locale").
    language: tuple[str, ...] = ("language", "lang", "locale", "preferredlanguage")

    def name_columns(self, header: frozenset[str]) -> list[tuple[str, ...]]:
        """The ways this file spells a name, best first: those whose every column is there
        ("Nome" + "Cognome" before "Nome" + "Sobrenome"), then those with their first one
        (Kit's "first_name" alone); never a last name alone ("NOM" without "PRENOM")."""
        whole = [c for c in self.names if all(column in header for column in c)]
        first = [c for c in self.names if c[0] in header and c not in whole]
        return whole + first


@functools.cache
def _has_status_column(header: frozenset[str]) -> bool:
    return any(column in header for column in STATUS_COLUMNS)  # once per file, not per row


def _mailchimp(row: Row, header: frozenset[str]) -> Standing | str:
    # The audience export is three files; which one this is shows in its columns, and a
    # merged file still has the dates filled in only on the rows they concern.
    if _has_status_column(header):
        return generic_standing(row, header)
    if row.get("cleantime") or ("cleantime" in header and "unsubtime" not in header):
        return Standing.UNDELIVERABLE
    if row.get("unsubtime") or "unsubtime" in header:
        return Standing.LEFT
    return Standing.SUBSCRIBED


def _ghost(row: Row, header: frozenset[str]) -> Standing | str:
    if row.get("deletedat"):
        return Standing.LEFT
    if read_flag(row.get("emaildisabled")):  # Ghost stops mailing after a bounce or a complaint
        return Standing.LEFT
    column = "subscribedtoemails" if "subscribedtoemails" in header else "subscribed"
    subscribed = read_flag(row.get(column))
    if subscribed is None:
        return f"{row.label(column)} is {row.get(column)!r}, not true or false"
    return Standing.SUBSCRIBED if subscribed else Standing.LEFT


_substack_types = judge(
    statuses=("subscriptiontype", "subscriptionstatus", "status"),
    flags={},
    words=SUBSTACK_WORDS,
)


def _substack(row: Row, header: frozenset[str]) -> Standing | str:
    if "emaildisabled" not in header and "activesubscription" not in header:
        return _substack_types(row, header)  # the dashboard's newer subscriber export
    disabled = read_flag(row.get("emaildisabled") or "false")
    if disabled is None:
        return f"email_disabled is {row.get('emaildisabled')!r}, not true or false"
    return Standing.LEFT if disabled else Standing.SUBSCRIBED


def _buttondown(row: Row, header: frozenset[str]) -> Standing | str:
    if row.get("unsubscriptiondate"):
        return Standing.LEFT
    return status_of(row, "subscribertype", "type", "status")


def _by_status_column(row: Row, header: frozenset[str]) -> Standing | str:
    return status_of(row, "status")


def _subscribed(row: Row, header: frozenset[str]) -> Standing | str:
    return Standing.SUBSCRIBED


def _has(*names: str) -> Callable[[frozenset[str]], bool]:
    return lambda header: all(name in header for name in names)


def _has_email(header: frozenset[str]) -> bool:
    return any(column in header for column in EMAIL_COLUMNS)


def _has_any(*names: str) -> Callable[[frozenset[str]], bool]:
    return lambda header: any(name in header for name in names)


# Columns of an address book, where "State" is a region and not Kit's subscriber state.
_POSTAL = ("city", "zip", "zipcode", "postcode", "postalcode", "country", "address", "region")


def _is_kit(header: frozenset[str]) -> bool:
    if "subscriberstate" in header:
        return "emailaddress" in header
    return (
        "emailaddress" in header
        and "state" in header
        and "createdat" in header
        and not any(column in header for column in _POSTAL)
    )


_MAILCHIMP_MARKS = ("optintime", "confirmtime", "unsubtime", "cleantime", "memberrating", "leid")
_BEEHIIV_MARKS = ("utmsource", "utmmedium", "utmcampaign", "referringsite", "subscriptiontier")
_GHOST_MARKS = ("complimentaryplan", "stripecustomerid")
_MAILERLITE_MARKS = ("optedin", "optedinat", "optinip", "optedinip")
_MAILJET_MARKS = ("isexcludedfromcampaigns", "excludedfromcampaigns", "isoptinpending")
_MAILJET_MARKS += ("isunsubscribed",)
_MAILPOET_MARKS = ("globalstatus", "subscribedip", "liststatus")

# In the order they are tried: the most specific signatures first.
FORMATS: tuple[ExportFormat, ...] = (
    ExportFormat(
        "mailchimp",
        "Mailchimp audience export",
        lambda h: _has_email(h) and any(m in h for m in _MAILCHIMP_MARKS),
        email=EMAIL_COLUMNS,
        standing=_mailchimp,
        names=(("firstname", "lastname"), ("fname", "lname"), *NAME_COLUMNS),  # audience's language
        created=("optintime", "confirmtime"),
        confirmed=("confirmtime", "optintime"),
        left=("unsubtime", "cleantime", "lastchanged"),
        ip=("confirmip", "optinip"),
    ),
    ExportFormat(
        "ghost",
        "Ghost members export",
        lambda h: (
            "email" in h
            and (
                "subscribedtoemails" in h
                or ("subscribed" in h and any(m in h for m in _GHOST_MARKS))
            )
        ),
        email=("email",),
        standing=_ghost,
        confirmed=("createdat",),
        left=("deletedat", "updatedat"),
    ),
    ExportFormat(
        "substack",
        "Substack subscribers export",
        lambda h: (
            "email" in h
            and any(m in h for m in ("emaildisabled", "activesubscription", "subscriptiontype"))
        ),
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
        "kit",
        "Kit (ConvertKit) subscribers export",
        _is_kit,
        email=("emailaddress", "email"),
        standing=judge(statuses=("state", "subscriberstate", "status"), words=KIT_WORDS),
        confirmed=("confirmedat", "createdat", "subscribedat"),
    ),
    ExportFormat(
        "mailerlite",
        "MailerLite subscribers export",
        lambda h: _has_email(h) and "status" in h and any(m in h for m in _MAILERLITE_MARKS),
        email=EMAIL_COLUMNS,
        standing=judge(flags={}),  # its "Subscribed" and "Unsubscribed" columns are dates
        names=(("name", "lastname"), *NAME_COLUMNS),  # "Name" is the first name
        created=("subscribed", "subscribedat", *CREATED_COLUMNS),
        confirmed=("optedin", "optedinat", "subscribed", "subscribedat"),
        left=("unsubscribed", *LEFT_COLUMNS),
        ip=("optinip", "optedinip", "ipaddress", "ip"),
    ),
    ExportFormat(
        "brevo",
        "Brevo (Sendinblue) contacts export",
        lambda h: _has_email(h) and ("emailblacklisted" in h or "blacklisted" in h),
        email=EMAIL_COLUMNS,
        standing=generic_standing,
        created=("addedtime", *CREATED_COLUMNS),
        left=(*LEFT_COLUMNS, "modifiedtime"),
    ),
    ExportFormat(
        "mailjet",
        "Mailjet contacts export",
        lambda h: _has_email(h) and any(m in h for m in _MAILJET_MARKS),
        email=EMAIL_COLUMNS,
        standing=generic_standing,
    ),
    ExportFormat(
        "mailpoet",
        "MailPoet subscribers export",
        lambda h: _has_email(h) and any(m in h for m in _MAILPOET_MARKS),
        email=EMAIL_COLUMNS,
        standing=generic_standing,
        confirmed=("confirmedat", "lastsubscribedat", *CONFIRMED_COLUMNS),
        ip=("confirmedip", "subscribedip", *IP_COLUMNS),
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
        email=EMAIL_COLUMNS,
        standing=generic_standing,
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
    # Later columns with the same loose name as an earlier one.
    more: Mapping[str, tuple[int, ...]] = dataclasses.field(default_factory=dict)
    # The name columns this file has, best first (ExportFormat.name_columns).
    names: Sequence[tuple[str, ...]] = ()
    _present: dict[tuple[str, ...], tuple[str, ...]] = dataclasses.field(
        default_factory=dict, compare=False, repr=False
    )

    def present(self, columns: tuple[str, ...]) -> tuple[str, ...]:
        """Those of ``columns`` the file has (a format names many; a file has a few), so a
        row looks up only those."""
        cache: dict[tuple[str, ...], tuple[str, ...]] = self._present
        found = cache.get(columns)
        if found is None:
            found = cache[columns] = tuple(c for c in dict.fromkeys(columns) if c in self.index)
        return found

    def name_of(self, row: Row) -> str:
        for columns in self.names:
            parts = [row.get(column) for column in columns]
            if any(parts):
                return " ".join(part for part in parts if part)
        return ""

    def row(self, fields: Sequence[str]) -> Row:
        return Row(self.index, fields, more=self.more, written=self.written)

    def mapping(self) -> list[str]:
        """ "Email Address -> email"-style lines: which column feeds which field."""
        fmt = self.format
        if fmt.single_column:
            return ["column 1 -> email"]
        fields = {"email": fmt.email, "created_at": fmt.created, "confirmed_at": fmt.confirmed}
        fields |= {"unsubscribed_at": fmt.left, "consent_ip": fmt.ip}
        lines = []
        for field, columns in fields.items():
            found = [self.written[c] for c in dict.fromkeys(columns) if c in self.index]
            if found:
                lines.append(f"{' or '.join(found)} -> {field}")
        if self.names:
            found = [self.written[c] for c in self.names[0] if c in self.index]
            lines.append(f"{' + '.join(found)} -> name")
        return lines


def format_named(name: str) -> ExportFormat:
    """The format ``--format`` names; SubscribeError for a name we do not know."""
    chosen = _BY_NAME.get(name)
    if chosen is None:
        raise SubscribeError(f"unknown format {name!r}; choose from {', '.join(FORMAT_NAMES)}")
    return chosen


def layout_for(header_fields: Sequence[str], *, forced: str | None = None) -> Layout:
    """The format of a file from its first record (which may be an address, not a header)."""
    names = [loose(field) for field in header_fields]
    header = frozenset(name for name in names if name)
    index: dict[str, int] = {}
    more: dict[str, tuple[int, ...]] = {}
    written: dict[str, str] = {}
    for position, (name, cell) in enumerate(zip(names, header_fields, strict=True)):
        if name in index:
            more[name] = (*more.get(name, ()), position)
        index.setdefault(name, position)
        written.setdefault(name, unquoted(cell.lstrip("\ufeff")))
    bare = len(header_fields) == 1 and "@" in header_fields[0]
    if forced is not None:
        chosen = format_named(forced)
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
        index, more = {"email": 0}, {}
    names_found = chosen.name_columns(header)
    return Layout(chosen, header, index, not bare, written, more, names_found)
