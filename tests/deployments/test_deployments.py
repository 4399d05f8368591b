from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta

import httpx
import pytest
from fastapi import FastAPI

from tests.access.helpers import error_code, snapshot, stored_events
from tests.factories import (
    add_member,
    make_account,
    make_component,
    make_deployment,
    make_project,
)


def _recent(text: str | None) -> bool:
    assert text is not None
    assert text.endswith("Z")
    return abs(datetime.fromisoformat(text) - datetime.now(UTC)) < timedelta(minutes=5)


async def test_create_start_and_complete(app: FastAPI, client: httpx.AsyncClient) -> None:
    account = await make_account(app)
    project = await make_project(app, account.user)
    component = await make_component(app, project, name="api")
    created = await client.post(
        f"/api/v1/projects/{project.id}/deployments",
        headers=account.headers,
        json={"environment": "production", "ref": "v1.2.3", "component_id": component.id},
    )
    assert created.status_code == 201, created.text
    body = created.json()
    assert body["status"] == "pending"
    assert (body["project_id"], body["component_id"], body["created_by"]) == (
        project.id,
        component.id,
        account.id,
    )
    assert body["started_at"] is None
    assert body["finished_at"] is None
    url = created.headers["Location"]
    assert url.endswith(f"/api/v1/deployments/{body['id']}")

    started = await client.patch(url, headers=account.headers, json={"status": "started"})
    assert started.status_code == 200, started.text
    assert _recent(started.json()["started_at"])
    assert started.json()["finished_at"] is None

    # A client may send back the object it read: what is fixed is ignored.
    finished = await client.patch(
        url, headers=account.headers, json={**started.json(), "status": "completed"}
    )
    assert finished.status_code == 200, finished.text
    assert finished.json()["status"] == "completed"
    assert _recent(finished.json()["finished_at"])
    assert finished.json()["started_at"] == started.json()["started_at"]
    assert (await client.get(url, headers=account.headers)).json() == finished.json()

    kinds = [e.type for e in await stored_events(app) if e.type.startswith("deployment.")]
    assert kinds == ["deployment.created", "deployment.started", "deployment.completed"]
    [completed] = await stored_events(app, "deployment.completed")
    assert completed.data == finished.json()
    assert completed.project_id == project.id


@pytest.mark.parametrize(
    ("path", "final"),
    [
        (["started", "failed"], "failed"),
        (["cancelled"], "cancelled"),
        (["started", "cancelled"], "cancelled"),
    ],
)
async def test_allowed_moves(
    app: FastAPI, client: httpx.AsyncClient, path: list[str], final: str
) -> None:
    account = await make_account(app)
    project = await make_project(app, account.user)
    deployment = await make_deployment(app, project)
    for status in path:
        response = await client.patch(
            f"/api/v1/deployments/{deployment.id}", headers=account.headers, json={"status": status}
        )
        assert response.status_code == 200, response.text
    assert response.json()["status"] == final
    assert _recent(response.json()["finished_at"])
    assert [e.type for e in await stored_events(app, f"deployment.{final}")] == [
        f"deployment.{final}"
    ]


@pytest.mark.parametrize(
    ("path", "refused"),
    [
        ([], "completed"),
        ([], "failed"),
        ([], "pending"),
        (["started"], "pending"),
        (["started"], "started"),
        (["started", "completed"], "failed"),
        (["started", "completed"], "started"),
        (["started", "failed"], "completed"),
        (["cancelled"], "started"),
        (["cancelled"], "cancelled"),
    ],
)
async def test_any_other_move_is_a_conflict(
    app: FastAPI, client: httpx.AsyncClient, path: list[str], refused: str
) -> None:
    account = await make_account(app)
    project = await make_project(app, account.user)
    deployment = await make_deployment(app, project)
    url = f"/api/v1/deployments/{deployment.id}"
    for status in path:
        assert (
            await client.patch(url, headers=account.headers, json={"status": status})
        ).status_code == 200
    before = await snapshot(app)
    response = await client.patch(url, headers=account.headers, json={"status": refused})
    assert response.status_code == 409, response.text
    assert error_code(response) == "RESOURCE_CONFLICT"
    assert await snapshot(app) == before


