"""The in-process store: one process's counters in a dictionary.

Every method does its check and count without awaiting anything, so on one event loop no two
requests interleave and the limits hold exactly. Counters of processes do not add up: with
several processes or hosts, use the Redis store.
"""

from __future__ import annotations

import time
from collections.abc import Callable

from rostra.lib.ratelimit.policy import Decision, Policy, Usage, Window, WindowState
from rostra.lib.ratelimit.store import billing_period

SWEEP_INTERVAL_MS = 60_000


class _Counters:
    """One caller's windows: ``used[i]`` and ``ends[i]`` (ms) belong to ``windows[i]``.

    Laid out as the caller's policy is, so a request walks them by position; a window that has
    ended (``ends[i] <= now``) counts as not yet started.
    """

    __slots__ = ("ends", "used", "windows")

    def __init__(self, windows: tuple[Window, ...], used: list[int], ends: list[int]) -> None:
        self.windows = windows
        self.used = used
        self.ends = ends

    def laid_out_for(self, windows: tuple[Window, ...]) -> _Counters:
        """The same counts for another policy (the caller's plan changed): by window name."""
        names = [window.name for window in self.windows]
        used, ends = [], []
        for window in windows:
            i = names.index(window.name) if window.name in names else -1
            used.append(self.used[i] if i >= 0 else 0)
            ends.append(self.ends[i] if i >= 0 else 0)
        return _Counters(windows, used, ends)


class MemoryStore:
    def __init__(self, clock: Callable[[], float] = time.time) -> None:
        self.clock = clock
        """Seconds since the Unix epoch; tests pass a fake one."""
        self._counters: dict[str, _Counters] = {}
        # (caller, period) -> requests over a non-blocking limit
        self._overage: dict[tuple[str, str], int] = {}
        self._next_sweep_ms = 0

    def _now_ms(self) -> int:
        return int(self.clock() * 1000)

    def _new_layout(
        self, key: str, counters: _Counters | None, windows: tuple[Window, ...]
    ) -> _Counters:
        """The caller's counters laid out for ``windows``: a new caller, or a new policy."""
        if counters is None:
            counters = _Counters(windows, [0] * len(windows), [0] * len(windows))
        else:
            counters = counters.laid_out_for(windows)
        self._counters[key] = counters
        return counters

    async def hit(self, key: str, policy: Policy) -> Decision:
        return self.hit_now(key, policy)

    def hit_now(self, key: str, policy: Policy) -> Decision:
        """``hit`` without a coroutine: the memory store never waits for anything."""
        now = int(self.clock() * 1000)
        if now >= self._next_sweep_ms:
            self._sweep(now)
        windows = policy.windows
        counters = self._counters.get(key)
        if counters is None or counters.windows is not windows:
            counters = self._new_layout(key, counters, windows)
        used, ends = counters.used, counters.ends
        for i, refuses_at in policy.refusing:
            if used[i] >= refuses_at and ends[i] > now:
                return self._refusal(windows, used, ends, now)
        for i, length_ms in policy.lengths_ms:
            if ends[i] > now:
                used[i] += 1
            else:
                used[i] = 1
                ends[i] = now + length_ms
        overage = 0
        for i, limit in policy.overage_limits:
            if used[i] > limit:
                overage = 1
        if overage:
            period = (key, billing_period(now))
            self._overage[period] = self._overage.get(period, 0) + 1
        return Decision(True, windows, tuple(used), tuple(ends), now, overage)

    @staticmethod
    def _refusal(
        windows: tuple[Window, ...], used: list[int], ends: list[int], now: int
    ) -> Decision:
        """A refused request counts nowhere, and starts no window that has ended."""
        started = [end > now for end in ends]
        return Decision(
            False,
            windows,
            tuple(n if on else 0 for n, on in zip(used, started, strict=True)),
            tuple(
                end if on else now + window.seconds * 1000
                for window, end, on in zip(windows, ends, started, strict=True)
            ),
            now,
        )

    async def refund(self, key: str, decision: Decision) -> None:
        counters = self._counters.get(key)
        if counters is not None:
            names = [window.name for window in counters.windows]
            for window, ends in zip(decision.windows, decision.resets_at_ms, strict=True):
                if window.name not in names:
                    continue
                i = names.index(window.name)
                # Only the window the request was counted in: a newer one never saw it.
                if counters.ends[i] == ends and counters.used[i] > 0:
                    counters.used[i] -= 1
        if decision.overage:
            period = (key, billing_period(decision.now_ms))
            if self._overage.get(period, 0) > 0:
                self._overage[period] -= 1

    async def peek(self, key: str, policy: Policy) -> Usage:
        now = self._now_ms()
        counters = self._counters.get(key)
        if counters is not None:
            counters = counters.laid_out_for(policy.windows)
        states = []
        for i, window in enumerate(policy.windows):
            if counters is None or counters.ends[i] <= now:
                states.append(WindowState(window, 0, now + window.seconds * 1000))
            else:
                states.append(WindowState(window, counters.used[i], counters.ends[i]))
        period = billing_period(now)
        return Usage(tuple(states), now, period, self._overage.get((key, period), 0))

    def _sweep(self, now: int) -> None:
        """Forget callers whose windows have all ended, and past periods' overage."""
        self._next_sweep_ms = now + SWEEP_INTERVAL_MS
        ended = [
            key for key, counters in self._counters.items() if max(counters.ends, default=0) <= now
        ]
        for key in ended:
            del self._counters[key]
        period = billing_period(now)
        for stale in [k for k in self._overage if k[1] != period]:
            del self._overage[stale]
