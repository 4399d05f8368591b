"""An event commits with its change or not at all: a crash in between leaves neither."""

from __future__ import annotations

import httpx
import pytest
from fastapi import FastAPI

from rostra.core.security import OPERATOR
from rostra.core.writes import Writes
from rostra.events import service as events
from rostra.projects import service as projects
from rostra.projects.schemas import ProjectCreate
from tests.access.helpers import snapshot
from tests.factories import make_account


class Crash(Exception):
    pass


async def test_a_crash_before_the_commit_leaves_neither_row(
    app: FastAPI, monkeypatch: pytest.MonkeyPatch
) -> None:
    owner = await make_account(app)
    before = await snapshot(app)
    written: list[events.RecordedEvent] = []

    async def crash(_: Writes, event: events.RecordedEvent) -> None:
        written.append(event)  # the project, its member and its event are written...
        raise Crash  # ...and the transaction is not committed

    monkeypatch.setattr(events, "_subscribers", [*events._subscribers, crash])
    with pytest.raises(Crash):
        await projects.create_project(
            app.state.db, data=ProjectCreate(name="doomed", owner_id=owner.id), actor=OPERATOR
        )
    assert [event.type for event in written] == ["project.created"]
    after = await snapshot(app)
    assert after == before
    assert after["projects"] == after["project_members"] == []


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
