"""``Database.write``: one statement in a transaction of its own, outside any session, which
gives what SQLAlchemy gives on either database and takes its turn among the process's writers."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime

import pytest
from fastapi import FastAPI
from sqlalchemy import bindparam, delete, insert, select, update
from sqlalchemy.exc import IntegrityError

from rostra.core.db import Database
from rostra.idempotency.models import IdempotencyKey
from rostra.projects.models import Project
from tests.factories import make_user

KEYS = IdempotencyKey.__table__
INSERT = (
    insert(IdempotencyKey)
    .values(
        lookup=bindparam("lookup"),
        fingerprint=bindparam("fingerprint"),
        created_at=bindparam("created_at"),
    )
    .returning(IdempotencyKey.id, IdempotencyKey.created_at)
)
ANSWER = (
    update(IdempotencyKey)
    .where(IdempotencyKey.lookup == bindparam("key"))
    .values(
        response_status=bindparam("status"),
        response_headers=bindparam("headers"),
        response_body=bindparam("body"),
    )
)
FORGET = delete(IdempotencyKey).where(IdempotencyKey.lookup == bindparam("key"))
FIND = select(KEYS).where(KEYS.c.lookup == bindparam("lookup"))
NOW = datetime(2026, 12, 3, 18, 0, 0, 123456, tzinfo=UTC)


def _record(lookup: str) -> dict[str, object]:
    return {"lookup": lookup, "fingerprint": "f" * 64, "created_at": NOW}


async def test_a_write_gives_its_rows_and_count_and_is_committed(app: FastAPI) -> None:
    db: Database = app.state.db
    written = await db.write(INSERT, _record("a"))
    (row,) = written.rows
    assert row.created_at == NOW
    assert row.created_at.tzinfo is UTC
    assert written.rowcount == 1

    answer = {"status": 201, "headers": [["content-type", "application/json"]], "body": b"\x00{}"}
    assert (await db.write(ANSWER, {"key": "a", **answer})).rowcount == 1
    assert (await db.write(ANSWER, {"key": "nobody", **answer})).rowcount == 0
    async with db.session_scope() as session:
        stored = (await session.execute(FIND, {"lookup": "a"})).one()
    assert (stored.id, stored.response_status) == (row.id, 201)
    assert stored.response_headers == [["content-type", "application/json"]]
    assert stored.response_body == b"\x00{}"

    assert (await db.write(FORGET, {"key": "a"})).rows == []
    assert await db.read(FIND, {"lookup": "a"}) == []


async def test_a_failed_write_keeps_nothing_and_fails_as_sqlalchemy_would(app: FastAPI) -> None:
    db: Database = app.state.db
    await db.write(INSERT, _record("taken"))
    with pytest.raises(IntegrityError):
        await db.write(INSERT, _record("taken"))
    # The connection is usable again and the failed insert left nothing.
    await db.write(INSERT, _record("next"))
    rows = await db.read(select(KEYS.c.lookup).order_by(KEYS.c.id))
    assert [row.lookup for row in rows] == ["taken", "next"]


async def test_a_write_waits_for_a_session_that_is_writing(app: FastAPI) -> None:
    db: Database = app.state.db
    if app.state.settings.sqlite_path() is None:
        pytest.skip("on PostgreSQL writers of other rows do not wait for each other")
    await make_user(app)  # the database is in use, as it is while serving
    async with db.session_scope() as session:
        await session.execute(insert(IdempotencyKey).values(_record("session's")))
        write = asyncio.create_task(db.write(INSERT, _record("write's")))
        await asyncio.sleep(0.05)
        assert not write.done()  # the session holds this process's write turn
    await write
    rows = await db.read(select(KEYS.c.lookup).order_by(KEYS.c.id))
    assert [row.lookup for row in rows] == ["session's", "write's"]


async def test_a_write_gives_the_columns_it_leaves_out_their_python_defaults(app: FastAPI) -> None:
    """As SQLAlchemy's execution would: an insert fills in each left-out column's ``default``,
    an update its ``onupdate`` (``updated_at``, a project's ``revision``), not NULL."""
    db: Database = app.state.db
    owner = await make_user(app)
    projects = Project.__table__.c
    created = await db.write(
        insert(Project)
        .values(
            name=bindparam("name"),
            settings=bindparam("settings"),
            owner_id=bindparam("owner_id"),
        )
        .returning(projects.id, projects.visibility, projects.updated_at, projects.revision),
        {"name": "defaults", "settings": {}, "owner_id": owner.id},
    )
    (project,) = created.rows
    assert project.visibility == "private"
    assert project.revision > 0
    changed = await db.write(
        update(Project)
        .where(projects.id == bindparam("project_id"))
        .values(description=bindparam("description"))
        .returning(projects.updated_at, projects.revision),
        {"project_id": project.id, "description": "changed"},
    )
    (after,) = changed.rows
    assert after.updated_at > project.updated_at
    assert after.revision not in (0, project.revision)
