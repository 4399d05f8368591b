"""A ``Database`` on a SQLite file checkpoints its write-ahead log on a thread of its own
(``lib.inline_sqlite.Checkpointer``): what either write path commits reaches the database file
without any commit on the event loop's thread checkpointing, and ``dispose`` stops the thread."""

from __future__ import annotations

import asyncio
import shutil
import sqlite3
import threading
import time
from datetime import UTC, datetime
from pathlib import Path

import pytest
from fastapi import FastAPI
from sqlalchemy import bindparam, insert, text

from rostra.core.db import Database
from rostra.idempotency.models import IdempotencyKey

INSERT = insert(IdempotencyKey).values(
    lookup=bindparam("lookup"),
    fingerprint=bindparam("fingerprint"),
    created_at=bindparam("created_at"),
)
NOW = datetime(2026, 12, 7, 1, 0, 0, tzinfo=UTC)


@pytest.fixture(params=["sqlite"])
def backend(request: pytest.FixtureRequest) -> str:
    """SQLite alone: PostgreSQL has no write-ahead log of the process's to checkpoint."""
    return str(request.param)


def _lookups_in_database_file(db: Database, tmp_path: Path) -> set[str]:
    """The keys in the database file alone, as if the log were gone: what checkpoints copied."""
    path = db.engine.url.database
    assert path is not None
    alone = tmp_path / "database-file-alone.db"
    shutil.copyfile(path, alone)
    reader = sqlite3.connect(alone)
    try:
        return {lookup for (lookup,) in reader.execute("SELECT lookup FROM idempotency_keys")}
    finally:
        reader.close()


def _checkpoint_threads() -> int:
    return sum(thread.name == "rostra-sqlite-checkpoints" for thread in threading.enumerate())


async def test_both_write_paths_reach_the_database_file_by_the_checkpointer(
    app: FastAPI, tmp_path: Path
) -> None:
    db: Database = app.state.db
    others = _checkpoint_threads()  # of databases other tests left open, if any
    await db.write(INSERT, {"lookup": "driver", "fingerprint": "f" * 64, "created_at": NOW})
    async with db.session_scope() as session:
        await session.execute(
            INSERT, {"lookup": "session", "fingerprint": "f" * 64, "created_at": NOW}
        )
        connection = await session.connection()
        # The session's connection leaves checkpoints to the thread, as the driver's does.
        found = await connection.execute(text("PRAGMA wal_autocheckpoint"))
        assert found.scalar_one() == 0
    writer = db._sqlite_writes  # no public way to reach the driver's connection
    assert writer is not None
    assert writer._connection().execute("PRAGMA wal_autocheckpoint").fetchone() == (0,)

    deadline = time.monotonic() + 5
    while not {"driver", "session"} <= _lookups_in_database_file(db, tmp_path):
        assert time.monotonic() < deadline, "the writes never reached the database file"
        await asyncio.sleep(0.02)
    assert _checkpoint_threads() == others + 1

    await db.dispose()
    assert _checkpoint_threads() == others
