"""Pure-ASGI request context: request id, API version, access log, metrics, last-resort 500.

One middleware instead of several ``BaseHTTPMiddleware`` layers: it sits on the hot path of
every request, so it adds two headers and one log line and nothing else.
"""

from __future__ import annotations

import re
import secrets
import time
from typing import Any

import structlog
from starlette.datastructures import MutableHeaders
from starlette.requests import Request
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from rostra.core.errors import RostraError, ServerError, UnsupportedApiVersion, error_response
from rostra.core.metrics import Metrics

API_VERSION = "v1"
_SANE_REQUEST_ID = re.compile(r"[A-Za-z0-9._:\-]{1,128}")

log = structlog.get_logger("rostra.access")


def new_request_id() -> str:
    return "req_" + secrets.token_hex(12)


class RequestContextMiddleware:
    def __init__(self, app: ASGIApp, metrics: Metrics) -> None:
        self.app = app
        self.metrics = metrics

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        request_id, api_version = None, None
        for name, value in scope["headers"]:
            if name == b"x-request-id":
                request_id = value.decode("latin-1")
            elif name == b"api-version":
                api_version = value.decode("latin-1").strip()
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
                headers = MutableHeaders(scope=message)
                headers["X-Request-ID"] = request_id
                headers["API-Version"] = API_VERSION
            await send(message)

        try:
            if api_version is not None and api_version.lower() != API_VERSION:
                await self._send_error(scope, receive, send_with_context, UnsupportedApiVersion())
            else:
                await self.app(scope, receive, send_with_context)
        except Exception as exc:
            log.exception("unhandled_exception", exc_info=exc)
            if not response_started:
                await self._send_error(scope, receive, send_with_context, ServerError())
        finally:
            elapsed = time.perf_counter() - started
            route = scope.get("route")
            template = getattr(route, "path", None) or "unmatched"
            method: str = scope["method"]
            self.metrics.requests.labels(method, template, str(status)).inc()
            self.metrics.latency.labels(template).observe(elapsed)
            log.info(
                "request",
                method=method,
                path=scope["path"],
                status=status,
                duration_ms=round(elapsed * 1000, 2),
                client=_client(scope),
            )
            structlog.contextvars.unbind_contextvars("request_id")

    @staticmethod
    async def _send_error(scope: Scope, receive: Receive, send: Send, error: RostraError) -> None:
        response = error_response(Request(scope, receive), error)
        await response(scope, receive, send)


def _client(scope: Scope) -> Any:
    client = scope.get("client")
    return client[0] if client else None
