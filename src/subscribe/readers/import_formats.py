"""Other tools' exports, recognised by their header row, and what each row says of its
reader: the address, the name, whether the source holds them as subscribed, pending, gone
or undeliverable, and the dates it kept.

The header names are matched loosely (case, BOM, spaces, ``_`` and ``-`` ignored), since
spreadsheets re-save them in every way. A status the source uses but we do not know is never
guessed at: the row is skipped and listed, because guessing "subscribed" mails people who left.
"""

from __future__ import annotations

import dataclasses
import enum
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass

from subscribe.errors import SubscribeError

from .timestamps import NotADate, parse_timestamp


class Standing(enum.StrEnum):
    """What the source says of a reader, before ``--confirmed`` is applied."""

    SUBSCRIBED = "subscribed"
    PENDING = "pending"  # signed up, never confirmed
    LEFT = "left"  # unsubscribed, disabled, blocklisted, complained
    UNDELIVERABLE = "undeliverable"  # cleaned, bounced


# Words the tools write in their status columns, loosely keyed like the headers. Each is
# what that tool means by it: Kit's, MailerLite's, Brevo's, MailPoet's, Sendy's, Mailjet's,
# EmailOctopus's, Campaign Monitor's, AWeber's, Shopify's and Mailchimp's, besides ours.
_WORDS = {
    Standing.SUBSCRIBED: "subscribed confirmed active enabled regular premium paid free comped "
    "complimentary gifted trialed trialing churned pastdue optedin optin vip member granted "
    "singleoptin doubleoptin",
    Standing.PENDING: "pending unconfirmed unactivated validating needsattention "
    "awaitingconfirmation notconfirmed pendingconfirmation requiresverification optinpending "
    "unverified",
    Standing.LEFT: "unsubscribed inactive disabled blocklisted blacklisted blocked removed "
    "complained spam spammy optedout optout deleted archived nonsubscribed notsubscribed "
    "transactional donotemail cancelled canceled excluded markedasspam spamcomplaint "
    "complaint revoked withdrawn denied redacted suppressed unsub",
    Standing.UNDELIVERABLE: "cleaned bounced undeliverable invalid hardbounce bounce hardbounced "
    "softbounced softbounce invalidemail junk",
}
_VOCABULARY: Mapping[str, Standing] = {
    word: standing for standing, words in _WORDS.items() for word in words.split()
}
# Words only one tool uses, in its own sense.
_KIT_WORDS: Mapping[str, Standing] = {"cold": Standing.SUBSCRIBED}  # confirmed, not opening
_SUBSTACK_WORDS: Mapping[str, Standing] = {
    word: Standing.SUBSCRIBED
    for word in ["comp", "gift", "founding", "founder", "yearly", "annual", "monthly", "freetrial"]
}
_TRUE = frozenset({"true", "yes", "y", "t", "1", "oui", "ja", "si", "sí", "sim", "x"})
_FALSE = frozenset({"false", "no", "n", "f", "0", "non", "nein", "nee", "não", "nao"})


def loose(name: str) -> str:
    return re.sub(r"[\s_\-.\"]+", "", name.lstrip("\ufeff").strip().casefold())


