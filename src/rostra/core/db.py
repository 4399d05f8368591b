"""Async SQLAlchemy on SQLite (WAL, foreign keys on) or PostgreSQL (asyncpg).

Transactions belong to the session dependency and ``session_scope()``: they commit when the
work succeeds and roll back when it raises. Services only flush.
"""

from __future__ import annotations

import asyncio
import json
import secrets
from collections.abc import AsyncIterator, Callable, Iterable, Mapping, Sequence
from contextlib import asynccontextmanager
from datetime import UTC, datetime
from typing import Any, cast

import orjson
from sqlalchemy import (
    DateTime,
    Executable,
    MetaData,
    false,
    inspect,
    text,
    update,
)
from sqlalchemy.dialects import sqlite
from sqlalchemy.ext.asyncio import (
    AsyncEngine,
    AsyncSession,
    async_sessionmaker,
    create_async_engine,
)
from sqlalchemy.orm import DeclarativeBase
from sqlalchemy.sql.dml import UpdateBase
from sqlalchemy.types import TypeDecorator

from rostra.core.cache import Caches, discard_after_rollback, run_after_commit
from rostra.core.config import Settings
from rostra.core.sqlite_reads import SQLiteReads
from rostra.core.sqlite_writes import SQLiteWrites
from rostra.core.writes import ConnectionWrites, Writes, Written, run_on
from rostra.lib import inline_sqlite

NAMING_CONVENTION = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING_CONVENTION)


def utcnow() -> datetime:
    return datetime.now(UTC)


def new_revision() -> int:
    """A row's revision after a write: random, so that ``(id, revision)`` names one state of
    a row (``core.cache.RevisionCache``) across processes and hosts without any of them
    counting; never 0, the revision of the rows written before revisions were kept."""
    return secrets.randbits(62) + 1


_SQLITE_DATETIME_FORMAT = sqlite.DATETIME()._storage_format  # type: ignore[no-untyped-call]
"""How SQLAlchemy stores a time on SQLite: ``2026-12-03 19:00:00.000000``."""


class UTCDateTime(TypeDecorator[datetime]):
    """A timezone-aware UTC datetime on both databases (SQLite stores naive values)."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Any) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime given to a UTC column")
        return value.astimezone(UTC)

    def bind_processor(self, dialect: Any) -> Callable[[Any], Any] | None:
        """On SQLite, one step from an aware time to the text SQLite's ``DATETIME`` stores
        (UTC, no offset), rather than the generic chain (``process_bind_param``, then the
        dialect's formatting through a dict)."""
        impl = self.impl_instance.dialect_impl(dialect)
        if getattr(impl, "_storage_format", None) != _SQLITE_DATETIME_FORMAT:
            return super().bind_processor(dialect)

        def process(value: datetime | None) -> str | None:
            if value is None:
                return None
            if value.tzinfo is None:
                raise ValueError("naive datetime given to a UTC column")
            return value.astimezone(UTC).replace(tzinfo=None).isoformat(" ", "microseconds")

        return process

    def process_result_value(self, value: datetime | None, dialect: Any) -> datetime | None:
        if value is None:
            return None
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)

    def result_processor(self, dialect: Any, coltype: Any) -> Callable[[Any], Any] | None:
        """Where the database gives text (SQLite), one step from it to an aware time: the
        generic chain (parse, then ``process_result_value``) was a third of a 20-row page."""
        parse = self.impl_instance.dialect_impl(dialect).result_processor(dialect, coltype)
        if parse is None:
            return super().result_processor(dialect, coltype)
        read_iso = datetime.fromisoformat

        def process(value: Any) -> datetime | None:
            if value is None:
                return None
            if isinstance(value, str):
                # SQLite's text holds no offset: read with "Z", the parse itself gives the
                # aware time (``replace(tzinfo=)`` cost ten times the parse). Text it refuses
                # (a bare date, one with an offset) takes the generic way below.
                try:
                    return read_iso(value + "Z")
                except ValueError:
                    pass
            parsed = cast(datetime, parse(value))  # naive: SQLite stores UTC, no offset
            return parsed.replace(tzinfo=UTC)

        return process


def read_json(text: str | bytes) -> Any:
    """A JSON column's value: orjson reads it several times faster than ``json``; what orjson
    refuses (an integer past 64 bits, NaN) ``json`` still reads."""
    try:
        return orjson.loads(text)
    except orjson.JSONDecodeError:
        return json.loads(text)


