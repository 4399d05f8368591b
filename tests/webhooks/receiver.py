"""A real HTTP receiver on 127.0.0.1 for delivery tests: uvicorn on a free port, served by the
test's own event loop (a thread of its own would fight the test for the GIL and add tens of
milliseconds to every request).

It records every request (headers, exact body, arrival time) and answers by a script: a list
of replies used in order (then 200), each with a status, headers and a delay before answering.
"""

from __future__ import annotations

import asyncio
import socket
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from types import TracebackType
from typing import Any

import uvicorn

Scope = dict[str, Any]
Message = dict[str, Any]


@dataclass(frozen=True)
class Received:
    path: str
    headers: dict[str, str]
    body: bytes
    at: float
    """Wall-clock arrival time (``time.time()``)."""
    peer_port: int
    """The sender's port: requests over one kept-alive connection share it."""

    @property
    def webhook_id(self) -> str:
        return self.headers["webhook-id"]


@dataclass(frozen=True)
class Reply:
    status: int = 200
    headers: dict[str, str] = field(default_factory=dict)
    delay: float = 0.0
    body: bytes = b"ok"


class Receiver:
    def __init__(
        self, default: Reply | None = None, *, tls: tuple[Path, Path] | None = None
    ) -> None:
        """``tls``: a certificate and key file to serve HTTPS with."""
        self.default = default or Reply()
        self.scheme = "https" if tls else "http"
        self.received: list[Received] = []
        self.answering = 0
        """Requests being answered right now; ``most_at_once`` is the most there ever were."""
        self.most_at_once = 0
        self._script: list[Reply] = []
        self._socket = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self._socket.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        # Accepted sockets inherit it: without, Nagle holds each answer's body for ~40 ms.
        self._socket.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self._socket.bind(("127.0.0.1", 0))
        self.port: int = self._socket.getsockname()[1]
        config = uvicorn.Config(
            self._app,
            interface="asgi3",
            log_level="warning",
            access_log=False,
            lifespan="off",
            timeout_graceful_shutdown=0.5,  # a scripted slow answer must not hold up the test
            ssl_certfile=str(tls[0]) if tls else None,
            ssl_keyfile=str(tls[1]) if tls else None,
        )
        self._server = uvicorn.Server(config)
        self._task: asyncio.Task[None] | None = None

    def url(self, path: str = "/hook", host: str = "127.0.0.1") -> str:
        return f"{self.scheme}://{host}:{self.port}{path}"

    def script(self, *replies: Reply) -> None:
        """Answer the next requests with these, in order; then with the default."""
        self._script.extend(replies)

    def requests(self) -> list[Received]:
        return list(self.received)

    async def wait_for(self, count: int, within: float = 10.0) -> list[Received]:
        """The requests so far once there are at least ``count``; fails after ``within`` seconds."""
        deadline = time.monotonic() + within
        while len(self.received) < count:
            if time.monotonic() > deadline:
                raise AssertionError(
                    f"the receiver got {len(self.received)} requests, expected {count}"
                )
            await asyncio.sleep(0.01)
        return self.requests()

    async def __aenter__(self) -> Receiver:
        self._task = asyncio.create_task(self._server.serve(sockets=[self._socket]))
        deadline = time.monotonic() + 10
        while not self._server.started:
            if time.monotonic() > deadline or self._task.done():
                raise RuntimeError("the receiver did not start")
            await asyncio.sleep(0.005)
        return self

    async def __aexit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self._server.should_exit = True
        await self._task

    def _next_reply(self) -> Reply:
        return self._script.pop(0) if self._script else self.default

    async def _app(
        self,
        scope: Scope,
        receive: Callable[[], Awaitable[Message]],
        send: Callable[[Message], Awaitable[None]],
    ) -> None:
        assert scope["type"] == "http"
        body = bytearray()
        while True:
            message = await receive()
            if message["type"] == "http.disconnect":
                return  # the sender went away mid-request (killed): nothing was received
            body += message.get("body", b"")
            if not message.get("more_body"):
                break
        arrived = time.time()
        headers = {
            key.decode("latin-1"): value.decode("latin-1") for key, value in scope["headers"]
        }
        peer_port = scope["client"][1] if scope.get("client") else 0
        self.received.append(Received(scope["path"], headers, bytes(body), arrived, peer_port))
        reply = self._next_reply()
        self.answering += 1
        self.most_at_once = max(self.most_at_once, self.answering)
        try:
            if reply.delay:
                await asyncio.sleep(reply.delay)
        finally:
            self.answering -= 1
        raw_headers = [(k.encode(), v.encode()) for k, v in reply.headers.items()]
        await send({"type": "http.response.start", "status": reply.status, "headers": raw_headers})
        await send({"type": "http.response.body", "body": reply.body})