# Address columns of generic files and of tools that localise their headers (Mailchimp
# names its columns in the audience's language: "E-Mail-Adresse", "Adresse e-mail", ...).
_EMAIL_COLUMNS = (
    "email",
    "emailaddress",
    "mail",
    "subscriberemail",
    "emailadresse",
    "adresseemail",
    "adressemail",
    "adresseélectronique",
    "adresseelectronique",
    "courriel",
    "adressecourriel",
    "correoelectrónico",
    "correoelectronico",
    "correo",
    "direccióndecorreoelectrónico",
    "direcciondecorreoelectronico",
    "endereçodeemail",
    "endereçodee-mail",
    "enderecodeemail",
    "indirizzoemail",
    "emailadres",
    "adresemail",
    "contactemail",
    "useremail",
    "epostadresse",
    "epostadress",
    "sähköpostiosoite",
    "emailcím",
    "adresaemail",
    "emailováadresa",
    "eposta",
    "メールアドレス",
    "电子邮件地址",
    "电子邮件",
    "이메일주소",
)
# Columns that say where a reader stands with email, the most specific first (never
# "SMS Marketing Status", nor "State", which is as often a region as a status).
STATUS_COLUMNS = (
    "emailmarketingstatus",
    "emailsubscriptionstatus",
    "emailstatus",
    "subscriptionstatus",
    "subscriberstatus",
    "memberstatus",
    "contactstatus",
    "globalstatus",
    "liststatus",
    "status",
    "statut",
    "stato",
)
# Yes/no columns and what "yes" means. A "subscribed" that says no means not subscribed;
# a leaving column that says no says nothing. A date in a leaving column is when they left.
FLAG_COLUMNS: Mapping[str, Standing] = {
    "subscribed": Standing.SUBSCRIBED,
    "subscribedtoemails": Standing.SUBSCRIBED,
    "emailsubscribed": Standing.SUBSCRIBED,
    "optedin": Standing.SUBSCRIBED,
    "emailoptin": Standing.SUBSCRIBED,
    "acceptsemailmarketing": Standing.SUBSCRIBED,
    "acceptsmarketing": Standing.SUBSCRIBED,
    "emailconsent": Standing.SUBSCRIBED,
    "marketingconsent": Standing.SUBSCRIBED,
    "isoptinpending": Standing.PENDING,
    "unsubscribed": Standing.LEFT,
    "isunsubscribed": Standing.LEFT,
    "emailunsubscribed": Standing.LEFT,
    "blacklisted": Standing.LEFT,
    "emailblacklisted": Standing.LEFT,
    "blocklisted": Standing.LEFT,
    "isexcludedfromcampaigns": Standing.LEFT,
    "excludedfromcampaigns": Standing.LEFT,
    "emaildisabled": Standing.LEFT,
    "donotemail": Standing.LEFT,
    "emailoptout": Standing.LEFT,
    "optedout": Standing.LEFT,
    "hasoptedoutofemail": Standing.LEFT,
    "complained": Standing.LEFT,
    "bounced": Standing.UNDELIVERABLE,
    "hardbounced": Standing.UNDELIVERABLE,
    "emailbounced": Standing.UNDELIVERABLE,
}
# A name from one column, or from a first and a last name, in the languages seen.
_NAMES: tuple[tuple[str, ...], ...] = (
    ("name",),
    ("fullname",),
    ("firstname", "lastname"),
    ("fname", "lname"),
    ("firstname", "surname"),
    ("givenname", "familyname"),
    ("vorname", "nachname"),
    ("prénom", "nom"),
    ("prenom", "nom"),
    ("nombre", "apellidos"),
    ("nombre", "apellido"),
    ("nome", "sobrenome"),
    ("nome", "cognome"),
    ("voornaam", "achternaam"),
    ("imię", "nazwisko"),
    ("displayname",),
    ("subscribername",),
    ("contactname",),
    ("nom",),
)
_CREATED = (
    "createdat",
    "created",
    "createdon",
    "datecreated",
    "signupdate",
    "datesubscribed",
    "subscribedate",
    "subscriptiondate",
    "dateadded",
    "addedtime",
    "addedat",
    "joined",
    "joindate",
    "datejoined",
    "joinedat",
    "joinedon",
    "angemeldetam",
    "anmeldedatum",
    "erstelltam",
    "dateinscription",
    "datedinscription",
    "fechadealta",
    "fechadesuscripción",
    "date",
)
_CONFIRMED = (
    "confirmedat",
    "subscribedat",
    "optintime",
    "optedinat",
    "confirmtime",
    "confirmationdate",
    "dateconfirmed",
)
_LEFT = (
    "unsubscribedat",
    "unsubscribedon",
    "unsubscribedate",
    "dateunsubscribed",
    "unsubscriptiondate",
    "stopdate",
    "optoutdate",
)
_IPS = ("ip", "ipaddress", "signupip", "optinip", "subscribedip", "confirmip", "confirmedip")


class Row:
    """One record, read by the loose names of its header."""

    __slots__ = ("_fields", "_index", "_more", "_written")

    def __init__(
        self,
        index: Mapping[str, int],
        fields: Sequence[str],
        *,
        more: Mapping[str, tuple[int, ...]] | None = None,
        written: Mapping[str, str] | None = None,
    ) -> None:
        self._index = index
        self._fields = fields
        self._more = more  # later columns under the same loose name ("E-mail" and "Email")
        self._written = written

    def has(self, name: str) -> bool:
        return name in self._index

    def label(self, name: str) -> str:
        """The column as the header writes it, for messages."""
        return (self._written or {}).get(name, name)

    def get(self, *names: str) -> str:
        """The first non-empty cell among the columns ``names``."""
        for name in names:
            position = self._index.get(name)
            if position is not None and position < len(self._fields):
                value = _unquoted(self._fields[position])
                if value:
                    return value
            if self._more and name in self._more:
                for later in self._more[name]:
                    if later < len(self._fields):
                        value = _unquoted(self._fields[later])
                        if value:
                            return value
        return ""


