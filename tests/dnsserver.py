"""A real DNS server for tests: dnslib's UDP and TCP servers on 127.0.0.1, answering from a
zone the test holds (and may change while the server runs), so no test reaches the network.

``records`` maps (name, type) to values: ``A`` and ``AAAA`` addresses, ``MX`` as
"PRIORITY HOST", ``TXT`` as a string (split into 255-character strings on the wire, as a
real server would send a long DKIM key), ``PTR`` and ``CNAME`` host names. A name with no
record of any type answers NXDOMAIN; a known name without the asked type, an empty answer.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import dns.resolver
from dnslib import AAAA, CNAME, MX, PTR, QTYPE, RCODE, RR, TXT, A, DNSRecord
from dnslib.server import BaseResolver, DNSLogger, DNSServer

from subscribe.devmail import free_port

Zone = dict[tuple[str, str], list[str]]


def _rdata(kind: str, value: str) -> Any:
    if kind == "A":
        return A(value)
    if kind == "AAAA":
        return AAAA(value)
    if kind == "MX":
        priority, host = value.split()
        return MX(host, int(priority))
    if kind == "TXT":
        return TXT([value[i : i + 255] for i in range(0, len(value), 255)] or [""])
    if kind == "PTR":
        return PTR(value)
    if kind == "CNAME":
        return CNAME(value)
    raise ValueError(f"no such record type in the test zone: {kind}")


class _ZoneResolver(BaseResolver):
    def __init__(self, zone: Zone) -> None:
        self.zone = zone
        self.queries: list[tuple[str, str]] = []

    def resolve(self, request: DNSRecord, handler: Any) -> DNSRecord:
        reply = request.reply()
        name = str(request.q.qname).rstrip(".").lower()
        kind = QTYPE[request.q.qtype]
        self.queries.append((name, kind))
        if not any(known == name for known, _ in self.zone):
            reply.header.rcode = RCODE.NXDOMAIN
            return reply
        for value in self.zone.get((name, kind), []):
            reply.add_answer(RR(name + ".", getattr(QTYPE, kind), rdata=_rdata(kind, value)))
        return reply


class DNSTestServer:
    def __init__(self, zone: Zone | None = None) -> None:
        self.zone: Zone = {}
        for (name, kind), values in (zone or {}).items():
            self.zone[(name.lower(), kind)] = list(values)
        self.host = "127.0.0.1"
        self.port = free_port()
        self._resolver = _ZoneResolver(self.zone)
        quiet = DNSLogger(log="-request,-reply,-truncated,-error", prefix=False)
        self._servers = [
            DNSServer(self._resolver, address=self.host, port=self.port, logger=quiet),
            DNSServer(self._resolver, address=self.host, port=self.port, tcp=True, logger=quiet),
        ]

    @property
    def address(self) -> str:
        """What ``SUBSCRIBE_DNS_RESOLVER`` takes."""
        return f"{self.host}:{self.port}"

    @property
    def queries(self) -> list[tuple[str, str]]:
        return self._resolver.queries

    def set(self, name: str, kind: str, *values: str) -> None:
        self.zone[(name.lower(), kind)] = list(values)

    def start(self) -> DNSTestServer:
        for server in self._servers:
            server.start_thread()
        return self

    def stop(self) -> None:
        for server in self._servers:
            server.stop()
            server.server.server_close()

    def resolver(self) -> dns.resolver.Resolver:
        resolver = dns.resolver.Resolver(configure=False)
        resolver.nameservers = [self.host]
        resolver.port = self.port
        resolver.lifetime = 3
        return resolver

    def txt(self, name: bytes, timeout: int = 5) -> bytes | None:
        """dkimpy's ``dnsfunc``: the TXT record at ``name``, asked of this server over UDP."""
        try:
            answer = self.resolver().resolve(name.decode().rstrip("."), "TXT")
        except (dns.resolver.NXDOMAIN, dns.resolver.NoAnswer):
            return None
        return b"".join(answer[0].strings)


@contextmanager
def dns_server(zone: Zone | None = None) -> Iterator[DNSTestServer]:
    server = DNSTestServer(zone).start()
    try:
        yield server
    finally:
        server.stop()
