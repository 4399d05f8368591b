"""Counting without awaiting (``RateLimiter.count_now``): the memory store's path for nearly
every request, which must count exactly as the awaited ``count`` does."""

from __future__ import annotations

import pytest
from fastapi import FastAPI

from rostra.core.security import Principal
from rostra.ratelimit.limiter import RateLimiter
from tests.ratelimit.helpers import PLANS, metric

SCOPE = {"type": "http", "client": ("192.0.2.7", 4000), "headers": []}


def principal(user_id: int, plan: str = "free") -> Principal:
    return Principal(
        user_id=user_id,
        username=f"user{user_id}",
        role="member",
        plan=plan,
        credential="api_key",
        credential_id=str(user_id),
    )


@pytest.fixture
def settings_overrides(
    store_kind: str, key_prefix: str, request: pytest.FixtureRequest
) -> dict[str, object]:
    values: dict[str, object] = {"rate_limit_plans": PLANS, "rate_limit_key_prefix": key_prefix}
    if store_kind == "redis":
        values["redis_url"] = request.getfixturevalue("redis_url")
    return values


@pytest.fixture
async def limiter(app: FastAPI) -> RateLimiter:
    limiter: RateLimiter = app.state.rate_limiter
    await limiter.overrides.get(0)  # loaded, as after a server's first request
    return limiter


@pytest.mark.parametrize("store_kind", ["memory"])
async def test_the_memory_store_counts_at_once_as_awaited_counting_does(
    app: FastAPI, limiter: RateLimiter
) -> None:
    caller = principal(41)
    # The free plan's burst is 5: at once and awaited alike spend it, one request each.
    seen = []
    for at_once in (True, False, True, False, True):
        counted = (
            limiter.count_now(SCOPE, caller) if at_once else await limiter.count(SCOPE, caller)
        )
        assert counted is not None
        assert counted.decision.allowed
        seen.append(counted.decision.used)
    assert seen == [(1, 1), (2, 2), (3, 3), (4, 4), (5, 5)]
    refused = limiter.count_now(SCOPE, caller)
    assert refused is not None
    assert not refused.decision.allowed
    assert refused.decision.used == (5, 5)
    assert metric(app, "rostra_rate_limit_refusals_total", plan="free") == 1
    # Anonymous callers too, by address, against their own plan.
    anonymous = limiter.count_now(SCOPE, None)
    assert anonymous is not None
    assert (anonymous.key, anonymous.policy.name) == ("ip:192.0.2.7", "anonymous")


@pytest.mark.parametrize("store_kind", ["memory"])
async def test_nothing_is_counted_at_once_while_overrides_are_due(limiter: RateLimiter) -> None:
    caller = principal(42)
    limiter.overrides.invalidate()
    assert limiter.count_now(SCOPE, caller) is None
    # Awaited, the overrides are read again, and the request is counted once.
    counted = await limiter.count(SCOPE, caller)
    assert counted is not None
    assert counted.decision.used == (1, 1)
    again = limiter.count_now(SCOPE, caller)
    assert again is not None
    assert again.decision.used == (2, 2)


@pytest.mark.parametrize("store_kind", ["redis"])
async def test_redis_never_counts_at_once(limiter: RateLimiter) -> None:
    caller = principal(43)
    assert limiter.count_now(SCOPE, caller) is None
    assert limiter.count_now(SCOPE, None) is None
    counted = await limiter.count(SCOPE, caller)
    assert counted is not None
    assert counted.decision.used == (1, 1)  # the calls that answered None counted nothing
