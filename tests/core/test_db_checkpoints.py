"""A ``Database`` on a SQLite file checkpoints its write-ahead log on a thread of its own
(``lib.inline_sqlite.Checkpointer``): what either write path commits reaches the database file
without any commit on the event loop's thread checkpointing, and ``dispose`` stops the thread."""

from __future__ import annotations

import asyncio
import shutil
import sqlite3
import threading
import time
from pathlib import Path

import pytest
from fastapi import FastAPI
from sqlalchemy import bindparam, text, update

from rostra.core.db import Database
from rostra.users.models import User
from tests.factories import make_user

RENAME = (
    update(User).where(User.id == bindparam("user_id")).values(username=bindparam("new_username"))
)


@pytest.fixture(params=["sqlite"])
def backend(request: pytest.FixtureRequest) -> str:
    """SQLite alone: PostgreSQL has no write-ahead log of the process's to checkpoint."""
    return str(request.param)


def _usernames_in_database_file(db: Database, tmp_path: Path) -> set[str]:
    """The usernames in the database file alone, as if the log were gone: what checkpoints
    copied there (reading through SQLite would read the log as well)."""
    path = db.engine.url.database
    assert path is not None
    alone = tmp_path / "database-file-alone.db"
    shutil.copyfile(path, alone)
    reader = sqlite3.connect(alone)
    try:
        return {name for (name,) in reader.execute("SELECT username FROM users")}
    finally:
        reader.close()


def _checkpoint_threads() -> int:
    return sum(thread.name == "rostra-sqlite-checkpoints" for thread in threading.enumerate())


async def test_both_write_paths_reach_the_database_file_by_the_checkpointer(
    app: FastAPI, tmp_path: Path
) -> None:
    db: Database = app.state.db
    others = _checkpoint_threads()  # of databases other tests left open, if any
    first, second = await make_user(app), await make_user(app)
    await db.write(RENAME, {"user_id": first.id, "new_username": "by-the-driver"})
    async with db.session_scope() as session:
        await session.execute(RENAME, {"user_id": second.id, "new_username": "by-a-session"})
        connection = await session.connection()
        # The session's connection leaves checkpoints to the thread, as the driver's does.
        found = await connection.execute(text("PRAGMA wal_autocheckpoint"))
        assert found.scalar_one() == 0
    writer = db._sqlite_writes  # no public way to reach the driver's connection
    assert writer is not None
    assert writer._connection().execute("PRAGMA wal_autocheckpoint").fetchone() == (0,)

    deadline = time.monotonic() + 5
    while not {"by-the-driver", "by-a-session"} <= _usernames_in_database_file(db, tmp_path):
        assert time.monotonic() < deadline, "the writes never reached the database file"
        await asyncio.sleep(0.02)
    assert _checkpoint_threads() == others + 1

    await db.dispose()
    assert _checkpoint_threads() == others
