"""An asyncio SQLite driver that runs each statement on the event loop's own thread.

aiosqlite runs every call (cursor, execute, fetch, close, commit) on a thread of its own and
wakes the loop for each answer: half a dozen thread hand-overs per statement, which cost far
more CPU than the statement itself (an indexed read takes microseconds). This driver has the
same interface, as SQLAlchemy's aiosqlite dialect uses it (``async_creator``), and calls
``sqlite3`` directly instead.

Running inline asks two things of it that a thread did for free:

- **No waiting on the loop's thread.** Within a process, writers take turns on one
  ``asyncio.Lock`` (``WriteTurns``), taken before a connection's first write statement and
  given back when its transaction ends, so a writer never meets another of the same process
  inside SQLite. Against other processes (a ``rostra worker``, the CLI) SQLite is told not to
  wait at all (``busy_timeout`` 0), and a busy database is retried here with ``asyncio.sleep``,
  up to ``busy_seconds``, so the loop keeps serving meanwhile.
- **Short holds of the loop.** A statement holds the loop while it runs. Rostra's statements
  walk indexes and stop after a page, but a deep offset into a million rows takes most of a
  second. A read outside any transaction gets a budget (``LoopBudget``): past it, SQLite
  interrupts it and it runs again on a worker thread with a connection of its own, where it
  holds nothing but that thread. A write, or a read inside a transaction, cannot move to
  another connection and runs to its end.
"""

from __future__ import annotations

import asyncio
import sqlite3
import threading
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import contextmanager
from typing import Any, Self, TypeVar, cast

_T = TypeVar("_T")
_BUSY_FIRST_PAUSE = 0.001
_BUSY_LONGEST_PAUSE = 0.05
_READ_PREFIXES = ("SELECT", "PRAGMA", "EXPLAIN")
_PROGRESS_STEPS = 10_000
"""SQLite virtual-machine steps between two looks at the budget (a small read takes fewer)."""


def _is_read(sql: str) -> bool:
    return sql.lstrip()[:7].upper().startswith(_READ_PREFIXES)


def _is_busy(error: sqlite3.OperationalError) -> bool:
    """Whether waiting may help: another connection holds the database. Not a transaction
    whose snapshot another connection's commit made stale (``SQLITE_BUSY_SNAPSHOT``): it can
    only roll back."""
    code: int = getattr(error, "sqlite_errorcode", 0)
    if code == sqlite3.SQLITE_BUSY_SNAPSHOT:
        return False
    return code & 0xFF in (sqlite3.SQLITE_BUSY, sqlite3.SQLITE_LOCKED)


def interrupted(error: BaseException | None) -> bool:
    """Whether ``error`` is SQLite stopping a statement that ran past its ``LoopBudget``."""
    return getattr(error, "sqlite_errorcode", None) == sqlite3.SQLITE_INTERRUPT


class LoopBudget:
    """How long one statement may hold the event loop's thread: a progress handler on each
    connection it ``watch``es interrupts a statement ``running`` on that thread past it.
    Statements on other threads are never interrupted."""

    def __init__(self, seconds: float) -> None:
        self.seconds = seconds
        self._deadline = 0.0
        self._thread = 0

    def watch(self, raw: sqlite3.Connection) -> None:
        raw.set_progress_handler(self._past_deadline, _PROGRESS_STEPS)

    def _past_deadline(self) -> int:
        return int(self._thread == threading.get_ident() and time.monotonic() > self._deadline)

    @contextmanager
    def running(self) -> Iterator[None]:
        self._deadline = time.monotonic() + self.seconds
        self._thread = threading.get_ident()
        try:
            yield
        finally:
            self._thread = 0


def read_apart(path: str, sql: str, parameters: Any) -> tuple[Any, list[Any]]:
    """``sql`` (a read) on a connection of its own: for a worker thread."""
    raw = sqlite3.connect(path)
    try:
        raw.execute("PRAGMA query_only=ON")
        cursor = raw.execute(sql, parameters)
        return cursor.description, cursor.fetchall()
    finally:
        raw.close()


