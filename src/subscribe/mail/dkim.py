"""DKIM signatures (RFC 6376, relaxed/relaxed; RFC 8463 for ed25519-sha256).

Every message passes through ``MessageBuilder``, which calls ``DkimSigner`` on the final
bytes: posts, confirmations, welcomes, previews and `send-test` alike. The canonicalisation
is our own (a library's would parse the whole message again for every reader); the
signatures go through ``cryptography`` (OpenSSL), ~0.8 ms for RSA-2048 here against ~7 ms
for a pure-Python RSA.

The header list is named explicitly: a library's default list leaves
``List-Unsubscribe-Post`` out, and RFC 8058 section 4 says both List-Unsubscribe headers
MUST be signed. ``From`` is named twice: a header named in ``h=`` more often than it
occurs is signed as absent, so nobody can add a second From without breaking the
signature (oversigning). Headers a message lacks (a confirmation has no List-Id) are
signed as absent in the same way, so they cannot be added either.

A post's body is the same quoted-printable text for every reader but for a few spliced
fields, and every piece of it is whole lines: ``canonical_lines`` of each static piece is
computed once per post (``render``), and per reader only the short fields are
canonicalised before the body hash.
"""

from __future__ import annotations

import base64
import hashlib
import re
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import NamedTuple

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ed25519, padding, rsa

SIGNED_HEADERS = (
    "From",
    "To",
    "Subject",
    "Date",
    "Message-ID",
    "MIME-Version",
    "Content-Type",
    "List-Id",
    "List-Unsubscribe",
    "List-Unsubscribe-Post",
    "From",  # once more: no second From can be added (see the module's docstring)
)
# Folded after Content-Type, so that no line passes 78 characters (FWS may follow a ':').
_H_TAG = ":".join(SIGNED_HEADERS[:7]) + ":\r\n\t " + ":".join(SIGNED_HEADERS[7:])
_LOWER_SIGNED = tuple(name.lower().encode("ascii") for name in SIGNED_HEADERS)
_WSP_RUN = re.compile(rb"[ \t]+")
_FOLD = 74  # characters of b= per line: with the tab and "b=", 77

PrivateKey = rsa.RSAPrivateKey | ed25519.Ed25519PrivateKey


# -- canonicalisation (RFC 6376 3.4.2 and 3.4.4) ------------------------------------------


def canonical_lines(text: bytes) -> bytes:
    """Relaxed body canonicalisation of whole CRLF lines, without the end-of-body rule:
    runs of spaces and tabs become one space, and none is left before a line break.
    Exact piece by piece, as long as every piece ends a line."""
    if b"\t" in text or b"  " in text:
        text = _WSP_RUN.sub(b" ", text)
    if b" \r\n" in text:
        text = text.replace(b" \r\n", b"\r\n")
    return text


def canonical_body(body: bytes) -> bytes:
    """Relaxed body canonicalisation of a whole body: ``canonical_lines``, then no empty
    lines at the end, and a non-empty body ends in CRLF."""
    body = canonical_lines(body)
    if body and not body.endswith(b"\r\n"):
        body = body.rstrip(b" \t") + b"\r\n"
    while body.endswith(b"\r\n\r\n"):
        body = body[:-2]
    return b"" if body == b"\r\n" else body


def canonical_header(name: bytes, value: bytes) -> bytes:
    """``name:value`` CRLF, relaxed: the name lowercased, the value unfolded, each run of
    whitespace one space, none at either end."""
    value = value.replace(b"\r\n", b"")
    if b"\t" in value or b"  " in value:
        value = _WSP_RUN.sub(b" ", value)
    return name.strip(b" \t").lower() + b":" + value.strip(b" \t") + b"\r\n"


def split_message(message: bytes) -> tuple[bytes, bytes]:
    """The header block (each field ending in CRLF) and the body of a CRLF message."""
    head, separator, body = message.partition(b"\r\n\r\n")
    if not separator:
        return message if message.endswith(b"\r\n") else message + b"\r\n", b""
    return head + b"\r\n", body


def header_fields(block: bytes) -> list[tuple[bytes, bytes]]:
    """(name, raw value) for each field of a header block, folded lines kept in the value."""
    fields: list[tuple[bytes, bytes]] = []
    for line in block.split(b"\r\n"):
        if not line:
            continue
        if line[:1] in (b" ", b"\t") and fields:
            name, value = fields[-1]
            fields[-1] = (name, value + b"\r\n" + line)
        else:
            name, _, value = line.partition(b":")
            fields.append((name, value))
    return fields


