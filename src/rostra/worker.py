"""The background process: runs the jobs that domains register, until told to stop.

A job is an object with ``async run()`` (works until stopped) and ``stop()`` (stop taking new
work; ``run`` then returns once the work under way is done). Today there is one, webhook
delivery. The same jobs run embedded in ``rostra serve`` (see ``app.py``) or alone in
``rostra worker``, which stops cleanly on SIGTERM or SIGINT.
"""

from __future__ import annotations

import asyncio
import signal
from collections.abc import Callable
from typing import Protocol

import structlog

from rostra.core.config import Settings
from rostra.core.db import Database
from rostra.core.metrics import Metrics
from rostra.webhooks.jobs import DeliveryWorker, queue_depth

log = structlog.get_logger(__name__)


class BackgroundJob(Protocol):
    async def run(self) -> None: ...

    def stop(self) -> None: ...


JobFactory = Callable[[Database, Settings, Metrics], BackgroundJob]


def webhook_delivery(db: Database, settings: Settings, metrics: Metrics) -> BackgroundJob:
    return DeliveryWorker(db, settings, metrics=metrics)


JOBS: tuple[JobFactory, ...] = (webhook_delivery,)
"""Every domain's background job: one line per domain, as ``api.py`` lists the routers."""


class BackgroundJobs:
    """The registered jobs of one process, started and stopped together."""

    def __init__(self, db: Database, settings: Settings, metrics: Metrics) -> None:
        self.jobs = [make(db, settings, metrics) for make in JOBS]
        self._tasks: list[asyncio.Task[None]] = []

    def start(self) -> None:
        self._tasks = [asyncio.create_task(job.run()) for job in self.jobs]

    def stop(self) -> None:
        for job in self.jobs:
            job.stop()

    async def wait(self) -> None:
        """Until every job's ``run`` returned; a job that crashed is logged, not re-raised."""
        for task, job in zip(self._tasks, self.jobs, strict=True):
            try:
                await task
            except Exception:
                log.exception("background_job_crashed", job=type(job).__name__)

    async def close(self) -> None:
        self.stop()
        await self.wait()


async def run_worker(settings: Settings) -> None:
    """The ``rostra worker`` process: every job until SIGTERM or SIGINT."""
    db = Database(settings)
    try:
        await queue_depth(db)  # fails fast (and clearly) on a database that is away or not migrated
        jobs = BackgroundJobs(db, settings, Metrics())
        loop = asyncio.get_running_loop()
        for signum in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(signum, jobs.stop)
        jobs.start()
        log.info("worker_started", jobs=[type(job).__name__ for job in jobs.jobs])
        await jobs.wait()
        log.info("worker_stopped")
    finally:
        await db.dispose()
