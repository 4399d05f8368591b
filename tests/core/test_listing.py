"""The list machinery's parts that need no database: cursors, times and filter parsers."""

from __future__ import annotations

import base64
import hashlib
import hmac
from datetime import UTC, datetime, timedelta, timezone
from urllib.parse import urlencode

import pytest
from sqlalchemy import select
from sqlalchemy.dialects import postgresql
from starlette.requests import Request

from rostra.core.errors import Invalid
from rostra.core.listing import (
    CursorCodec,
    _page_query,
    _pagination_and_links,
    one_of,
    parse_list_params,
    parse_time,
    whole_number,
)
from rostra.projects.router import PROJECT_LIST
from rostra.projects.service import PROJECTS


def test_cursor_round_trips_a_time_and_an_id() -> None:
    codec = CursorCodec("k" * 40)
    moment = datetime(2024, 1, 15, 10, 30, 0, 123456, tzinfo=UTC)
    text = codec.encode("created_at", "desc", moment, 42)
    assert "created_at" not in text  # opaque to a casual reader: base64
    assert codec.decode(text, "created_at", "desc") == (moment, 42)
    assert codec.decode(codec.encode("username", "asc", "bob", 7), "username", "asc") == (
        "bob",
        7,
    )


@pytest.mark.parametrize("mangle", ["flip", "truncate", "other_key", "garbage", "padding"])
def test_forged_cursors_are_refused(mangle: str) -> None:
    codec = CursorCodec("k" * 40)
    text = codec.encode("id", "asc", 10, 10)
    forged = {
        "flip": text[:-1] + ("A" if text[-1] != "A" else "B"),
        "truncate": text[:8],
        "other_key": CursorCodec("z" * 40).encode("id", "asc", 10, 10),
        "garbage": "%%%not base64%%%",
        "padding": "",
    }[mangle]
    with pytest.raises(Invalid) as caught:
        codec.decode(forged, "id", "asc")
    assert caught.value.details == [{"field": "cursor", "message": "This cursor is not valid"}]


def test_a_cursor_only_fits_the_sort_it_was_made_for() -> None:
    codec = CursorCodec("k" * 40)
    text = codec.encode("id", "asc", 10, 10)
    for sort, order in (("id", "desc"), ("created_at", "asc")):
        with pytest.raises(Invalid):
            codec.decode(text, sort, order)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("2024-01-15T10:30:00Z", datetime(2024, 1, 15, 10, 30, tzinfo=UTC)),
        ("2024-01-15T12:30:00+02:00", datetime(2024, 1, 15, 10, 30, tzinfo=UTC)),
        ("2024-01-15T12:30:00 02:00", datetime(2024, 1, 15, 10, 30, tzinfo=UTC)),
        ("2024-01-15T05:30:00-05:00", datetime(2024, 1, 15, 10, 30, tzinfo=UTC)),
        ("2024-01-15T10:30:00", datetime(2024, 1, 15, 10, 30, tzinfo=UTC)),
        ("2024-01-15", datetime(2024, 1, 15, tzinfo=UTC)),
    ],
)
def test_parse_time_reads_offsets_and_defaults_to_utc(text: str, expected: datetime) -> None:
    parsed = parse_time(text)
    assert parsed == expected
    assert parsed.utcoffset() == timedelta(0)
    assert parsed.tzinfo is UTC


@pytest.mark.parametrize("text", ["yesterday", "2024-13-01", "", "15/01/2024"])
def test_parse_time_refuses_what_is_not_iso_8601(text: str) -> None:
    with pytest.raises(ValueError, match="ISO 8601"):
        parse_time(text)


def test_filter_parsers() -> None:
    role = one_of("admin", "member")
    assert role("admin") == "admin"
    with pytest.raises(ValueError, match="admin, member"):
        role("Admin")
    assert whole_number("42") == 42
    for bad in ("4.2", "x", "0", "-1", "2147483648"):
        with pytest.raises(ValueError):
            whole_number(bad)


