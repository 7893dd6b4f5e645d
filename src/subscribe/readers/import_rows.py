"""The words and columns of other tools' exports, and how one row of them is read.

``Standing`` is what a source says of a reader; the vocabularies map the status words and
yes/no columns tools write onto it (a word we do not know stays unknown, never guessed),
and ``judge`` makes the function that reads a row's standing from whichever columns a file
has, the one saying they left or bounced winning. The column-name tables list how tools
(and spreadsheets in several languages) spell an address, a name, a date and an IP.
"""

from __future__ import annotations

import enum
import re
from collections.abc import Callable, Mapping, Sequence

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
KIT_WORDS: Mapping[str, Standing] = {"cold": Standing.SUBSCRIBED}  # confirmed, not opening
SUBSTACK_WORDS: Mapping[str, Standing] = {
    word: Standing.SUBSCRIBED
    for word in ["comp", "gift", "founding", "founder", "yearly", "annual", "monthly", "freetrial"]
}
_TRUE = frozenset({"true", "yes", "y", "t", "1", "oui", "ja", "si", "sí", "sim", "x"})
_FALSE = frozenset({"false", "no", "n", "f", "0", "non", "nein", "nee", "não", "nao"})


def loose(name: str) -> str:
    return re.sub(r"[\s_\-.\"]+", "", name.lstrip("\ufeff").strip().casefold())


# Address columns of generic files and of tools that localise their headers (Mailchimp
# names its columns in the audience's language: "E-Mail-Adresse", "Adresse e-mail", ...).
EMAIL_COLUMNS = (
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
NAME_COLUMNS: tuple[tuple[str, ...], ...] = (
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
CREATED_COLUMNS = (
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
CONFIRMED_COLUMNS = (
    "confirmedat",
    "subscribedat",
    "optintime",
    "optedinat",
    "confirmtime",
    "confirmationdate",
    "dateconfirmed",
)
LEFT_COLUMNS = (
    "unsubscribedat",
    "unsubscribedon",
    "unsubscribedate",
    "dateunsubscribed",
    "unsubscriptiondate",
    "stopdate",
    "optoutdate",
)
IP_COLUMNS = ("ip", "ipaddress", "signupip", "optinip", "subscribedip", "confirmip", "confirmedip")


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
        # Called ~10 times per row of a million-row import: the common case (a cell with
        # no stray quotes, no second column of the same name) is kept to a few steps.
        fields, count = self._fields, len(self._fields)
        for name in names:
            position = self._index.get(name)
            if position is not None and position < count:
                value = fields[position].strip()
                if value:
                    return unquoted(value) if value[0] == '"' else value
            if self._more and name in self._more:
                for later in self._more[name]:
                    if later < count:
                        value = unquoted(fields[later])
                        if value:
                            return value
        return ""


def unquoted(cell: str) -> str:
    """A cell without its spaces, and without quotes a hand-edited file put after a space
    (`` "Ada",``), which the csv module leaves in."""
    value = cell.strip()
    if len(value) > 1 and value[0] == '"' and value[-1] == '"':
        return value[1:-1].replace('""', '"').strip()
    return value


def status_of(row: Row, *columns: str) -> Standing | str:
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


def read_flag(value: str) -> bool | None:
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
    left: tuple[str, ...] = LEFT_COLUMNS,
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
            flag = read_flag(value)
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


generic_standing = judge()
