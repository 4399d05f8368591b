"""The hourly quota and the burst as time passes (the memory store, on a fake clock)."""

from __future__ import annotations

import httpx
import pytest
from fastapi import FastAPI

from tests.factories import make_account
from tests.ratelimit.conftest import FakeClock
from tests.ratelimit.helpers import PLANS, USER, has_no_limit_fields, limit_fields, ratelimit_items


@pytest.fixture
def settings_overrides() -> dict[str, object]:
    return {"rate_limit_plans": PLANS}


@pytest.fixture
def fake_clock(app: FastAPI, clock: FakeClock) -> FakeClock:
    app.state.rate_limiter.store.clock = clock
    return clock


async def test_the_burst_comes_back_after_a_minute(
    app: FastAPI, client: httpx.AsyncClient, fake_clock: FakeClock
) -> None:
    account = await make_account(app)
    for _ in range(5):
        await client.get(USER, headers=account.headers)
    refused = await client.get(USER, headers=account.headers)
    assert refused.status_code == 429
    assert refused.headers["Retry-After"] == "60"
    assert limit_fields(refused) == (5, 0, int(fake_clock.now) + 60)
    fake_clock.advance(60)
    again = await client.get(USER, headers=account.headers)
    assert again.status_code == 200
    # The hour has 8 - 6 left, fewer than the fresh minute.
    assert limit_fields(again)[:2] == (8, 2)
    assert ratelimit_items(again)["minute"] == (4, 60)


async def test_the_hourly_quota_holds_across_minutes(
    app: FastAPI, client: httpx.AsyncClient, fake_clock: FakeClock
) -> None:
    account = await make_account(app)
    start = fake_clock.now
    for _ in range(5):
        assert (await client.get(USER, headers=account.headers)).status_code == 200
    fake_clock.advance(61)
    answers = [await client.get(USER, headers=account.headers) for _ in range(4)]
    assert [a.status_code for a in answers] == [200, 200, 200, 429]
    # With 2 left in the hour and 4 in the minute, the hour is nearest to running out.
    assert limit_fields(answers[1]) == (8, 1, int(start) + 3600)
    refused = answers[-1]
    assert refused.headers["Retry-After"] == str(3600 - 61)
    assert limit_fields(refused) == (8, 0, int(start) + 3600)
    assert ratelimit_items(refused) == {"hour": (0, 3539), "minute": (2, 60)}
    fake_clock.advance(3600 - 61)
    assert (await client.get(USER, headers=account.headers)).status_code == 200


@pytest.mark.parametrize("settings_overrides", [{"rate_limit_enabled": False}])
async def test_a_disabled_limiter_counts_nothing(app: FastAPI, client: httpx.AsyncClient) -> None:
    account = await make_account(app)
    answers = [await client.get(USER, headers=account.headers) for _ in range(120)]
    assert all(a.status_code == 200 and has_no_limit_fields(a) for a in answers)
