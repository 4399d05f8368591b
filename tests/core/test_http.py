"""ETags and conditional requests: If-None-Match compares weakly, If-Match strongly; a
resource's URL as ``url_for`` gives it."""

from __future__ import annotations

from typing import Any

import pytest
from fastapi import FastAPI
from fastapi.routing import APIRoute
from pydantic import BaseModel
from starlette.requests import Request
from starlette.routing import NoMatchFound

from rostra.api import mount_routes
from rostra.core.errors import PreconditionFailed
from rostra.core.http import (
    check_if_match,
    etag_of,
    not_modified,
    resource_response,
    resource_url,
)
from rostra.core.routing import RouterMount

ETAG = etag_of(b'{"id":1}')


def _request(method: str = "GET", **headers: str) -> Request:
    raw = [(name.replace("_", "-").encode(), value.encode()) for name, value in headers.items()]
    return Request(
        {"type": "http", "method": method, "headers": raw, "path": "/", "query_string": b""}
    )


def test_etag_is_a_quoted_strong_tag_of_the_body() -> None:
    assert ETAG.startswith('"')
    assert ETAG.endswith('"')
    assert etag_of(b'{"id":1}') == ETAG
    assert etag_of(b'{"id":2}') != ETAG


@pytest.mark.parametrize(
    ("header", "matches"),
    [
        (ETAG, True),
        (f"W/{ETAG}", True),
        (f'"a", {ETAG}', True),
        ("*", True),
        ('"a", "b"', False),
        (ETAG.strip('"'), False),
    ],
)
def test_if_none_match_compares_weakly(header: str, matches: bool) -> None:
    assert not_modified(_request(if_none_match=header), ETAG) is matches


@pytest.mark.parametrize(
    ("header", "passes"),
    [(ETAG, True), ("*", True), (f'"a", {ETAG}', True), (f"W/{ETAG}", False), ('"a"', False)],
)
def test_if_match_compares_strongly(header: str, passes: bool) -> None:
    request = _request("PATCH", if_match=header)
    if passes:
        check_if_match(request, ETAG)
    else:
        with pytest.raises(PreconditionFailed):
            check_if_match(request, ETAG)


def test_no_if_match_header_never_refuses() -> None:
    check_if_match(_request("PATCH"), ETAG)


class _Thing(BaseModel):
    id: int


def test_resource_response_answers_304_only_to_reads() -> None:
    body = _Thing(id=1)
    tag = resource_response(_request(), body).headers["ETag"]
    cached = resource_response(_request(if_none_match=tag), body)
    assert cached.status_code == 304
    assert cached.body == b""
    assert cached.headers["ETag"] == tag
    write = resource_response(_request("PATCH", if_none_match=tag), body)
    assert write.status_code == 200
    assert write.body == b'{"id":1}'
    created = resource_response(_request("POST"), body, status_code=201, headers={"Location": "/x"})
    assert created.status_code == 201
    assert created.headers["Location"] == "/x"


def _api() -> FastAPI:
    app = FastAPI()
    mount_routes(app)
    return app


def _routes_with_ids(app: FastAPI) -> list[tuple[str, tuple[str, ...]]]:
    """Every API route whose path takes ids, by name, with its parameters."""
    (api,) = [route for route in app.router.routes if type(route) is RouterMount]
    named = {}
    for route in api.routes:
        if isinstance(route, APIRoute) and route.param_convertors:
            named[route.name] = tuple(route.param_convertors)
    return sorted(named.items())


def _scope(app: FastAPI, **given: Any) -> dict[str, Any]:
    host = given.pop("host", None)
    return {
        "type": "http",
        "method": "POST",
        "scheme": "http",
        "server": ("127.0.0.1", 8000),
        "path": "/api/v1/projects",
        "query_string": b"",
        "root_path": "",
        "headers": [] if host is None else [(b"host", host.encode("latin-1"))],
        "app": app,
        "router": app.router,
        **given,
    }


REQUESTS = [
    {"host": "testserver"},
    {"host": "api.example.com:8443", "scheme": "https"},
    {"host": "api.example.com:443", "scheme": "https"},
    {"server": ("10.0.0.7", 8080)},
    {"server": ("10.0.0.7", 80)},
    {"host": "[::1]:8000"},
    {"host": "gateway", "root_path": "/rostra"},
    {"host": "gateway", "root_path": "/rostra/api/v1", "app_root_path": "/rostra"},
    {"host": "odd{0}{x}host"},
]


@pytest.mark.parametrize("given", REQUESTS)
def test_resource_url_is_url_for_of_every_route_that_takes_ids(given: dict[str, Any]) -> None:
    app = _api()
    routes = _routes_with_ids(app)
    assert len(routes) > 10  # the API's routes were found
    for name, params in routes:
        ids = {param: 40 + i for i, param in enumerate(params)}
        # A new request each time, as a route has: nothing Starlette keeps on it is shared.
        expected = str(Request(_scope(app, **given)).url_for(name, **ids))
        assert resource_url(Request(_scope(app, **given)), name, **ids) == expected, name


def test_resource_url_fills_in_each_call_s_own_ids() -> None:
    app = _api()
    request = Request(_scope(app, host="testserver"))
    first = resource_url(request, "get_member", project_id=3, user_id=4)
    second = resource_url(request, "get_member", project_id=30, user_id=40)
    assert first == "http://testserver/api/v1/projects/3/members/4"
    assert second == "http://testserver/api/v1/projects/30/members/40"


def test_resource_url_of_an_unknown_route_is_an_error_as_url_for_s() -> None:
    request = Request(_scope(_api(), host="testserver"))
    with pytest.raises(NoMatchFound):
        resource_url(request, "no_such_route", thing_id=1)
