"""Health checks of the backing stores, run at most once per ``health_cache_seconds``.

A load balancer or a probe flood asking /health thousands of times a second costs the
database one ``SELECT 1`` per interval; concurrent askers share the round in flight.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

import structlog

log = structlog.get_logger(__name__)

CHECK_TIMEOUT_SECONDS = 2.0

Check = Callable[[], Awaitable[object]]


@dataclass(frozen=True)
class HealthReport:
    checks: dict[str, str]

    @property
    def healthy(self) -> bool:
        return all(value in ("ok", "disabled") for value in self.checks.values())


class HealthChecker:
    def __init__(self, checks: dict[str, Check | None], cache_seconds: float) -> None:
        self.checks = checks
        self.cache_seconds = cache_seconds
        self._report: HealthReport | None = None
        self._checked_at = float("-inf")
        self._lock = asyncio.Lock()

    async def report(self) -> HealthReport:
        if self._report is not None and time.monotonic() - self._checked_at < self.cache_seconds:
            return self._report
        async with self._lock:
            if self._report is None or time.monotonic() - self._checked_at >= self.cache_seconds:
                self._report = await self._run()
                self._checked_at = time.monotonic()
            return self._report

    async def _run(self) -> HealthReport:
        names = list(self.checks)
        results = await asyncio.gather(*(self._one(name) for name in names))
        return HealthReport(dict(zip(names, results, strict=True)))

    async def _one(self, name: str) -> str:
        check = self.checks[name]
        if check is None:
            return "disabled"
        try:
            async with asyncio.timeout(CHECK_TIMEOUT_SECONDS):
                await check()
        except Exception as exc:
            log.warning("health_check_failed", check=name, error=repr(exc))
            return "error"
        return "ok"
