"""``Database.transaction`` on SQLite: writers ready at the same time share one ``COMMIT``
(``core.sqlite_writes._CommitGroup``), and sharing it never costs one writer another's work.

The writers here are tasks started together, as requests that arrive together are: the first
runs its block and yields once before committing, and the others join its transaction then.
"""

from __future__ import annotations

import asyncio
import os
import sqlite3
from datetime import UTC, datetime
from pathlib import Path

import pytest
from fastapi import FastAPI
from sqlalchemy import bindparam, insert, select, update
from sqlalchemy.exc import IntegrityError, OperationalError

from rostra.core.db import Database
from rostra.core.sqlite_writes import SQLiteTransaction
from rostra.idempotency.models import IdempotencyKey
from rostra.projects.models import ProjectMember

KEYS = IdempotencyKey.__table__
INSERT = insert(IdempotencyKey).values(
    lookup=bindparam("lookup"),
    fingerprint=bindparam("fingerprint"),
    created_at=bindparam("created_at"),
)
NOW = datetime(2026, 12, 6, 1, 0, 0, tzinfo=UTC)


@pytest.fixture(params=["sqlite"])
def backend(request: pytest.FixtureRequest) -> str:
    """SQLite alone: commits are shared on its write connection only (conftest's ``backend``
    runs every test on PostgreSQL too)."""
    return str(request.param)


@pytest.fixture
def db(app: FastAPI) -> Database:
    database: Database = app.state.db
    return database


@pytest.fixture
def write_connection(db: Database) -> sqlite3.Connection:
    """The driver connection ``Database.transaction`` writes on (no public way to reach it)."""
    writer = db._sqlite_writes
    assert writer is not None
    return writer._connection()


@pytest.fixture
def statements(write_connection: sqlite3.Connection) -> list[str]:
    """Every statement the write connection runs from here on, as SQLite traces them."""
    traced: list[str] = []
    write_connection.set_trace_callback(traced.append)
    return traced


def _key(lookup: str) -> dict[str, object]:
    return {"lookup": lookup, "fingerprint": "f" * 64, "created_at": NOW}


async def _stored(db: Database) -> list[str]:
    rows = await db.read(select(KEYS.c.lookup).order_by(KEYS.c.lookup))
    return [row.lookup for row in rows]


async def _write_keys(db: Database, *lookups: str, then: asyncio.Event | None = None) -> None:
    """One transaction inserting ``lookups``; with ``then``, it waits for the event halfway
    (after the first insert), as a block that awaits something does."""
    async with db.transaction() as writes:
        await writes.run(INSERT, _key(lookups[0]))
        if then is not None:
            await then.wait()
        for lookup in lookups[1:]:
            await writes.run(INSERT, _key(lookup))


async def test_writers_ready_together_commit_together(db: Database, statements: list[str]) -> None:
    await asyncio.gather(*(_write_keys(db, f"k{n:02}a", f"k{n:02}b") for n in range(20)))

    assert len(await _stored(db)) == 40
    # Twenty transactions: the first writer's, joined by the other nineteen in savepoints.
    assert statements.count("BEGIN IMMEDIATE") == 1
    assert statements.count("COMMIT") == 1
    assert sum(s.startswith("SAVEPOINT") for s in statements) == 19


async def test_a_joined_writer_that_fails_undoes_only_its_own_work(
    db: Database, statements: list[str]
) -> None:
    await db.write(INSERT, _key("taken"))
    statements.clear()
    results = await asyncio.gather(
        _write_keys(db, "first"),
        _write_keys(db, "second", "taken"),  # its second insert breaks the unique key
        _write_keys(db, "third"),
        return_exceptions=True,
    )
    assert results[0] is None
    assert results[2] is None
    assert isinstance(results[1], IntegrityError)
    assert await _stored(db) == ["first", "taken", "third"]
    # One transaction: the failed writer was rolled back to its savepoint, not alone.
    assert statements.count("COMMIT") == 1
    assert "ROLLBACK TO joined_1" in statements


async def test_a_failed_commit_fails_every_writer_of_the_group(db: Database) -> None:
    dangling = insert(ProjectMember).values(
        project_id=999_999, user_id=999_999, role="viewer", created_at=NOW, updated_at=NOW
    )

    async def breaks_at_commit() -> None:
        # A deferred foreign key is checked by COMMIT: the group's commit itself fails.
        async with db.transaction() as writes:
            assert isinstance(writes, SQLiteTransaction)
            writes._raw.execute("PRAGMA defer_foreign_keys = ON")  # until this commit
            await writes.run(INSERT, _key("leader"))
            await writes.run(dangling, {})

    results = await asyncio.gather(
        breaks_at_commit(),
        _write_keys(db, "joined 1"),
        _write_keys(db, "joined 2"),
        return_exceptions=True,
    )
    assert all(isinstance(result, IntegrityError) for result in results), results
    assert await _stored(db) == []
    await _write_keys(db, "after")  # the connection is usable again
    assert await _stored(db) == ["after"]


