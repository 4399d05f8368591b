"""Running the delivery worker in a test: a movable clock, the worker as a task, waiting."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from datetime import datetime, timedelta

from fastapi import FastAPI
from sqlalchemy import select

from rostra.core.db import utcnow
from rostra.core.metrics import Metrics
from rostra.webhooks.jobs import DeliveryWorker
from rostra.webhooks.models import WebhookAttempt, WebhookDelivery

FAST_DELIVERY = {
    "rate_limit_enabled": False,
    "webhooks_allow_private": True,
    "webhooks_poll_seconds": 0.05,
    "webhooks_retry_delays_seconds": [5, 300],
}
"""Settings for delivery tests: loopback receivers allowed, quick polls, known delays."""


class MovableClock:
    """The real time plus an offset that a test moves forward (retries come without waiting)."""

    def __init__(self) -> None:
        self.offset = timedelta()

    def __call__(self) -> datetime:
        return utcnow() + self.offset

    def advance(self, seconds: float) -> None:
        self.offset += timedelta(seconds=seconds)


@asynccontextmanager
async def running_worker(
    app: FastAPI, clock: MovableClock | None = None, **settings: object
) -> AsyncIterator[DeliveryWorker]:
    """The delivery worker running in the background for the block, stopped after it."""
    worker_settings = app.state.settings.model_copy(update=settings)
    metrics: Metrics = app.state.metrics
    worker = DeliveryWorker(
        app.state.db, worker_settings, metrics=metrics, clock=clock or MovableClock()
    )
    task = asyncio.create_task(worker.run())
    try:
        yield worker
    finally:
        worker.stop()
        await asyncio.wait_for(task, 15)


async def until(check: Callable[[], Awaitable[bool]], within: float = 10.0) -> None:
    deadline = time.monotonic() + within
    while not await check():
        if time.monotonic() > deadline:
            raise AssertionError("the condition did not come true in time")
        await asyncio.sleep(0.02)


async def delivery(app: FastAPI, delivery_id: int) -> WebhookDelivery:
    async with app.state.db.session_scope() as session:
        found = await session.get(WebhookDelivery, delivery_id)
        assert found is not None
        return found


async def attempts(app: FastAPI, delivery_id: int) -> list[WebhookAttempt]:
    async with app.state.db.session_scope() as session:
        query = (
            select(WebhookAttempt)
            .where(WebhookAttempt.delivery_id == delivery_id)
            .order_by(WebhookAttempt.attempt)
        )
        return list((await session.scalars(query)).all())
