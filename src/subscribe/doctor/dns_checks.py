"""The DNS that receivers read before they take our mail: MX, SPF, DMARC and the DKIM key
of the From domain, and forward-confirmed reverse DNS of the relay's address.

Asked of the system resolver, or ``SUBSCRIBE_DNS_RESOLVER=HOST:PORT`` (tests point it at a
local server). The organisational domain (for DMARC's relaxed alignment) is approximated
by the last two labels: without the public suffix list, ``co.uk``-style suffixes are
judged strictly, which can only make the doctor stricter, never laxer.
"""

from __future__ import annotations

import ipaddress

import dns.exception
import dns.resolver
import dns.reversename

from subscribe.config import Settings
from subscribe.errors import SubscribeError
from subscribe.mail import dkim_keys
from subscribe.mail.dkim import DkimSigner

from .checks import Check, fail, ok, warn

SPF_LOOKUP_LIMIT = 10  # RFC 7208 4.6.4
_LOOKUP_TERMS = ("include:", "redirect=", "a", "mx", "ptr", "exists:")
_MECHANISMS_WITH_ARGUMENT = ("a:", "a/", "mx:", "mx/", "ptr:", "exists:")


class _Unanswered(Exception):
    """The resolver gave no answer at all (timeout, SERVFAIL): not the same as 'none'."""


def make_resolver(settings: Settings) -> dns.resolver.Resolver:
    if not settings.dns_resolver:
        resolver = dns.resolver.Resolver()
    else:
        host, _, port = settings.dns_resolver.rpartition(":")
        resolver = dns.resolver.Resolver(configure=False)
        resolver.nameservers = [host.strip("[]")]
        resolver.port = int(port)
    resolver.lifetime = 5.0
    return resolver


def _answers(resolver: dns.resolver.Resolver, name: str, kind: str) -> list[str] | None:
    """The records' texts (TXT strings joined); None: the name does not exist."""
    try:
        answer = resolver.resolve(name, kind, raise_on_no_answer=False)
    except dns.resolver.NXDOMAIN:
        return None
    except (dns.resolver.NoNameservers, dns.exception.Timeout) as exc:
        raise _Unanswered(f"no answer for {name} {kind}: {exc}") from None
    if answer.rrset is None:
        return []
    if kind == "TXT":
        return [b"".join(r.strings).decode("utf-8", "replace") for r in answer.rrset]
    return [r.to_text() for r in answer.rrset]


def _records(resolver: dns.resolver.Resolver, name: str, prefix: str) -> list[str]:
    return [t for t in (_answers(resolver, name, "TXT") or []) if t.lower().startswith(prefix)]


def organisational(domain: str) -> str:
    return ".".join(domain.lower().rstrip(".").split(".")[-2:])


def dns_checks(settings: Settings) -> list[Check]:
    resolver = make_resolver(settings)
    domain = settings.mail_domain
    checks = []
    for check in (_mx, _spf, _dmarc, _dkim, _reverse_dns):
        try:
            checks += check(resolver, settings, domain)
        except _Unanswered as exc:
            # A resolver that does not answer one question will not answer the others.
            where = settings.dns_resolver or "the system resolver"
            topic = check.__name__.strip("_").replace("_", " ")
            checks.append(fail(topic, f"{exc} (asked {where})", "check the resolver"))
            break
    return checks


def _mx(resolver: dns.resolver.Resolver, settings: Settings, domain: str) -> list[Check]:
    hosts = _answers(resolver, domain, "MX")
    if hosts is None:
        return [fail("mx", f"{domain} does not exist in DNS", "send from a domain you own")]
    if not hosts:
        return [
            warn(
                "mx",
                f"{domain} has no MX: replies and bounces cannot reach it",
                f"publish an MX record for {domain}",
            )
        ]
    return [ok("mx", f"{domain}: " + ", ".join(sorted(hosts)))]


def _spf(resolver: dns.resolver.Resolver, settings: Settings, domain: str) -> list[Check]:
    domains = dict.fromkeys([domain, settings.bounce_address.rpartition("@")[2].lower()])
    return [_spf_of(resolver, d) for d in domains if d]