def write_json(value: Any) -> str:
    """A JSON column's text, written by orjson (compact); what orjson refuses (an integer
    past 64 bits) by ``json``."""
    try:
        return orjson.dumps(value).decode()
    except TypeError:
        return json.dumps(value)


async def take_write_turn(session: AsyncSession, entity: type[Base]) -> None:
    """On SQLite, take the database's one write lock now, before reading the rows a write will
    change: concurrent writers then take turns, each reading what the one before it committed
    (SQLite otherwise reads outside any transaction until the first write). PostgreSQL locks
    rows instead (``SELECT ... FOR UPDATE``), so there this does nothing."""
    if session.get_bind().dialect.name != "sqlite":
        return
    key = inspect(entity).primary_key[0]
    statement = update(entity).where(false()).values({key.key: key})
    await session.execute(statement.execution_options(synchronize_session=False))


SQLITE_PRAGMAS = (
    "PRAGMA journal_mode=WAL",
    "PRAGMA foreign_keys=ON",
    "PRAGMA synchronous=NORMAL",
    "PRAGMA temp_store=MEMORY",
)
"""Set on every connection that may write. ``temp_store=MEMORY`` keeps a savepoint's journal in
memory: a shared commit (``core/sqlite_writes.py``) runs each joiner in a savepoint, whose journal
SQLite otherwise spills past 64 KiB to a new file in the temporary directory, made, written and
deleted again for most shared commits under load; in memory, a create spent half the system
time. SQLite's other temporary files (a sort that outgrows its cache, a temporary index) stay in
memory too: a list sorts along its sort column's index, and a sort with a LIMIT keeps only that
many rows."""
SQLITE_BUSY_SECONDS = 10.0
"""How long a statement waits for another process's write to finish before it fails."""
SQLITE_LOOP_SECONDS = 0.02
"""How long a read outside any transaction may hold the event loop before it moves to a
worker thread (lib/inline_sqlite.py). A page of a million rows takes a few milliseconds; a
deep offset into them most of a second."""


def make_engine(settings: Settings, turns: inline_sqlite.WriteTurns | None = None) -> AsyncEngine:
    """The engine of ``settings``; on SQLite its writers take ``turns`` (a new one when none is
    given) with whatever else writes in this process."""
    if settings.is_sqlite:
        path = settings.sqlite_path()
        if path is not None:
            path.parent.mkdir(parents=True, exist_ok=True)
        # Statements run on the loop's thread (lib/inline_sqlite.py): the SQLAlchemy URL still
        # names aiosqlite, whose dialect is the one that speaks to an asyncio driver.
        connect = inline_sqlite.connector(
            str(path) if path is not None else ":memory:",
            turns=turns or inline_sqlite.WriteTurns(),
            busy_seconds=SQLITE_BUSY_SECONDS,
            budget=inline_sqlite.LoopBudget(SQLITE_LOOP_SECONDS) if path is not None else None,
            pragmas=SQLITE_PRAGMAS,
        )
        return create_async_engine(
            settings.database_url,
            async_creator=connect,
            json_serializer=write_json,
            json_deserializer=read_json,
        )
    return create_async_engine(
        settings.database_url,
        json_serializer=write_json,
        json_deserializer=read_json,
        pool_size=settings.database_pool_size,
        max_overflow=settings.database_pool_size,
        pool_pre_ping=True,
    )


_NOTIFY_TOPICS = "rostra.notify_topics"


def notify_after_commit(session: AsyncSession, topic: str) -> None:
    """Wake whoever waits on ``topic`` in this process once this transaction commits.

    After, not before: a waiter woken earlier would look for rows it cannot see yet. Only
    transactions run by ``Database.session_scope`` (and so the request session) notify.
    """
    session.info.setdefault(_NOTIFY_TOPICS, set()).add(topic)


class SessionWrites:
    """A session's transaction as ``core.writes.Writes``: each statement runs after the
    session's pending changes are flushed, on the session's connection (without the ORM's
    execution around a Core statement)."""

    def __init__(self, session: AsyncSession) -> None:
        self._session = session

    async def run(self, statement: Executable, params: Mapping[str, Any]) -> Written:
        session = self._session
        if session.new or session.dirty or session.deleted:
            await session.flush()
        return await run_on(await session.connection(), statement, params)

    def notify_after_commit(self, topic: str) -> None:
        notify_after_commit(self._session, topic)


