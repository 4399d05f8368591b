"""Structured JSON logs: one line per event, each carrying the request id when there is one.

structlog renders our own events; the standard library's loggers (uvicorn, alembic,
SQLAlchemy) are routed through the same processors so every line has the same shape. The one
line written for every request skips the processor chain (``access_line``): it writes the same
shape of line directly, since it runs on the hot path of every request.
"""

from __future__ import annotations

import logging
import sys
import time
from typing import TextIO

import orjson
import structlog


def _json(obj: object, **_: object) -> str:
    return orjson.dumps(obj, default=str).decode()


class _LineWriter:
    """structlog's output for our own events: one rendered line straight to the stream, with no
    detour through the standard library (no caller lookup, no formatter; this runs once per
    request). It writes to whatever ``sys.stdout`` is at the time when no stream is given, so a
    process (or a test) that replaces stdout after start-up still gets the lines."""

    def __init__(self, stream: TextIO | None) -> None:
        self._stream = stream

    def msg(self, message: str) -> None:
        out = self._stream or sys.stdout
        out.write(message + "\n")
        out.flush()

    debug = info = warning = warn = error = critical = exception = fatal = msg


class _StdoutHandler(logging.StreamHandler):  # type: ignore[type-arg]
    """The standard library's lines (uvicorn, alembic) to whatever ``sys.stdout`` is now."""

    @property
    def stream(self) -> TextIO:
        return sys.stdout

    @stream.setter
    def stream(self, _: TextIO) -> None:
        pass


class _Timestamper:
    """RFC 3339 UTC timestamps with microseconds; the seconds part is formatted once a second
    (structlog's TimeStamper builds a datetime per line, a noticeable cost per request)."""

    def __init__(self) -> None:
        self._second = -1
        self._prefix = ""

    def now(self) -> str:
        now = time.time()
        second = int(now)
        if second != self._second:
            self._second = second
            self._prefix = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(second))
        return "%s.%06dZ" % (self._prefix, (now - second) * 1e6)  # noqa: UP031 (faster)

    def __call__(
        self, _: object, __: str, event_dict: structlog.types.EventDict
    ) -> structlog.types.EventDict:
        event_dict["timestamp"] = self.now()
        return event_dict


_LEVELS = logging.getLevelNamesMapping()
_threshold = logging.INFO
_access_stream: TextIO | None = None
_access_timestamper = _Timestamper()


def access_line(request_id: str, **fields: object) -> None:
    """The access log line of a request (event ``request``, level info), as structlog would
    render it: the request's fields, its id, the level and the timestamp."""
    if _threshold > logging.INFO:
        return
    # The call's own keyword dictionary is the line: no copy.
    fields["event"] = "request"
    fields["request_id"] = request_id
    fields["level"] = "info"
    fields["timestamp"] = _access_timestamper.now()
    out = _access_stream or sys.stdout
    out.write(orjson.dumps(fields, default=str, option=orjson.OPT_APPEND_NEWLINE).decode())
    out.flush()


def _drop_below_level(
    _: object, method_name: str, event_dict: structlog.types.EventDict
) -> structlog.types.EventDict:
    # Read at each call, not baked into cached loggers: configuring again takes effect at once.
    if _LEVELS.get(method_name.upper(), logging.ERROR) < _threshold:
        raise structlog.DropEvent
    return event_dict


def configure_logging(level: str = "info", stream: TextIO | None = None) -> None:
    """JSON lines on ``stream``: stdout for the server; the CLI's commands use stderr so that
    their stdout carries only their answer (a key's secret, a user's id)."""
    global _threshold, _access_stream
    _threshold = _LEVELS[level.upper()]
    _access_stream = stream
    timestamper = _Timestamper()
    structlog.configure(
        processors=[
            _drop_below_level,
            structlog.contextvars.merge_contextvars,
            structlog.processors.add_log_level,
            timestamper,
            structlog.processors.format_exc_info,
            structlog.processors.JSONRenderer(serializer=_json),
        ],
        logger_factory=lambda *_: _LineWriter(stream),
        cache_logger_on_first_use=True,
    )
    formatter = structlog.stdlib.ProcessorFormatter(
        foreign_pre_chain=[
            structlog.contextvars.merge_contextvars,
            structlog.stdlib.add_log_level,
            structlog.stdlib.add_logger_name,
            timestamper,
        ],
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
