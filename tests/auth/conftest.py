"""A fake clock for the auth service, so time-bound behaviour is tested without sleeping."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime, timedelta

import pytest

from rostra.auth import service
from rostra.core.db import utcnow


class FakeClock:
    """The auth service's clock, set by the test (never a sleep)."""

    def __init__(self, start: datetime) -> None:
        self.now = start

    def __call__(self) -> datetime:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += timedelta(seconds=seconds)


@pytest.fixture
def clock(monkeypatch: pytest.MonkeyPatch) -> Iterator[FakeClock]:
    # In the past, so that access tokens it stamps are neither expired nor issued in the future.
    fake = FakeClock(utcnow() - timedelta(minutes=10))
    monkeypatch.setattr(service, "utcnow", fake)
    return fake
