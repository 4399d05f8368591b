"""Request bodies refuse unknown fields and ignore read-only ones; times are RFC 3339 with Z."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

import pytest
from pydantic import ValidationError

from rostra.core.schemas import InputModel, ResourceModel, Timestamp


class _Body(InputModel):
    name: str


class _Out(ResourceModel):
    at: Timestamp


def test_read_only_fields_are_dropped() -> None:
    body = _Body.model_validate(
        {
            "name": "  x  ",
            "id": 5,
            "created_at": "2024-01-01T00:00:00Z",
            "updated_at": None,
            "last_login": "garbage",
            "livemode": False,
        }
    )
    assert body.model_dump() == {"name": "x"}


def test_unknown_fields_are_refused() -> None:
    with pytest.raises(ValidationError) as caught:
        _Body.model_validate({"name": "x", "role": "admin"})
    assert caught.value.errors()[0]["type"] == "extra_forbidden"
    assert caught.value.errors()[0]["loc"] == ("role",)


def test_timestamps_are_utc_whole_seconds_with_z() -> None:
    paris = timezone(timedelta(hours=1))
    out = _Out(at=datetime(2024, 1, 15, 11, 30, 0, 987654, tzinfo=paris))
    assert out.model_dump_json() == '{"livemode":true,"at":"2024-01-15T10:30:00Z"}'
    assert _Out(at=datetime(2024, 1, 15, tzinfo=UTC)).livemode is True
