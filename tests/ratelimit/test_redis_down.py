"""Redis stopped mid-test: never a hang, never a 500; open (the default) or closed.

The Redis stopped here is a private redis-server started for the test, never the shared one.
"""

from __future__ import annotations

import asyncio
import time

import httpx
import pytest
from fastapi import FastAPI

from tests.factories import Account, make_account
from tests.ratelimit.conftest import RedisServer
from tests.ratelimit.helpers import PLANS, USAGE, USER, has_no_limit_fields, limit_fields, metric
from tests.users.helpers import error_of

COOLDOWN_SECONDS = 1.0


@pytest.fixture
def fail_closed() -> bool:
    return False


@pytest.fixture
def settings_overrides(
    private_redis: RedisServer, key_prefix: str, fail_closed: bool
) -> dict[str, object]:
    return {
        "redis_url": private_redis.url,
        "rate_limit_key_prefix": key_prefix,
        "rate_limit_plans": PLANS,
        "rate_limit_fail_closed": fail_closed,
        "redis_timeout_seconds": 0.25,
        "health_cache_seconds": 0,
    }


async def assert_admitted_uncounted(
    app: FastAPI,
    client: httpx.AsyncClient,
    account: Account,
    *,
    requests: int,
    within_seconds: float,
) -> None:
    """``requests`` calls answered 200 without rate-limit fields, soon, each a counted failure."""
    started = time.monotonic()
    answers = [await client.get(USER, headers=account.headers) for _ in range(requests)]
    assert time.monotonic() - started < within_seconds
    assert [a.status_code for a in answers] == [200] * requests
    assert all(has_no_limit_fields(a) for a in answers)
    assert metric(app, "rostra_rate_limit_store_failures_total", outcome="admitted") == requests


async def test_requests_go_through_uncounted_while_redis_is_down(
    app: FastAPI,
    client: httpx.AsyncClient,
    private_redis: RedisServer,
    capsys: pytest.CaptureFixture[str],
) -> None:
    account = await make_account(app)
    assert limit_fields(await client.get(USER, headers=account.headers))[:2] == (5, 4)
    assert (await client.get("/health")).json()["checks"]["redis"] == "ok"

    private_redis.stop()
    await assert_admitted_uncounted(app, client, account, requests=8, within_seconds=3)
    lines = [line for line in capsys.readouterr().out.splitlines() if "rate_limit_store" in line]
    assert len(lines) == 1  # logged once, not once per request
    assert '"requests":1' in lines[0]
    assert "admitted uncounted" in lines[0]

    health = await client.get("/health")
    assert health.status_code == 503
    assert health.json()["checks"]["redis"] == "error"
    assert "redis" in error_of_health(health)
    usage = await client.get(USAGE, headers=account.headers)
    assert usage.status_code == 503
    assert error_of(usage)["code"] == "SERVICE_UNAVAILABLE"

    private_redis.start()
    await asyncio.sleep(COOLDOWN_SECONDS + 0.1)
    back = await client.get(USER, headers=account.headers)
    # Counting again, on the fresh server.
    assert limit_fields(back)[:2] == (5, 4)
    assert (await client.get("/health")).status_code == 200


async def test_a_hung_redis_costs_a_bounded_wait_not_a_hang(
    app: FastAPI, client: httpx.AsyncClient, private_redis: RedisServer
) -> None:
    # The client's socket timeout is off (the store bounds its own calls), so this is what
    # keeps a Redis that accepts but never answers from holding requests for ever.
    assert app.state.redis.connection_pool.connection_kwargs["socket_timeout"] is None
    account = await make_account(app)
    assert limit_fields(await client.get(USER, headers=account.headers))[:2] == (5, 4)
    private_redis.freeze()
    try:
        await assert_admitted_uncounted(app, client, account, requests=4, within_seconds=2)
        health = await client.get("/health")
        assert health.status_code == 503
        assert health.json()["checks"]["redis"] == "error"
    finally:
        private_redis.thaw()
    await asyncio.sleep(COOLDOWN_SECONDS + 0.1)
    # Counting again. The call that timed out had reached Redis, which ran it once thawed: a
    # lost answer may cost the caller one request, never admit one too many.
    assert limit_fields(await client.get(USER, headers=account.headers))[:2] in {(5, 3), (5, 2)}


def error_of_health(response: httpx.Response) -> str:
    message: str = response.json()["error"]["message"]
    return message.lower()


@pytest.mark.parametrize("fail_closed", [True])
async def test_failing_closed_answers_503(
    app: FastAPI, client: httpx.AsyncClient, private_redis: RedisServer
) -> None:
    account = await make_account(app)
    assert (await client.get(USER, headers=account.headers)).status_code == 200
    private_redis.stop()
    started = time.monotonic()
    answers = [await client.get(USER, headers=account.headers) for _ in range(4)]
    assert time.monotonic() - started < 3
    for answer in answers:
        assert answer.status_code == 503
        assert error_of(answer)["code"] == "SERVICE_UNAVAILABLE"
        assert answer.headers["Retry-After"] == "1"
    assert metric(app, "rostra_rate_limit_store_failures_total", outcome="refused") == 4
    assert (await client.get("/health")).status_code == 503
