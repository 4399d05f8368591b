"""The SSRF guard: which webhook URLs the server may connect to.

A URL is checked by resolving its host and judging every address it resolves to (one bad
record refuses the URL, so a DNS answer cannot smuggle an internal address in beside a public
one). The sender connects to an address this returned, never resolving again, so a DNS answer
that changes between the check and the connection (rebinding) cannot redirect it.

IPv6 forms that carry an IPv4 address (mapped ``::ffff:a.b.c.d``, compatible ``::a.b.c.d``,
6to4 ``2002::/16``, NAT64 ``64:ff9b::/96`` and ``64:ff9b:1::/48``, Teredo) are judged by the
IPv4 address inside as well: ``::ffff:169.254.169.254`` is the metadata service too.

``allow_private`` (for development and tests) lets loopback, private, link-local and other
non-public unicast addresses through; cloud metadata, unspecified, multicast and reserved
addresses are refused whatever it says.
"""

from __future__ import annotations

import asyncio
import ipaddress
import socket
from collections.abc import Awaitable, Callable
from urllib.parse import urlsplit

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address

Resolver = Callable[[str, int], Awaitable[list[str]]]
"""Given a host name and port, the addresses it resolves to (tests inject their own)."""

METADATA_ADDRESSES: frozenset[IPAddress] = frozenset(
    ipaddress.ip_address(address)
    for address in (
        "169.254.169.254",  # AWS, GCP, Azure, DigitalOcean, OpenStack instance metadata
        "169.254.169.253",  # AWS VPC DNS
        "169.254.169.123",  # AWS time sync
        "169.254.170.2",  # AWS ECS task metadata
        "169.254.170.23",  # AWS EKS pod identity
        "fd00:ec2::254",  # AWS instance metadata over IPv6
        "fd00:ec2::253",  # AWS VPC DNS over IPv6
        "fd00:ec2::23",  # AWS EKS pod identity over IPv6
        "100.100.100.200",  # Alibaba Cloud metadata
        "168.63.129.16",  # Azure wire server
        "192.0.0.192",  # Oracle Cloud metadata
    )
)
"""Refused even when private addresses are allowed: they hand out cloud credentials."""

ALLOWED_SCHEMES = ("http", "https")
DEFAULT_PORTS = {"http": 80, "https": 443}

_MAPPED = ipaddress.ip_network("::ffff:0:0/96")
_COMPATIBLE = ipaddress.ip_network("::/96")
_NAT64 = (ipaddress.ip_network("64:ff9b::/96"), ipaddress.ip_network("64:ff9b:1::/48"))
_UNIQUE_LOCAL = ipaddress.ip_network("fc00::/7")
_THIS_NETWORK = ipaddress.ip_network("0.0.0.0/8")
_BROADCAST = ipaddress.ip_address("255.255.255.255")


