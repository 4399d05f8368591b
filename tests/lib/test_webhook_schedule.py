"""The retry schedule: the contract's delays with jitter, and Retry-After."""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime

import pytest

from rostra.lib.webhooks.schedule import (
    DEFAULT_DELAYS_SECONDS,
    MAX_RETRY_AFTER_SECONDS,
    RetrySchedule,
    parse_retry_after,
)

NOW = datetime(2026, 12, 1, 12, 0, tzinfo=UTC)


def test_the_contract_schedule_after_the_immediate_first_attempt() -> None:
    flat = RetrySchedule(jitter=0)
    delays = [flat.delay_after(attempts) for attempts in range(1, 10)]
    assert delays == [5, 300, 1800, 7200, 18000, 36000, 36000, 36000, 36000]
    assert DEFAULT_DELAYS_SECONDS == (5, 300, 1800, 7200, 18000, 36000)


def test_jitter_stays_within_its_bounds_and_varies() -> None:
    schedule = RetrySchedule(jitter=0.15)
    rng = random.Random(7)
    delays = [schedule.delay_after(2, rng=rng) for _ in range(500)]
    assert all(255 <= delay <= 345 for delay in delays)
    assert max(delays) - min(delays) > 60  # spread, not one value


def test_retry_after_is_never_undercut_and_is_bounded() -> None:
    flat = RetrySchedule(jitter=0)
    assert flat.delay_after(1, retry_after=120) == 120
    assert flat.delay_after(3, retry_after=10) == 1800  # the schedule's wait is longer
    assert flat.delay_after(1, retry_after=10**9) == MAX_RETRY_AFTER_SECONDS


def test_a_custom_schedule() -> None:
    fast = RetrySchedule(delays=(0.1, 0.2), jitter=0)
    assert [fast.delay_after(n) for n in (1, 2, 3)] == [0.1, 0.2, 0.2]
    with pytest.raises(ValueError):
        RetrySchedule(delays=())
    with pytest.raises(ValueError):
        RetrySchedule(delays=(-1,))
    with pytest.raises(ValueError):
        fast.delay_after(0)


@pytest.mark.parametrize(
    ("header", "seconds"),
    [
        (None, None),
        ("120", 120.0),
        (" 0 ", 0.0),
        (format_datetime(NOW + timedelta(seconds=90), usegmt=True), 90.0),
        ("Tue, 01 Dec 2026 12:05:00 GMT", 300.0),
        (format_datetime(NOW - timedelta(hours=1), usegmt=True), 0.0),
        ("soon", None),
        ("-5", None),
        ("1.5", None),
        ("", None),
    ],
)
def test_retry_after_seconds_or_http_date(header: str | None, seconds: float | None) -> None:
    assert parse_retry_after(header, now=NOW) == seconds