def _unquoted(cell: str) -> str:
    """A cell without its spaces, and without quotes a hand-edited file put after a space
    (`` "Ada",``), which the csv module leaves in."""
    value = cell.strip()
    if len(value) > 1 and value[0] == '"' and value[-1] == '"':
        return value[1:-1].replace('""', '"').strip()
    return value


@dataclass(frozen=True)
class ExportFormat:
    name: str  # as given to --format and written in the consent record
    title: str
    identifies: Callable[[frozenset[str]], bool]
    email: tuple[str, ...]
    standing: Callable[[Row, frozenset[str]], Standing | str]  # str: why it is unknown
    names: tuple[tuple[str, ...], ...] = _NAMES
    created: tuple[str, ...] = _CREATED
    confirmed: tuple[str, ...] = _CONFIRMED
    left: tuple[str, ...] = _LEFT
    ip: tuple[str, ...] = _IPS
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


def _status(row: Row, *columns: str) -> Standing | str:
    value = row.get(*columns)
    if not value:
        return "no status"
    return word(value, _VOCABULARY) or f"unknown status {_short(value)!r}"


def word(value: str, vocabulary: Mapping[str, Standing]) -> Standing | None:
    """A status word, also when a tool adds why in brackets: "Unsubscribed (by admin)".
    The bracket is dropped only for a word that says they left or bounced: "Subscribed
    (unconfirmed)" is not read as subscribed."""
    key = loose(value)
    known = vocabulary.get(key)
    if known is None and "(" in value:
        known = vocabulary.get(loose(value.split("(", 1)[0]))
        if known not in (Standing.LEFT, Standing.UNDELIVERABLE):
            return None
    return known


def _short(value: str) -> str:
    """A cell as a message shows it: a long one cut, so that the line stays a line."""
    return value if len(value) <= 60 else value[:57] + "..."


def _flag(value: str) -> bool | None:
    text = value.strip().casefold()
    return True if text in _TRUE else False if text in _FALSE else None


def _is_date(value: str) -> bool:
    try:
        return parse_timestamp(value) is not None
    except NotADate:
        return False


_GONE_FIRST = (Standing.UNDELIVERABLE, Standing.LEFT, Standing.PENDING, Standing.SUBSCRIBED)


def judge(
    *,
    statuses: tuple[str, ...] = STATUS_COLUMNS,
    flags: Mapping[str, Standing] = FLAG_COLUMNS,
    words: Mapping[str, Standing] | None = None,
    left: tuple[str, ...] = _LEFT,
) -> Callable[[Row, frozenset[str]], Standing | str]:
    """Where a reader stands, from every status and yes/no column the file has: one that
    says they left or bounce wins over one that says subscribed (the safe way round); a
    value we do not know skips the row, unless another column already says they left."""
    vocabulary = {**_VOCABULARY, **(words or {})}
    plans: dict[frozenset[str], tuple[list[str], list[tuple[str, Standing]], list[str]]] = {}

    def plan(header: frozenset[str]) -> tuple[list[str], list[tuple[str, Standing]], list[str]]:
        """The columns this file has, worked out once per file rather than once per row."""
        found = plans.get(header)
        if found is None:
            found = plans[header] = (
                [c for c in statuses if c in header],
                [(c, meaning) for c, meaning in flags.items() if c in header],
                [c for c in left if c in header],
            )
        return found

    def standing(row: Row, header: frozenset[str]) -> Standing | str:
        found: set[Standing] = set()
        unknown: list[str] = []
        status_columns, flag_columns, left_columns = plan(header)
        for column in status_columns:
            value = row.get(column)
            if value:
                known = word(value, vocabulary)
                if known is None:
                    unknown.append(f"unknown status {_short(value)!r}")
                else:
                    found.add(known)
        for column, meaning in flag_columns:
            value = row.get(column)
            if not value:
                continue
            flag = _flag(value)
            if flag is True:
                found.add(meaning)
            elif flag is False:
                if meaning == Standing.SUBSCRIBED:
                    found.add(Standing.LEFT)
            elif (known := word(value, vocabulary)) is not None:
                found.add(known)
            elif _is_date(value):
                if meaning in (Standing.LEFT, Standing.UNDELIVERABLE):
                    found.add(meaning)  # "Unsubscribed: 2023-10-10": when they left
            else:
                unknown.append(f"{row.label(column)} is {_short(value)!r}, not yes or no")
        if left_columns and row.get(*left_columns):
            found.add(Standing.LEFT)
        for candidate in _GONE_FIRST[:2]:
            if candidate in found:
                return candidate
        if unknown:
            return unknown[0]
        for candidate in _GONE_FIRST[2:]:
            if candidate in found:
                return candidate
        if status_columns:
            return "no status"
        return Standing.SUBSCRIBED

    return standing