class UnsafeAddress(ValueError):
    """The URL may not be delivered to; ``reason`` says why in a sentence for the user."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


class UnresolvableHost(UnsafeAddress):
    """The host has no address (a DNS failure, perhaps a passing one)."""


def address_refusal(address: IPAddress, *, allow_private: bool) -> str | None:
    """Why the server must not connect to ``address`` (a phrase such as "a loopback
    address"), or None when it may."""
    if address in METADATA_ADDRESSES:
        return "a cloud metadata address"
    if isinstance(address, ipaddress.IPv6Address):
        return _ipv6_refusal(address, allow_private=allow_private)
    return _ipv4_refusal(address, allow_private=allow_private)


def _ipv4_refusal(address: ipaddress.IPv4Address, *, allow_private: bool) -> str | None:
    if address in _THIS_NETWORK:
        return "an unspecified address"
    if address.is_multicast:
        return "a multicast address"
    if address.is_reserved or address == _BROADCAST:
        return "a reserved address"
    if allow_private:
        return None
    if address.is_loopback:
        return "a loopback address"
    if address.is_link_local:
        return "a link-local address"
    if address.is_private:
        return "a private address"
    if not address.is_global:
        return "not a public address"
    return None


def _ipv6_refusal(address: ipaddress.IPv6Address, *, allow_private: bool) -> str | None:
    if address.is_unspecified:
        return "an unspecified address"
    if address.is_loopback:
        return None if allow_private else "a loopback address"
    embedded = embedded_ipv4(address)
    for inner in embedded:
        refusal = address_refusal(inner, allow_private=allow_private)
        if refusal is not None:
            return f"{refusal} (as {inner} inside an IPv6 address)"
    if embedded and _carries_ipv4_only(address):
        # ::/8 is "reserved" to ipaddress, but these forms reach the IPv4 address just judged.
        return None
    if address.is_multicast:
        return "a multicast address"
    if address.is_reserved:
        return "a reserved address"
    if allow_private:
        return None
    if address.is_link_local:
        return "a link-local address"
    if address.is_site_local or address in _UNIQUE_LOCAL:
        return "a unique-local address"
    if address.is_private:
        return "a private address"
    if not address.is_global:
        return "not a public address"
    return None


def _carries_ipv4_only(address: ipaddress.IPv6Address) -> bool:
    return address in _MAPPED or address in _COMPATIBLE or any(address in n for n in _NAT64)


def embedded_ipv4(address: ipaddress.IPv6Address) -> list[ipaddress.IPv4Address]:
    """The IPv4 addresses an IPv6 address leads to (mapped, compatible, 6to4, NAT64, Teredo)."""
    if address.ipv4_mapped is not None:
        return [address.ipv4_mapped]
    if address.sixtofour is not None:
        return [address.sixtofour]
    if address.teredo is not None:
        server, client = address.teredo
        return [server, client]
    if address in _COMPATIBLE or any(address in network for network in _NAT64):
        return [ipaddress.IPv4Address(int(address) & 0xFFFFFFFF)]
    return []


async def system_resolver(host: str, port: int) -> list[str]:
    """The operating system's resolver, without blocking the event loop."""
    loop = asyncio.get_running_loop()
    try:
        infos = await loop.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except (socket.gaierror, UnicodeError) as exc:
        raise UnresolvableHost(f"the host {host} cannot be resolved ({exc})") from None
    return [str(info[4][0]) for info in infos]


async def check_url(
    url: str, *, allow_private: bool, resolve: Resolver = system_resolver
) -> list[str]:
    """The addresses ``url``'s host resolves to, all of them checked, in the resolver's order.

    Raises ``UnsafeAddress`` for a URL the server must not call: not http(s), with
    credentials, port 0, no host, or a host with any refused address.
    """
    host, port = url_target(url)
    return await check_host(host, port, allow_private=allow_private, resolve=resolve)


async def check_host(
    host: str, port: int, *, allow_private: bool, resolve: Resolver = system_resolver
) -> list[str]:
    """The checked addresses of ``host`` (a name or an IP literal), as ``check_url`` judges them."""
    try:
        literal: IPAddress | None = ipaddress.ip_address(host)
    except ValueError:
        literal = None
    resolved = [str(literal)] if literal is not None else await resolve(host, port)
    addresses = list(dict.fromkeys(_strip_scope(address) for address in resolved))
    if not addresses:
        raise UnresolvableHost(f"the host {host} has no address")
    for text in addresses:
        refusal = address_refusal(ipaddress.ip_address(text), allow_private=allow_private)
        if refusal is not None:
            where = "is" if literal is not None else f"resolves to {text}, which is"
            raise UnsafeAddress(f"the host {host} {where} {refusal}")
    return addresses


def url_target(url: str) -> tuple[str, int]:
    """The host and port a webhook URL points at; ``UnsafeAddress`` for a malformed one."""
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError as exc:
        raise UnsafeAddress(f"the URL is malformed ({exc})") from None
    scheme = parts.scheme.lower()
    if scheme not in ALLOWED_SCHEMES:
        raise UnsafeAddress("the URL must start with http:// or https://")
    if parts.username is not None or parts.password is not None:
        raise UnsafeAddress("the URL must not carry a user name or password")
    if not parts.hostname:
        raise UnsafeAddress("the URL has no host")
    if port == 0:
        raise UnsafeAddress("the URL's port must not be 0")
    return parts.hostname, port or DEFAULT_PORTS[scheme]


def _strip_scope(address: str) -> str:
    """``fe80::1%eth0`` is judged (and connected to) as the address before the zone."""
    return address.partition("%")[0]
