"""The settings a deliverable newsletter needs: strong secret, https links, a real From,
bounces that come back to us (VERP), and usable DKIM keys."""

from __future__ import annotations

from urllib.parse import urlsplit

from subscribe.config import MAKE_A_KEY, Settings
from subscribe.errors import SubscribeError
from subscribe.mail.dkim_keys import dkim_signer
from subscribe.readers.addresses import normalize

from .checks import Check, fail, ok, warn

STRONG_SECRET_KEY = 32
_LOCAL_HOSTS = {"localhost", "127.0.0.1", "::1", "0.0.0.0"}


def settings_checks(settings: Settings) -> list[Check]:
    return [
        _secret_key(settings),
        _base_url(settings),
        _mail_from(settings),
        _bounces(settings),
        _dkim(settings),
    ]


def _secret_key(settings: Settings) -> Check:
    try:
        key = settings.secret_keys()[-1]
    except SubscribeError as exc:
        return fail("secret key", str(exc), f"set SUBSCRIBE_SECRET_KEY from: {MAKE_A_KEY}")
    if len(key) < STRONG_SECRET_KEY or len(set(key)) < 10:
        return warn(
            "secret key",
            f"SUBSCRIBE_SECRET_KEY is {len(key)} characters with {len(set(key))} different ones",
            f"use {STRONG_SECRET_KEY}+ random characters, e.g. from: {MAKE_A_KEY}",
        )
    return ok("secret key", f"{len(key)} characters")


def _base_url(settings: Settings) -> Check:
    url = urlsplit(settings.base_url)
    if (url.hostname or "") in _LOCAL_HOSTS:
        return fail(
            "base url",
            f"SUBSCRIBE_BASE_URL is {settings.base_url}: readers cannot reach its links",
            "set it to the public https:// address of `subscribe serve`",
        )
    if url.scheme != "https":
        return warn(
            "base url",
            f"SUBSCRIBE_BASE_URL is {settings.base_url}: unsubscribe links go in plain text",
            "serve it behind TLS and set an https:// URL",
        )
    return ok("base url", settings.base_url)


def _mail_from(settings: Settings) -> Check:
    try:
        address = normalize(settings.mail_from_address)
    except SubscribeError as exc:
        return fail("mail from", f"SUBSCRIBE_MAIL_FROM: {exc}", "use 'Name <you@your-domain>'")
    domain = address.ascii.rpartition("@")[2]
    if "." not in domain:
        return fail(
            "mail from",
            f"SUBSCRIBE_MAIL_FROM's domain {domain!r} is not one receivers accept",
            "send from an address at your own domain",
        )
    return ok("mail from", settings.mail_from)


def _bounces(settings: Settings) -> Check:
    bounce = settings.bounce_address
    if not bounce:
        return warn(
            "bounces",
            "no SUBSCRIBE_BOUNCE_ADDRESS: bounces go to MAIL_FROM and name no delivery",
            "set SUBSCRIBE_BOUNCE_ADDRESS=bounces@your-domain (VERP) and run "
            "`subscribe bounces process` from cron",
        )
    try:
        address = normalize(bounce)
    except SubscribeError as exc:
        return fail("bounces", f"SUBSCRIBE_BOUNCE_ADDRESS: {exc}", "use bounces@your-domain")
    local, _, domain = address.ascii.rpartition("@")
    if "+" in local:
        return fail(
            "bounces",
            f"SUBSCRIBE_BOUNCE_ADDRESS {bounce} has a '+' already; VERP adds +TOKEN to it",
            "use an address without '+', whose mailbox takes bounces+anything",
        )
    if not settings.bounce_imap_host:
        return warn(
            "bounces",
            f"VERP return path {local}+TOKEN@{domain}; nothing reads the mailbox",
            "set SUBSCRIBE_BOUNCE_IMAP_* and run `subscribe bounces process --imap` from cron",
        )
    return ok("bounces", f"VERP return path {local}+TOKEN@{domain}, read over IMAP")


def _dkim(settings: Settings) -> Check:
    try:
        signer = dkim_signer(settings)
    except SubscribeError as exc:
        return fail("dkim key", str(exc), "point the variable at the key `dkim keygen` wrote")
    if signer is None:
        return fail(
            "dkim key",
            "DKIM signing is off: Gmail, Yahoo and Outlook.com refuse bulk mail without it",
            "run `subscribe dkim keygen`, publish its record, set SUBSCRIBE_DKIM_SELECTOR "
            "and SUBSCRIBE_DKIM_PRIVATE_KEY_FILE",
        )
    names = ", ".join(f"{k.algorithm} as {k.selector}._domainkey.{k.domain}" for k in signer.keys)
    return ok("dkim key", names)
