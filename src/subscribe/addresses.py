"""Validate and normalise email addresses.

An address is kept as typed, with its domain lowercased; ``address_key`` is the whole
address casefolded, so ``Alice@Example.org`` and ``alice@example.org`` are one subscriber.
No DNS look-ups: a blog's form must answer fast and tests run offline.
"""

from __future__ import annotations

from dataclasses import dataclass

from email_validator import EmailNotValidError, validate_email

from .errors import InvalidAddress

# RFC 5321 4.5.3.1.3: a path is at most 256 octets including the angle brackets.
MAX_ADDRESS_LENGTH = 254
MAX_LOCAL_PART_LENGTH = 64  # RFC 5321 4.5.3.1.1


@dataclass(frozen=True, slots=True)
class Address:
    display: str  # as typed, domain lowercased (Unicode for IDN domains)
    ascii: str  # what goes on the wire: the domain in punycode
    key: str  # case-insensitive identity


def normalize(raw: str) -> Address:
    text = raw.strip()
    if not text:
        raise InvalidAddress("Please enter an email address.")
    if len(text) > MAX_ADDRESS_LENGTH:
        raise InvalidAddress("That email address is too long.")
    try:
        # SMTPUTF8 local parts are refused: many relays cannot deliver them.
        info = validate_email(text, check_deliverability=False, allow_smtputf8=False)
    except EmailNotValidError as exc:
        raise InvalidAddress(f"That is not a valid email address: {exc}") from None
    local = text.rsplit("@", 1)[0]
    if len(local.encode()) > MAX_LOCAL_PART_LENGTH:
        raise InvalidAddress("That email address is too long before the @.")
    domain = info.domain.lower()
    ascii_domain = info.ascii_domain.lower()
    display = f"{local}@{domain}"
    ascii_address = f"{local}@{ascii_domain}"
    if len(ascii_address) > MAX_ADDRESS_LENGTH:
        raise InvalidAddress("That email address is too long.")
    return Address(display=display, ascii=ascii_address, key=ascii_address.casefold())


def address_key(raw: str) -> str:
    return normalize(raw).key


def to_ascii(display: str) -> str:
    """The wire form of a stored address (only IDN domains differ)."""
    if display.isascii():
        return display
    local, _, domain = display.rpartition("@")
    return f"{local}@{domain.encode('idna').decode('ascii')}"
