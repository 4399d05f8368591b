"""Structured JSON logs: one line per event, each carrying the request id when there is one.

structlog renders our own events; the standard library's loggers (uvicorn, alembic,
SQLAlchemy) are routed through the same processors so every line has the same shape.
"""

from __future__ import annotations

import logging
import sys
from typing import TextIO

import orjson
import structlog


def _json(obj: object, **_: object) -> str:
    return orjson.dumps(obj, default=str).decode()


class _StdoutHandler(logging.StreamHandler):  # type: ignore[type-arg]
    """Writes each line to whatever ``sys.stdout`` is when it is written, so a process (or a
    test) that replaces stdout after start-up still gets the lines."""

    @property
    def stream(self) -> TextIO:
        return sys.stdout

    @stream.setter
    def stream(self, _: TextIO) -> None:
        pass


def configure_logging(level: str = "info", stream: TextIO | None = None) -> None:
    """JSON lines on ``stream``: stdout for the server; the CLI's commands use stderr so that
    their stdout carries only their answer (a key's secret, a user's id)."""
    shared: list[structlog.types.Processor] = [
        structlog.contextvars.merge_contextvars,
        structlog.stdlib.add_log_level,
        structlog.stdlib.add_logger_name,
        structlog.processors.TimeStamper(fmt="iso", utc=True),
    ]
    structlog.configure(
        processors=[
            # The level lives on the standard library's root logger, not in the cached
            # loggers, so configuring again (another app, a test) takes effect at once.
            structlog.stdlib.filter_by_level,
            *shared,
            structlog.processors.format_exc_info,
            structlog.stdlib.ProcessorFormatter.wrap_for_formatter,
        ],
        logger_factory=structlog.stdlib.LoggerFactory(),
        wrapper_class=structlog.stdlib.BoundLogger,
        cache_logger_on_first_use=True,
    )
    formatter = structlog.stdlib.ProcessorFormatter(
        foreign_pre_chain=shared,
        processors=[
            structlog.stdlib.ProcessorFormatter.remove_processors_meta,
            structlog.processors.format_exc_info,
            structlog.processors.JSONRenderer(serializer=_json),
        ],
    )
    handler = _StdoutHandler() if stream is None else logging.StreamHandler(stream)
    handler.setFormatter(formatter)
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level.upper())
    for name in ("uvicorn", "uvicorn.error", "uvicorn.access"):
        logging.getLogger(name).handlers[:] = []
        logging.getLogger(name).propagate = True
    logging.getLogger("uvicorn.access").disabled = True  # our access line replaces it
