"""Whether work left the event loop free: a ticker counts how often the loop ran it meanwhile."""

from __future__ import annotations

import asyncio
from collections.abc import Coroutine
from typing import Any, TypeVar

T = TypeVar("T")

LONG_READ = (
    "SELECT (WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c WHERE x < 2000000)"
    " SELECT count(*) FROM c)"
)
"""A read (SQLite or PostgreSQL) that takes a good part of a second; it counts 2,000,000."""


async def ticks_during(work: Coroutine[Any, Any, T]) -> tuple[T, int]:
    """``work``'s result, and how often a 5 ms ticker ran on the loop meanwhile."""
    ticks = 0

    async def tick() -> None:
        nonlocal ticks
        while True:
            await asyncio.sleep(0.005)
            ticks += 1

    ticker = asyncio.create_task(tick())
    await asyncio.sleep(0)
    try:
        result = await work
    finally:
        ticker.cancel()
    return result, ticks