_generic = judge()


def _mailchimp(row: Row, header: frozenset[str]) -> Standing | str:
    # The audience export is three files; which one this is shows in its columns, and a
    # merged file still has the dates filled in only on the rows they concern.
    if any(column in header for column in STATUS_COLUMNS):
        return _generic(row, header)
    if row.get("cleantime") or ("cleantime" in header and "unsubtime" not in header):
        return Standing.UNDELIVERABLE
    if row.get("unsubtime") or "unsubtime" in header:
        return Standing.LEFT
    return Standing.SUBSCRIBED


def _ghost(row: Row, header: frozenset[str]) -> Standing | str:
    if row.get("deletedat"):
        return Standing.LEFT
    if _flag(row.get("emaildisabled")):  # Ghost stops mailing after a bounce or a complaint
        return Standing.LEFT
    column = "subscribedtoemails" if "subscribedtoemails" in header else "subscribed"
    subscribed = _flag(row.get(column))
    if subscribed is None:
        return f"{row.label(column)} is {row.get(column)!r}, not true or false"
    return Standing.SUBSCRIBED if subscribed else Standing.LEFT


_substack_types = judge(
    statuses=("subscriptiontype", "subscriptionstatus", "status"),
    flags={},
    words=_SUBSTACK_WORDS,
)


def _substack(row: Row, header: frozenset[str]) -> Standing | str:
    if "emaildisabled" not in header and "activesubscription" not in header:
        return _substack_types(row, header)  # the dashboard's newer subscriber export
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


def _subscribed(row: Row, header: frozenset[str]) -> Standing | str:
    return Standing.SUBSCRIBED


def _has(*names: str) -> Callable[[frozenset[str]], bool]:
    return lambda header: all(name in header for name in names)


def _has_email(header: frozenset[str]) -> bool:
    return any(column in header for column in _EMAIL_COLUMNS)


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
        email=_EMAIL_COLUMNS,
        standing=_mailchimp,
        names=(("firstname", "lastname"), ("fname", "lname"), *_NAMES),  # audience's language
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
        standing=judge(statuses=("state", "subscriberstate", "status"), words=_KIT_WORDS),
        confirmed=("confirmedat", "createdat", "subscribedat"),
    ),
    ExportFormat(
        "mailerlite",
        "MailerLite subscribers export",
        lambda h: _has_email(h) and "status" in h and any(m in h for m in _MAILERLITE_MARKS),
        email=_EMAIL_COLUMNS,
        standing=judge(flags={}),  # its "Subscribed" and "Unsubscribed" columns are dates
        names=(("name", "lastname"), *_NAMES),  # "Name" is the first name
        created=("subscribed", "subscribedat", *_CREATED),
        confirmed=("optedin", "optedinat", "subscribed", "subscribedat"),
        left=("unsubscribed", *_LEFT),
        ip=("optinip", "optedinip", "ipaddress", "ip"),
    ),
    ExportFormat(
        "brevo",
        "Brevo (Sendinblue) contacts export",
        lambda h: _has_email(h) and ("emailblacklisted" in h or "blacklisted" in h),
        email=_EMAIL_COLUMNS,
        standing=_generic,
        created=("addedtime", *_CREATED),
        left=(*_LEFT, "modifiedtime"),
    ),
    ExportFormat(
        "mailjet",
        "Mailjet contacts export",
        lambda h: _has_email(h) and any(m in h for m in _MAILJET_MARKS),
        email=_EMAIL_COLUMNS,
        standing=_generic,
    ),
    ExportFormat(
        "mailpoet",
        "MailPoet subscribers export",
        lambda h: _has_email(h) and any(m in h for m in _MAILPOET_MARKS),
        email=_EMAIL_COLUMNS,
        standing=_generic,
        confirmed=("confirmedat", "lastsubscribedat", *_CONFIRMED),
        ip=("confirmedip", "subscribedip", *_IPS),
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
        written.setdefault(name, _unquoted(cell.lstrip("\ufeff")))
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