def _spf_of(resolver: dns.resolver.Resolver, domain: str) -> Check:
    records = _records(resolver, domain, "v=spf1")
    if not records:
        return fail(
            "spf",
            f"{domain} publishes no SPF record",
            f'publish TXT "v=spf1 mx ~all" (or your relay\'s include) at {domain}',
        )
    if len(records) > 1:
        return fail(
            "spf",
            f"{domain} has {len(records)} SPF records (a permanent error)",
            "merge them into one",
        )
    record = records[0]
    terms = record.lower().split()[1:]
    if "+all" in terms or "all" in terms:
        return fail(
            "spf",
            f"{domain}: {record!r} lets anyone send as {domain} (+all)",
            "end the record with ~all or -all",
        )
    try:
        lookups = _spf_lookups(resolver, record, {domain})
    except ValueError as exc:
        return fail("spf", f"{domain}: {exc}", "fix or remove that include")
    if lookups > SPF_LOOKUP_LIMIT:
        return fail(
            "spf",
            f"{domain}: {lookups} DNS lookups, more than SPF's limit of 10",
            "flatten includes or drop mechanisms you do not send from",
        )
    if not any(t.endswith("all") and t[0] in "-~" for t in terms) and "redirect=" not in record:
        return warn(
            "spf",
            f"{domain}: {record!r} ends without ~all or -all",
            "end the record with ~all or -all",
        )
    return ok("spf", f"{domain}: {record!r} ({lookups} lookups)")


def _spf_lookups(resolver: dns.resolver.Resolver, record: str, seen: set[str]) -> int:
    """The DNS lookups evaluating ``record`` costs, includes and redirects followed."""
    count = 0
    for term in record.lower().split()[1:]:
        term = term.lstrip("+-~?")
        if not term.startswith(_LOOKUP_TERMS) or term.startswith("all"):
            continue
        if term in ("a", "mx", "ptr") or term.startswith(_MECHANISMS_WITH_ARGUMENT):
            count += 1
        elif term.startswith(("include:", "redirect=")):
            target = term.split(":", 1)[1] if ":" in term else term.split("=", 1)[1]
            count += 1
            if target in seen or len(seen) > 4 * SPF_LOOKUP_LIMIT:  # loops, explosions
                continue
            seen.add(target)
            found = _records(resolver, target, "v=spf1")
            if not found:
                raise ValueError(f"{term} names a domain without an SPF record")
            count += _spf_lookups(resolver, found[0], seen)
    return count


def _dmarc(resolver: dns.resolver.Resolver, settings: Settings, domain: str) -> list[Check]:
    found_at, records = domain, _records(resolver, f"_dmarc.{domain}", "v=dmarc1")
    if not records and organisational(domain) != domain:
        found_at = organisational(domain)
        records = _records(resolver, f"_dmarc.{found_at}", "v=dmarc1")
    if not records:
        return [
            fail(
                "dmarc",
                f"no DMARC record at _dmarc.{domain}",
                f'publish TXT "v=DMARC1; p=none; rua=mailto:dmarc@{domain}" at '
                f"_dmarc.{domain}, then tighten p= once reports look right",
            )
        ]
    tags = {}
    for part in records[0].split(";"):
        name, _, value = part.partition("=")
        tags[name.strip().lower()] = value.strip().lower()
    policy = tags.get("p", "")
    if policy not in ("none", "quarantine", "reject"):
        return [
            fail(
                "dmarc",
                f"_dmarc.{found_at} has no valid policy (p={policy or '?'})",
                "add p=none, p=quarantine or p=reject",
            )
        ]
    checks = [ok("dmarc", f"_dmarc.{found_at}: p={policy}")]
    checks.append(_alignment(settings, domain, tags))
    return checks


def _aligned(a: str, b: str, mode: str) -> bool:
    return a == b if mode == "s" else organisational(a) == organisational(b)


