"""The two-window algorithm, the same tests against both stores (memory and Redis)."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator

import pytest
from redis.asyncio import Redis

from rostra.lib.ratelimit import (
    MemoryStore,
    PlanLimits,
    Policy,
    RateLimitStore,
    RedisStore,
    StoreUnavailable,
    Window,
)
from tests.ratelimit.conftest import FakeClock, RedisServer, pooled_redis

FREE = PlanLimits(per_hour=5, per_minute=3).policy("free")
PRO = PlanLimits(per_hour=2, per_minute=10, overage=True).policy("professional")
UNLIMITED = PlanLimits(per_hour=None, per_minute=None).policy("override")


@pytest.fixture(params=["memory", "redis"])
async def store(
    request: pytest.FixtureRequest, key_prefix: str, clock: FakeClock
) -> AsyncIterator[RateLimitStore]:
    if request.param == "memory":
        yield MemoryStore(clock=clock)
        return
    client = pooled_redis(request.getfixturevalue("redis_url"))
    yield RedisStore(client, prefix=key_prefix)
    await client.aclose()


def used(decision_states: tuple[object, ...]) -> list[int]:
    return [state.used for state in decision_states]  # type: ignore[attr-defined]


async def test_admits_up_to_the_burst_then_refuses_without_spending_the_hour(
    store: RateLimitStore,
) -> None:
    decisions = [await store.hit("user:1", FREE) for _ in range(5)]
    assert [d.allowed for d in decisions] == [True, True, True, False, False]
    assert used(decisions[2].states) == [3, 3]
    # Refused requests count nowhere: the hour still shows 3 used of 5.
    assert used(decisions[4].states) == [3, 3]
    assert decisions[4].states[0].remaining == 2
    assert decisions[4].states[1].remaining == 0
    assert 1 <= decisions[4].retry_after() <= 60
    usage = await store.peek("user:1", FREE)
    assert used(usage.states) == [3, 3]


async def test_callers_are_counted_apart(store: RateLimitStore) -> None:
    for _ in range(3):
        assert (await store.hit("user:1", FREE)).allowed
    assert not (await store.hit("user:1", FREE)).allowed
    assert (await store.hit("user:2", FREE)).allowed
    assert (await store.hit("ip:127.0.0.2", FREE)).allowed


async def test_a_window_that_allows_overage_admits_and_counts_it(store: RateLimitStore) -> None:
    decisions = [await store.hit("user:7", PRO) for _ in range(5)]
    assert all(d.allowed for d in decisions)
    assert [d.overage for d in decisions] == [0, 0, 1, 1, 1]
    hour = decisions[-1].states[0]
    assert (hour.used, hour.remaining, hour.overage) == (5, 0, 3)
    usage = await store.peek("user:7", PRO)
    assert usage.period_overage == 3
    assert usage.states[0].overage == 3
    assert usage.period == time.strftime("%Y-%m", time.gmtime(usage.now_ms / 1000))


async def test_overage_never_lifts_the_burst(store: RateLimitStore) -> None:
    tight = PlanLimits(per_hour=1, per_minute=2, overage=True).policy("professional")
    decisions = [await store.hit("user:8", tight) for _ in range(3)]
    assert [d.allowed for d in decisions] == [True, True, False]
    assert (await store.peek("user:8", tight)).period_overage == 1


async def test_refund_gives_back_exactly_what_the_request_took(store: RateLimitStore) -> None:
    first = await store.hit("user:3", PRO)
    await store.hit("user:3", PRO)
    third = await store.hit("user:3", PRO)
    assert third.overage == 1
    await store.refund("user:3", third)
    usage = await store.peek("user:3", PRO)
    assert used(usage.states) == [2, 2]
    assert usage.period_overage == 0
    await store.refund("user:3", first)
    assert used((await store.peek("user:3", PRO)).states) == [1, 1]


async def test_unlimited_windows_count_but_never_refuse(store: RateLimitStore) -> None:
    decisions = [await store.hit("user:4", UNLIMITED) for _ in range(20)]
    assert all(d.allowed for d in decisions)
    assert used(decisions[-1].states) == [20, 20]
    assert decisions[-1].states[0].remaining is None


async def test_peek_of_a_new_caller_shows_whole_windows(store: RateLimitStore) -> None:
    usage = await store.peek("user:never", FREE)
    assert used(usage.states) == [0, 0]
    assert [s.resets_at_ms - usage.now_ms for s in usage.states] == [3_600_000, 60_000]
    assert usage.period_overage == 0


async def test_concurrent_hits_admit_exactly_the_limit(store: RateLimitStore) -> None:
    policy = PlanLimits(per_hour=1000, per_minute=100).policy("free")
    decisions = await asyncio.gather(*(store.hit("user:5", policy) for _ in range(500)))
    assert sum(d.allowed for d in decisions) == 100
    assert used((await store.peek("user:5", policy)).states) == [100, 100]


async def test_a_callers_counts_follow_it_to_a_new_policy(store: RateLimitStore) -> None:
    """A plan change keeps what the caller spent in the windows both policies name."""
    for _ in range(2):
        await store.hit("user:9", FREE)
    moved = await store.hit("user:9", PRO)
    assert moved.allowed
    assert used(moved.states) == [3, 3]
    assert used((await store.peek("user:9", FREE)).states) == [3, 3]


async def test_memory_windows_start_again_after_they_end(clock: FakeClock) -> None:
    store = MemoryStore(clock=clock)
    for _ in range(3):
        await store.hit("user:1", FREE)
    refused = await store.hit("user:1", FREE)
    assert not refused.allowed
    assert refused.retry_after() == 60
    clock.advance(30)
    assert (await store.hit("user:1", FREE)).retry_after() == 30
    clock.advance(30)
    again = await store.hit("user:1", FREE)
    assert again.allowed
    assert used(again.states) == [4, 1]


async def test_memory_refund_leaves_a_newer_window_alone(clock: FakeClock) -> None:
    store = MemoryStore(clock=clock)
    old = await store.hit("user:1", FREE)
    clock.advance(61)
    await store.hit("user:1", FREE)
    await store.refund("user:1", old)
    # The hour (still the same window) gives the request back; the new minute never saw it.
    assert used((await store.peek("user:1", FREE)).states) == [1, 1]


async def test_memory_forgets_callers_whose_windows_ended(clock: FakeClock) -> None:
    store = MemoryStore(clock=clock)
    await store.hit("ip:127.0.0.9", FREE)
    clock.advance(3601)
    await store.hit("user:1", FREE)
    assert "ip:127.0.0.9" not in store._counters


async def test_redis_windows_start_again_after_they_end(
    redis_client: Redis, key_prefix: str
) -> None:
    store = RedisStore(redis_client, prefix=key_prefix)
    short = Policy("free", (Window("minute", 1, 2),))
    assert [(await store.hit("user:1", short)).allowed for _ in range(3)] == [True, True, False]
    await asyncio.sleep(1.05)
    assert (await store.hit("user:1", short)).allowed


async def test_redis_refund_leaves_a_newer_window_alone(
    redis_client: Redis, key_prefix: str
) -> None:
    store = RedisStore(redis_client, prefix=key_prefix)
    short = Policy("free", (Window("minute", 1, 5),))
    old = await store.hit("user:1", short)
    await asyncio.sleep(1.05)
    await store.hit("user:1", short)
    await store.refund("user:1", old)
    assert used((await store.peek("user:1", short)).states) == [1]


async def test_redis_counts_a_batch_of_hits_in_one_call(
    redis_client: Redis, key_prefix: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Hits made together leave as one script call, whose one reply answers each of them;
    the callers in it are still counted apart and exactly."""
    store = RedisStore(redis_client, prefix=key_prefix)
    await store.hit("user:0", FREE)  # connected, script loaded
    written: list[int] = []
    exchange = store._exchange_packed

    async def counted_exchange(commands: list[bytes]) -> list[object]:
        written.append(len(commands))
        return await exchange(commands)

    monkeypatch.setattr(store, "_exchange_packed", counted_exchange)
    decisions = await asyncio.gather(*(store.hit(f"user:{i % 3}", FREE) for i in range(12)))
    assert written == [1]
    by_caller = [[d.allowed for d in decisions[i::3]] for i in range(3)]
    assert by_caller == [[True, True, False, False]] + [[True, True, True, False]] * 2
    assert used(decisions[-1].states) == [3, 3]


