"""``Database.transaction`` on a SQLite file: statements built once, run on the event loop's
thread straight on the driver.

For the hottest writes: an idempotency key's claim and answer, a project's creation. Through
SQLAlchemy's async engine a short transaction costs about 300 us of greenlet switches, pool
checkout and execution contexts around statements that take tens; through a session with the
unit of work, several times that. Here it is the statements and the commit. Each statement is
``Prepared`` (``core.sqlite_reads``): compiled once, its values turned by its columns' types as
SQLAlchemy would, and its errors are SQLAlchemy's (``IntegrityError``...), so callers handle a
failure alike on either database.

The connection is used only while it holds its process's write turn
(``lib.inline_sqlite.WriteTurns``, shared with the engine's connections): it takes its turn
among the sessions' writers, and serves one transaction at a time. ``BEGIN IMMEDIATE`` takes
SQLite's lock first (waiting for another process's write with the driver's ``retry_busy``), so
no statement meets a lock half-way and a transaction's reads see the latest commit.
"""

from __future__ import annotations

import sqlite3
from collections.abc import AsyncIterator, Iterator, Mapping, Sequence
from contextlib import asynccontextmanager, contextmanager
from typing import Any

from sqlalchemy import Executable
from sqlalchemy.engine.interfaces import Dialect
from sqlalchemy.exc import DBAPIError, StatementError

from rostra.core.sqlite_reads import prepare
from rostra.core.writes import Written
from rostra.lib import inline_sqlite


def _as_sqlalchemy_error(sql: str, error: sqlite3.Error) -> StatementError:
    return DBAPIError.instance(sql, None, error, sqlite3.Error)


@contextmanager
def _sqlalchemy_errors(sql: str) -> Iterator[None]:
    try:
        yield
    except sqlite3.Error as error:
        raise _as_sqlalchemy_error(sql, error) from error


class SQLiteTransaction:
    """``core.writes.Writes`` on the write connection, inside its transaction."""

    def __init__(
        self, raw: sqlite3.Connection, dialect: Dialect, topics: set[str], busy_seconds: float
    ) -> None:
        self._raw = raw
        self._dialect = dialect
        self._topics = topics
        self._busy_seconds = busy_seconds

    async def run(self, statement: Executable, params: Mapping[str, Any]) -> Written:
        prepared = prepare(statement, self._dialect)
        try:
            cursor = prepared.execute(self._raw, params)
            return Written(prepared.rows(cursor), cursor.rowcount)
        except sqlite3.Error as error:
            raise _as_sqlalchemy_error(prepared.sql, error) from error

    def notify_after_commit(self, topic: str) -> None:
        self._topics.add(topic)

    async def commit(self) -> None:
        with _sqlalchemy_errors("COMMIT"):
            await inline_sqlite.retry_busy(self._raw.commit, self._busy_seconds)


class SQLiteWrites:
    """The write connection of one ``Database`` on a SQLite file."""

    def __init__(
        self,
        path: str,
        *,
        turns: inline_sqlite.WriteTurns,
        busy_seconds: float,
        pragmas: Sequence[str],
        dialect: Dialect,
    ) -> None:
        self._path = path
        self._turns = turns
        self._busy_seconds = busy_seconds
        self._pragmas = pragmas
        self._dialect = dialect
        self._raw: sqlite3.Connection | None = None

    def _connection(self) -> sqlite3.Connection:
        if self._raw is None:
            raw = sqlite3.connect(self._path, isolation_level=None, check_same_thread=False)
            for pragma in self._pragmas:
                raw.execute(pragma)
            raw.execute("PRAGMA busy_timeout=0")
            self._raw = raw
        return self._raw

    @asynccontextmanager
    async def transaction(self, topics: set[str]) -> AsyncIterator[SQLiteTransaction]:
        """Committed when the block succeeds, rolled back when it raises."""
        with _sqlalchemy_errors("BEGIN IMMEDIATE"):
            await self._turns.take(self._busy_seconds)
        try:
            raw = self._connection()
            with _sqlalchemy_errors("BEGIN IMMEDIATE"):
                await inline_sqlite.retry_busy(
                    lambda: raw.execute("BEGIN IMMEDIATE"), self._busy_seconds
                )
            transaction = SQLiteTransaction(raw, self._dialect, topics, self._busy_seconds)
            try:
                yield transaction
                await transaction.commit()
            except BaseException:
                raw.rollback()
                raise
        finally:
            self._turns.give_back()

    def close(self) -> None:
        if self._raw is not None:
            self._raw.close()
            self._raw = None
