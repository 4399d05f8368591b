"""``rostra worker``: the background jobs (webhook delivery) in a process of their own."""

from __future__ import annotations

import asyncio

from sqlalchemy.exc import SQLAlchemyError

from rostra.cli.common import database_failure, fail, load_settings
from rostra.core.logging import configure_logging


def worker() -> None:
    """Deliver webhooks until stopped (SIGTERM or Ctrl-C finish the sends under way first)."""
    from rostra.worker import run_worker

    settings = load_settings()
    configure_logging(settings.log_level)
    try:
        asyncio.run(run_worker(settings))
    except (OSError, SQLAlchemyError) as exc:
        fail(database_failure(exc) or str(exc))
