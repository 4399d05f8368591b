"""Responses for single resources: JSON bytes, a strong ETag, and conditional requests."""

from __future__ import annotations

import hashlib
from collections.abc import Mapping

from fastapi import Request
from pydantic import BaseModel
from starlette.responses import Response

from rostra.core.errors import PreconditionFailed

JSON = "application/json"
ROUTE_ANSWER = "route_answer"
"""Key in ``scope["state"]`` of the resource response a write made (``resource_response``), for
whoever must keep it in the request's transaction (``core.deps.REQUEST_COMMIT_HOOK``)."""


def etag_of(body: bytes) -> str:
    return '"' + hashlib.blake2b(body, digest_size=16).hexdigest() + '"'


def _matches(header: str, etag: str, *, weak: bool) -> bool:
    """RFC 9110 section 13.1: If-None-Match compares weakly (a ``W/`` tag matches its strong
    twin); If-Match compares strongly (a weak tag never matches)."""
    if header.strip() == "*":
        return True
    for candidate in (part.strip() for part in header.split(",")):
        if candidate.startswith("W/"):
            if not weak:
                continue
            candidate = candidate[2:]
        if candidate == etag:
            return True
    return False


def not_modified(request: Request, etag: str) -> bool:
    header = request.headers.get("if-none-match")
    return header is not None and _matches(header, etag, weak=True)


def check_if_match(request: Request, current_etag: str) -> None:
    """Refuse a write made against a representation that has since changed (lost update)."""
    header = request.headers.get("if-match")
    if header is not None and not _matches(header, current_etag, weak=False):
        raise PreconditionFailed()


def resource_body(model: BaseModel) -> bytes:
    return model.__pydantic_serializer__.to_json(model)


def resource_response(
    request: Request,
    body: BaseModel | bytes,
    *,
    status_code: int = 200,
    headers: Mapping[str, str] | None = None,
    etag: str | None = None,
) -> Response:
    """A JSON resource with its ETag (``etag``: the body's, when the caller has it already);
    a GET whose If-None-Match matches answers 304."""
    content = body if isinstance(body, bytes) else resource_body(body)
    etag = etag or etag_of(content)
    out = {"ETag": etag, **(headers or {})}
    if request.method in ("GET", "HEAD"):
        if not_modified(request, etag):
            request.state.not_modified = True
            return Response(status_code=304, headers=out)
        return Response(content, status_code, headers=out, media_type=JSON)
    response = Response(content, status_code, headers=out, media_type=JSON)
    request.scope.setdefault("state", {})[ROUTE_ANSWER] = response
    return response
