"""Send one signed webhook POST and say how it went.

One ``WebhookSender`` per process holds one pooled ``aiohttp`` session: connections to a
receiver are kept alive between deliveries. Every new connection goes through the address
guard: the host is resolved, every address checked, and the socket opened to a checked
address, never resolving again (a DNS answer that changes in between cannot redirect it). A
kept-alive connection was checked when it was opened. TLS still verifies the certificate
against the URL's host name (SNI), since only the socket's address is chosen for it.

Redirects are not followed (a 3xx is a failed attempt), proxies from the environment are not
used (they would bypass the guard), and one attempt has ``timeout`` seconds in all: connect,
send, and the answer's status and headers.
"""

from __future__ import annotations

import asyncio
import ipaddress
import socket
import ssl
import time
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime

import aiohttp
from aiohttp.abc import AbstractResolver, ResolveResult

from rostra.lib.webhooks.addresses import (
    Resolver,
    UnsafeAddress,
    address_refusal,
    check_host,
    system_resolver,
    url_target,
)
from rostra.lib.webhooks.schedule import parse_retry_after
from rostra.lib.webhooks.signing import webhook_headers

MAX_RESPONSE_BYTES = 64 * 1024
"""A receiver's answer is read up to this much (to keep the connection), then dropped."""
ERROR_EXCERPT_CHARS = 200
"""How much of a failing answer's body is kept in the attempt's error, for the user."""
KEEPALIVE_SECONDS = 4.0
"""An idle connection is closed after this: below the 5 s after which common servers (uvicorn,
Node) close theirs, so a delivery is never written into a connection the receiver just shut."""


@dataclass(frozen=True)
class SendOutcome:
    """What one attempt came to: a status code, or an error where no answer came."""

    status_code: int | None
    duration_ms: int
    error: str | None = None
    retry_after: float | None = None
    """Seconds the receiver asked us to wait (``Retry-After``), when it said."""

    @property
    def succeeded(self) -> bool:
        return self.status_code is not None and 200 <= self.status_code < 300

    @property
    def gone(self) -> bool:
        """410: the receiver says this endpoint is gone for good."""
        return self.status_code == 410


class CheckedResolver(AbstractResolver):
    """aiohttp's resolver, through the address guard: only checked addresses come back, so
    the connector can open sockets to nothing else (aiohttp does not ask it about IP
    literals; ``WebhookSender.send`` checks those itself)."""

    def __init__(self, *, allow_private: bool, resolve: Resolver = system_resolver) -> None:
        self.allow_private = allow_private
        self._resolve = resolve

    async def resolve(
        self, host: str, port: int = 0, family: socket.AddressFamily = socket.AF_INET
    ) -> list[ResolveResult]:
        addresses = await check_host(
            host, port, allow_private=self.allow_private, resolve=self._resolve
        )
        return [
            {
                "hostname": host,
                "host": address,
                "port": port,
                "family": socket.AF_INET6 if ":" in address else socket.AF_INET,
                "proto": socket.IPPROTO_TCP,
                "flags": socket.AI_NUMERICHOST,
            }
            for address in addresses
        ]

    async def close(self) -> None:
        pass


class WebhookSender:
    """One ``aiohttp`` session (one connection pool) for every delivery of a process.

    aiohttp rather than httpx, measured: httpx spends about 2.3 ms of CPU per request here
    (its pool and anyio layers), too much for 1,000 deliveries a second on one core; aiohttp
    spends about 0.2 ms (bench/README.md has the figures).
    """

    def __init__(
        self,
        *,
        timeout: float,
        allow_private: bool,
        user_agent: str,
        max_connections: int = 100,
        resolve: Resolver = system_resolver,
        verify: ssl.SSLContext | bool = True,
    ) -> None:
        self.timeout = timeout
        self.user_agent = user_agent
        self.allow_private = allow_private
        self._resolver = CheckedResolver(allow_private=allow_private, resolve=resolve)
        self._max_connections = max_connections
        self._ssl: ssl.SSLContext | bool = (
            ssl.create_default_context() if verify is True else verify
        )
        self._session: aiohttp.ClientSession | None = None

    def _client(self) -> aiohttp.ClientSession:
        """Made on first use: a session belongs to the event loop it was made in."""
        if self._session is None:
            connector = aiohttp.TCPConnector(
                limit=self._max_connections,
                resolver=self._resolver,
                use_dns_cache=False,  # every new connection resolves and checks again
                ssl=self._ssl,
                keepalive_timeout=KEEPALIVE_SECONDS,
            )
            self._session = aiohttp.ClientSession(
                connector=connector,
                timeout=aiohttp.ClientTimeout(total=self.timeout),
                trust_env=False,  # an environment proxy would bypass the address guard
                auto_decompress=False,
                skip_auto_headers=("User-Agent",),
            )
        return self._session

    async def send(
        self,
        url: str,
        *,
        message_id: str,
        body: bytes,
        keys: Sequence[bytes],
        timestamp: int | None = None,
    ) -> SendOutcome:
        """POST ``body`` to ``url`` signed with every key; never raises for the receiver's
        faults (they come back as the outcome's error)."""
        started = time.perf_counter()
        headers = webhook_headers(
            keys,
            message_id=message_id,
            timestamp=int(time.time()) if timestamp is None else timestamp,
            body=body,
            user_agent=self.user_agent,
        )
        try:
            self._check_literal(url)
            async with asyncio.timeout(self.timeout):
                return await self._post(url, headers, body, started)
        except TimeoutError:
            error = f"timed out after {self.timeout:g} s"
        except UnsafeAddress as exc:
            error = f"refused: {exc.reason}"
        except aiohttp.ClientConnectorError as exc:
            error = f"could not connect: {exc.os_error or exc}"
        except aiohttp.ClientError as exc:
            error = f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__
        return SendOutcome(status_code=None, duration_ms=_elapsed_ms(started), error=error)

    def _check_literal(self, url: str) -> None:
        """The URL's own checks, and an IP-literal host's (names are checked by the resolver)."""
        host, _ = url_target(url)
        try:
            address = ipaddress.ip_address(host)
        except ValueError:
            return
        refusal = address_refusal(address, allow_private=self.allow_private)
        if refusal is not None:
            raise UnsafeAddress(f"the host {host} is {refusal}")

    async def _post(
        self, url: str, headers: dict[str, str], body: bytes, started: float
    ) -> SendOutcome:
        request = self._client().post(url, data=body, headers=headers, allow_redirects=False)
        async with request as response:
            # Read what fits; leaving more unread closes this connection instead of reusing it.
            received = await response.content.read(MAX_RESPONSE_BYTES)
        code = response.status
        error = None if 200 <= code < 300 else _answer_error(response, received)
        retry_after = parse_retry_after(response.headers.get("retry-after"), now=datetime.now(UTC))
        return SendOutcome(
            status_code=code,
            duration_ms=_elapsed_ms(started),
            error=error,
            retry_after=None if error is None else retry_after,
        )

    async def aclose(self) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None


def _answer_error(response: aiohttp.ClientResponse, body: bytes) -> str:
    if 300 <= response.status < 400:
        where = response.headers.get("location", "")
        return f"HTTP {response.status}: redirect to {where[:300]} not followed"
    excerpt = body[:ERROR_EXCERPT_CHARS].decode("utf-8", "replace").strip()
    return f"HTTP {response.status}" + (f": {excerpt}" if excerpt else "")


def _elapsed_ms(started: float) -> int:
    return round((time.perf_counter() - started) * 1000)
