"""``UTCDateTime`` on SQLite: the fused bind processor stores what the generic chain stores."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

import pytest
from sqlalchemy.dialects import sqlite
from sqlalchemy.types import TypeDecorator

from rostra.core.db import UTCDateTime

TIMES = [
    datetime(2026, 12, 3, 19, 0, 0, tzinfo=UTC),
    datetime(2026, 12, 3, 19, 0, 0, 123456, tzinfo=UTC),
    datetime(1, 1, 1, 0, 0, 0, 1, tzinfo=UTC),
    datetime(9999, 12, 31, 23, 59, 59, 999999, tzinfo=UTC),
    datetime(2026, 3, 29, 2, 30, 0, 500, tzinfo=timezone(timedelta(hours=5, minutes=30))),
    datetime(2026, 12, 3, 1, 0, 0, tzinfo=timezone(-timedelta(hours=8))),
]


def test_times_are_stored_as_the_generic_chain_stores_them() -> None:
    dialect = sqlite.dialect()
    column_type = UTCDateTime().dialect_impl(dialect)  # as SQLAlchemy uses it on SQLite
    fused = column_type.bind_processor(dialect)
    generic = TypeDecorator.bind_processor(column_type, dialect)
    assert fused is not None
    assert generic is not None
    for time in TIMES:
        assert fused(time) == generic(time), time
    assert fused(TIMES[-1]) == "2026-12-03 09:00:00.000000"
    assert fused(None) is None
    with pytest.raises(ValueError, match="naive"):
        fused(datetime(2026, 12, 3))