async def test_redis_loads_its_scripts_again_after_a_flush(
    redis_client: Redis, key_prefix: str
) -> None:
    store = RedisStore(redis_client, prefix=key_prefix)
    await store.hit("user:1", FREE)
    await redis_client.script_flush()
    hit, usage = await asyncio.gather(store.hit("user:1", FREE), store.peek("user:1", FREE))
    assert hit.allowed
    assert used(hit.states) == [2, 2]
    assert used(usage.states) == [2, 2]


async def test_redis_keys_expire_with_the_longest_window(
    redis_client: Redis, key_prefix: str
) -> None:
    store = RedisStore(redis_client, prefix=key_prefix)
    await store.hit("user:1", FREE)
    ttl = await redis_client.pttl(f"{key_prefix}{{user:1}}")
    assert 3_590_000 < ttl <= 3_600_000


async def test_redis_hits_from_many_connections_admit_exactly_the_limit(
    redis_url: str, key_prefix: str
) -> None:
    policy = PlanLimits(per_hour=1000, per_minute=100).policy("free")
    clients = [pooled_redis(redis_url) for _ in range(4)]
    stores = [RedisStore(client, prefix=key_prefix) for client in clients]
    try:
        decisions = await asyncio.gather(*(stores[i % 4].hit("user:6", policy) for i in range(400)))
    finally:
        for client in clients:
            await client.aclose()
    assert sum(d.allowed for d in decisions) == 100


async def test_a_dead_redis_fails_fast_and_is_rested(
    private_redis: RedisServer, key_prefix: str
) -> None:
    client = pooled_redis(private_redis.url, timeout=0.25)
    store = RedisStore(client, prefix=key_prefix, cooldown_seconds=0.5)
    try:
        assert (await store.hit("user:1", FREE)).allowed
        private_redis.stop()
        started = time.monotonic()
        with pytest.raises(StoreUnavailable, match="did not answer"):
            await store.hit("user:1", FREE)
        with pytest.raises(StoreUnavailable, match="not asked again"):
            await store.hit("user:1", FREE)
        assert time.monotonic() - started < 1.0
        private_redis.start()
        await asyncio.sleep(0.5)
        # Back after the rest: a fresh server has no counters.
        assert used((await store.hit("user:1", FREE)).states) == [1, 1]
    finally:
        await client.aclose()
