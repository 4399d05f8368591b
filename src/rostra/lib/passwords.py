"""argon2id password hashing with a bound on how many hashes run at once.

Each argon2id hash takes tens of MiB and a core for tens of milliseconds; a login flood
without a bound would exhaust memory. Hashes run in threads (argon2-cffi releases the GIL),
at most ``concurrency`` at a time, with at most ``queue`` callers waiting; past that the
caller gets ``PasswordHasherBusy`` at once rather than a growing queue.
"""

from __future__ import annotations

import asyncio

from argon2 import PasswordHasher as Argon2Hasher
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError


class PasswordHasherBusy(Exception):
    """Too many password hashes are running or waiting."""


class BoundedPasswordHasher:
    def __init__(self, *, concurrency: int, queue: int, hasher: Argon2Hasher | None = None) -> None:
        self._hasher = hasher or Argon2Hasher()
        self._slots = asyncio.Semaphore(concurrency)
        self._capacity = concurrency + queue
        self._in_flight = 0
        # A fixed hash to verify against when the user does not exist, so that a login for an
        # unknown name takes as long as one for a known name.
        self._dummy_hash = self._hasher.hash("rostra-timing-equaliser")

    async def _run(self, fn: object, *args: str) -> object:
        if self._in_flight >= self._capacity:
            raise PasswordHasherBusy
        self._in_flight += 1
        try:
            async with self._slots:
                return await asyncio.to_thread(fn, *args)  # type: ignore[arg-type]
        finally:
            self._in_flight -= 1

    async def hash(self, password: str) -> str:
        result = await self._run(self._hasher.hash, password)
        assert isinstance(result, str)
        return result

    async def verify(self, password_hash: str | None, password: str) -> bool:
        """True when the password matches; always does one hash's worth of work."""
        try:
            await self._run(self._hasher.verify, password_hash or self._dummy_hash, password)
        except (VerifyMismatchError, VerificationError, InvalidHashError):
            return False
        return password_hash is not None

    def needs_rehash(self, password_hash: str) -> bool:
        return self._hasher.check_needs_rehash(password_hash)
