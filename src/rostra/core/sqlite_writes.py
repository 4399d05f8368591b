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
among the sessions' writers, and serves one transaction at a time, which writers ready at the
same moment join rather than each committing alone (``_CommitGroup``: a create's three commits
were a quarter of its CPU). ``BEGIN IMMEDIATE`` takes SQLite's lock first (waiting for another
process's write with the driver's ``retry_busy``), so no statement meets a lock half-way and a
transaction's reads see the latest commit.
"""

from __future__ import annotations

import asyncio
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


def _require_transaction(raw: sqlite3.Connection, sql: str) -> None:
    """Raise unless the connection's transaction is still open.

    A full disk, an I/O error or an interrupt may make SQLite roll back the whole transaction,
    not only the statement that met it. After that, a statement would run and commit on its
    own, and ``commit()`` would quietly do nothing: every writer whose work was in the
    transaction would be told it is done. So no statement runs, and no commit is reported,
    outside the transaction they belong to."""
    if not raw.in_transaction:
        raise _as_sqlalchemy_error(
            sql, sqlite3.OperationalError("SQLite rolled the transaction back after an error in it")
        )


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
        _require_transaction(self._raw, prepared.sql)
        try:
            cursor = prepared.execute(self._raw, params)
            return Written(prepared.rows(cursor), cursor.rowcount)
        except sqlite3.Error as error:
            raise _as_sqlalchemy_error(prepared.sql, error) from error

    def notify_after_commit(self, topic: str) -> None:
        self._topics.add(topic)

    async def commit(self) -> None:
        _require_transaction(self._raw, "COMMIT")
        with _sqlalchemy_errors("COMMIT"):
            await inline_sqlite.retry_busy(self._raw.commit, self._busy_seconds)


class _CommitGroup:
    """The writers that share one ``COMMIT``.

    A writer that has run its block opens its transaction to others for one turn of the event
    loop before committing: the writers ready to run in that turn (other requests that arrived
    together) run their blocks in it, each in a savepoint of its own, so a block that fails
    undoes only its own work. Then the group closes, the blocks still running (one that
    awaited something) are waited for, and one ``COMMIT`` makes them all durable; every writer
    in the group learns the outcome, an error of the commit included, before its block exits.
    Under load a commit, the most costly part of a short write, is shared by many; alone, a
    writer pays one yield to the loop.

    Blocks join one at a time (never while another joined block is running), so the
    savepoints never nest: rolling one back cannot undo another's work.
    """

    __slots__ = ("_all_released", "_done", "_joined", "_running", "closed")

    def __init__(self) -> None:
        self.closed = False
        self._joined = 0
        self._running = 0
        self._all_released: asyncio.Future[None] | None = None
        self._done: asyncio.Future[None] | None = None
        """The outcome the joiners wait for; made by the first to join (a writer alone, the
        usual case when the process is not busy, makes none)."""

    def joinable(self) -> bool:
        return not self.closed and self._running == 0

    def join(self) -> str:
        if self._done is None:
            self._done = asyncio.get_running_loop().create_future()
        self._joined += 1
        self._running += 1
        return f"joined_{self._joined}"

    def release(self) -> None:
        self._running -= 1
        waiter = self._all_released
        if self._running == 0 and waiter is not None and not waiter.done():
            waiter.set_result(None)

    async def all_released(self) -> None:
        """Once no joined block is running. Waits on when cancelled, and raises the
        cancellation after: the transaction must not end under a running block, whose later
        statements would then commit on their own."""
        cancelled: asyncio.CancelledError | None = None
        while self._running:
            self._all_released = asyncio.get_running_loop().create_future()
            try:
                await self._all_released
            except asyncio.CancelledError as error:
                cancelled = error
        if cancelled is not None:
            raise cancelled

    def committed(self) -> None:
        if self._done is not None:
            self._done.set_result(None)

    def failed(self, error: BaseException) -> None:
        """The commit failed with ``error``, or the writer that was to commit was cancelled
        (the joiners then fail as a commit that could not be made)."""
        if self._done is None:
            return
        if isinstance(error, asyncio.CancelledError):
            error = _as_sqlalchemy_error(
                "COMMIT", sqlite3.OperationalError("the shared commit was abandoned")
            )
        self._done.set_exception(error)
        self._done.exception()  # retrieved: the joiners whose own block failed never read it

    async def outcome(self) -> None:
        """Once the group's commit is done; its error if it failed. Shielded: a joiner
        cancelled while waiting leaves the outcome to the others."""
        assert self._done is not None  # made when the caller joined
        await asyncio.shield(self._done)


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
        self._group: _CommitGroup | None = None

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
        """Committed when the block succeeds, rolled back when it raises; the block exits only
        once its work is committed (or with the error that kept it from being).

        Writers share commits: one that finds a transaction open for joining runs its block in
        a ``SAVEPOINT`` of that transaction instead of waiting for its own turn
        (``_CommitGroup``)."""
        group = self._group
        # A transaction SQLite has rolled back (``_require_transaction``) is joined by no one.
        if group is not None and group.joinable() and self._connection().in_transaction:
            async with self._joined(group, topics) as transaction:
                yield transaction
            return
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
            except BaseException:
                raw.rollback()
                raise
            await self._commit_with_joiners(raw, transaction)
        finally:
            self._turns.give_back()

    async def _commit_with_joiners(
        self, raw: sqlite3.Connection, transaction: SQLiteTransaction
    ) -> None:
        """Open the transaction to joiners for one turn of the event loop, wait for the blocks
        that joined, then commit them all with one ``COMMIT``."""
        group = _CommitGroup()
        self._group = group
        try:
            try:
                await asyncio.sleep(0)  # the writers ready to run now join here
            finally:
                group.closed = True
                await group.all_released()
            await transaction.commit()
        except BaseException as error:
            raw.rollback()
            group.failed(error)
            raise
        finally:
            self._group = None
        group.committed()

    @asynccontextmanager
    async def _joined(
        self, group: _CommitGroup, topics: set[str]
    ) -> AsyncIterator[SQLiteTransaction]:
        raw = self._connection()  # open: the group's transaction is on it
        savepoint = group.join()
        try:
            with _sqlalchemy_errors("SAVEPOINT"):
                raw.execute(f"SAVEPOINT {savepoint}")
            try:
                yield SQLiteTransaction(raw, self._dialect, topics, self._busy_seconds)
            except BaseException:
                if raw.in_transaction:  # else SQLite rolled it all back, savepoint and all
                    with _sqlalchemy_errors("ROLLBACK TO"):
                        raw.execute(f"ROLLBACK TO {savepoint}")
                        raw.execute(f"RELEASE {savepoint}")
                raise
            with _sqlalchemy_errors("RELEASE"):
                raw.execute(f"RELEASE {savepoint}")
        finally:
            group.release()
        await group.outcome()

    def close(self) -> None:
        if self._raw is not None:
            self._raw.close()
            self._raw = None
