"""Which client address an anonymous request is counted against.

``X-Forwarded-For`` is believed only when the peer is a trusted proxy, and then only as far as
the chain of trusted proxies goes: reading from the right, the first address that is not a
trusted proxy is the client (anything to its left was written by the client itself). IPv6
clients are counted by their /64, the block one subscriber is usually given, so that cycling
through addresses in it does not buy a fresh quota.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable, Sequence

IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network
IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
IPV6_SUBSCRIBER_PREFIX = 64


def parse_networks(values: Iterable[str]) -> tuple[IPNetwork, ...]:
    return tuple(ipaddress.ip_network(value, strict=False) for value in values)


def _address(text: str) -> IPAddress | None:
    try:
        return ipaddress.ip_address(text.strip())
    except ValueError:
        return None


def _trusted(address: IPAddress, trusted: Sequence[IPNetwork]) -> bool:
    return any(address in network for network in trusted)


def client_address(
    peer: str | None, forwarded_for: Sequence[str], trusted: Sequence[IPNetwork]
) -> IPAddress | None:
    """The client's address; ``forwarded_for`` holds every X-Forwarded-For header, in order."""
    address = _address(peer) if peer else None
    if address is None or not trusted or not _trusted(address, trusted):
        return address
    hops = [hop for header in forwarded_for for hop in header.split(",") if hop.strip()]
    for hop in reversed(hops):
        forwarded = _address(hop)
        if forwarded is None:
            break  # a malformed hop: stop at the last proxy we trust
        address = forwarded
        if not _trusted(forwarded, trusted):
            break
    return address


def client_key(address: IPAddress | None) -> str:
    """The counter key for an address (``unknown`` when the server has no peer address)."""
    if address is None:
        return "ip:unknown"
    if isinstance(address, ipaddress.IPv6Address):
        if address.ipv4_mapped is not None:
            return f"ip:{address.ipv4_mapped}"
        network = ipaddress.IPv6Network((address, IPV6_SUBSCRIBER_PREFIX), strict=False)
        return f"ip:{network}"
    return f"ip:{address}"
