"""Header lines as the wire wants them: folded, RFC 2047-encoded only where needed, never a
traceback for a strange name.

RFC 5322 asks for lines of at most 78 characters and RFC 2047 for encoded words of at most
75, and relays refuse lines past 998 ("500 Line too long"): a reader's 200-emoji name must
become several encoded words on folded lines, not one long line. The first line of a
folded header always carries text (``Subject: word...``), never a lone ``Subject:``.
"""

from __future__ import annotations

import base64
import hashlib

from subscribe.content import one_line

MAX_LINE = 78  # characters per header line, CRLF not counted (RFC 5322 2.1.1)
MAX_ENCODED_WORD = 75  # RFC 2047 2
_ADDRESS_SPECIALS = frozenset('()<>@,:;.\\"[]')  # a display name with one is quoted
_WORD_OVERHEAD = len("=?utf-8?b??=")


def _encoded_word(data: bytes) -> str:
    return f"=?utf-8?b?{base64.b64encode(data).decode('ascii')}?="


def _encoded_words(text: str, first: int) -> list[str]:
    """``text`` as 'B' encoded words of whole characters: the first at most ``first``
    characters long (what is left of the header's first line), the others at most 75."""
    words: list[str] = []
    budget = max(first, _WORD_OVERHEAD + 8)
    chunk = b""
    for character in text:
        grown = chunk + character.encode("utf-8")
        if chunk and _WORD_OVERHEAD + 4 * -(-len(grown) // 3) > budget:
            words.append(_encoded_word(chunk))
            budget, grown = MAX_ENCODED_WORD, character.encode("utf-8")
        chunk = grown
    if chunk:
        words.append(_encoded_word(chunk))
    return words


def _fold(prefix: str, tokens: list[str], tail: str = "") -> bytes:
    """``prefix`` then the tokens, joined by single spaces and folded between tokens so no
    line passes 78 characters where that can be helped; ``tail`` (`` <address>``) goes on
    the last line, or a line of its own. The first token always stays on the first line."""
    lines = [prefix + tokens[0]]
    for token in tokens[1:]:
        if len(lines[-1]) + 1 + len(token) <= MAX_LINE:
            lines[-1] += " " + token
        else:
            lines.append(" " + token)
    if tail:
        if len(lines[-1]) + len(tail) <= MAX_LINE:
            lines[-1] += tail
        else:
            lines.append(tail)
    return ("\r\n".join(lines) + "\r\n").encode("ascii")


def _plain_words(prefix: str, text: str) -> list[str] | None:
    """The words of an ASCII text, if each fits on a folded line; else None (encode it)."""
    if not text.isascii() or "=?" in text:  # text that reads as an encoded word is encoded
        return None
    words = text.split(" ")
    if len(prefix) + len(words[0]) > MAX_LINE or any(len(w) > MAX_LINE - 1 for w in words):
        return None
    return words


def encode_header(name: str, value: str) -> bytes:
    """``Name: value`` CRLF for unstructured text (Subject): plain ASCII folded at spaces,
    anything else as RFC 2047 encoded words."""
    value = one_line(value)
    prefix = f"{name}: "
    if not value:
        return f"{name}:\r\n".encode("ascii")
    words = _plain_words(prefix, value)
    if words is None:
        words = _encoded_words(value, MAX_LINE - len(prefix))
    return _fold(prefix, words)


def _quoted(text: str) -> str:
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'


def address_header(field: str, display_name: str, address: str) -> bytes:
    """``To: Name <address>`` CRLF: specials quoted, non-ASCII or unfoldable names RFC
    2047-encoded, long ones folded; the address itself is never broken."""
    display_name = one_line(display_name)
    prefix = f"{field}: "
    if not display_name:
        return f"{prefix}{address}\r\n".encode("ascii")
    plain = display_name.isascii() and _ADDRESS_SPECIALS.isdisjoint(display_name)
    line = f"{prefix}{display_name} <{address}>"
    if plain and len(line) <= MAX_LINE:
        return (line + "\r\n").encode("ascii")  # the usual case, at once
    phrase = display_name if plain else _quoted(display_name)
    words = _plain_words(prefix, phrase)
    if words is None:
        words = _encoded_words(display_name, MAX_LINE - len(prefix))
    return _fold(prefix, words, f" <{address}>")


def message_id(domain: str, *, post_key: str, subscriber_id: int) -> str:
    """The same for the same post and reader, so a rare re-send is recognisable as one.
    ``domain`` is the sender's (``Settings.mail_domain``)."""
    digest = hashlib.blake2s(f"{post_key}\0{subscriber_id}".encode(), digest_size=6).hexdigest()
    return f"<{subscriber_id}.{digest}@{domain}>"
