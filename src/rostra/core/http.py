"""Responses for single resources: JSON bytes, a strong ETag, and conditional requests."""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from functools import lru_cache

from fastapi import Request
from pydantic import BaseModel
from starlette.datastructures import URLPath
from starlette.requests import HTTPConnection
from starlette.responses import Response
from starlette.types import Scope

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


def resource_url(request: Request, name: str, **ids: int) -> str:
    """``str(request.url_for(name, **ids))`` for a route whose path parameters are ids: the
    absolute URL of a resource, a create's ``Location``.

    Starlette builds it anew each time: the app's router asks its mounts in turn, the route
    fills in its path, and the base URL is parsed out of the request and joined to it. In a
    served process that was several per cent of a create (bench/README.md, "Resource
    throughput"). Here the router builds each route's path once per app, with stand-in ids
    that are then made its parameters, and each base URL is kept: a URL costs one ``format``.
    """
    scope = request.scope
    state = scope["app"].state
    formats: dict[tuple[str, tuple[str, ...]], str] | None
    formats = getattr(state, "resource_path_formats", None)
    if formats is None:
        formats = state.resource_path_formats = {}
    params = tuple(ids)
    path_format = formats.get((name, params))
    if path_format is None:
        path_format = formats[name, params] = _path_format(scope, name, params)
    server = scope.get("server")
    origin = _origin(
        scope.get("scheme", "http"),
        request.headers.get("host"),
        None if server is None else (server[0], server[1]),
        scope.get("app_root_path", scope.get("root_path", "")),
    )
    return origin + path_format.format(**ids)


_STAND_IN_ID = 7_316_504_829_113
"""The first of the ids ``_path_format`` asks the router for: a number no literal part of a
route's path contains."""


def _path_format(scope: Scope, name: str, params: tuple[str, ...]) -> str:
    """The path ``url_for`` gives route ``name``, as a format string of ``params``."""
    router = scope.get("router") or scope["app"]
    stand_ins = {param: _STAND_IN_ID + i for i, param in enumerate(params)}
    # A route's literal text holds no braces (Starlette reads them as parameters): only the
    # parameters put in here are formatted.
    path = str(router.url_path_for(name, **stand_ins))
    for param, stand_in in stand_ins.items():
        path = path.replace(str(stand_in), "{" + param + "}")
    return path


@lru_cache(maxsize=64)
def _origin(scheme: str, host: str | None, server: tuple[str, int] | None, root_path: str) -> str:
    """What ``url_for`` puts before a route's path, found as Starlette finds it: the
    ``Host`` the client sent (which is why the cache is small: any client may send any), else
    the server's address, then the app's root path."""
    scope = {
        "type": "http",
        "scheme": scheme,
        "server": server,
        "path": "/",
        "query_string": b"",
        "root_path": root_path,
        "headers": [] if host is None else [(b"host", host.encode("latin-1"))],
    }
    return str(URLPath("").make_absolute_url(HTTPConnection(scope).base_url))
