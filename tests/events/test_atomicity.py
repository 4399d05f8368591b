"""An event commits with its change or not at all: a crash in between leaves neither."""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy import event

from rostra.core.security import OPERATOR
from rostra.projects import service as projects
from rostra.projects.schemas import ProjectCreate
from tests.access.helpers import snapshot
from tests.factories import make_account


class Crash(Exception):
    pass


async def test_raise_after_the_flush_leaves_neither_row(app: FastAPI) -> None:
    owner = await make_account(app)
    before = await snapshot(app)

    async def create_then_crash() -> None:
        async with app.state.db.session_scope() as session:
            project = await projects.create_project(
                session, data=ProjectCreate(name="doomed", owner_id=owner.id), actor=OPERATOR
            )
            assert project.id is not None  # flushed: the rows exist inside the transaction
            raise Crash

    with pytest.raises(Crash):
        await create_then_crash()
    after = await snapshot(app)
    assert after == before
    assert after["projects"] == after["project_members"] == []


@pytest.fixture
def failing_commits(app: FastAPI) -> Iterator[list[bool]]:
    """While the list holds True, every COMMIT on the app's engine fails."""
    armed = [False]

    def refuse(_: object) -> None:
        if armed[0]:
            raise Crash("the database went away at commit")

    engine = app.state.db.engine.sync_engine
    event.listen(engine, "commit", refuse)
    yield armed
    event.remove(engine, "commit", refuse)


async def test_a_failed_commit_leaves_neither_row(
    app: FastAPI, client: httpx.AsyncClient, failing_commits: list[bool]
) -> None:
    account = await make_account(app)
    # Warm the credential cache, so the request below commits only its own work.
    assert (await client.get("/api/v1/projects", headers=account.headers)).status_code == 200
    before = await snapshot(app)

    failing_commits[0] = True
    response = await client.post(
        "/api/v1/projects", headers=account.headers, json={"name": "lost in the crash"}
    )
    failing_commits[0] = False

    assert response.status_code == 500
    assert response.json()["error"]["code"] == "SERVER_ERROR"
    assert await snapshot(app) == before

    retried = await client.post(
        "/api/v1/projects", headers=account.headers, json={"name": "second try"}
    )
    assert retried.status_code == 201
    after = await snapshot(app)
    assert len(after["projects"]) == 1
    assert len(after["events"]) == len(before["events"]) + 1
