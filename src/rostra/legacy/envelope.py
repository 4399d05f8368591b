"""The deprecated ``/api/v1/legacy`` mirror: the resource routes in seed 004's envelope.

Seed 004's clients expect every answer wrapped: ``{"status": "success", "data": ...,
"message": ...}``, lists as ``{"status": "success", "data": [...], "pagination": {...}}`` and
errors as ``{"status": "error", "error": {...}}``. ``rostra.api`` mounts the very routes of its
one list of domain routers a second time under ``<prefix>/legacy``; this pure-ASGI layer, the
outermost, rewrites every answer under those paths, whoever gave it (a route, the router's 404
and 405, the idempotency layer, the last-resort 500), and adds ``Deprecation`` (RFC 9745),
``Sunset`` (RFC 8594) and ``Link: <successor>; rel="successor-version"`` pointing at the same
address without ``/legacy``. Any other request pays one prefix comparison.

Choices (docs/api.md, "Legacy mirror"):
- A 204 (DELETE) becomes 200 with ``data: null``: the envelope needs a body, and seed 004 lists
  no 204. A 304 stays a 304 without a body; other answers that are not JSON pass unchanged.
- ``ETag`` stays the canonical representation's, so ``If-Match`` and ``If-None-Match`` work the
  same at both addresses; ``Location`` points at the canonical resource.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import UTC, datetime
from email.utils import format_datetime
from typing import Any

import orjson
from starlette.datastructures import MutableHeaders
from starlette.requests import Request
from starlette.types import ASGIApp, Message, Receive, Scope, Send

LEGACY_SEGMENT = "/legacy"
DEPRECATED_AT = datetime(2026, 12, 1, tzinfo=UTC)
"""The release that introduced the mirror already deprecated it."""
SUNSET_AT = datetime(2027, 12, 1, tzinfo=UTC)
"""A year later the mirror may be removed."""
DEPRECATION = f"@{int(DEPRECATED_AT.timestamp())}"
SUNSET = format_datetime(SUNSET_AT, usegmt=True)

CREATED = "Resource created successfully"
SUCCESS_MESSAGES = {
    "GET": "Resource retrieved successfully",
    "PUT": "Resource updated successfully",
    "PATCH": "Resource updated successfully",
    "DELETE": "Resource deleted successfully",
}
DEFAULT_MESSAGE = "Request completed successfully"


class LegacyEnvelopeMiddleware:
    def __init__(self, app: ASGIApp, canonical_prefixes: Iterable[str]) -> None:
        self.app = app
        self.mirrors = tuple(
            (prefix + LEGACY_SEGMENT + "/", prefix) for prefix in canonical_prefixes
        )
        self.starts = tuple(legacy for legacy, _ in self.mirrors)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or not scope["path"].startswith(self.starts):
            await self.app(scope, receive, send)
            return
        path: str = scope["path"]
        legacy, canonical = next(pair for pair in self.mirrors if path.startswith(pair[0]))
        successor = Request(scope).url.replace(path=canonical + "/" + path[len(legacy) :])
        await self.app(scope, receive, _Envelope(scope["method"], str(successor), send))


class _Envelope:
    """A ``send`` that holds the answer back, wraps its body and adds the deprecation headers."""

    def __init__(self, method: str, successor: str, send: Send) -> None:
        self.method = method
        self.successor = successor
        self.send = send
        self.start: Message | None = None
        self.chunks: list[bytes] = []

    async def __call__(self, message: Message) -> None:
        if message["type"] == "http.response.start":
            self.start = message
            return
        if message["type"] != "http.response.body" or self.start is None:
            await self.send(message)
            return
        self.chunks.append(message.get("body", b""))
        if message.get("more_body", False):
            return
        status: int = self.start["status"]
        headers = MutableHeaders(raw=list(self.start.get("headers", ())))
        body = b"".join(self.chunks)
        wrapped = self._wrap(status, headers, body)
        if wrapped is not None:
            status = 200 if status == 204 else status
            body = orjson.dumps(wrapped)
            headers["content-type"] = "application/json"
            headers["content-length"] = str(len(body))
        headers["deprecation"] = DEPRECATION
        headers["sunset"] = SUNSET
        successor_link = f'<{self.successor}>; rel="successor-version"'
        links = headers.get("link")
        headers["link"] = f"{links}, {successor_link}" if links else successor_link
        await self.send({**self.start, "status": status, "headers": headers.raw})
        await self.send({"type": "http.response.body", "body": body})

    def _wrap(self, status: int, headers: MutableHeaders, body: bytes) -> dict[str, Any] | None:
        """The enveloped document, or None for an answer left as it is (no body, not JSON)."""
        if status == 204:
            return {"status": "success", "data": None, "message": SUCCESS_MESSAGES["DELETE"]}
        if not body or not _is_json(headers.get("content-type", "")):
            return None
        try:
            document = orjson.loads(body)
        except orjson.JSONDecodeError:
            return None
        if status >= 400:
            error = document.get("error", document) if isinstance(document, dict) else document
            return {"status": "error", "error": error}
        if isinstance(document, dict) and document.keys() == {"data", "pagination"}:
            return {"status": "success", **document}
        message = CREATED if status == 201 else SUCCESS_MESSAGES.get(self.method, DEFAULT_MESSAGE)
        return {"status": "success", "data": document, "message": message}


def _is_json(content_type: str) -> bool:
    media_type = content_type.partition(";")[0].strip().lower()
    return media_type == "application/json" or media_type.endswith("+json")