async def retry_busy(call: Callable[[], _T], seconds: float) -> _T:
    """``call``, run again (with ``asyncio.sleep`` between) while another process holds the
    database, for up to ``seconds``."""
    deadline = time.monotonic() + seconds
    pause = _BUSY_FIRST_PAUSE
    while True:
        try:
            return call()
        except sqlite3.OperationalError as error:
            if not _is_busy(error) or time.monotonic() + pause > deadline:
                raise
        await asyncio.sleep(pause)
        pause = min(pause * 2, _BUSY_LONGEST_PAUSE)


class WriteTurns:
    """One process's writers, one at a time: a connection holds the turn from its first write
    statement until its transaction commits or rolls back."""

    def __init__(self) -> None:
        self._lock = asyncio.Lock()

    async def take(self, seconds: float) -> None:
        """Wait for the turn; past ``seconds``, fail as a locked database would."""
        if not self._lock.locked():
            await self._lock.acquire()  # free: taken at once, no deadline to keep
            return
        try:
            async with asyncio.timeout(seconds):
                await self._lock.acquire()
        except TimeoutError:
            raise sqlite3.OperationalError("database is locked") from None

    def give_back(self) -> None:
        self._lock.release()


class Cursor:
    """The part of ``aiosqlite.Cursor`` that SQLAlchemy calls. A read outside any transaction
    is fetched whole when it runs (SQLAlchemy fetches everything at once anyway), within the
    loop's budget or else on a worker thread."""

    def __init__(self, connection: Connection) -> None:
        self._connection = connection
        self._cursor = connection.raw.cursor()
        self._description: Any = None
        self._fetched: list[Any] | None = None

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(self, *_: object) -> None:
        await self.close()

    @property
    def description(self) -> Any:
        return self._description

    @property
    def rowcount(self) -> int:
        return self._cursor.rowcount

    @property
    def lastrowid(self) -> int | None:
        return self._cursor.lastrowid

    @property
    def arraysize(self) -> int:
        return self._cursor.arraysize

    @arraysize.setter
    def arraysize(self, value: int) -> None:
        self._cursor.arraysize = value

    async def execute(self, sql: str, parameters: Any = ()) -> Self:
        connection = self._connection
        self._fetched = None
        if not connection.may_move(sql):
            await connection.run(sql, lambda: self._cursor.execute(sql, parameters))
            self._description = self._cursor.description
            return self
        try:
            await connection.run(sql, lambda: self._fetch_within_budget(sql, parameters))
        except sqlite3.OperationalError as error:
            if not interrupted(error):
                raise
            self._description, self._fetched = await connection.read_apart(sql, parameters)
        return self

    def _fetch_within_budget(self, sql: str, parameters: Any) -> None:
        budget = self._connection.budget
        assert budget is not None  # may_move said so
        with budget.running():
            self._cursor.execute(sql, parameters)
            self._fetched = self._cursor.fetchall()
        self._description = self._cursor.description

    async def executemany(self, sql: str, parameters: Iterable[Any]) -> Self:
        rows = list(parameters)  # retried whole on a busy database, so kept
        self._fetched = None
        await self._connection.run(sql, lambda: self._cursor.executemany(sql, rows))
        self._description = self._cursor.description
        return self

    async def fetchone(self) -> Any:
        if self._fetched is None:
            return self._cursor.fetchone()
        return self._fetched.pop(0) if self._fetched else None

    async def fetchmany(self, size: int | None = None) -> list[Any]:
        count = size if size is not None else self._cursor.arraysize
        if self._fetched is None:
            return self._cursor.fetchmany(count)
        taken, self._fetched = self._fetched[:count], self._fetched[count:]
        return taken

    async def fetchall(self) -> list[Any]:
        if self._fetched is None:
            return self._cursor.fetchall()
        taken, self._fetched = self._fetched, []
        return taken

    async def close(self) -> None:
        self._cursor.close()


