"""The error tree every domain raises, and the one place that turns errors into responses.

Domains subclass these bases (in their own ``errors.py`` when they need a new code) and never
build error responses themselves. ``install_error_handlers`` maps every failure, ours and the
framework's, to the contract's envelope (section 6), or to RFC 9457 problem details when the
client asks for ``application/problem+json``.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import orjson
import structlog
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.responses import Response
from starlette.routing import BaseRoute, Match, Mount

log = structlog.get_logger(__name__)

PROBLEM_JSON = "application/problem+json"


class RostraError(Exception):
    """Base of every error the API answers with; subclasses set status, code and message."""

    status_code = 500
    code = "SERVER_ERROR"
    message = "An internal server error occurred"

    def __init__(
        self,
        message: str | None = None,
        *,
        details: Sequence[Mapping[str, Any]] | None = None,
        headers: Mapping[str, str] | None = None,
        extra: Mapping[str, Any] | None = None,
    ) -> None:
        self.message = message or type(self).message
        self.details = list(details) if details else None
        self.headers = dict(headers or {})
        self.extra = dict(extra or {})
        super().__init__(self.message)


class Invalid(RostraError):
    status_code = 400
    code = "VALIDATION_ERROR"
    message = "The request data is invalid"

    @classmethod
    def field(cls, field: str, message: str) -> Invalid:
        return cls(details=[{"field": field, "message": message}])


class UnsupportedApiVersion(RostraError):
    status_code = 400
    code = "UNSUPPORTED_API_VERSION"
    message = "Only API-Version v1 is supported"


class AuthenticationRequired(RostraError):
    status_code = 401
    code = "AUTHENTICATION_REQUIRED"
    message = "Authentication is required: send a valid credential as a Bearer token"

    def __init__(self, message: str | None = None, **kwargs: Any) -> None:
        super().__init__(message, **kwargs)
        self.headers.setdefault("WWW-Authenticate", 'Bearer realm="rostra"')


class Forbidden(RostraError):
    status_code = 403
    code = "INSUFFICIENT_PERMISSIONS"
    message = "You do not have permission to do this"


class NotFound(RostraError):
    status_code = 404
    code = "RESOURCE_NOT_FOUND"
    message = "The requested resource does not exist or is not accessible"


class MethodNotAllowed(RostraError):
    status_code = 405
    code = "METHOD_NOT_ALLOWED"
    message = "This method is not allowed on this resource"


class Conflict(RostraError):
    status_code = 409
    code = "RESOURCE_CONFLICT"
    message = "The request conflicts with the current state of the resource"


class PreconditionFailed(RostraError):
    status_code = 412
    code = "PRECONDITION_FAILED"
    message = "The resource has changed since you read it (If-Match did not match)"


class PayloadTooLarge(RostraError):
    status_code = 413
    code = "PAYLOAD_TOO_LARGE"
    message = "The request body is too large"


class UnsupportedMediaType(RostraError):
    status_code = 415
    code = "UNSUPPORTED_MEDIA_TYPE"
    message = "Send the body as application/json"


class RateLimited(RostraError):
    status_code = 429
    code = "RATE_LIMIT_EXCEEDED"
    message = "Too many requests: wait before retrying"

    def __init__(self, retry_after: int, message: str | None = None, **kwargs: Any) -> None:
        super().__init__(message, extra={"retry_after": retry_after}, **kwargs)
        self.headers.setdefault("Retry-After", str(retry_after))


class ServerError(RostraError):
    pass


class ServiceUnavailable(RostraError):
    status_code = 503
    code = "SERVICE_UNAVAILABLE"
    message = "A backing service is unavailable; try again shortly"


_BY_STATUS: dict[int, type[RostraError]] = {
    400: Invalid,
    401: AuthenticationRequired,
    403: Forbidden,
    404: NotFound,
    405: MethodNotAllowed,
    409: Conflict,
    412: PreconditionFailed,
    413: PayloadTooLarge,
    415: UnsupportedMediaType,
    503: ServiceUnavailable,
}


def request_id_of(request: Request) -> str | None:
    value = request.scope.get("state", {}).get("request_id")
    return value if isinstance(value, str) else None


def error_body(error: RostraError, request_id: str | None) -> dict[str, Any]:
    body: dict[str, Any] = {"code": error.code, "message": error.message}
    if error.details:
        body["details"] = error.details
    body.update(error.extra)
    body["request_id"] = request_id
    return {"error": body}


def problem_body(error: RostraError, request_id: str | None) -> dict[str, Any]:
    """RFC 9457 problem details: ``title`` names the kind of problem, ``detail`` this one."""
    problem: dict[str, Any] = {
        "type": f"https://rostra.dev/errors/{error.code.lower()}",
        "title": type(error).message,
        "status": error.status_code,
        "detail": error.message,
        "code": error.code,
        "request_id": request_id,
    }
    if error.details:
        problem["errors"] = error.details
    problem.update(error.extra)
    return problem


def error_response(request: Request, error: RostraError) -> Response:
    request_id = request_id_of(request)
    if PROBLEM_JSON in request.headers.get("accept", ""):
        content, media_type = orjson.dumps(problem_body(error, request_id)), PROBLEM_JSON
    else:
        content, media_type = orjson.dumps(error_body(error, request_id)), "application/json"
    return Response(content, error.status_code, headers=error.headers, media_type=media_type)


def _field_name(loc: Sequence[int | str]) -> str:
    parts = [str(p) for p in loc]
    if parts and parts[0] in ("body", "query", "path", "header", "cookie"):
        parts = parts[1:] or parts
    return ".".join(parts)


def _validation_details(exc: RequestValidationError) -> tuple[str, list[dict[str, str]]]:
    """One detail per field (the first problem found with it), in the order pydantic saw them."""
    details: dict[str, dict[str, str]] = {}
    message = Invalid.message
    for item in exc.errors():
        kind = item.get("type", "")
        if kind == "json_invalid":
            message = "The request body is not valid JSON"
            details["body"] = {"field": "body", "message": "Malformed JSON"}
            continue
        if kind == "extra_forbidden":
            text = "Unknown field"
        elif kind == "missing":
            text = "This field is required"
        else:
            text = str(item.get("msg", "Invalid value")).removeprefix("Value error, ")
        field = _field_name(item.get("loc", ()))
        details.setdefault(field, {"field": field, "message": text})
    return message, list(details.values())


def _is_json_media_type(content_type: str) -> bool:
    media_type = content_type.partition(";")[0].strip().lower()
    return media_type in ("", "application/json") or media_type.endswith("+json")


async def _on_rostra_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, RostraError)
    if exc.status_code >= 500:
        log.error("request_failed", code=exc.code, reason=exc.message)
    return error_response(request, exc)


async def _on_validation_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, RequestValidationError)
    if isinstance(exc.body, bytes) and not _is_json_media_type(
        request.headers.get("content-type", "")
    ):
        # FastAPI hands a JSON route the raw bytes when the body is not declared as JSON.
        return error_response(request, UnsupportedMediaType())
    message, details = _validation_details(exc)
    return error_response(request, Invalid(message, details=details))


def _from_http_exception(exc: StarletteHTTPException) -> RostraError:
    """Starlette's and FastAPI's own HTTP errors (unknown route, wrong method, body too large,
    unparseable body) as the contract's errors. A 400 or 413 keeps the wording it was raised
    with, which says what was wrong with the request; the others have ours."""
    kind = _BY_STATUS.get(exc.status_code) or (Invalid if exc.status_code < 500 else ServerError)
    keeps_detail = kind in (Invalid, PayloadTooLarge) and isinstance(exc.detail, str)
    message = exc.detail if keeps_detail else None
    error = kind(message, headers=exc.headers)
    error.status_code = exc.status_code
    return error


_METHODS = ("GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS")


def _allowed_methods(request: Request) -> str:
    """Every method some route takes at this path. The framework names only the first route's,
    while ``GET /user`` and ``PATCH /user`` are two routes. Runs only for a 405."""
    allowed = [
        method
        for method in _METHODS
        if _takes(request.app.router.routes, {**request.scope, "root_path": "", "method": method})
    ]
    return ", ".join(allowed)


def _takes(routes: Sequence[BaseRoute], scope: dict[str, Any]) -> bool:
    """Whether a route among ``routes`` (inside mounts too) fully matches ``scope``."""
    for route in routes:
        match, child_scope = route.matches(scope)
        if isinstance(route, Mount):
            if match == Match.FULL and _takes(route.routes, {**scope, **child_scope}):
                return True
        elif match == Match.FULL:
            return True
    return False


async def _on_http_exception(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, StarletteHTTPException)
    error = _from_http_exception(exc)
    if exc.status_code == 405:
        error.headers["Allow"] = _allowed_methods(request) or error.headers.get("Allow", "")
    return error_response(request, error)


def install_error_handlers(app: FastAPI) -> None:
    app.add_exception_handler(RostraError, _on_rostra_error)
    app.add_exception_handler(RequestValidationError, _on_validation_error)
    app.add_exception_handler(StarletteHTTPException, _on_http_exception)
    # Unexpected exceptions are caught by RequestContextMiddleware, which owns the request id.
