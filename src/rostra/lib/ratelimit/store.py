"""What every store offers the limiter, and the one error they raise when they cannot answer."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Protocol

from rostra.lib.ratelimit.policy import Decision, Policy, Usage


class StoreUnavailable(Exception):
    """The store could not be asked (Redis down or too slow); the caller decides what to do."""


class RateLimitStore(Protocol):
    async def hit(self, key: str, policy: Policy) -> Decision:
        """Count one request for ``key`` if every blocking window has room, atomically."""
        ...

    async def refund(self, key: str, decision: Decision) -> None:
        """Take back a request counted by ``hit`` (a 304 costs nothing)."""
        ...

    async def peek(self, key: str, policy: Policy) -> Usage:
        """The windows as they stand, without counting."""
        ...

    @property
    def hit_now(self) -> Callable[[str, Policy], Decision] | None:
        """``hit`` as a plain call, for a store that never waits (memory); else None.

        Nearly every request is counted, and a coroutine on the way costs each of them."""
        ...


def billing_period(now_ms: int) -> str:
    """The UTC month ``YYYY-MM`` that overage at ``now_ms`` is billed to."""
    return time.strftime("%Y-%m", time.gmtime(now_ms / 1000))
