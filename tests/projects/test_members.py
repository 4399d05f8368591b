from __future__ import annotations

import httpx
from fastapi import FastAPI

from tests.access.helpers import error_code, snapshot, stored_events
from tests.factories import add_member, make_account, make_project


async def test_owner_adds_changes_and_removes_members(
    app: FastAPI, client: httpx.AsyncClient
) -> None:
    owner = await make_account(app)
    newcomer = await make_account(app)
    project = await make_project(app, owner.user)
    members_url = f"/api/v1/projects/{project.id}/members"

    # Private: invisible until they are a member.
    assert (
        await client.get(f"/api/v1/projects/{project.id}", headers=newcomer.headers)
    ).status_code == 404

    added = await client.post(members_url, headers=owner.headers, json={"user_id": newcomer.id})
    assert added.status_code == 201, added.text
    assert added.json()["role"] == "viewer"
    assert added.json()["username"] == newcomer.user.username
    assert added.headers["Location"].endswith(f"{members_url}/{newcomer.id}")
    member_url = added.headers["Location"]
    assert (await client.get(member_url, headers=newcomer.headers)).json() == added.json()

    listing = await client.get(members_url, headers=newcomer.headers)
    assert [(m["user_id"], m["role"]) for m in listing.json()["data"]] == [
        (owner.id, "owner"),
        (newcomer.id, "viewer"),
    ]

    # A viewer reads but does not change.
    assert (
        await client.get(f"/api/v1/projects/{project.id}", headers=newcomer.headers)
    ).status_code == 200
    before = await snapshot(app)
    refused = await client.patch(
        f"/api/v1/projects/{project.id}", headers=newcomer.headers, json={"name": "mine"}
    )
    assert refused.status_code == 403
    assert error_code(refused) == "INSUFFICIENT_PERMISSIONS"
    assert await snapshot(app) == before

    promoted = await client.patch(member_url, headers=owner.headers, json={"role": "maintainer"})
    assert promoted.status_code == 200
    assert promoted.json()["role"] == "maintainer"
    changed = await client.patch(
        f"/api/v1/projects/{project.id}", headers=newcomer.headers, json={"name": "shared"}
    )
    assert changed.status_code == 200

    removed = await client.delete(member_url, headers=owner.headers)
    assert removed.status_code == 204
    assert (
        await client.get(f"/api/v1/projects/{project.id}", headers=newcomer.headers)
    ).status_code == 404

    kinds = [
        event.type for event in await stored_events(app) if event.type.startswith("project.member")
    ]
    assert kinds == ["project.member_added", "project.member_updated", "project.member_removed"]


async def test_maintainers_do_not_manage_members(app: FastAPI, client: httpx.AsyncClient) -> None:
    owner = await make_account(app)
    maintainer = await make_account(app)
    outsider = await make_account(app)
    project = await make_project(app, owner.user)
    await add_member(app, project, maintainer.user, "maintainer")
    members_url = f"/api/v1/projects/{project.id}/members"
    before = await snapshot(app)

    add = await client.post(members_url, headers=maintainer.headers, json={"user_id": outsider.id})
    promote = await client.patch(
        f"{members_url}/{maintainer.id}", headers=maintainer.headers, json={"role": "owner"}
    )
    remove_owner = await client.delete(f"{members_url}/{owner.id}", headers=maintainer.headers)
    delete_project = await client.delete(
        f"/api/v1/projects/{project.id}", headers=maintainer.headers
    )
    assert [add.status_code, promote.status_code, remove_owner.status_code] == [403, 403, 403]
    assert delete_project.status_code == 403
    assert await snapshot(app) == before

    # Any member may leave.
    left = await client.delete(f"{members_url}/{maintainer.id}", headers=maintainer.headers)
    assert left.status_code == 204


async def test_the_owner_keeps_the_owner_role(app: FastAPI, client: httpx.AsyncClient) -> None:
    owner = await make_account(app)
    project = await make_project(app, owner.user)
    member_url = f"/api/v1/projects/{project.id}/members/{owner.id}"
    before = await snapshot(app)
    demoted = await client.patch(member_url, headers=owner.headers, json={"role": "viewer"})
    removed = await client.delete(member_url, headers=owner.headers)
    assert demoted.status_code == removed.status_code == 409
    assert error_code(demoted) == "RESOURCE_CONFLICT"
    assert await snapshot(app) == before


async def test_adding_twice_or_nobody(app: FastAPI, client: httpx.AsyncClient) -> None:
    owner = await make_account(app)
    other = await make_account(app)
    project = await make_project(app, owner.user)
    members_url = f"/api/v1/projects/{project.id}/members"
    first = await client.post(
        members_url, headers=owner.headers, json={"user_id": other.id, "role": "maintainer"}
    )
    assert first.status_code == 201
    before = await snapshot(app)
    again = await client.post(members_url, headers=owner.headers, json={"user_id": other.id})
    assert again.status_code == 409
    nobody = await client.post(members_url, headers=owner.headers, json={"user_id": 424_242})
    assert nobody.status_code == 404
    assert nobody.json()["error"]["details"][0]["field"] == "user_id"
    bad_role = await client.post(
        members_url, headers=owner.headers, json={"user_id": other.id, "role": "emperor"}
    )
    assert bad_role.status_code == 400
    not_member = await client.patch(
        f"{members_url}/424242", headers=owner.headers, json={"role": "viewer"}
    )
    assert not_member.status_code == 404
    assert await snapshot(app) == before


async def test_member_etag(app: FastAPI, client: httpx.AsyncClient) -> None:
    owner = await make_account(app)
    other = await make_account(app)
    project = await make_project(app, owner.user)
    await add_member(app, project, other.user)
    url = f"/api/v1/projects/{project.id}/members/{other.id}"
    read = await client.get(url, headers=owner.headers)
    assert (
        await client.get(url, headers={**owner.headers, "If-None-Match": read.headers["ETag"]})
    ).status_code == 304
    await client.patch(url, headers=owner.headers, json={"role": "maintainer"})
    before = await snapshot(app)
    stale = await client.patch(
        url, headers={**owner.headers, "If-Match": read.headers["ETag"]}, json={"role": "owner"}
    )
    assert stale.status_code == 412
    assert await snapshot(app) == before