def test_a_first_page_has_no_offset_clause() -> None:
    """PostgreSQL plans a prepared statement for any offset once it has run a few times; on a
    million projects that plan read a counted first page seven times slower (bench/README.md),
    so a page that skips nothing says nothing of an offset."""
    query = select(PROJECTS.id)
    shapes = {
        skips: str(
            _page_query(
                query,
                PROJECTS.created_at,
                PROJECTS.id,
                "desc",
                keyset=False,
                skips=skips,
                total_query=None,
            ).compile(dialect=postgresql.dialect())
        )
        for skips in (False, True)
    }
    assert "OFFSET" not in shapes[False]
    assert "OFFSET" in shapes[True]


def test_a_cursor_is_its_signed_payload_in_url_safe_base64() -> None:
    """The wire format, held still: cursors handed out before a change keep working after it."""
    key = "k" * 40
    moment = datetime(2024, 1, 15, 12, 30, 0, 5, tzinfo=timezone(timedelta(hours=2)))
    payload = b'["created_at","desc",{"t":"2024-01-15T10:30:00.000005+00:00"},42]'
    signing_key = hashlib.sha256(b"rostra-cursor:" + key.encode()).digest()
    signature = hmac.new(signing_key, payload, hashlib.sha256).digest()[:12]
    expected = base64.urlsafe_b64encode(signature + payload).rstrip(b"=").decode()
    codec = CursorCodec(key)
    assert codec.encode("created_at", "desc", moment, 42) == expected
    assert codec.encode("created_at", "desc", moment.astimezone(UTC), 42) == expected


def _request(query: str) -> Request:
    return Request(
        {
            "type": "http",
            "method": "GET",
            "scheme": "http",
            "path": "/api/v1/projects",
            "root_path": "",
            "query_string": query.encode(),
            "headers": [(b"host", b"testserver")],
        }
    )


@pytest.mark.parametrize(
    ("query", "kept"),
    [
        ("limit=2", [("limit", "2")]),
        ("", []),
        (
            "search=%C3%A9t%C3%A9+a%26b&sort=-name&limit=2&status=active",
            [("search", "été a&b"), ("sort", "-name"), ("limit", "2"), ("status", "active")],
        ),
    ],
)
def test_links_keep_the_request_parameters_and_replace_the_position(
    query: str, kept: list[tuple[str, str]]
) -> None:
    """Each link is the request's own parameters as ``urlencode`` writes them, and then the
    position: offset, or cursor."""
    codec = CursorCodec("k" * 40)
    base = "http://testserver/api/v1/projects?"
    request = _request(f"offset=4&{query}")
    params = parse_list_params(request, PROJECT_LIST, codec)
    assert params.limit == (2 if kept else 50)
    _, links = _pagination_and_links(request, params, 11 if kept else 55, True, "next-cursor")
    assert links == [
        f'<{base}{urlencode([*kept, ("offset", offset)])}>; rel="{rel}"'
        for rel, offset in (
            (("first", 0), ("prev", 2), ("next", 6), ("last", 10))
            if kept
            else (("first", 0), ("prev", 0), ("next", 54), ("last", 50))
        )
    ]

    request = _request(f"{query}&cursor=")
    params = parse_list_params(request, PROJECT_LIST, codec)
    _, links = _pagination_and_links(request, params, None, True, "next-cursor")
    assert links == [
        f'<{base}{urlencode([*kept, ("cursor", cursor)])}>; rel="{rel}"'
        for rel, cursor in (("first", ""), ("next", "next-cursor"))
    ]


def test_a_parameter_given_twice_is_refused_by_name() -> None:
    with pytest.raises(Invalid) as caught:
        parse_list_params(
            _request("limit=2&sort=name&sort=id"), PROJECT_LIST, CursorCodec("k" * 40)
        )
    assert caught.value.details == [{"field": "sort", "message": "Give this parameter once"}]
