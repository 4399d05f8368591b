"""``Database.write`` on a SQLite file: one statement in a transaction of its own, run on the
event loop's thread straight on the driver.

For the short records a request keeps beside its own transaction (an idempotency key's claim,
then its answer). Through SQLAlchemy's async engine such a write costs about 300 us of greenlet
switches, pool checkout and execution context around a statement that takes 50; here it is the
statement and its commit. The statement is ``Prepared`` (``core.sqlite_reads``): compiled once,
its values turned by its columns' types as SQLAlchemy would.

The connection writes only while it holds its process's write turn
(``lib.inline_sqlite.WriteTurns``, shared with the engine's connections), so it takes its turn
among the sessions' writers, and is used by one write at a time. ``BEGIN IMMEDIATE`` takes
SQLite's lock before the statement (waiting for another process's write with the driver's
``retry_busy``), so a statement never meets a lock half-way.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy.engine.interfaces import Dialect
from sqlalchemy.exc import DBAPIError
from sqlalchemy.sql.dml import UpdateBase

from rostra.core.sqlite_reads import Prepared, prepare
from rostra.lib import inline_sqlite


@dataclass(frozen=True, slots=True)
class Written:
    """What a write gave: the rows it returned (``RETURNING``) and how many rows it touched."""

    rows: Sequence[Any]
    rowcount: int


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

    async def run(self, statement: UpdateBase, params: Mapping[str, Any]) -> Written:
        """Raises what SQLAlchemy would (``IntegrityError``, ``OperationalError``...), so a
        caller handles a failed write alike on either database."""
        prepared = prepare(statement, self._dialect)
        try:
            await self._turns.take(self._busy_seconds)
            try:
                return await self._run(prepared, params)
            finally:
                self._turns.give_back()
        except sqlite3.Error as error:
            raise DBAPIError.instance(prepared.sql, None, error, sqlite3.Error) from error

    async def _run(self, prepared: Prepared, params: Mapping[str, Any]) -> Written:
        raw = self._connection()
        await inline_sqlite.retry_busy(lambda: raw.execute("BEGIN IMMEDIATE"), self._busy_seconds)
        try:
            cursor = prepared.execute(raw, params)
            written = Written(prepared.rows(cursor), cursor.rowcount)
            await inline_sqlite.retry_busy(raw.commit, self._busy_seconds)
        except BaseException:
            raw.rollback()
            raise
        return written

    def close(self) -> None:
        if self._raw is not None:
            self._raw.close()
            self._raw = None