def _alignment(settings: Settings, domain: str, tags: dict[str, str]) -> Check:
    dkim_domain = settings.dkim_signing_domain if settings.dkim_selector else ""
    if dkim_domain and _aligned(dkim_domain, domain, tags.get("adkim", "r")):
        return ok("alignment", f"DKIM d={dkim_domain} aligns with From {domain}")
    envelope = (settings.bounce_address or settings.mail_from_address).rpartition("@")[2].lower()
    if _aligned(envelope, domain, tags.get("aspf", "r")):
        return warn(
            "alignment",
            f"only SPF aligns (return path @{envelope})",
            "sign with DKIM under the From domain: SPF breaks on forwarding",
        )
    return fail(
        "alignment",
        f"neither DKIM ({dkim_domain or 'off'}) nor SPF (@{envelope}) "
        f"aligns with From {domain}: DMARC fails",
        "set SUBSCRIBE_DKIM_DOMAIN to the From domain",
    )


def _dkim(resolver: dns.resolver.Resolver, settings: Settings, domain: str) -> list[Check]:
    try:
        signer: DkimSigner | None = dkim_keys.dkim_signer(settings)
    except SubscribeError:
        return []  # the settings check says why
    if signer is None:
        return []
    checks = []
    for key in signer.keys:
        name = f"{key.selector}._domainkey.{key.domain}"
        records = _records(resolver, name, "v=dkim1") or [
            t for t in (_answers(resolver, name, "TXT") or []) if "p=" in t
        ]
        expected = dkim_keys.record_value(key.private_key)
        if not records:
            checks.append(
                fail(
                    "dkim dns", f"no key published at {name}", f'publish TXT "{expected}" at {name}'
                )
            )
            continue
        try:
            published = dkim_keys.parse_record(records[0])
        except ValueError as exc:
            checks.append(fail("dkim dns", f"{name}: {exc}", f'publish TXT "{expected}"'))
            continue
        if not published.public:
            checks.append(
                fail("dkim dns", f"{name} is revoked (empty p=)", f'publish TXT "{expected}"')
            )
        elif dkim_keys.matches(key, published):
            checks.append(ok("dkim dns", f"{name} verifies our {key.algorithm} signature"))
        else:
            checks.append(
                fail(
                    "dkim dns",
                    f"{name} does not verify our signature (another key)",
                    f'publish TXT "{expected}" (or point the key file at the key published there)',
                )
            )
    return checks


def _relay_addresses(resolver: dns.resolver.Resolver, host: str) -> list[str]:
    try:
        return [str(ipaddress.ip_address(host.strip("[]")))]
    except ValueError:
        pass
    found = []
    for kind in ("A", "AAAA"):
        found += _answers(resolver, host, kind) or []
    return found


def _reverse_dns(resolver: dns.resolver.Resolver, settings: Settings, domain: str) -> list[Check]:
    host = settings.smtp_host
    addresses = _relay_addresses(resolver, host)
    if not addresses:
        return [
            fail(
                "reverse dns",
                f"the relay {host} has no address in DNS",
                "check SUBSCRIBE_SMTP_HOST",
            )
        ]
    checks = []
    for address in addresses:
        names = _answers(resolver, dns.reversename.from_address(address).to_text(), "PTR") or []
        if not names:
            checks.append(
                fail(
                    "reverse dns",
                    f"{address} (the relay) has no PTR record",
                    "ask whoever runs the address to set a PTR to the relay's name",
                )
            )
            continue
        confirmed = [
            n
            for n in names
            if address in (_answers(resolver, n, "A") or []) + (_answers(resolver, n, "AAAA") or [])
        ]
        if confirmed:
            checks.append(
                ok("reverse dns", f"{address} -> {confirmed[0].rstrip('.')} -> {address}")
            )
        else:
            checks.append(
                fail(
                    "reverse dns",
                    f"{address} -> {names[0].rstrip('.')}, which does "
                    f"not resolve back to {address}",
                    f"give {names[0].rstrip('.')} an A/AAAA record of {address}, or fix the PTR",
                )
            )
    return checks