async def test_a_writer_never_joins_inside_a_running_block(db: Database) -> None:
    """A writer arriving while a joined block awaits something waits for a transaction of its
    own: in the running block's savepoint, the running block's failure would undo it."""
    go_on = asyncio.Event()

    async def fails_after_waiting() -> None:
        async with db.transaction() as writes:
            await writes.run(INSERT, _key("doomed"))
            await go_on.wait()
            await writes.run(INSERT, _key("leader"))  # taken: the block fails

    leader = asyncio.create_task(_write_keys(db, "leader"))
    waiting = asyncio.create_task(fails_after_waiting())
    arriving = asyncio.create_task(_write_keys(db, "arriving"))
    await asyncio.sleep(0.05)
    assert not arriving.done()
    go_on.set()
    await leader
    with pytest.raises(IntegrityError):
        await waiting
    await arriving
    assert await _stored(db) == ["arriving", "leader"]


async def test_a_cancelled_committer_ends_nothing_under_a_running_block(db: Database) -> None:
    """The writer that was to commit is cancelled while a joined block awaits something: the
    transaction stays open until that block is done, then all of it is rolled back, and the
    joined writer fails; no statement of the block commits on its own."""
    go_on = asyncio.Event()
    leader = asyncio.create_task(_write_keys(db, "leader"))
    joined = asyncio.create_task(_write_keys(db, "joined a", "joined b", then=go_on))
    await asyncio.sleep(0.05)
    leader.cancel()
    await asyncio.sleep(0.05)
    assert not leader.done()  # waiting for the joined block
    go_on.set()
    with pytest.raises(asyncio.CancelledError):
        await leader
    with pytest.raises(OperationalError, match="abandoned"):
        await joined
    assert await _stored(db) == []
    await _write_keys(db, "after")
    assert await _stored(db) == ["after"]


class Interrupter:
    """Interrupts the write connection's statements while ``on``: SQLite then rolls back the
    whole transaction, as it may for a full disk or an I/O error."""

    def __init__(self) -> None:
        self.on = False

    def __call__(self) -> int:
        return int(self.on)


@pytest.fixture
def interrupter(write_connection: sqlite3.Connection) -> Interrupter:
    interrupter = Interrupter()
    write_connection.set_progress_handler(interrupter, 1)
    return interrupter


async def _interrupted(db: Database, interrupter: Interrupter, lookup: str) -> None:
    async with db.transaction() as writes:
        interrupter.on = True
        try:
            await writes.run(INSERT, _key(lookup))
        finally:
            interrupter.on = False


async def test_a_transaction_sqlite_rolled_back_is_acknowledged_to_no_writer(
    db: Database, interrupter: Interrupter
) -> None:
    """A joined writer's statement makes SQLite roll back the whole shared transaction: every
    writer whose work was in it fails (COMMIT would quietly do nothing), and a writer that had
    not joined yet gets a transaction of its own rather than one that is gone."""
    results = await asyncio.gather(
        _write_keys(db, "leader"),
        _write_keys(db, "joined before"),
        _interrupted(db, interrupter, "interrupted"),
        _write_keys(db, "later a", "later b"),
        return_exceptions=True,
    )
    assert isinstance(results[0], OperationalError)
    assert "rolled the transaction back" in str(results[0])
    assert isinstance(results[1], OperationalError)
    assert isinstance(results[2], OperationalError)
    assert "interrupted" in str(results[2])
    assert results[3] is None
    assert await _stored(db) == ["later a", "later b"]


async def test_no_statement_runs_once_sqlite_rolled_the_transaction_back(
    db: Database, interrupter: Interrupter
) -> None:
    """A block that carries on after such an error: its next statement fails rather than run
    (and commit) on its own outside any transaction."""

    async def carries_on() -> None:
        async with db.transaction() as writes:
            await writes.run(INSERT, _key("first"))
            interrupter.on = True
            with pytest.raises(OperationalError, match="interrupted"):
                await writes.run(INSERT, _key("interrupted"))
            interrupter.on = False
            await writes.run(INSERT, _key("carried on"))

    with pytest.raises(OperationalError, match="rolled the transaction back"):
        await carries_on()
    assert await _stored(db) == []
    await _write_keys(db, "after")
    assert await _stored(db) == ["after"]


def _open_temporary_files() -> list[str]:
    """SQLite's temporary files this process holds open (made, then unlinked at once)."""
    names = []
    for fd in Path("/proc/self/fd").iterdir():
        try:
            names.append(os.readlink(fd))
        except OSError:  # closed since it was listed
            continue
    return [name for name in names if "etilqs_" in name]


@pytest.mark.skipif(not Path("/proc/self/fd").is_dir(), reason="needs Linux's /proc")
async def test_a_joined_writers_savepoint_journal_stays_in_memory(db: Database) -> None:
    """A joiner that rewrites pages the transaction already holds journals their first images
    for its savepoint; past 64 KiB SQLite would spill that journal to a new temporary file each
    shared commit. It is kept in memory (``SQLITE_PRAGMAS``)."""
    big = "f" * 2_000
    seen_during_joined_block: list[str] = []

    async def leader() -> None:
        async with db.transaction() as writes:
            for n in range(100):
                await writes.run(INSERT, {**_key(f"row{n:03}"), "fingerprint": big})

    async def joiner() -> None:
        async with db.transaction() as writes:
            await writes.run(
                update(IdempotencyKey).values(fingerprint=bindparam("fingerprint")),
                {"fingerprint": "g" * 2_000},
            )
            seen_during_joined_block.extend(_open_temporary_files())

    await asyncio.gather(leader(), joiner())

    assert len(await _stored(db)) == 100
    assert seen_during_joined_block == []