class Connection:
    """The part of ``aiosqlite.Connection`` that SQLAlchemy calls, over one ``sqlite3``
    connection used only from the event loop's thread."""

    def __init__(
        self,
        raw: sqlite3.Connection,
        *,
        path: str,
        turns: WriteTurns,
        busy_seconds: float,
        budget: LoopBudget | None,
    ) -> None:
        self.raw = raw
        self.budget = budget
        self._path = path
        self._turns = turns
        self._busy_seconds = busy_seconds
        self._has_turn = False
        if budget is not None:
            budget.watch(raw)

    def may_move(self, sql: str) -> bool:
        """Whether ``sql`` could run on another connection as well: a read outside any
        transaction, on a database other connections can open (a file: it has a budget)."""
        return self.budget is not None and not self.raw.in_transaction and _is_read(sql)

    async def read_apart(self, sql: str, parameters: Any) -> tuple[Any, list[Any]]:
        return await asyncio.to_thread(read_apart, self._path, sql, parameters)

    @property
    def _connection(self) -> sqlite3.Connection:
        # SQLAlchemy's adapter tests this to tell an open connection from a closed one.
        return self.raw

    @property
    def isolation_level(self) -> str | None:
        return self.raw.isolation_level

    @isolation_level.setter
    def isolation_level(self, value: str | None) -> None:
        # SQLAlchemy sets None (autocommit) or "" (the default: a transaction begun by a write).
        self.raw.isolation_level = cast(Any, value)

    async def run(self, sql: str, call: Callable[[], object]) -> None:
        """``call`` (which executes ``sql``) with this process's write turn held first when it
        may write, retried while another process holds the database."""
        if not self._has_turn and not _is_read(sql):
            await self._turns.take(self._busy_seconds)
            self._has_turn = True
        try:
            await self._retry_busy(call)
        finally:
            self._give_back_when_done()

    async def _retry_busy(self, call: Callable[[], object]) -> None:
        await retry_busy(call, self._busy_seconds)

    def _give_back_when_done(self) -> None:
        if self._has_turn and not self.raw.in_transaction:
            self._has_turn = False
            self._turns.give_back()

    def cursor(self) -> Cursor:
        return Cursor(self)

    async def commit(self) -> None:
        try:
            await self._retry_busy(self.raw.commit)
        finally:
            self._give_back_when_done()

    async def rollback(self) -> None:
        try:
            self.raw.rollback()
        finally:
            self._give_back_when_done()

    async def create_function(self, *args: Any, **kwargs: Any) -> None:
        self.raw.create_function(*args, **kwargs)

    async def close(self) -> None:
        try:
            self.raw.close()
        finally:
            if self._has_turn:
                self._has_turn = False
                self._turns.give_back()

    def stop(self) -> None:
        """Close at once (SQLAlchemy's ``terminate`` outside the loop)."""
        self.raw.close()


def connector(
    path: str,
    *,
    turns: WriteTurns,
    busy_seconds: float,
    budget: LoopBudget | None = None,
    pragmas: Sequence[str] = (),
) -> Callable[[], Any]:
    """An ``async_creator`` for ``create_async_engine``: each call opens one connection to
    ``path``, runs ``pragmas`` and sets SQLite's own busy wait to none (this driver waits).
    With a ``budget``, a read outside any transaction that runs past it moves to a thread
    (``path`` must then be a file)."""

    async def connect() -> Connection:
        raw = sqlite3.connect(path, check_same_thread=False)
        for pragma in pragmas:
            raw.execute(pragma)
        raw.execute("PRAGMA busy_timeout=0")
        return Connection(raw, path=path, turns=turns, busy_seconds=busy_seconds, budget=budget)

    return connect
