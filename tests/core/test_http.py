"""ETags and conditional requests: If-None-Match compares weakly, If-Match strongly."""

from __future__ import annotations

import pytest
from pydantic import BaseModel
from starlette.requests import Request

from rostra.core.errors import PreconditionFailed
from rostra.core.http import check_if_match, etag_of, not_modified, resource_response

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
