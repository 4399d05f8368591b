"""The inline SQLite driver: writers of one process take turns, another process's lock is
waited for without holding the event loop, and a wait that cannot end is not waited for."""

from __future__ import annotations

import asyncio
import sqlite3
import time
from pathlib import Path
from typing import Any

import pytest

from rostra.lib import inline_sqlite
from tests.event_loop import LONG_READ, ticks_during


@pytest.fixture
def path(tmp_path: Path) -> str:
    file = tmp_path / "inline.db"
    setup = sqlite3.connect(file)
    setup.execute("PRAGMA journal_mode=WAL")
    setup.execute("CREATE TABLE notes (id INTEGER PRIMARY KEY, text TEXT NOT NULL)")
    setup.commit()
    setup.close()
    return str(file)


async def _connect(
    path: str, *, busy_seconds: float = 5.0, budget: inline_sqlite.LoopBudget | None = None
) -> inline_sqlite.Connection:
    connect = inline_sqlite.connector(
        path, turns=inline_sqlite.WriteTurns(), busy_seconds=busy_seconds, budget=budget
    )
    connection: inline_sqlite.Connection = await connect()
    return connection


def _notes(path: str) -> list[str]:
    reader = sqlite3.connect(path)
    try:
        return [text for (text,) in reader.execute("SELECT text FROM notes ORDER BY id")]
    finally:
        reader.close()


async def test_writers_of_one_process_take_turns(path: str) -> None:
    connect = inline_sqlite.connector(path, turns=inline_sqlite.WriteTurns(), busy_seconds=5)
    first, second = await connect(), await connect()
    timeline: list[str] = []

    async def write(connection: inline_sqlite.Connection, name: str) -> None:
        cursor = connection.cursor()
        await cursor.execute("INSERT INTO notes (text) VALUES (?)", (name,))
        timeline.append(f"{name} wrote")
        await asyncio.sleep(0.05)  # a transaction that awaits something else mid-way
        await connection.commit()
        timeline.append(f"{name} committed")

    # SQLite itself is told not to wait (busy_timeout 0): without the turns, the second
    # writer would fail with "database is locked" at once.
    await asyncio.gather(write(first, "a"), write(second, "b"))
    assert timeline == ["a wrote", "a committed", "b wrote", "b committed"]
    assert _notes(path) == ["a", "b"]
    await first.close()
    await second.close()


async def test_a_reader_does_not_wait_for_a_writer(path: str) -> None:
    connect = inline_sqlite.connector(path, turns=inline_sqlite.WriteTurns(), busy_seconds=5)
    writer, reader = await connect(), await connect()
    await writer.cursor().execute("INSERT INTO notes (text) VALUES ('pending')")
    cursor = await reader.cursor().execute("SELECT count(*) FROM notes")
    assert await cursor.fetchall() == [(0,)]
    await writer.rollback()
    await writer.close()
    await reader.close()


async def test_another_process_is_waited_for_while_the_loop_runs_on(path: str) -> None:
    connection = await _connect(path)
    other = sqlite3.connect(path, isolation_level=None)  # stands for another process
    other.execute("BEGIN IMMEDIATE")
    other.execute("INSERT INTO notes (text) VALUES ('other')")

    async def release_later() -> None:
        await asyncio.sleep(0.2)
        other.execute("COMMIT")

    async def write() -> float:
        started = time.monotonic()
        await connection.cursor().execute("INSERT INTO notes (text) VALUES ('mine')")
        await connection.commit()
        return time.monotonic() - started

    releaser = asyncio.create_task(release_later())
    waited, ticks = await ticks_during(write())
    await releaser
    assert waited >= 0.15
    assert ticks >= 10  # the loop served others while the write waited
    assert _notes(path) == ["other", "mine"]
    await connection.close()
    other.close()


async def test_a_lock_held_too_long_fails_as_sqlite_would(path: str) -> None:
    connection = await _connect(path, busy_seconds=0.2)
    other = sqlite3.connect(path, isolation_level=None)
    other.execute("BEGIN IMMEDIATE")
    started = time.monotonic()
    with pytest.raises(sqlite3.OperationalError, match="locked"):
        await connection.cursor().execute("INSERT INTO notes (text) VALUES ('mine')")
    assert 0.15 <= time.monotonic() - started < 2
    other.execute("ROLLBACK")
    # The failed write gave its turn back: the next one goes through.
    await connection.cursor().execute("INSERT INTO notes (text) VALUES ('later')")
    await connection.commit()
    assert _notes(path) == ["later"]
    await connection.close()
    other.close()


async def test_a_turn_held_too_long_fails_as_sqlite_would(path: str) -> None:
    connect = inline_sqlite.connector(path, turns=inline_sqlite.WriteTurns(), busy_seconds=0.2)
    holder, waiter = await connect(), await connect()
    await holder.cursor().execute("INSERT INTO notes (text) VALUES ('held')")
    with pytest.raises(sqlite3.OperationalError, match="locked"):
        await waiter.cursor().execute("INSERT INTO notes (text) VALUES ('waiting')")
    await holder.commit()
    await waiter.cursor().execute("INSERT INTO notes (text) VALUES ('after')")
    await waiter.commit()
    assert _notes(path) == ["held", "after"]
    await holder.close()
    await waiter.close()


async def test_a_stale_snapshot_fails_at_once(path: str) -> None:
    connection = await _connect(path, busy_seconds=5)
    await connection.cursor().execute("BEGIN")
    await (await connection.cursor().execute("SELECT count(*) FROM notes")).fetchall()
    other = sqlite3.connect(path)
    other.execute("INSERT INTO notes (text) VALUES ('other')")
    other.commit()
    started = time.monotonic()
    with pytest.raises(sqlite3.OperationalError):
        await connection.cursor().execute("INSERT INTO notes (text) VALUES ('mine')")
    assert time.monotonic() - started < 1  # no wait can make the snapshot current
    await connection.rollback()
    await connection.close()
    other.close()


async def test_a_long_read_moves_off_the_loop(path: str) -> None:
    connection = await _connect(path, budget=inline_sqlite.LoopBudget(0.02))

    async def read() -> list[Any]:
        cursor = await connection.cursor().execute(LONG_READ)
        return await cursor.fetchall()

    rows, ticks = await ticks_during(read())
    assert rows == [(2_000_000,)]
    assert ticks >= 5  # the loop ran on while a worker thread read
    short = await connection.cursor().execute("SELECT count(*) FROM notes")
    assert await short.fetchall() == [(0,)]
    await connection.close()


async def test_a_long_read_in_a_transaction_stays_on_its_connection(path: str) -> None:
    connection = await _connect(path, budget=inline_sqlite.LoopBudget(0.02))
    await connection.cursor().execute("INSERT INTO notes (text) VALUES ('uncommitted')")

    async def read() -> list[Any]:
        # Only this connection sees its own uncommitted row: the read cannot move.
        cursor = await connection.cursor().execute(f"SELECT count(*), {LONG_READ[7:]} FROM notes")
        return await cursor.fetchall()

    rows, ticks = await ticks_during(read())
    assert rows == [(1, 2_000_000)]
    assert ticks <= 1
    await connection.rollback()
    await connection.close()
