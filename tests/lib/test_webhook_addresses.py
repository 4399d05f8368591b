"""The SSRF guard: every refused address class, in every form, with and without allow_private."""

from __future__ import annotations

from ipaddress import ip_address

import pytest

from rostra.lib.webhooks.addresses import UnresolvableHost, UnsafeAddress, check_url

PUBLIC = ["8.8.8.8", "1.1.1.1", "[2606:4700:4700::1111]", "[::ffff:8.8.8.8]", "[64:ff9b::808:808]"]

# Refused unless allow_private: loopback, private, link-local, unique-local, shared, documentation.
PRIVATE = [
    "127.0.0.1",
    "127.1.2.3",
    "10.0.0.1",
    "172.16.5.4",
    "192.168.1.1",
    "169.254.1.1",
    "100.64.0.1",
    "198.18.0.1",
    "[::1]",
    "[fe80::1]",
    "[fc00::1]",
    "[fd12:3456::1]",
    "[fec0::1]",
    "[2001:db8::1]",
    "[::ffff:127.0.0.1]",
    "[::ffff:10.1.2.3]",
    "[::ffff:7f00:1]",
    "[::127.0.0.1]",
    "[64:ff9b::7f00:1]",
    "[64:ff9b:1::a00:1]",
    "[2002:7f00:1::]",
    "[2002:c0a8:101::1]",
]

# Refused whatever allow_private says.
ALWAYS = [
    "169.254.169.254",
    "169.254.170.2",
    "100.100.100.200",
    "168.63.129.16",
    "192.0.0.192",
    "[fd00:ec2::254]",
    "[::ffff:169.254.169.254]",
    "[::ffff:a9fe:a9fe]",
    "[64:ff9b::a9fe:a9fe]",
    "[2002:a9fe:a9fe::]",
    "0.0.0.0",
    "0.1.2.3",
    "[::]",
    "224.0.0.1",
    "239.255.255.250",
    "[ff02::1]",
    "240.0.0.1",
    "255.255.255.255",
    "[::ffff:0.0.0.0]",
]


async def no_dns(host: str, port: int) -> list[str]:
    raise AssertionError(f"an IP literal must not be resolved ({host})")


@pytest.mark.parametrize("host", PUBLIC)
async def test_public_addresses_pass(host: str) -> None:
    addresses = await check_url(f"https://{host}/hook", allow_private=False, resolve=no_dns)
    assert [ip_address(a) for a in addresses] == [ip_address(host.strip("[]"))]


@pytest.mark.parametrize("host", PRIVATE)
async def test_private_addresses_pass_only_when_allowed(host: str) -> None:
    with pytest.raises(UnsafeAddress) as refused:
        await check_url(f"http://{host}:8080/", allow_private=False, resolve=no_dns)
    assert host.strip("[]") in refused.value.reason
    assert await check_url(f"http://{host}:8080/", allow_private=True, resolve=no_dns)


@pytest.mark.parametrize("host", ALWAYS)
@pytest.mark.parametrize("allow_private", [False, True])
async def test_metadata_unspecified_multicast_reserved_never_pass(
    host: str, allow_private: bool
) -> None:
    with pytest.raises(UnsafeAddress):
        await check_url(f"http://{host}/", allow_private=allow_private, resolve=no_dns)


async def test_the_reason_names_the_kind_of_address() -> None:
    with pytest.raises(UnsafeAddress, match="cloud metadata"):
        await check_url("http://[::ffff:169.254.169.254]/", allow_private=True)
    with pytest.raises(UnsafeAddress, match="loopback"):
        await check_url("http://127.0.0.1/", allow_private=False)


async def test_a_name_is_judged_by_every_address_it_resolves_to() -> None:
    async def mixed(host: str, port: int) -> list[str]:
        assert (host, port) == ("hooks.example.com", 443)
        return ["93.184.216.34", "10.0.0.7", "93.184.216.34"]

    with pytest.raises(UnsafeAddress, match=r"resolves to 10\.0\.0\.7, which is a private"):
        await check_url("https://hooks.example.com/x", allow_private=False, resolve=mixed)

    async def public(host: str, port: int) -> list[str]:
        return ["93.184.216.34", "2606:2800:220:1::1%eth0", "93.184.216.34"]

    addresses = await check_url("https://hooks.example.com/x", allow_private=False, resolve=public)
    assert addresses == ["93.184.216.34", "2606:2800:220:1::1"]


async def test_localhost_resolves_to_loopback_for_real() -> None:
    with pytest.raises(UnsafeAddress, match="loopback"):
        await check_url("http://localhost:9/", allow_private=False)
    assert "127.0.0.1" in await check_url("http://localhost:9/", allow_private=True)


async def test_numeric_host_forms_are_resolved_and_refused() -> None:
    for host in ("2130706433", "0x7f000001", "017700000001", "127.1"):
        with pytest.raises(UnsafeAddress, match="loopback"):
            await check_url(f"http://{host}/", allow_private=False)


async def test_an_unresolvable_host_is_refused() -> None:
    with pytest.raises(UnresolvableHost):
        await check_url("https://no-such-host.invalid/", allow_private=True)

    async def empty(host: str, port: int) -> list[str]:
        return []

    with pytest.raises(UnresolvableHost):
        await check_url("https://example.com/", allow_private=True, resolve=empty)


@pytest.mark.parametrize(
    ("url", "reason"),
    [
        ("ftp://example.com/", "http"),
        ("file:///etc/passwd", "http"),
        ("gopher://127.0.0.1:6379/", "http"),
        ("example.com/hook", "http"),
        ("https://user:pass@8.8.8.8/", "user name or password"),
        ("https://user@8.8.8.8/", "user name or password"),
        ("https://8.8.8.8:0/", "port"),
        ("https://8.8.8.8:99999/", "malformed"),
        ("https:///path", "no host"),
    ],
)
async def test_malformed_urls_are_refused(url: str, reason: str) -> None:
    with pytest.raises(UnsafeAddress, match=reason):
        await check_url(url, allow_private=True, resolve=no_dns)


async def test_the_port_defaults_by_scheme() -> None:
    seen: list[int] = []

    async def record(host: str, port: int) -> list[str]:
        seen.append(port)
        return ["8.8.8.8"]

    await check_url("http://hooks.example.com/", allow_private=False, resolve=record)
    await check_url("https://hooks.example.com/", allow_private=False, resolve=record)
    await check_url("https://hooks.example.com:8443/", allow_private=False, resolve=record)
    assert seen == [80, 443, 8443]
