"""When a failed delivery is tried again.

The first attempt goes at once; after the n-th failure the next waits ``delays[n - 1]`` (the
last delay repeats), stretched or shrunk by a random jitter so that deliveries which failed
together (a receiver's outage) do not all come back in the same second. A receiver's
``Retry-After`` is honoured: the retry never comes sooner than it asked, within a bound so that
a receiver cannot park its deliveries for ever.
"""

from __future__ import annotations

import random
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime

DEFAULT_DELAYS_SECONDS: tuple[float, ...] = (5, 300, 1800, 7200, 18000, 36000)
"""The contract's schedule after the first, immediate attempt: 5 s, 5 min, 30 min, 2 h, 5 h,
10 h, then 10 h again."""
DEFAULT_JITTER = 0.15
"""Each delay is multiplied by a random factor in [1 - jitter, 1 + jitter]."""
MAX_RETRY_AFTER_SECONDS = 86_400.0
"""A receiver's ``Retry-After`` is followed up to a day."""


@dataclass(frozen=True)
class RetrySchedule:
    delays: Sequence[float] = DEFAULT_DELAYS_SECONDS
    jitter: float = DEFAULT_JITTER
    max_retry_after: float = MAX_RETRY_AFTER_SECONDS

    def __post_init__(self) -> None:
        if not self.delays or any(delay < 0 for delay in self.delays):
            raise ValueError("the schedule needs at least one delay, none negative")
        if not 0 <= self.jitter < 1:
            raise ValueError("jitter must be in [0, 1)")

    def delay_after(
        self,
        attempts: int,
        *,
        retry_after: float | None = None,
        rng: random.Random | None = None,
    ) -> float:
        """Seconds to wait before the next attempt, after ``attempts`` attempts (>= 1) failed."""
        if attempts < 1:
            raise ValueError("attempts counts the tries made so far, starting at 1")
        base = self.delays[min(attempts, len(self.delays)) - 1]
        spread = (rng or random).uniform(1 - self.jitter, 1 + self.jitter)
        delay = base * spread
        if retry_after is not None:
            delay = max(delay, min(retry_after, self.max_retry_after))
        return delay


def parse_retry_after(value: str | None, *, now: datetime) -> float | None:
    """Seconds from ``now`` that a ``Retry-After`` header asks for (delay-seconds or an
    HTTP-date), or None when it is absent or not understood. A date in the past is 0."""
    if value is None:
        return None
    text = value.strip()
    if text.isdigit():
        return float(text)
    try:
        when = parsedate_to_datetime(text)
    except (TypeError, ValueError, IndexError):
        return None
    if when.tzinfo is None:
        # RFC 9110 dates are GMT; a zone-less one is read as such rather than as local time.
        when = when.replace(tzinfo=UTC)
    return max(0.0, (when - now).total_seconds())
