"""The credential and view caches: served while fresh, reloaded ahead of expiry, never stale;
and the cache of rows rendered at a revision, bounded by entries and by bytes."""

from __future__ import annotations

import asyncio

import pytest

from rostra.core import cache as cache_module
from rostra.core.cache import ExpiringCache, RevisionCache


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def clock(monkeypatch: pytest.MonkeyPatch) -> Clock:
    fake = Clock()
    monkeypatch.setattr(cache_module.time, "monotonic", fake)
    return fake


class Source:
    """A value that changes, and how many times it was read."""

    def __init__(self) -> None:
        self.value = "v1"
        self.reads = 0
        self.gate: asyncio.Event | None = None
        self.fail = False

    async def load(self) -> tuple[str, int]:
        self.reads += 1
        value = self.value
        if self.gate is not None:
            await self.gate.wait()
        if self.fail:
            raise LookupError("gone")
        return value, 7


async def settle() -> None:
    for _ in range(5):
        await asyncio.sleep(0)


async def test_fresh_entries_are_served_without_reading(clock: Clock) -> None:
    cache: ExpiringCache[str] = ExpiringCache(10)
    source = Source()
    assert await cache.get_or_load("k", source.load) == "v1"
    clock.now += 7
    assert await cache.get_or_load("k", source.load) == "v1"
    assert source.reads == 1


async def test_a_busy_entry_is_reloaded_ahead_of_expiry_while_still_served(clock: Clock) -> None:
    cache: ExpiringCache[str] = ExpiringCache(10)
    source = Source()
    await cache.get_or_load("k", source.load)
    source.value = "v2"
    clock.now += 9  # past the refresh point, before expiry
    assert await cache.get_or_load("k", source.load) == "v1"  # nobody waits for the reload
    assert await cache.get_or_load("k", source.load) == "v1"
    await settle()
    assert source.reads == 2  # one background reload, however many asked meanwhile
    assert await cache.get_or_load("k", source.load) == "v2"


async def test_an_expired_entry_is_never_served(clock: Clock) -> None:
    cache: ExpiringCache[str] = ExpiringCache(10)
    source = Source()
    await cache.get_or_load("k", source.load)
    source.value = "v2"
    clock.now += 11
    assert await cache.get_or_load("k", source.load) == "v2"


async def test_a_load_that_raced_a_change_does_not_store_what_it_read(clock: Clock) -> None:
    cache: ExpiringCache[str] = ExpiringCache(10)
    source = Source()
    source.gate = asyncio.Event()
    waiter = asyncio.ensure_future(cache.get_or_load("k", source.load))
    await settle()
    cache.forget_user(7)  # the user changed while the read was on its way
    source.gate.set()
    assert await waiter == "v1"
    source.gate = None
    source.value = "v2"
    assert await cache.get_or_load("k", source.load) == "v2"


async def test_a_failed_background_reload_drops_the_entry(clock: Clock) -> None:
    cache: ExpiringCache[str] = ExpiringCache(10)
    source = Source()
    await cache.get_or_load("k", source.load)
    source.fail = True
    clock.now += 9
    assert await cache.get_or_load("k", source.load) == "v1"
    await settle()
    with pytest.raises(LookupError):
        await cache.get_or_load("k", source.load)


def test_a_full_revision_cache_drops_its_older_half() -> None:
    cache: RevisionCache[str] = RevisionCache(max_entries=4, max_bytes=1000)
    for n in range(5):
        cache.put((n, 1), f"row {n}", 10)
    assert len(cache) == 3
    assert [cache.get((n, 1)) for n in range(5)] == [None, None, "row 2", "row 3", "row 4"]
    assert cache.size == 30


def test_a_revision_cache_holds_no_more_than_its_bytes() -> None:
    """Entries are few but large (a project's description may be 10,000 characters)."""
    cache: RevisionCache[str] = RevisionCache(max_entries=100, max_bytes=1000)
    for n in range(10):
        cache.put((n, 1), f"row {n}", 300)
        assert cache.size <= 1000
    assert cache.get((9, 1)) == "row 9"
    assert cache.get((0, 1)) is None
    cache.put((9, 1), "row 9 again", 300)  # a key put twice counts once
    assert cache.size == 300 * len(cache)
