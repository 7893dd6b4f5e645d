"""Amazon SNS HTTP(S) notifications: verify the message signature, confirm subscriptions.

SNS signs the canonical "Key\\nValue\\n" string of a message's fields (which fields depends
on its ``Type``) with the key of an X.509 certificate it publishes at ``SigningCertURL``:
RSA with SHA1 for ``SignatureVersion`` 1, SHA256 for 2. The certificate URL is part of the
signed message, so it is checked *before* anything is fetched: https, on an SNS host
(``sns.<region>.amazonaws.com``), a ``.pem`` path; otherwise anyone could sign with a key
of their own. Certificates are cached: SNS signs with the same one for months.

Fetching goes through ``Fetch``, a callable given to ``SnsVerifier``: the default one uses
httpx with no redirects, a short timeout and a size cap; tests pass one that reads from a
local server instead, while the URL checks stay the production ones.
"""

from __future__ import annotations

import base64
import binascii
import re
import threading
from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from typing import Any
from urllib.parse import urlsplit

import httpx
from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import padding, rsa

from subscribe.errors import HookInvalid, HookRefused, HookUnavailable

from .events import load_json, mapping, text

Fetch = Callable[[str], bytes]  # GET a URL, return the body, raise on any failure

CERT_MAX_BYTES = 64 * 1024
FETCH_TIMEOUT = 10.0

_SIGNED_FIELDS = {
    "Notification": ("Message", "MessageId", "Subject", "Timestamp", "TopicArn", "Type"),
    "SubscriptionConfirmation": (
        "Message",
        "MessageId",
        "SubscribeURL",
        "Timestamp",
        "Token",
        "TopicArn",
        "Type",
    ),
}
_SIGNED_FIELDS["UnsubscribeConfirmation"] = _SIGNED_FIELDS["SubscriptionConfirmation"]
_HASHES: dict[str, Callable[[], hashes.HashAlgorithm]] = {"1": hashes.SHA1, "2": hashes.SHA256}


def fetch_with_httpx(url: str) -> bytes:
    """GET ``url`` over the network: no redirects (the checked URL is the one fetched)."""
    with httpx.stream("GET", url, timeout=FETCH_TIMEOUT, follow_redirects=False) as response:
        response.raise_for_status()
        body = b""
        for chunk in response.iter_bytes():
            body += chunk
            if len(body) > CERT_MAX_BYTES:
                raise ValueError("response too large")
        return body


def host_patterns(hosts: list[str]) -> re.Pattern[str]:
    """``sns.*.amazonaws.com`` -> a pattern where ``*`` is exactly one DNS label."""
    label = r"[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?"
    alternatives = (
        "\\.".join(label if p == "*" else re.escape(p) for p in h.split(".")) for h in hosts
    )
    return re.compile("|".join(f"(?:{a})" for a in alternatives) or "(?!)")


class SnsVerifier:
    def __init__(self, *, topic_arns: list[str], hosts: list[str], fetch: Fetch) -> None:
        self._topics = frozenset(topic_arns)
        self._hosts = host_patterns(hosts)
        self._fetch = fetch
        self._certificates: dict[str, rsa.RSAPublicKey] = {}
        self._lock = threading.Lock()

    def verified(self, body: bytes) -> Mapping[str, Any]:
        """The SNS message in ``body``, once its topic and signature check out."""
        message = mapping(load_json(body), "The SNS message")
        kind = text(message, "Type")
        fields = _SIGNED_FIELDS.get(kind)
        if fields is None:
            raise HookInvalid("Not an SNS notification or subscription message.")
        if text(message, "TopicArn") not in self._topics:
            raise HookRefused("Notifications from this SNS topic are not accepted.")
        algorithm = _HASHES.get(text(message, "SignatureVersion"))
        if algorithm is None:
            raise HookRefused("Unknown SNS signature version.")
        key = self._certificate(text(message, "SigningCertURL"))
        signed = "".join(
            f"{name}\n{message[name]}\n"
            for name in fields
            if name in message and isinstance(message[name], str)
        )
        try:
            signature = base64.b64decode(text(message, "Signature"), validate=True)
            key.verify(signature, signed.encode(), padding.PKCS1v15(), algorithm())
        except (InvalidSignature, binascii.Error, ValueError):
            raise HookRefused("The SNS signature does not verify.") from None
        return message

    def confirm(self, message: Mapping[str, Any]) -> None:
        """Follow a verified SubscriptionConfirmation's SubscribeURL (an SNS host's only)."""
        url = text(message, "SubscribeURL")
        if not self._allowed(url):
            raise HookRefused("The SubscribeURL is not on an SNS host.")
        try:
            self._fetch(url)
        except (httpx.HTTPError, ValueError, OSError):
            raise HookInvalid("SNS did not answer the subscription confirmation.") from None

    def _allowed(self, url: str) -> bool:
        try:
            parts = urlsplit(url)
            port = parts.port
        except ValueError:
            return False
        host = (parts.hostname or "").lower()
        return (
            parts.scheme == "https"
            and port in (None, 443)
            and not parts.username
            and bool(self._hosts.fullmatch(host))
        )

    def _certificate(self, url: str) -> rsa.RSAPublicKey:
        if not (self._allowed(url) and urlsplit(url).path.endswith(".pem")):
            raise HookRefused("The signing certificate is not on an SNS host.")
        with self._lock:
            cached = self._certificates.get(url)
        if cached is not None:
            return cached
        try:
            pem = self._fetch(url)
        except (httpx.HTTPError, ValueError, OSError):
            # A 5xx: SNS retries later, when the certificate may download again.
            raise HookUnavailable("The SNS signing certificate cannot be fetched now.") from None
        try:
            certificate = x509.load_pem_x509_certificate(pem)
        except ValueError:
            raise HookRefused("The SNS signing certificate cannot be read.") from None
        key = certificate.public_key()
        if not isinstance(key, rsa.RSAPublicKey):
            raise HookRefused("The SNS signing certificate holds no RSA key.")
        if certificate.not_valid_after_utc < datetime.now(UTC):
            raise HookRefused("The SNS signing certificate has expired.")
        with self._lock:
            self._certificates[url] = key
        return key
