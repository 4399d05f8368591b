"""The in-process store: one process's counters in a dictionary.

Every method does its check and count without awaiting anything, so on one event loop no two
requests interleave and the limits hold exactly. Counters of processes do not add up: with
several processes or hosts, use the Redis store.
"""

from __future__ import annotations

import time
from collections.abc import Callable

from rostra.lib.ratelimit.policy import Decision, Policy, Usage, WindowState
from rostra.lib.ratelimit.store import billing_period

SWEEP_INTERVAL_MS = 60_000


class MemoryStore:
    def __init__(self, clock: Callable[[], float] = time.time) -> None:
        self.clock = clock
        """Seconds since the Unix epoch; tests pass a fake one."""
        # caller -> window name -> [used, resets_at_ms]
        self._counters: dict[str, dict[str, list[int]]] = {}
        # (caller, period) -> requests over a non-blocking limit
        self._overage: dict[tuple[str, str], int] = {}
        self._next_sweep_ms = 0

    def _now_ms(self) -> int:
        return int(self.clock() * 1000)

    async def hit(self, key: str, policy: Policy) -> Decision:
        now = self._now_ms()
        if now >= self._next_sweep_ms:
            self._sweep(now)
        counters = self._counters.get(key)
        if counters is None:
            counters = self._counters[key] = {}
        windows = policy.windows
        current: list[list[int]] = []
        allowed = True
        for window in windows:
            counter = counters.get(window.name)
            if counter is None or counter[1] <= now:
                counter = [0, now + window.seconds * 1000]
            current.append(counter)
            limit = window.limit
            if limit is not None and window.blocks and counter[0] >= limit:
                allowed = False
        overage = 0
        if allowed:
            for window, counter in zip(windows, current, strict=True):
                counter[0] += 1
                counters[window.name] = counter
                limit = window.limit
                if limit is not None and not window.blocks and counter[0] > limit:
                    overage = 1
            if overage:
                period = (key, billing_period(now))
                self._overage[period] = self._overage.get(period, 0) + 1
        states = tuple(
            [
                WindowState(window, counter[0], counter[1])
                for window, counter in zip(windows, current, strict=True)
            ]
        )
        return Decision(allowed, states, now, overage)

    async def refund(self, key: str, decision: Decision) -> None:
        counters = self._counters.get(key, {})
        for state in decision.states:
            counter = counters.get(state.window.name)
            # Only the window the request was counted in: a newer one never saw it.
            if counter is not None and counter[1] == state.resets_at_ms and counter[0] > 0:
                counter[0] -= 1
        if decision.overage:
            period = (key, billing_period(decision.now_ms))
            if self._overage.get(period, 0) > 0:
                self._overage[period] -= 1

    async def peek(self, key: str, policy: Policy) -> Usage:
        now = self._now_ms()
        counters = self._counters.get(key, {})
        states = []
        for window in policy.windows:
            counter = counters.get(window.name)
            if counter is None or counter[1] <= now:
                states.append(WindowState(window, 0, now + window.seconds * 1000))
            else:
                states.append(WindowState(window, counter[0], counter[1]))
        period = billing_period(now)
        return Usage(tuple(states), now, period, self._overage.get((key, period), 0))

    def _sweep(self, now: int) -> None:
        """Forget callers whose windows have all ended, and past periods' overage."""
        self._next_sweep_ms = now + SWEEP_INTERVAL_MS
        ended = [
            key
            for key, counters in self._counters.items()
            if all(counter[1] <= now for counter in counters.values())
        ]
        for key in ended:
            del self._counters[key]
        period = billing_period(now)
        for stale in [k for k in self._overage if k[1] != period]:
            del self._overage[stale]
