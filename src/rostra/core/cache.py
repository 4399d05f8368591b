"""Short-lived in-process caches of verified credentials and rendered users.

They keep the hot path off the database. Every entry is tagged with its user, so a change to
that user (role, plan, profile, deletion) or to the credential drops it at once in this
process; other processes notice within the entry's lifetime (``ROSTRA_AUTH_CACHE_SECONDS``).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from typing import Any, Generic, TypeVar

from sqlalchemy.ext.asyncio import AsyncSession

T = TypeVar("T")


class ExpiringCache(Generic[T]):
    def __init__(self, ttl_seconds: float, max_entries: int = 100_000) -> None:
        self.ttl = ttl_seconds
        self.max_entries = max_entries
        self._entries: dict[str, tuple[float, int, T]] = {}
        self._keys_by_user: dict[int, set[str]] = {}
        self._loading: dict[str, asyncio.Future[T]] = {}

    def get(self, key: str) -> T | None:
        entry = self._entries.get(key)
        if entry is None:
            return None
        expires, _, value = entry
        if expires < time.monotonic():
            self.forget(key)
            return None
        return value

    async def load_once(self, key: str, load: Callable[[], Awaitable[T]]) -> T:
        """Concurrent misses of one key share a single ``load`` (no stampede on expiry)."""
        loading = self._loading.get(key)
        if loading is None:
            loading = asyncio.ensure_future(load())
            self._loading[key] = loading
            loading.add_done_callback(lambda _: self._loading.pop(key, None))
        # shield: one waiter's cancellation (a client gone) must not fail the others' load.
        return await asyncio.shield(loading)

    def put(self, key: str, value: T, *, user_id: int) -> None:
        if self.ttl <= 0:
            return
        if len(self._entries) >= self.max_entries:
            self.clear()
        self._entries[key] = (time.monotonic() + self.ttl, user_id, value)
        self._keys_by_user.setdefault(user_id, set()).add(key)

    def forget(self, key: str) -> None:
        entry = self._entries.pop(key, None)
        if entry is not None:
            keys = self._keys_by_user.get(entry[1])
            if keys is not None:
                keys.discard(key)

    def forget_user(self, user_id: int) -> None:
        for key in self._keys_by_user.pop(user_id, set()):
            self._entries.pop(key, None)

    def clear(self) -> None:
        self._entries.clear()
        self._keys_by_user.clear()


class Caches:
    """The caches of one database; ``forget_user`` is what every change to a user calls."""

    def __init__(self, ttl_seconds: float) -> None:
        self.credentials: ExpiringCache[Any] = ExpiringCache(ttl_seconds)
        self.user_views: ExpiringCache[Any] = ExpiringCache(ttl_seconds)

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
