"""Validate and normalise email addresses.

An address is kept as typed, with its domain lowercased; ``address_key`` is the whole
address casefolded, so ``Alice@Example.org`` and ``alice@example.org`` are one subscriber.
No DNS look-ups: a blog's form must answer fast and tests run offline.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from email_validator import EmailNotValidError, validate_email

from subscribe.errors import N_, InvalidAddress

# RFC 5321 4.5.3.1.3: a path is at most 256 octets including the angle brackets.
MAX_ADDRESS_LENGTH = 254
MAX_LOCAL_PART_LENGTH = 64  # RFC 5321 4.5.3.1.1


@dataclass(frozen=True, slots=True)
class Address:
    display: str  # as typed, domain lowercased (Unicode for IDN domains)
    ascii: str  # what goes on the wire: the domain in punycode
    key: str  # case-insensitive identity


# The common shape (plain ASCII dot-atom @ LDH labels . alphabetic TLD) is decided by one
# regular expression: email-validator costs ~50 us an address, which is most of a
# million-row import. Anything else, or anything doubtful, goes to email-validator.
_ATOM = r"[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+"
_LABEL = r"[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?"
_PLAIN_ADDRESS = re.compile(rf"({_ATOM}(?:\.{_ATOM})*)@((?:{_LABEL}\.)+[A-Za-z]{{2,63}})")
# email-validator refuses these special-use domains (and their subdomains).
_SPECIAL_USE = frozenset({"arpa", "invalid", "local", "localhost", "onion", "test"})


def _plain(text: str) -> Address | None:
    match = _PLAIN_ADDRESS.fullmatch(text)
    if match is None:
        return None
    local, domain = match.group(1), match.group(2).lower()
    if len(local) > MAX_LOCAL_PART_LENGTH or len(domain) > 253 or "--" in domain:
        return None  # let the full validator explain, or judge punycode labels
    if domain.rpartition(".")[2] in _SPECIAL_USE:
        return None
    address = f"{local}@{domain}"
    return Address(display=address, ascii=address, key=address.casefold())


def normalize(raw: str) -> Address:
    text = raw.strip()
    if not text:
        raise InvalidAddress(N_("Please enter an email address."))
    if len(text) > MAX_ADDRESS_LENGTH:
        raise InvalidAddress(N_("That email address is too long."))
    return _plain(text) or _validated(text)


def _validated(text: str) -> Address:
    """The full check, by email-validator (IDN domains, quoted parts, every refusal)."""
    try:
        # SMTPUTF8 local parts are refused: many relays cannot deliver them.
        info = validate_email(text, check_deliverability=False, allow_smtputf8=False)
    except EmailNotValidError as exc:
        raise InvalidAddress(
            f"That is not a valid email address: {exc}",
            public=N_("That is not a valid email address."),
        ) from None
    local = text.rsplit("@", 1)[0]
    if len(local.encode()) > MAX_LOCAL_PART_LENGTH:
        raise InvalidAddress(N_("That email address is too long before the @."))
    domain = info.domain.lower()
    ascii_domain = info.ascii_domain.lower()
    display = f"{local}@{domain}"
    ascii_address = f"{local}@{ascii_domain}"
    if len(ascii_address) > MAX_ADDRESS_LENGTH:
        raise InvalidAddress(N_("That email address is too long."))
    return Address(display=display, ascii=ascii_address, key=ascii_address.casefold())


def address_key(raw: str) -> str:
    return normalize(raw).key


def to_ascii(display: str) -> str:
    """The wire form of a stored address (only IDN domains differ)."""
    if display.isascii():
        return display
    local, _, domain = display.rpartition("@")
    return f"{local}@{domain.encode('idna').decode('ascii')}"