class Notifications:
    """In-process wake-ups by topic, such as "new webhook deliveries are due".

    A notification sent while nobody waits is kept (one per topic) and answers the next
    ``wait`` at once, so a waiter busy between two waits misses nothing. Other processes do
    not hear these; they poll.
    """

    def __init__(self) -> None:
        self._events: dict[str, asyncio.Event] = {}

    def _event(self, topic: str) -> asyncio.Event:
        return self._events.setdefault(topic, asyncio.Event())

    def notify(self, topic: str) -> None:
        self._event(topic).set()

    def notify_all(self, topics: Iterable[str]) -> None:
        for topic in topics:
            self.notify(topic)

    # A timeout parameter on purpose: a poll interval, not a deadline the caller could scope.
    async def wait(self, topic: str, timeout: float) -> bool:  # noqa: ASYNC109
        """True when ``topic`` was notified (since the last wait returned), False on timeout."""
        event = self._event(topic)
        try:
            async with asyncio.timeout(timeout):
                await event.wait()
        except TimeoutError:
            return False
        event.clear()
        return True


class Database:
    """The engine and session factory of one app (or CLI command, or worker)."""

    def __init__(self, settings: Settings) -> None:
        turns = inline_sqlite.WriteTurns()
        self.engine = make_engine(settings, turns)
        self.sessions = async_sessionmaker(self.engine, expire_on_commit=False)
        path = settings.sqlite_path()
        self._sqlite_reads: SQLiteReads | None = None
        self._sqlite_writes: SQLiteWrites | None = None
        if path is not None:
            self._sqlite_reads = SQLiteReads(
                path, loop_seconds=SQLITE_LOOP_SECONDS, json_deserializer=read_json
            )
            self._sqlite_writes = SQLiteWrites(
                str(path),
                turns=turns,
                busy_seconds=SQLITE_BUSY_SECONDS,
                pragmas=SQLITE_PRAGMAS,
                dialect=self.engine.dialect,
            )
        self.caches = Caches(settings.auth_cache_seconds)
        self.notifications = Notifications()

    @asynccontextmanager
    async def session_scope(self) -> AsyncIterator[AsyncSession]:
        """One transaction: committed when the block succeeds, rolled back when it raises."""
        async with self.sessions() as session:
            try:
                yield session
                await session.commit()
            except BaseException:
                await session.rollback()
                discard_after_rollback(session)
                session.info.pop(_NOTIFY_TOPICS, None)
                raise
            run_after_commit(session, self.caches)
            self.notifications.notify_all(session.info.pop(_NOTIFY_TOPICS, ()))

    async def read(
        self,
        statement: Executable,
        params: Mapping[str, Any] | None = None,
        *,
        prepared: bool = False,
    ) -> Sequence[Any]:
        """The rows of one read outside any transaction: what is committed, never a session's
        pending work. For the hottest reads, which need no session.

        On a SQLite file it runs on the event loop's own thread, and ``prepared`` (for a
        select built once, not afresh for each request) skips SQLAlchemy's execution of it
        (``core.sqlite_reads``). Elsewhere it runs on a pooled connection.
        """
        if self._sqlite_reads is None:
            async with self.engine.connect() as connection:
                return (await connection.execute(statement, params)).all()
        return await self._sqlite_reads.rows(statement, params, prepared=prepared)

    @asynccontextmanager
    async def transaction(self) -> AsyncIterator[Writes]:
        """Statements built once (``core.writes``), in one transaction outside any session:
        committed when the block succeeds, rolled back when it raises. For the hottest writes,
        which need neither the unit of work nor a session's set-up.

        On a SQLite file they run straight on the driver (``core.sqlite_writes``), taking their
        turn among the process's writers. Elsewhere on a pooled connection.
        """
        topics: set[str] = set()
        if self._sqlite_writes is not None:
            async with self._sqlite_writes.transaction(topics) as on_driver:
                yield on_driver
        else:
            async with self.engine.begin() as connection:
                yield ConnectionWrites(connection, topics)
        self.notifications.notify_all(topics)

    async def write(self, statement: UpdateBase, params: Mapping[str, Any]) -> Written:
        """One statement built once, in a transaction of its own (``transaction``)."""
        async with self.transaction() as writes:
            return await writes.run(statement, params)

    async def ping(self) -> None:
        async with self.engine.connect() as connection:
            await connection.execute(text("SELECT 1"))

    async def dispose(self) -> None:
        if self._sqlite_reads is not None:
            self._sqlite_reads.close()
        if self._sqlite_writes is not None:
            self._sqlite_writes.close()
        await self.engine.dispose()
