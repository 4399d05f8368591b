"""The list machinery's parts that need no database: cursors, times and filter parsers."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import select
from sqlalchemy.dialects import postgresql

from rostra.core.errors import Invalid
from rostra.core.listing import CursorCodec, _page_query, one_of, parse_time, whole_number
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
