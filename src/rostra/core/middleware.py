"""Pure-ASGI request context: request id, API version, body size, HEAD, access log, metrics, 500s.

One middleware instead of several ``BaseHTTPMiddleware`` layers: it sits on the hot path of
every request, so it reads the headers once, adds two response headers and writes one log line.

The body limit lives here rather than in FastAPI's ``max_body_size``: that one sits outside
every user middleware and answers a declared oversized body in plain text, without the envelope
or the request id.
"""

from __future__ import annotations

import itertools
import re
import secrets
import time
from typing import Any

import structlog
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.requests import Request
from starlette.routing import Router
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from rostra.core.errors import (
    PayloadTooLarge,
    RostraError,
    ServerError,
    UnsupportedApiVersion,
    error_response,
)
from rostra.core.logging import access_line
from rostra.core.metrics import Metrics

API_VERSION = "v1"
_API_VERSION_BYTES = API_VERSION.encode()
UNMATCHED_ROUTE = "unmatched"
_SANE_REQUEST_ID = re.compile(r"[A-Za-z0-9._:\-]{1,128}")
_BODILESS_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
RESPONSE_START_HOOK = "response_start_hook"
"""Key in ``scope["state"]`` of an ``async (start message) -> None`` that a dependency may leave
for this request; it is called for the response, errors included, to add headers to it. The
message's ``headers`` is then a list of the middleware's own, which the hook may extend."""

log = structlog.get_logger("rostra.access")


_REQUEST_ID_PREFIX = "req_" + secrets.token_hex(6)
_request_numbers = itertools.count()


def new_request_id() -> str:
    """``req_`` and 24 hex digits: 12 random to this process, then a counter, so ids are
    unique across processes without asking the system for randomness on every request."""
    return f"{_REQUEST_ID_PREFIX}{next(_request_numbers) & 0xFFFFFFFFFFFF:012x}"


def route_template(scope: Scope) -> str:
    """The matched route as a template (``/api/v1/users/{user_id}``), never the raw path, so
    metrics stay a bounded set of series.

    A route mounted under a prefix knows only its own path; the mount left the prefix in
    ``root_path``. A path that matched a mount but none of its routes is unmatched too.
    """
    template = getattr(scope.get("route"), "path", None)
    if isinstance(template, str):
        prefix: str = scope.get("root_path", "")
        return prefix + template
    if scope.get("endpoint") is None or isinstance(scope["endpoint"], Router):
        return UNMATCHED_ROUTE
    # A plain Starlette route (/openapi.json) or a mounted app (/docs/static/...).
    mount: str = scope.get("root_path", "")
    if mount:
        return mount + "/{path}"
    return UNMATCHED_ROUTE if scope.get("path_params") else str(scope["path"])


class RequestContextMiddleware:
    def __init__(self, app: ASGIApp, metrics: Metrics, max_body_bytes: int) -> None:
        self.app = app
        self.metrics = metrics
        self.max_body_bytes = max_body_bytes
        self.too_large_message = (
            f"The request body is larger than the limit of {max_body_bytes} bytes"
        )

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        request_id, api_version, content_length = None, None, None
        for name, value in scope["headers"]:
            if name == b"x-request-id":
                request_id = value.decode("latin-1")
            elif name == b"api-version":
                api_version = value.decode("latin-1").strip()
            elif name == b"content-length":
                content_length = value
        if request_id is None or not _SANE_REQUEST_ID.fullmatch(request_id):
            request_id = new_request_id()
        scope.setdefault("state", {})["request_id"] = request_id
        structlog.contextvars.bind_contextvars(request_id=request_id)
        status = 500
        response_started = False

        async def send_with_context(message: Message) -> None:
            nonlocal status, response_started
            if message["type"] == "http.response.start":
                response_started = True
                status = message["status"]
                message["headers"] = [
                    *message.get("headers", ()),
                    (b"x-request-id", request_id.encode("latin-1")),
                    (b"api-version", _API_VERSION_BYTES),
                ]
                hook = scope["state"].get(RESPONSE_START_HOOK)
                if hook is not None:
                    await hook(message)
            await send(message)

        method: str = scope["method"]
        # HEAD is GET without the body (RFC 9110, 9.3.2): the app answers a GET, and the
        # server, whose own scope still says HEAD, sends the head of that answer alone.
        app_scope = {**scope, "method": "GET"} if method == "HEAD" else scope
        try:
            refusal = self._refusal(api_version, content_length)
            if refusal is not None:
                await _send_error(scope, receive, send_with_context, refusal)
            elif content_length is None and method not in _BODILESS_METHODS:
                await self.app(scope, self._counting(receive), send_with_context)
            else:
                await self.app(app_scope, receive, send_with_context)
        except Exception as exc:
            log.exception("unhandled_exception", method=method, path=scope["path"], exc_info=exc)
            if not response_started:
                await _send_error(scope, receive, send_with_context, ServerError())
        finally:
            elapsed = time.perf_counter() - started
            template = route_template(app_scope)
            self.metrics.requests.observe(method, template, status, elapsed)
            access_line(
                request_id,
                method=method,
                path=scope["path"],
                status=status,
                duration_ms=round(elapsed * 1000, 2),
                client=_client(scope),
            )
            structlog.contextvars.unbind_contextvars("request_id")

    def _refusal(self, api_version: str | None, content_length: bytes | None) -> RostraError | None:
        """A request refused before it reaches a route: a body declared over the limit is
        refused before it is read."""
        if api_version is not None and api_version.lower() != API_VERSION:
            return UnsupportedApiVersion()
        if (
            content_length is not None
            and content_length.isdigit()
            and int(content_length) > self.max_body_bytes
        ):
            return PayloadTooLarge(self.too_large_message)
        return None

    def _counting(self, receive: Receive) -> Receive:
        """``receive`` for a body sent without Content-Length (chunked): counted as it arrives.

        It raises the framework's HTTP exception, which FastAPI lets through from a body read
        (any other exception there becomes a 400), for the one error handler to answer.
        """
        received = 0

        async def receive_counted() -> Message:
            nonlocal received
            message = await receive()
            received += len(message.get("body", b""))
            if received > self.max_body_bytes:
                raise StarletteHTTPException(413, self.too_large_message)
            return message

        return receive_counted


async def _send_error(scope: Scope, receive: Receive, send: Send, error: RostraError) -> None:
    response = error_response(Request(scope, receive), error)
    await response(scope, receive, send)


def _client(scope: Scope) -> Any:
    client = scope.get("client")
    return client[0] if client else None
