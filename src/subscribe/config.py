"""Settings, read from ``SUBSCRIBE_*`` environment variables or ``.env`` in the working directory.

Nothing here runs at import time: callers build ``Settings`` (tests pass values explicitly)
or use the cached ``get_settings()``. A bad value becomes a one-line ``ConfigError`` that
names the variable, so the CLI can print it without a traceback.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Sequence
from email.utils import formataddr, parseaddr
from pathlib import Path
from typing import Any, Literal

from pydantic import (
    Field,
    PrivateAttr,
    SecretStr,
    ValidationError,
    field_validator,
    model_validator,
)
from pydantic_settings import BaseSettings, SettingsConfigDict

from subscribe.errors import ConfigError

ENV_PREFIX = "SUBSCRIBE_"

# The languages whose catalogs ship in templates/locales/ (English is the templates' own);
# a site adds one with templates_dir/locales/TAG.po. BCP 47 tags, as lang= and
# Content-Language write them.
SHIPPED_LANGUAGES = ("en", "de", "fr", "es", "pt-BR", "pl")
MAX_LANGUAGE_TAG = 35  # subscriber.language's size (RFC 5646 suggests buffers of 35)
_LANGUAGE_TAG = re.compile(r"[A-Za-z]{2,3}(?:[-_][A-Za-z0-9]{2,8})*")


def language_tag(value: str) -> str | None:
    """``pt_br`` -> ``pt-BR``, ``DE`` -> ``de``; None for what is no language tag."""
    value = value.strip()
    if len(value) > MAX_LANGUAGE_TAG or not _LANGUAGE_TAG.fullmatch(value):
        return None
    first, *rest = re.split("[-_]", value)
    parts = [first.lower()]
    for part in rest:
        if len(part) == 4 and part.isalpha():
            parts.append(part.title())  # a script: Latn, Cyrl
        elif len(part) == 2 or (len(part) == 3 and part.isdigit()):
            parts.append(part.upper())  # a region: BR, 419
        else:
            parts.append(part.lower())
    return "-".join(parts)


def on_offer(value: str, offered: Sequence[str]) -> str | None:
    """The offered language that ``value`` names: the same tag, else the first offered
    with the same primary language (``de_DE`` -> ``de``); None when there is none."""
    tag = language_tag(value)
    if tag is None:
        return None
    if tag in offered:
        return tag
    primary = tag.partition("-")[0]
    return next((lang for lang in offered if lang.partition("-")[0] == primary), None)


MIN_SECRET_KEY_LENGTH = 16
_DNS_NAME = re.compile(r"[a-z0-9_]([a-z0-9_-]{0,62})(\.[a-z0-9_]([a-z0-9_-]{0,62}))*")
MAKE_A_KEY = "python -c 'import secrets; print(secrets.token_urlsafe())'"


class Settings(BaseSettings):
    model_config = SettingsConfigDict(
        env_prefix=ENV_PREFIX, env_file=".env", extra="ignore", validate_default=True
    )

    # Not a setting (no variable sets it): `serve --dev` allows a short secret key.
    _trial_run: bool = PrivateAttr(default=False)
    database_url: str = "sqlite:///subscribe.db"
    secret_key: SecretStr | None = None
    base_url: str = "http://127.0.0.1:8000"
    site_name: str = "My blog"
    site_url: str = ""
    mail_from: str = "My blog <newsletter@localhost>"

    smtp_host: str = "localhost"
    smtp_port: int = Field(default=25, ge=1, le=65535)
    smtp_username: str = ""
    smtp_password: SecretStr = SecretStr("")
    smtp_security: Literal["none", "starttls", "tls"] = "starttls"
    smtp_connections: int = Field(default=8, ge=1, le=256)
    smtp_timeout: float = Field(default=30.0, gt=0)
    smtp_verify_certs: bool = True

    send_rate: float = Field(default=0.0, ge=0)
    daily_limit: int = Field(default=0, ge=0)
    retry_delay: float = Field(default=60.0, ge=0)
    retry_lifetime: float = Field(default=3 * 24 * 3600.0, gt=0)
    relay_down_timeout: float = Field(default=30.0, gt=0)
    lease_seconds: float = Field(default=60.0, gt=0, le=60)
    batch_size: int = Field(default=500, ge=1)
    # "on": big runs make their messages in a second process, so that sending has a core
    # to itself. It pays only where a core is idle while notify is CPU-bound: with the
    # relay on the same two-core machine it costs CPU and gains nothing (bench/README.md).
    render_process: Literal["on", "off"] = "off"

    confirm_max_age: int = Field(default=7 * 24 * 3600, gt=0)
    feed_url: str = ""
    # Most new entries one feed run announces (the newest); the rest are recorded as seen.
    feed_max_new: int = Field(default=3, ge=0)
    templates_dir: Path | None = None
    # The site's language: its pages for visitors with no choice of their own, and every
    # reader's emails until they choose one (at sign-up or on the preferences page).
    language: str = "en"
    unsubscribe_mailto: str = ""
    bounce_address: str = ""
    bounce_imap_host: str = ""
    bounce_imap_port: int = Field(default=993, ge=1, le=65535)
    bounce_imap_security: Literal["none", "starttls", "tls"] = "tls"
    bounce_imap_username: str = ""
    bounce_imap_password: SecretStr = SecretStr("")
    bounce_imap_folder: str = "INBOX"

    # Digests go out at this local hour (weekly ones on this weekday) in this time zone.
    digest_hour: int = Field(default=8, ge=0, le=23)
    digest_weekday: Literal[
        "monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday"
    ] = "monday"
    timezone: str = "UTC"
    categories: str = ""  # what readers may choose; empty: the categories seen on posts
    form_choices: str = ""  # "cadence,categories": what the subscribe form offers
    # DKIM: on when a selector and an RSA key file are set. The domain is MAIL_FROM's
    # unless DKIM_DOMAIN names another (it must align with From for DMARC).
    dkim_selector: str = ""
    dkim_private_key_file: Path | None = None
    dkim_domain: str = ""
    dkim_ed25519_key_file: Path | None = None
    # The ed25519 key needs a selector of its own: SELECTOR-ed25519 unless set.
    dkim_ed25519_selector: str = ""
    # HOST:PORT of the DNS resolver `subscribe doctor` asks; empty: the system's.
    dns_resolver: str = ""
    # Authenticates POST /hooks/publish; empty: the hook answers 404.
    webhook_secret: SecretStr = SecretStr("")

    # The relays' bounce and complaint webhooks (POST /hooks/bounces/...); each is off (404)
    # until its secret is set. SES: the SNS topics whose notifications are accepted, and the
    # hosts (``*`` one DNS label) that may serve SNS signing certificates and SubscribeURLs.
    ses_topic_arns: str = ""
    ses_cert_hosts: str = "sns.*.amazonaws.com,sns.*.amazonaws.com.cn"
    mailgun_signing_key: SecretStr = SecretStr("")
    postmark_username: str = ""
    postmark_password: SecretStr = SecretStr("")
    # SendGrid's "Signed Event Webhook" verification key: base64 DER, as its settings show.
    sendgrid_public_key: str = ""

    trusted_proxies: str = ""
    subscribe_rate_limit: int = Field(default=10, ge=0)
    blocked_domains: str = ""

    @field_validator("mail_from")
    @classmethod
    def _mail_from_has_address(cls, value: str) -> str:
        _, address = parseaddr(value)
        if "@" not in address or "\n" in value or "\r" in value:
            raise ValueError("must look like 'Name <address@example.org>'")
        return value

    @field_validator("base_url")
    @classmethod
    def _base_url_is_http(cls, value: str) -> str:
        if not value.startswith(("http://", "https://")):
            raise ValueError("must start with http:// or https://")
        return value.rstrip("/")

    @field_validator("dkim_selector", "dkim_ed25519_selector", "dkim_domain")
    @classmethod
    def _dns_name(cls, value: str) -> str:
        # Written into the DKIM-Signature header and looked up in DNS: labels only, so no
        # value can inject a tag or a header line.
        value = value.strip().rstrip(".").lower()
        if value and not _DNS_NAME.fullmatch(value):
            raise ValueError("must be a DNS name (letters, digits, '-', '_' and dots)")
        return value

    @field_validator("dns_resolver")
    @classmethod
    def _host_port(cls, value: str) -> str:
        value = value.strip()
        if value:
            host, _, port = value.rpartition(":")
            if not host or not port.isdigit() or not 0 < int(port) < 65536:
                raise ValueError("must be HOST:PORT, e.g. 127.0.0.1:53")
        return value

    @field_validator("language")
    @classmethod
    def _language_tag(cls, value: str) -> str:
        tag = language_tag(value)
        if tag is None:
            raise ValueError(f"{value!r} is not a language tag (e.g. en, de, pt-BR)")
        return tag

    @model_validator(mode="after")
    def _language_on_offer(self) -> Settings:
        # A locale as systems write it (de_DE, fr-CA) is the nearest language on offer.
        nearest = on_offer(self.language, self.languages)
        if nearest is not None:
            self.language = nearest
        else:
            offered = ", ".join(self.languages)
            raise ValueError(
                f"{ENV_PREFIX}LANGUAGE: {self.language!r} has no catalog: use one of "
                f"{offered}, or add locales/{self.language}.po to the templates directory"
            )
        return self

    @field_validator("digest_weekday", mode="before")
    @classmethod
    def _weekday_lowercase(cls, value: Any) -> Any:
        return value.strip().lower() if isinstance(value, str) else value

    @field_validator("timezone")
    @classmethod
    def _known_timezone(cls, value: str) -> str:
        from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError):
            raise ValueError(f"unknown time zone {value!r} (e.g. UTC, Europe/Berlin)") from None
        return value

    @field_validator("form_choices")
    @classmethod
    def _known_choices(cls, value: str) -> str:
        unknown = set(_split(value)) - {"cadence", "categories"}
        if unknown:
            raise ValueError(f"unknown choice {sorted(unknown)[0]!r}: use cadence,categories")
        return value

    @field_validator(
        "templates_dir", "dkim_private_key_file", "dkim_ed25519_key_file", mode="before"
    )
    @classmethod
    def _empty_dir_is_none(cls, value: Any) -> Any:
        return value or None

    # Derived values, so that callers never parse settings themselves.

    def secret_keys(self) -> list[str]:
        """Signing keys, oldest first (the last one signs); refuses to run without one."""
        raw = self.secret_key.get_secret_value() if self.secret_key else ""
        keys = [key.strip() for key in raw.split(",") if key.strip()]
        if not keys:
            raise ConfigError(
                f"{ENV_PREFIX}SECRET_KEY is not set: put a long random string in the environment "
                f"or in .env, e.g. from: {MAKE_A_KEY}"
            )
        # Only the signing key (the last) must be strong: older ones stay, to verify links
        # already sent while the list moves off them.
        if len(keys[-1]) < MIN_SECRET_KEY_LENGTH and not self._trial_run:
            raise ConfigError(
                f"{ENV_PREFIX}SECRET_KEY is {len(keys[-1])} characters long: use at least "
                f"{MIN_SECRET_KEY_LENGTH}, e.g. from: {MAKE_A_KEY}"
            )
        return keys

    def for_trial(self) -> Settings:
        """The same settings for `serve --dev`: a short secret key is fine on a laptop."""
        trial = self.model_copy()
        trial._trial_run = True
        return trial

    @property
    def connect_timeout(self) -> float:
        """One connection attempt may take this long, so that a few attempts fit within
        relay_down_timeout: a relay that never answers ends a run on time."""
        return min(self.smtp_timeout, self.relay_down_timeout / 3)

    @property
    def mail_from_address(self) -> str:
        return parseaddr(self.mail_from)[1]

    @property
    def mail_domain(self) -> str:
        return self.mail_from_address.rpartition("@")[2].lower()

    @property
    def list_id(self) -> str:
        """The List-Id header value: the site name and a dotted id under the sender's domain."""
        label = "".join(c if c.isalnum() else "-" for c in self.site_name.lower()).strip("-")
        return formataddr((self.site_name, f"{label or 'newsletter'}.{self.mail_domain}"))

    @property
    def dkim_signing_domain(self) -> str:
        return self.dkim_domain or self.mail_domain

    @property
    def dkim_ed25519_selector_name(self) -> str:
        return self.dkim_ed25519_selector or f"{self.dkim_selector}-ed25519"

    @property
    def languages(self) -> tuple[str, ...]:
        """The languages on offer: the shipped ones, then any the site adds a catalog for
        (``templates_dir/locales/TAG.po``)."""
        return SHIPPED_LANGUAGES + tuple(
            tag for tag in _site_catalog_tags(self.templates_dir) if tag not in SHIPPED_LANGUAGES
        )

    @property
    def trusted_proxy_list(self) -> list[str]:
        return [p.strip() for p in self.trusted_proxies.split(",") if p.strip()]

    @property
    def category_list(self) -> list[str]:
        return list(dict.fromkeys(_split(self.categories)))

    @property
    def form_choice_set(self) -> frozenset[str]:
        return frozenset(_split(self.form_choices))

    @property
    def ses_topic_arn_list(self) -> list[str]:
        return [t.strip() for t in self.ses_topic_arns.split(",") if t.strip()]

    @property
    def ses_cert_host_list(self) -> list[str]:
        return [h.strip().lower() for h in self.ses_cert_hosts.split(",") if h.strip()]

    @property
    def blocked_domain_list(self) -> list[str]:
        return [d.strip().lower() for d in self.blocked_domains.split(",") if d.strip()]


@functools.cache
def _site_catalog_tags(templates_dir: Path | None) -> tuple[str, ...]:
    if templates_dir is None or not (templates_dir / "locales").is_dir():
        return ()
    found = (language_tag(path.stem) for path in (templates_dir / "locales").glob("*.po"))
    return tuple(sorted({tag for tag in found if tag}))


def _split(value: str) -> list[str]:
    return [part.strip() for part in value.split(",") if part.strip()]


def load_settings(**overrides: Any) -> Settings:
    """Build settings, turning pydantic's report into one line that names the variable."""
    try:
        return Settings(**overrides)
    except ValidationError as exc:
        first = exc.errors()[0]
        message = first["msg"].removeprefix("Value error, ")
        if not first["loc"]:  # a check across fields names its variable itself
            raise ConfigError(message) from None
        raise ConfigError(f"{ENV_PREFIX}{str(first['loc'][0]).upper()}: {message}") from None


@functools.cache
def get_settings() -> Settings:
    return load_settings()