def signed_header_data(block: bytes) -> bytes:
    """The canonical form of the headers ``h=`` names, in its order: for a name named
    again, the next instance up from the bottom (RFC 6376 5.4.2); absent ones add nothing."""
    by_name: dict[bytes, list[bytes]] = {}
    for name, value in header_fields(block):
        by_name.setdefault(name.strip(b" \t").lower(), []).append(value)
    out = []
    for name in _LOWER_SIGNED:
        instances = by_name.get(name)
        if instances:
            out.append(canonical_header(name, instances.pop()))
    return b"".join(out)


def body_hash(canonical: bytes | Iterable[bytes]) -> str:
    """The ``bh=`` value of an already canonical body (bytes, or pieces to hash in turn)."""
    digest = hashlib.sha256()
    if isinstance(canonical, bytes):
        digest.update(canonical)
    else:
        for piece in canonical:
            digest.update(piece)
    return base64.b64encode(digest.digest()).decode("ascii")


# -- signing --------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class DkimKey:
    """One signing key: its algorithm follows from the key's type."""

    selector: str
    domain: str
    private_key: PrivateKey

    @property
    def algorithm(self) -> str:
        return (
            "ed25519-sha256"
            if isinstance(self.private_key, ed25519.Ed25519PrivateKey)
            else ("rsa-sha256")
        )

    def sign(self, data: bytes) -> bytes:
        key = self.private_key
        if isinstance(key, ed25519.Ed25519PrivateKey):
            # RFC 8463: Ed25519 (PureEdDSA) over the SHA-256 hash of the header data.
            return key.sign(hashlib.sha256(data).digest())
        return key.sign(data, padding.PKCS1v15(), hashes.SHA256())


class Unsigned(NamedTuple):
    """A message's DKIM-Signature fields up to ``b=``, and what each key signs: plain
    bytes in a tuple, so the signing can happen in another process (``mail.signing``) for
    ~1 us a message of pickling (a slotted dataclass pickles field by field, ~4 us)."""

    fields: tuple[bytes, ...]
    data: tuple[bytes, ...]


class DkimSigner:
    """Adds one DKIM-Signature per key (RSA first, then the optional ed25519 one)."""

    def __init__(self, keys: Sequence[DkimKey]) -> None:
        self.keys = tuple(keys)
        self._heads: tuple[int, list[tuple[bytes, bytes]]] = (-1, [])

    def sign(self, message: bytes) -> bytes:
        """The message with its signature headers in front (a CRLF message, unstuffed)."""
        return self.header(self.prepare_message(message)) + message

    def prepare_message(self, message: bytes) -> Unsigned:
        head, body = split_message(message)
        return self.prepare(head, body_hash(canonical_body(body)))

    def prepare(self, header_block: bytes, bh: str, *, now: int | None = None) -> Unsigned:
        """The signature fields for a message with these headers and body hash, unsigned."""
        signed = signed_header_data(header_block)
        timestamp = int(time.time()) if now is None else now
        value = bh.encode("ascii")
        fields, data = [], []
        for head, canonical in self._stamped(timestamp):
            fields.append(head + value + b";\r\n\tb=")
            data.append(signed + canonical + value + b"; b=")
        return Unsigned(tuple(fields), tuple(data))

    def _stamped(self, timestamp: int) -> list[tuple[bytes, bytes]]:
        """Per key: its DKIM-Signature field up to ``bh=``, and that in canonical form (the
        same for every message of a second; the rest is base64 and ``; b=``, which
        canonicalisation leaves as it is but for the fold)."""
        stamp, heads = self._heads
        if timestamp != stamp:
            heads = []
            for key in self.keys:
                # Folded before s=, h=, bh= and within b=; relaxed canonicalisation turns
                # each fold into one space, which ``canonical_header`` sees too.
                head = (
                    f"DKIM-Signature: v=1; a={key.algorithm}; c=relaxed/relaxed; d={key.domain};"
                    f"\r\n\ts={key.selector}; t={timestamp};\r\n\th={_H_TAG};\r\n\tbh="
                ).encode("ascii")
                name, _, value = head.partition(b":")
                heads.append((head, canonical_header(name, value).removesuffix(b"\r\n")))
            self._heads = (timestamp, heads)
        return heads

    def header(self, unsigned: Unsigned) -> bytes:
        """The finished DKIM-Signature fields, CRLF-terminated, to put in front."""
        out = []
        for key, field, data in zip(self.keys, unsigned.fields, unsigned.data, strict=True):
            signature = base64.b64encode(key.sign(data))
            lines = [signature[i : i + _FOLD] for i in range(0, len(signature), _FOLD)]
            out.append(field + b"\r\n\t".join(lines) + b"\r\n")
        return b"".join(out)
