"""DELETE /users/{id} when the user owns projects: 409, unless ?transfer_to= names an heir."""

from __future__ import annotations

import httpx
from fastapi import FastAPI

from rostra.datasets.models import DataSet
from rostra.projects.models import Project
from tests.access.helpers import error_code, snapshot, stored_events
from tests.factories import add_member, make_account, make_data_set, make_project


async def _stored(app: FastAPI, model: type[Project] | type[DataSet], row_id: int) -> object:
    async with app.state.db.session_scope() as session:
        return await session.get(model, row_id)


async def test_owner_of_projects_is_not_deleted(app: FastAPI, client: httpx.AsyncClient) -> None:
    admin = await make_account(app, role="admin")
    owner = await make_account(app)
    await make_project(app, owner.user)
    before = await snapshot(app)
    for headers in (admin.headers, owner.headers):
        response = await client.delete(f"/api/v1/users/{owner.id}", headers=headers)
        assert response.status_code == 409
        assert error_code(response) == "RESOURCE_CONFLICT"
        assert response.json()["error"]["details"][0]["field"] == "transfer_to"
    assert await snapshot(app) == before


async def test_transfer_to_hands_everything_over(app: FastAPI, client: httpx.AsyncClient) -> None:
    admin = await make_account(app, role="admin")
    owner = await make_account(app)
    heir = await make_account(app)
    project = await make_project(app, owner.user)
    await add_member(app, project, heir.user, "viewer")
    personal = await make_data_set(app, owner.user)
    shared = await make_data_set(app, owner.user, project)

    response = await client.delete(
        f"/api/v1/users/{owner.id}?transfer_to={heir.id}", headers=admin.headers
    )
    assert response.status_code == 204, response.text

    moved = await client.get(f"/api/v1/projects/{project.id}", headers=heir.headers)
    assert moved.json()["owner_id"] == heir.id
    members = await client.get(f"/api/v1/projects/{project.id}/members", headers=heir.headers)
    assert [(m["user_id"], m["role"]) for m in members.json()["data"]] == [(heir.id, "owner")]
    for data_set in (personal, shared):
        fetched = await client.get(f"/api/v1/data/{data_set.id}", headers=heir.headers)
        assert fetched.status_code == 200
        assert fetched.json()["owner_id"] == heir.id
    [updated] = await stored_events(app, "project.updated")
    assert updated.data["owner_id"] == heir.id
    [deleted] = await stored_events(app, "user.deleted")
    assert deleted.data["id"] == owner.id
    assert deleted.actor_id == admin.id


async def test_without_projects_data_sets_follow_their_project(
    app: FastAPI, client: httpx.AsyncClient
) -> None:
    """Personal data sets go with the user; those in someone else's project stay with it."""
    project_owner = await make_account(app)
    leaver = await make_account(app)
    project = await make_project(app, project_owner.user)
    await add_member(app, project, leaver.user, "maintainer")
    personal = await make_data_set(app, leaver.user)
    shared = await make_data_set(app, leaver.user, project)

    response = await client.delete(f"/api/v1/users/{leaver.id}", headers=leaver.headers)
    assert response.status_code == 204, response.text
    assert await _stored(app, DataSet, personal.id) is None
    kept = await client.get(f"/api/v1/data/{shared.id}", headers=project_owner.headers)
    assert kept.json()["owner_id"] == project_owner.id
    assert [e.data["id"] for e in await stored_events(app, "data.deleted")] == [personal.id]


async def test_bad_transfer_to(app: FastAPI, client: httpx.AsyncClient) -> None:
    owner = await make_account(app)
    await make_project(app, owner.user)
    before = await snapshot(app)
    url = f"/api/v1/users/{owner.id}"
    nobody = await client.delete(f"{url}?transfer_to=987654", headers=owner.headers)
    assert nobody.status_code == 404
    assert nobody.json()["error"]["details"][0]["field"] == "transfer_to"
    themself = await client.delete(f"{url}?transfer_to={owner.id}", headers=owner.headers)
    assert themself.status_code == 400
    not_a_number = await client.delete(f"{url}?transfer_to=me", headers=owner.headers)
    assert not_a_number.status_code == 400
    assert await snapshot(app) == before
