"""``Database.read``: a read outside any transaction sees what is committed, never a session's
pending work, and gives the same typed values as a session."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from fastapi import FastAPI
from sqlalchemy import bindparam, func, or_, select, text
from sqlalchemy.dialects import sqlite
from sqlalchemy.exc import StatementError

from rostra.core.db import Database, UTCDateTime
from rostra.projects.models import Project
from rostra.projects.service import PROJECT_COLUMNS, PROJECTS
from tests.event_loop import LONG_READ, ticks_during
from tests.factories import make_project, make_user


async def test_read_sees_commits_and_not_pending_work(app: FastAPI) -> None:
    db: Database = app.state.db
    owner = await make_user(app)
    project = await make_project(app, owner, settings={"auto_deploy": True})
    query = select(*PROJECT_COLUMNS).where(PROJECTS.owner_id == owner.id).order_by(PROJECTS.id)

    (row,) = await db.read(query)
    assert (row.id, row.name, row.owner_id) == (project.id, project.name, owner.id)
    assert row.settings == {"auto_deploy": True, "notifications": True}
    assert row.created_at == project.created_at
    assert row.created_at.tzinfo is UTC

    async with db.session_scope() as session:
        session.add(
            Project(
                name="pending",
                settings={"auto_deploy": False, "notifications": False},
                owner_id=owner.id,
                created_at=project.created_at,
                updated_at=project.created_at,
            )
        )
        await session.flush()
        assert [r.name for r in await db.read(query)] == [project.name]
    assert [r.name for r in await db.read(query)] == [project.name, "pending"]


async def test_a_long_read_leaves_the_loop_free(app: FastAPI) -> None:
    db: Database = app.state.db
    rows, ticks = await ticks_during(db.read(text(LONG_READ)))
    assert [tuple(row) for row in rows] == [(2_000_000,)]
    assert ticks >= 5  # SQLite: interrupted on the loop, read again on a worker thread


async def test_a_prepared_read_gives_what_sqlalchemy_gives(app: FastAPI) -> None:
    db: Database = app.state.db
    owner = await make_user(app)
    first = await make_project(app, owner, description="with a description")
    await make_project(app, owner, settings={"notifications": False})
    total = select(func.count()).select_from(Project).scalar_subquery().label("rostra_total")
    query = (
        select(*PROJECT_COLUMNS, total)
        .where(PROJECTS.owner_id == bindparam("owner"), PROJECTS.created_at >= bindparam("since"))
        .order_by(PROJECTS.id)
    )
    params = {"owner": owner.id, "since": first.created_at}

    plain = await db.read(query, params)
    prepared = await db.read(query, params, prepared=True)
    if app.state.settings.sqlite_path() is not None:
        # Run on the driver, not by SQLAlchemy: its rows are named tuples, not SQLAlchemy's.
        assert isinstance(prepared[0], tuple)
        assert not isinstance(plain[0], tuple)
    assert [tuple(row) for row in prepared] == [tuple(row) for row in plain]
    assert [row.description for row in prepared] == ["with a description", None]
    assert prepared[1].settings == {"auto_deploy": False, "notifications": False}
    assert prepared[0].created_at == first.created_at
    assert prepared[0].created_at.tzinfo is UTC
    assert prepared[0].rostra_total == 2
    later = await db.read(query, {**params, "since": datetime.now(UTC)}, prepared=True)
    assert later == []


async def test_a_prepared_read_binds_a_parameter_it_uses_twice(app: FastAPI) -> None:
    """A keyset position is one parameter at three places: processed once, bound at each."""
    db: Database = app.state.db
    owner = await make_user(app)
    first = await make_project(app, owner)
    second = await make_project(app, owner)
    since = bindparam("since")
    query = (
        select(PROJECTS.id)
        .where(PROJECTS.owner_id == owner.id, PROJECTS.created_at >= since)
        .where(or_(PROJECTS.updated_at > since, PROJECTS.id >= bindparam("least_id")))
        .order_by(PROJECTS.id)
    )
    params = {"since": first.created_at, "least_id": second.id}
    prepared = await db.read(query, params, prepared=True)
    assert [tuple(row) for row in prepared] == [tuple(row) for row in await db.read(query, params)]
    # The first project is not updated after its own creation, and its id is below the least.
    assert [row.id for row in prepared] == [second.id]


async def test_a_statement_that_cannot_be_prepared_is_refused(app: FastAPI) -> None:
    db: Database = app.state.db
    if app.state.settings.sqlite_path() is None:
        pytest.skip("statements are prepared on SQLite only")
    expanding = select(PROJECTS.id).where(PROJECTS.id.in_(bindparam("ids", expanding=True)))
    with pytest.raises(ValueError, match="prepared"):
        await db.read(expanding, {"ids": [1, 2]}, prepared=True)
    assert await db.read(expanding, {"ids": [1, 2]}) == []


async def test_a_prepared_read_needs_its_parameters(app: FastAPI) -> None:
    db: Database = app.state.db
    query = select(PROJECTS.id).where(PROJECTS.owner_id == bindparam("owner"))
    with pytest.raises((KeyError, StatementError), match="owner"):
        await db.read(query, {}, prepared=True)


@pytest.mark.parametrize(
    ("stored", "expected"),
    [
        ("2024-01-15 10:30:00.123456", datetime(2024, 1, 15, 10, 30, 0, 123456, tzinfo=UTC)),
        ("2024-01-15 10:30:00", datetime(2024, 1, 15, 10, 30, tzinfo=UTC)),
        # Forms the quick read refuses take the generic way, to the same value.
        ("2024-01-15", datetime(2024, 1, 15, tzinfo=UTC)),
        ("2024-01-15 10:30:00.000000+00:00", datetime(2024, 1, 15, 10, 30, tzinfo=UTC)),
    ],
)
def test_sqlite_time_text_reads_as_an_aware_utc_time(stored: str, expected: datetime) -> None:
    dialect = sqlite.dialect()
    read = UTCDateTime().result_processor(dialect, None)
    assert read is not None
    value = read(stored)
    assert value == expected
    assert value.tzinfo is UTC
    assert read(None) is None
