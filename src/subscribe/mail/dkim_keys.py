"""DKIM keys: loading them from the settings, making new ones, and their DNS records.

A key that cannot be used (missing, unreadable, not PEM, the wrong type, too short) is a
one-line ``ConfigError`` naming the variable, raised when the signer is first asked for,
which every sending command does before it sends anything.
"""

from __future__ import annotations

import base64
import functools
import hashlib
import os
from dataclasses import dataclass
from pathlib import Path

from cryptography.exceptions import InvalidSignature, UnsupportedAlgorithm
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ed25519, padding, rsa

from subscribe.config import ENV_PREFIX, Settings
from subscribe.errors import ConfigError

from .dkim import DkimKey, DkimSigner, PrivateKey

RSA_BITS = 2048
MIN_RSA_BITS = 1024  # RFC 8301: verifiers must not accept shorter keys


def dkim_signer(settings: Settings) -> DkimSigner | None:
    """The signer the settings ask for, or None when DKIM is off; keys are read once."""
    if not settings.dkim_selector and not settings.dkim_private_key_file:
        return None
    if not settings.dkim_selector:
        raise ConfigError(
            f"{ENV_PREFIX}DKIM_PRIVATE_KEY_FILE is set but {ENV_PREFIX}DKIM_SELECTOR is not: "
            "set the selector the key is published under"
        )
    if settings.dkim_private_key_file is None:
        raise ConfigError(
            f"{ENV_PREFIX}DKIM_SELECTOR is set but {ENV_PREFIX}DKIM_PRIVATE_KEY_FILE is not: "
            f"make a key with `subscribe dkim keygen --selector {settings.dkim_selector}`"
        )
    ed_file = settings.dkim_ed25519_key_file
    return _signer(
        settings.dkim_signing_domain,
        settings.dkim_selector,
        str(settings.dkim_private_key_file),
        settings.dkim_ed25519_selector_name if ed_file else "",
        str(ed_file) if ed_file else "",
    )


@functools.lru_cache(maxsize=8)
def _signer(
    domain: str, selector: str, rsa_file: str, ed_selector: str, ed_file: str
) -> DkimSigner:
    keys = [DkimKey(selector, domain, load_private_key(Path(rsa_file), "rsa"))]
    if ed_file:
        keys.append(DkimKey(ed_selector, domain, load_private_key(Path(ed_file), "ed25519")))
    return DkimSigner(keys)


def load_private_key(path: Path, kind: str) -> PrivateKey:
    """An unencrypted PEM private key of ``kind`` (``rsa`` or ``ed25519``)."""
    variable = ENV_PREFIX + ("DKIM_PRIVATE_KEY_FILE" if kind == "rsa" else "DKIM_ED25519_KEY_FILE")
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise ConfigError(f"{variable}: cannot read {path}: {exc.strerror or exc}") from None
    try:
        key = serialization.load_pem_private_key(data, password=None)
    except TypeError:
        raise ConfigError(
            f"{variable}: {path} is encrypted; store the key without a password"
        ) from None
    except (ValueError, UnsupportedAlgorithm):
        raise ConfigError(f"{variable}: {path} holds no PEM private key") from None
    if kind == "rsa":
        if not isinstance(key, rsa.RSAPrivateKey):
            raise ConfigError(
                f"{variable}: {path} is not an RSA key (an ed25519 key goes in "
                f"{ENV_PREFIX}DKIM_ED25519_KEY_FILE)"
            )
        if key.key_size < MIN_RSA_BITS:
            raise ConfigError(
                f"{variable}: {path} is a {key.key_size}-bit key; receivers refuse fewer than "
                f"{MIN_RSA_BITS} bits (`subscribe dkim keygen` makes a {RSA_BITS}-bit one)"
            )
        return key
    if not isinstance(key, ed25519.Ed25519PrivateKey):
        raise ConfigError(f"{variable}: {path} is not an ed25519 key")
    return key


def generate_key(kind: str = "rsa") -> PrivateKey:
    if kind == "ed25519":
        return ed25519.Ed25519PrivateKey.generate()
    return rsa.generate_private_key(public_exponent=65537, key_size=RSA_BITS)


def write_private_key(path: Path, key: PrivateKey) -> None:
    """PKCS#8 PEM, mode 0600, created exclusively: an existing file is never replaced."""
    pem = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        raise ConfigError(f"{path} exists already; choose another --out or remove it") from None
    except OSError as exc:
        raise ConfigError(f"cannot create {path}: {exc.strerror or exc}") from None
    with os.fdopen(fd, "wb") as file:
        file.write(pem)


# -- the DNS record ---------------------------------------------------------------------------


def public_key_value(key: PrivateKey) -> tuple[str, str]:
    """(k=, p=) of the key's record."""
    if isinstance(key, ed25519.Ed25519PrivateKey):
        raw = key.public_key().public_bytes(
            serialization.Encoding.Raw, serialization.PublicFormat.Raw
        )
        return "ed25519", base64.b64encode(raw).decode("ascii")
    der = key.public_key().public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    return "rsa", base64.b64encode(der).decode("ascii")


def record_value(key: PrivateKey) -> str:
    kind, public = public_key_value(key)
    return f"v=DKIM1; k={kind}; p={public}"


def zone_line(name: str, value: str) -> str:
    """A zone-file line; TXT strings hold at most 255 characters, so longer values are
    split into several strings, which resolvers join again."""
    chunks = [value[i : i + 255] for i in range(0, len(value), 255)]
    strings = " ".join(f'"{chunk}"' for chunk in chunks)
    return f"{name}. 3600 IN TXT ( {strings} )"


@dataclass(frozen=True, slots=True)
class PublishedKey:
    """What a ``selector._domainkey`` TXT record says."""

    kind: str
    public: bytes  # decoded p=; empty: the key was revoked
    tags: dict[str, str]


def parse_record(text: str) -> PublishedKey:
    """The tags of a DKIM key record; ``ValueError`` with a reason for one that is not."""
    tags: dict[str, str] = {}
    for part in text.split(";"):
        name, sep, value = part.partition("=")
        if sep:
            tags[name.strip()] = "".join(value.split())
    if tags.get("v", "DKIM1") != "DKIM1":
        raise ValueError(f"v={tags['v']} is not DKIM1")
    if "p" not in tags:
        raise ValueError("the record has no p= (public key)")
    try:
        public = base64.b64decode(tags["p"], validate=True)
    except ValueError:
        raise ValueError("p= is not base64") from None
    return PublishedKey(tags.get("k", "rsa"), public, tags)


def matches(key: DkimKey, published: PublishedKey) -> bool:
    """Whether a signature made with ``key`` verifies against the published public key."""
    sample = b"subscribe doctor: does the published key verify our signature?"
    signature = key.sign(sample)
    try:
        if key.algorithm == "ed25519-sha256":
            if published.kind != "ed25519":
                return False
            public = ed25519.Ed25519PublicKey.from_public_bytes(published.public)
            public.verify(signature, hashlib.sha256(sample).digest())
        else:
            if published.kind != "rsa":
                return False
            loaded = serialization.load_der_public_key(published.public)
            if not isinstance(loaded, rsa.RSAPublicKey):
                return False
            loaded.verify(signature, sample, padding.PKCS1v15(), hashes.SHA256())
    except (InvalidSignature, ValueError, UnsupportedAlgorithm):
        return False
    return True
