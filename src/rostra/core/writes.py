"""Where Core statements write: ``Writes``, one transaction's statements, whoever runs it.

A domain that writes through built-once Core statements (the event log, the webhook fan-out, a
project's creation) takes a ``Writes`` and does not care whether it is a request session's
transaction (``core.db.SessionWrites``), a transaction of its own (``Database.transaction``,
straight on the driver on SQLite), or a connection's.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

from sqlalchemy import Executable
from sqlalchemy.ext.asyncio import AsyncConnection


@dataclass(frozen=True, slots=True)
class Written:
    """What a statement gave: its rows (a select's, or what a write ``RETURNING``s) and how
    many rows it touched."""

    rows: Sequence[Any]
    rowcount: int


class Writes(Protocol):
    async def run(self, statement: Executable, params: Mapping[str, Any]) -> Written:
        """``statement`` (built once: its values are ``bindparam``s named in ``params``) in
        this transaction."""
        ...

    def notify_after_commit(self, topic: str) -> None:
        """Wake this process's waiters on ``topic`` once the transaction commits
        (``core.db.Notifications``)."""
        ...


async def run_on(
    connection: AsyncConnection, statement: Executable, params: Mapping[str, Any]
) -> Written:
    result = await connection.execute(statement, params)
    return Written(result.all() if result.returns_rows else [], result.rowcount)


class ConnectionWrites:
    """A connection's transaction as ``Writes``; the topics are for its owner to notify."""

    def __init__(self, connection: AsyncConnection, topics: set[str]) -> None:
        self._connection = connection
        self._topics = topics

    async def run(self, statement: Executable, params: Mapping[str, Any]) -> Written:
        return await run_on(self._connection, statement, params)

    def notify_after_commit(self, topic: str) -> None:
        self._topics.add(topic)
