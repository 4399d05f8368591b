"""In-process caches: short-lived ones of verified credentials and rendered users, and rows
rendered at a revision.

They keep the hot path off the database. Every credential and user entry is tagged with its
user, so a change to that user (role, plan, profile, deletion) or to the credential drops it at
once in this process; other processes notice within the entry's lifetime
(``ROSTRA_AUTH_CACHE_SECONDS``). A row rendered at a revision needs no telling at all
(``RevisionCache``).
"""

from __future__ import annotations

import asyncio
import itertools
import time
from collections.abc import Awaitable, Callable
from typing import Any, Generic, TypeVar

from sqlalchemy.ext.asyncio import AsyncSession

T = TypeVar("T")

RevisionKey = tuple[int, int]
"""A row's id and revision."""


REFRESH_AHEAD = 0.8
"""An entry older than this share of its lifetime is reloaded in the background while it is
still served, so a busy key never expires under the requests that use it."""

Loader = Callable[[], Awaitable[tuple[T, int]]]
"""Reads a value afresh; answers it with the id of the user it belongs to."""


class ExpiringCache(Generic[T]):
    """Entries live ``ttl_seconds`` from when they were loaded, never longer.

    ``get_or_load`` reloads a busy entry ahead of its expiry: requests keep the value they
    have while one background load replaces it, instead of all waiting at the moment it
    expires (on a busy server that wait was the slowest percentile of every request). A load
    that started before the cache was told of a change (``forget``, ``forget_user``) does not
    store what it read: it may be older than the change.
    """

    def __init__(self, ttl_seconds: float, max_entries: int = 100_000) -> None:
        self.ttl = ttl_seconds
        self.max_entries = max_entries
        # key -> (expires, refresh from, user id, value), monotonic seconds
        self._entries: dict[str, tuple[float, float, int, T]] = {}
        self._keys_by_user: dict[int, set[str]] = {}
        self._loading: dict[str, asyncio.Future[T]] = {}
        self._changes = 0

    async def get_or_load(self, key: str, load: Loader[T]) -> T:
        entry = self._entries.get(key)
        if entry is not None:
            now = time.monotonic()
            if entry[0] >= now:
                if entry[1] <= now and key not in self._loading:
                    self._start_load(key, load).add_done_callback(_ignore_failure)
                return entry[3]
        # Concurrent misses of one key share a single load (no stampede on expiry).
        loading = self._loading.get(key) or self._start_load(key, load)
        # shield: one waiter's cancellation (a client gone) must not fail the others' load.
        return await asyncio.shield(loading)

    def _start_load(self, key: str, load: Loader[T]) -> asyncio.Future[T]:
        async def load_and_keep() -> T:
            changes = self._changes
            try:
                value, user_id = await load()
            except BaseException:
                # What the key stood for is gone (a revoked key): the next request finds out.
                self.forget(key)
                raise
            if changes == self._changes:
                self.put(key, value, user_id=user_id)
            return value

        loading = asyncio.ensure_future(load_and_keep())
        self._loading[key] = loading
        loading.add_done_callback(lambda _: self._loading.pop(key, None))
        return loading

    def put(self, key: str, value: T, *, user_id: int) -> None:
        if self.ttl <= 0:
            return
        if len(self._entries) >= self.max_entries:
            self.clear()
        now = time.monotonic()
        self._entries[key] = (now + self.ttl, now + self.ttl * REFRESH_AHEAD, user_id, value)
        self._keys_by_user.setdefault(user_id, set()).add(key)

    def forget(self, key: str) -> None:
        self._changes += 1
        entry = self._entries.pop(key, None)
        if entry is not None:
            keys = self._keys_by_user.get(entry[2])
            if keys is not None:
                keys.discard(key)

    def forget_user(self, user_id: int) -> None:
        self._changes += 1
        for key in self._keys_by_user.pop(user_id, set()):
            self._entries.pop(key, None)

    def clear(self) -> None:
        self._changes += 1
        self._entries.clear()
        self._keys_by_user.clear()


def _ignore_failure(loading: asyncio.Future[Any]) -> None:
    """A background reload that failed has already dropped its entry; nobody awaits it."""
    if not loading.cancelled():
        loading.exception()


class RevisionCache(Generic[T]):
    """What was worked out from rows as they stood at a revision, by ``(id, revision)``.

    A table that keeps a revision changes it on every write to a row (``core.db.new_revision``,
    a fresh random number), so an entry never goes stale: a changed row is asked for under a
    new key, in this process and every other, and nothing has to be told of the change. The
    old entry ages out: once there are ``max_entries``, or the entries' sizes (as ``put`` is
    told them) add up to ``max_bytes``, the older half of the entries (in the order they were
    put) is dropped. A hit does no bookkeeping; an LRU's would cost about what the lookup saves.
    """

    def __init__(self, max_entries: int, max_bytes: int) -> None:
        self.max_entries = max_entries
        self.max_bytes = max_bytes
        self._entries: dict[RevisionKey, T] = {}
        self._sizes: dict[RevisionKey, int] = {}
        self._bytes = 0
        self.get = self._entries.get

    def put(self, key: RevisionKey, value: T, size: int) -> None:
        entries, sizes = self._entries, self._sizes
        self._bytes += size - sizes.get(key, 0)
        entries[key], sizes[key] = value, size
        if len(entries) > self.max_entries or self._bytes > self.max_bytes:
            for old in list(itertools.islice(entries, max(len(entries) // 2, 1))):
                del entries[old]
                self._bytes -= sizes.pop(old)

    def __len__(self) -> int:
        return len(self._entries)

    @property
    def size(self) -> int:
        """What the entries' sizes add up to."""
        return self._bytes


REVISION_CACHE_ENTRIES = 20_000
"""Rows kept rendered per kind and process: every row of a thousand pages."""
REVISION_CACHE_BYTES = 16 * 1024 * 1024
"""And at most this much of their renderings: a project's JSON is some 300 bytes, but its
description may take 10,000 characters."""


class Caches:
    """The caches of one database; ``forget_user`` is what every change to a user calls."""

    def __init__(self, ttl_seconds: float) -> None:
        self.credentials: ExpiringCache[Any] = ExpiringCache(ttl_seconds)
        self.user_views: ExpiringCache[Any] = ExpiringCache(ttl_seconds)
        self._by_revision: dict[str, RevisionCache[Any]] = {}

    def by_revision(self, kind: str) -> RevisionCache[Any]:
        """The ``RevisionCache`` of one kind of rendering (one per database: ids and
        revisions mean nothing in another)."""
        cache = self._by_revision.get(kind)
        if cache is None:
            cache = self._by_revision[kind] = RevisionCache(
                REVISION_CACHE_ENTRIES, REVISION_CACHE_BYTES
            )
        return cache

    def forget_user(self, user_id: int) -> None:
        self.credentials.forget_user(user_id)
        self.user_views.forget_user(user_id)


_FORGET_USERS = "rostra.forget_users"


def forget_user_after_commit(session: AsyncSession, user_id: int) -> None:
    """Drop the user's cached credentials and views once this transaction commits.

    After, not before: a request racing the commit could otherwise cache the old row again.
    """
    session.info.setdefault(_FORGET_USERS, set()).add(user_id)


def run_after_commit(session: AsyncSession, caches: Caches) -> None:
    for user_id in session.info.pop(_FORGET_USERS, ()):
        caches.forget_user(user_id)


def discard_after_rollback(session: AsyncSession) -> None:
    session.info.pop(_FORGET_USERS, None)
