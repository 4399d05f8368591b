"""Which address an anonymous caller is counted by, behind trusted proxies or not."""

from __future__ import annotations

import ipaddress

import pytest
from fastapi import FastAPI

from rostra.lib.ratelimit import client_address, client_key, parse_networks
from tests.ratelimit.conftest import client_at
from tests.ratelimit.helpers import PLANS, USAGE, USER

PROXIES = parse_networks(["10.0.0.0/24", "192.0.2.10"])


def counted_as(peer: str | None, *forwarded: str) -> str:
    return client_key(client_address(peer, list(forwarded), PROXIES))


@pytest.mark.parametrize(
    ("peer", "forwarded", "expected"),
    [
        ("203.0.113.5", [], "ip:203.0.113.5"),
        # Not from a proxy: whatever the header says is the client's own claim.
        ("203.0.113.5", ["198.51.100.1"], "ip:203.0.113.5"),
        ("10.0.0.7", ["198.51.100.1"], "ip:198.51.100.1"),
        # The right-most address that is not a trusted proxy; the left is the client's claim.
        ("10.0.0.7", ["1.1.1.1, 198.51.100.1, 192.0.2.10"], "ip:198.51.100.1"),
        ("10.0.0.7", ["1.1.1.1", "198.51.100.1, 10.0.0.8"], "ip:198.51.100.1"),
        # Only trusted hops: the left-most of them.
        ("10.0.0.7", ["10.0.0.9, 10.0.0.8"], "ip:10.0.0.9"),
        # A malformed hop stops the walk at the last proxy trusted.
        ("10.0.0.7", ["198.51.100.1, garbage"], "ip:10.0.0.7"),
        ("10.0.0.7", [], "ip:10.0.0.7"),
        (None, [], "ip:unknown"),
        # IPv6 clients by their /64; IPv4 mapped into IPv6 as IPv4.
        ("2001:db8:1:2:3:4:5:6", [], "ip:2001:db8:1:2::/64"),
        ("::ffff:203.0.113.5", [], "ip:203.0.113.5"),
    ],
)
def test_client_address(peer: str | None, forwarded: list[str], expected: str) -> None:
    assert counted_as(peer, *forwarded) == expected


def test_nothing_is_believed_without_trusted_proxies() -> None:
    address = client_address("10.0.0.7", ["198.51.100.1"], ())
    assert address == ipaddress.ip_address("10.0.0.7")


@pytest.fixture
def settings_overrides() -> dict[str, object]:
    return {"rate_limit_plans": PLANS, "trusted_proxies": "10.0.0.0/24"}


async def test_callers_behind_a_trusted_proxy_are_counted_apart(app: FastAPI) -> None:
    async with client_at(app, "10.0.0.7") as proxy:
        first = [
            await proxy.get(USER, headers={"X-Forwarded-For": "198.51.100.1"}) for _ in range(4)
        ]
        refused = await proxy.get(USER, headers={"X-Forwarded-For": "198.51.100.1"})
        # A client forging its own X-Forwarded-For entry is still counted by its real address.
        forged = await proxy.get(USER, headers={"X-Forwarded-For": "6.6.6.6, 198.51.100.1"})
        other = await proxy.get(USER, headers={"X-Forwarded-For": "198.51.100.2"})
        usage = await proxy.get(USAGE, headers={"X-Forwarded-For": "198.51.100.2"})
    assert [r.status_code for r in first] == [401] * 4
    assert refused.status_code == 429
    assert forged.status_code == 429
    assert other.status_code == 401
    assert other.headers["X-RateLimit-Remaining"] == "3"
    assert usage.json()["client_ip"] == "198.51.100.2"


async def test_the_proxy_itself_is_counted_when_it_forwards_nothing(app: FastAPI) -> None:
    async with client_at(app, "10.0.0.7") as proxy:
        response = await proxy.get(USAGE)
    assert response.json()["client_ip"] == "10.0.0.7"
