"""Send one signed webhook POST and say how it went.

One ``WebhookSender`` per process holds one pooled ``httpx.AsyncClient``: connections to a
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
import ssl
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import httpcore
import httpx

from rostra.lib.webhooks.addresses import (
    Resolver,
    UnsafeAddress,
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


class CheckedNetworkBackend(httpcore.AsyncNetworkBackend):
    """Opens TCP connections only to addresses the guard accepted (and no Unix sockets)."""

    def __init__(self, *, allow_private: bool, resolve: Resolver = system_resolver) -> None:
        self.allow_private = allow_private
        self.resolve = resolve
        self._inner = httpcore.AnyIOBackend()

    async def connect_tcp(
        self,
        host: str,
        port: int,
        timeout: float | None = None,  # noqa: ASYNC109 (httpcore's interface)
        local_address: str | None = None,
        socket_options: Iterable[Any] | None = None,
    ) -> httpcore.AsyncNetworkStream:
        addresses = await check_host(
            host, port, allow_private=self.allow_private, resolve=self.resolve
        )
        failure: Exception | None = None
        for address in addresses:
            try:
                return await self._inner.connect_tcp(
                    address,
                    port,
                    timeout=timeout,
                    local_address=local_address,
                    socket_options=socket_options,
                )
            except (httpcore.ConnectError, httpcore.ConnectTimeout) as exc:
                failure = exc
        assert failure is not None  # check_host returns at least one address
        raise failure

    async def connect_unix_socket(
        self,
        path: str,
        timeout: float | None = None,  # noqa: ASYNC109 (httpcore's interface)
        socket_options: Iterable[Any] | None = None,
    ) -> httpcore.AsyncNetworkStream:
        raise httpcore.ConnectError("webhooks are not sent over Unix sockets")

    async def sleep(self, seconds: float) -> None:
        await self._inner.sleep(seconds)


class CheckedTransport(httpx.AsyncHTTPTransport):
    """httpx's own transport over a connection pool that uses ``CheckedNetworkBackend``.

    httpx has no public parameter for its pool's network backend, so the pool it would build
    is replaced by the same pool with the backend given.
    """

    def __init__(
        self,
        backend: httpcore.AsyncNetworkBackend,
        *,
        limits: httpx.Limits,
        verify: ssl.SSLContext | bool = True,
    ) -> None:
        super().__init__(verify=verify, limits=limits, trust_env=False)
        self._pool = httpcore.AsyncConnectionPool(
            ssl_context=httpx.create_ssl_context(verify=verify, trust_env=False),
            max_connections=limits.max_connections,
            max_keepalive_connections=limits.max_keepalive_connections,
            keepalive_expiry=limits.keepalive_expiry,
            network_backend=backend,
        )


class WebhookSender:
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
        limits = httpx.Limits(
            max_connections=max_connections,
            max_keepalive_connections=max_connections,
            keepalive_expiry=30,
        )
        backend = CheckedNetworkBackend(allow_private=allow_private, resolve=resolve)
        self.client = httpx.AsyncClient(
            transport=CheckedTransport(backend, limits=limits, verify=verify),
            timeout=httpx.Timeout(timeout),
            follow_redirects=False,
            trust_env=False,
        )

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
            url_target(url)
            async with asyncio.timeout(self.timeout):
                return await self._post(url, headers, body, started)
        except TimeoutError:
            error = f"timed out after {self.timeout:g} s"
        except UnsafeAddress as exc:
            error = f"refused: {exc.reason}"
        except httpx.TimeoutException:
            error = f"timed out after {self.timeout:g} s"
        except httpx.ConnectError as exc:
            error = f"could not connect: {exc or type(exc).__name__}"
        except httpx.HTTPError as exc:
            error = f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__
        return SendOutcome(status_code=None, duration_ms=_elapsed_ms(started), error=error)

    async def _post(
        self, url: str, headers: dict[str, str], body: bytes, started: float
    ) -> SendOutcome:
        async with self.client.stream("POST", url, headers=headers, content=body) as response:
            received = bytearray()
            async for chunk in response.aiter_raw():
                received += chunk
                if len(received) > MAX_RESPONSE_BYTES:
                    break  # leaving early closes this connection instead of reusing it
        code = response.status_code
        error = None if 200 <= code < 300 else _answer_error(response, bytes(received))
        retry_after = parse_retry_after(response.headers.get("retry-after"), now=datetime.now(UTC))
        return SendOutcome(
            status_code=code,
            duration_ms=_elapsed_ms(started),
            error=error,
            retry_after=None if error is None else retry_after,
        )

    async def aclose(self) -> None:
        await self.client.aclose()


def _answer_error(response: httpx.Response, body: bytes) -> str:
    if response.is_redirect:
        where = response.headers.get("location", "")
        return f"HTTP {response.status_code}: redirect to {where[:300]} not followed"
    excerpt = body[:ERROR_EXCERPT_CHARS].decode("utf-8", "replace").strip()
    return f"HTTP {response.status_code}" + (f": {excerpt}" if excerpt else "")


def _elapsed_ms(started: float) -> int:
    return round((time.perf_counter() - started) * 1000)