async def test_bad_bodies(app: FastAPI, client: httpx.AsyncClient) -> None:
    account = await make_account(app)
    project = await make_project(app, account.user)
    elsewhere = await make_project(app, account.user)
    foreign_component = await make_component(app, elsewhere, name="api")
    url = f"/api/v1/projects/{project.id}/deployments"
    before = await snapshot(app)
    cases = [
        ({"ref": "main"}, 400, "environment"),
        ({"environment": "prod"}, 400, "ref"),
        ({"environment": "prod", "ref": "main", "status": "completed"}, 400, "status"),
        ({"environment": "prod", "ref": 7}, 400, "ref"),
        ({"environment": "has space", "ref": "main"}, 400, "environment"),
        (
            {"environment": "prod", "ref": "main", "component_id": foreign_component.id},
            404,
            "component_id",
        ),
    ]
    for body, status, field in cases:
        response = await client.post(url, headers=account.headers, json=body)
        assert response.status_code == status, (body, response.text)
        assert field in [d["field"] for d in response.json()["error"]["details"]], body
    assert await snapshot(app) == before
    deployment = await make_deployment(app, project)
    before = await snapshot(app)
    for body in ({"status": "done"}, {"status": None}, {"colour": "red"}):
        response = await client.patch(
            f"/api/v1/deployments/{deployment.id}", headers=account.headers, json=body
        )
        assert response.status_code == 400, body
    assert await snapshot(app) == before


async def test_viewers_watch_but_do_not_deploy(app: FastAPI, client: httpx.AsyncClient) -> None:
    owner = await make_account(app)
    viewer = await make_account(app)
    project = await make_project(app, owner.user)
    await add_member(app, project, viewer.user, "viewer")
    deployment = await make_deployment(app, project)
    before = await snapshot(app)
    created = await client.post(
        f"/api/v1/projects/{project.id}/deployments",
        headers=viewer.headers,
        json={"environment": "prod", "ref": "main"},
    )
    moved = await client.patch(
        f"/api/v1/deployments/{deployment.id}", headers=viewer.headers, json={"status": "started"}
    )
    assert created.status_code == moved.status_code == 403
    assert await snapshot(app) == before
    seen = await client.get(f"/api/v1/deployments/{deployment.id}", headers=viewer.headers)
    assert seen.status_code == 200


async def test_lists_and_filters(app: FastAPI, client: httpx.AsyncClient) -> None:
    alice = await make_account(app)
    bob = await make_account(app)
    mine = await make_project(app, alice.user)
    theirs = await make_project(app, bob.user)
    component = await make_component(app, mine, name="api")
    first = await make_deployment(app, mine, environment="staging", component_id=component.id)
    second = await make_deployment(app, mine, environment="production")
    await make_deployment(app, theirs)
    await client.patch(
        f"/api/v1/deployments/{second.id}", headers=alice.headers, json={"status": "started"}
    )

    async def ids(url: str) -> list[int]:
        response = await client.get(url, headers=alice.headers)
        assert response.status_code == 200, response.text
        return [d["id"] for d in response.json()["data"]]

    assert await ids("/api/v1/deployments?sort=id") == [first.id, second.id]
    assert await ids("/api/v1/deployments?status=started") == [second.id]
    assert await ids("/api/v1/deployments?environment=staging") == [first.id]
    assert await ids(f"/api/v1/deployments?component_id={component.id}") == [first.id]
    assert await ids(f"/api/v1/deployments?project_id={theirs.id}") == []
    assert await ids(f"/api/v1/projects/{mine.id}/deployments?sort=-id") == [second.id, first.id]
    bad = await client.get("/api/v1/deployments?status=done", headers=alice.headers)
    assert bad.status_code == 400


async def test_racing_moves_from_one_state_have_one_winner(
    app: FastAPI, client: httpx.AsyncClient
) -> None:
    account = await make_account(app)
    project = await make_project(app, account.user)
    deployment = await make_deployment(app, project)
    url = f"/api/v1/deployments/{deployment.id}"
    assert (
        await client.patch(url, headers=account.headers, json={"status": "started"})
    ).status_code == 200
    completed, failed = await asyncio.gather(
        client.patch(url, headers=account.headers, json={"status": "completed"}),
        client.patch(url, headers=account.headers, json={"status": "failed"}),
    )
    assert sorted([completed.status_code, failed.status_code]) == [200, 409]
    winner = completed if completed.status_code == 200 else failed
    final = await client.get(url, headers=account.headers)
    assert final.json()["status"] == winner.json()["status"]
    finished = [
        e
        for e in await stored_events(app)
        if e.type in ("deployment.completed", "deployment.failed")
    ]
    assert [e.data["status"] for e in finished] == [winner.json()["status"]]
