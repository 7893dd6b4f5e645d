"""Who is asking: the client address, read through trusted reverse proxies only.

``X-Forwarded-For`` is a list any client can start with made-up entries; each proxy appends
the address it received the request from. So the list is read from the right, and only
while the hop we are looking at is one of our own proxies (``SUBSCRIBE_TRUSTED_PROXIES``,
addresses or networks). The first address not ours is the client. A request that did not
come from a trusted proxy is judged by its socket address alone, whatever it claims.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable, Sequence

from subscribe.errors import ConfigError

IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network
IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address

UNKNOWN = "unknown"


def parse_networks(entries: Iterable[str]) -> list[IPNetwork]:
    networks = []
    for entry in entries:
        try:
            networks.append(ipaddress.ip_network(entry, strict=False))
        except ValueError:
            raise ConfigError(
                f"SUBSCRIBE_TRUSTED_PROXIES: {entry!r} is not an IP address or network"
            ) from None
    return networks


def _parse_ip(text: str) -> IPAddress | None:
    try:
        address = ipaddress.ip_address(text.strip())
    except ValueError:
        return None
    # An IPv4 client seen through an IPv6 socket (::ffff:a.b.c.d) is that IPv4 client.
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        return address.ipv4_mapped
    return address


class ClientIPResolver:
    def __init__(self, trusted: Sequence[IPNetwork]) -> None:
        self._trusted = list(trusted)

    def _is_trusted(self, address: IPAddress) -> bool:
        return any(address in network for network in self._trusted)

    def resolve(self, peer: str | None, forwarded_for: Sequence[str]) -> str:
        """The client's address as text; ``peer`` is the socket's, ``forwarded_for`` the
        ``X-Forwarded-For`` header values in the order received."""
        current = _parse_ip(peer) if peer else None
        if current is None:
            return peer or UNKNOWN  # a unix socket or a test transport: nothing to go on
        hops = [hop for value in forwarded_for for hop in value.split(",") if hop.strip()]
        while self._is_trusted(current) and hops:
            previous = _parse_ip(hops.pop())
            if previous is None:
                break  # garbage from a trusted proxy: stop at the last address we trust
            current = previous
        return str(current)


def limit_key(client_ip: str) -> str:
    """The rate-limit bucket for a client: one IPv4 address, or one IPv6 /64.

    An IPv6 subscriber usually holds a whole /64 and could rotate addresses inside it at
    will, so limiting single IPv6 addresses would limit nothing.
    """
    address = _parse_ip(client_ip)
    if isinstance(address, ipaddress.IPv6Address):
        return str(ipaddress.IPv6Network((address, 64), strict=False))
    return client_ip
