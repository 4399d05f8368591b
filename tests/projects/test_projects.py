from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta

import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy import update

from rostra.core.http import resource_body
from rostra.projects.models import Project
from rostra.projects.schemas import SettingsIn
from rostra.projects.service import to_out
from tests.access.helpers import error_code, snapshot, stored_events
from tests.factories import add_member, make_account, make_project

SEED_000_PROJECT = {
    "name": "My New Project",
    "description": "Project description goes here",
    "visibility": "private",
    "settings": {"auto_deploy": True, "notifications": True},
}


async def test_seed_000_body_round_trips(app: FastAPI, client: httpx.AsyncClient) -> None:
    account = await make_account(app)
    created = await client.post("/api/v1/projects", headers=account.headers, json=SEED_000_PROJECT)
    assert created.status_code == 201, created.text
    body = created.json()
    assert {k: body[k] for k in SEED_000_PROJECT} == SEED_000_PROJECT
    assert body["owner_id"] == account.id
    assert body["status"] == "active"
    assert body["livemode"] is True
    assert body["created_at"].endswith("Z")
    assert created.headers["Location"].endswith(f"/api/v1/projects/{body['id']}")
    assert created.headers["ETag"]

    fetched = await client.get(created.headers["Location"], headers=account.headers)
    assert fetched.status_code == 200
    assert fetched.json() == body
    members = await client.get(f"/api/v1/projects/{body['id']}/members", headers=account.headers)
    assert [(m["user_id"], m["role"]) for m in members.json()["data"]] == [(account.id, "owner")]


async def test_seed_000_python_client_sends_created_at(
    app: FastAPI, client: httpx.AsyncClient
) -> None:
    """Seed 000's create_project() sends ``created_at``: a read-only field, ignored."""
    account = await make_account(app)
    sent = {
        "name": "From the SDK",
        "description": "made by APIClient.create_project",
        "visibility": "private",
        "created_at": "1999-01-01T00:00:00",
    }
    response = await client.post("/api/v1/projects", headers=account.headers, json=sent)
    assert response.status_code == 201, response.text
    created_at = datetime.fromisoformat(response.json()["created_at"])
    assert abs(created_at - datetime.now(UTC)) < timedelta(minutes=5)


async def test_defaults_and_creation_event(app: FastAPI, client: httpx.AsyncClient) -> None:
    account = await make_account(app)
    response = await client.post("/v1/projects", headers=account.headers, json={"name": "Bare"})
    assert response.status_code == 201
    body = response.json()
    assert body["visibility"] == "private"
    assert body["description"] is None
    assert body["settings"] == {"auto_deploy": False, "notifications": True}
    [event] = await stored_events(app, "project.created")
    assert event.data == body
    assert event.owner_id == account.id
    assert event.project_id == body["id"]
    assert event.actor_id == account.id
    assert event.public_id.startswith("evt_")


async def test_patch_merges_settings_and_put_replaces(
    app: FastAPI, client: httpx.AsyncClient
) -> None:
    account = await make_account(app)
    created = await client.post("/api/v1/projects", headers=account.headers, json=SEED_000_PROJECT)
    url = created.headers["Location"]

    patched = await client.patch(
        url, headers=account.headers, json={"settings": {"auto_deploy": False}, "status": "draft"}
    )
    assert patched.status_code == 200, patched.text
    assert patched.json()["settings"] == {"auto_deploy": False, "notifications": True}
    assert patched.json()["status"] == "draft"
    assert patched.json()["description"] == SEED_000_PROJECT["description"]

    replaced = await client.put(url, headers=account.headers, json={"name": "Renamed"})
    assert replaced.status_code == 200, replaced.text
    body = replaced.json()
    assert body["name"] == "Renamed"
    assert body["description"] is None
    assert body["status"] == "active"
    assert body["settings"] == {"auto_deploy": False, "notifications": True}
    assert body["owner_id"] == account.id

    # A client may send back what it read: read-only fields are ignored.
    again = await client.put(url, headers=account.headers, json=body)
    assert again.status_code == 200, again.text
    assert [e.type for e in await stored_events(app, "project.updated")] == ["project.updated"] * 3


async def test_put_needs_the_required_fields(app: FastAPI, client: httpx.AsyncClient) -> None:
    account = await make_account(app)
    project = await make_project(app, account.user)
    before = await snapshot(app)
    response = await client.put(
        f"/api/v1/projects/{project.id}", headers=account.headers, json={"description": "x"}
    )
    assert response.status_code == 400
    assert response.json()["error"]["details"] == [
        {"field": "name", "message": "This field is required"}
    ]
    assert await snapshot(app) == before


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"name": None}, "name"),
        ({"visibility": None}, "visibility"),
        ({"settings": {"notifications": None}}, "settings.notifications"),
        ({"visibility": "secret"}, "visibility"),
        ({"status": "deleted"}, "status"),
        ({"name": ""}, "name"),
        ({"name": 42}, "name"),
        ({"settings": {"auto_deploy": "sometimes"}}, "settings.auto_deploy"),
        ({"settings": {"colour": "blue"}}, "settings.colour"),
        ({"owner": 1}, "owner"),
    ],
)
async def test_patch_refuses_bad_fields(
    app: FastAPI, client: httpx.AsyncClient, body: dict[str, object], field: str
) -> None:
    account = await make_account(app)
    project = await make_project(app, account.user)
    before = await snapshot(app)
    response = await client.patch(
        f"/api/v1/projects/{project.id}", headers=account.headers, json=body
    )
    assert response.status_code == 400, response.text
    assert error_code(response) == "VALIDATION_ERROR"
    assert field in [detail["field"] for detail in response.json()["error"]["details"]]
    assert await snapshot(app) == before


async def test_owner_id_is_for_admins(app: FastAPI, client: httpx.AsyncClient) -> None:
    member = await make_account(app)
    other = await make_account(app)
    admin = await make_account(app, role="admin")

    refused = await client.post(
        "/api/v1/projects", headers=member.headers, json={"name": "x", "owner_id": other.id}
    )
    assert refused.status_code == 403
    assert error_code(refused) == "INSUFFICIENT_PERMISSIONS"
    assert refused.json()["error"]["details"][0]["field"] == "owner_id"

    own = await client.post(
        "/api/v1/projects", headers=member.headers, json={"name": "x", "owner_id": member.id}
    )
    assert own.status_code == 201
    url = own.headers["Location"]
    before = await snapshot(app)
    stolen = await client.patch(url, headers=member.headers, json={"owner_id": other.id})
    assert stolen.status_code == 403
    assert await snapshot(app) == before
    unchanged = await client.patch(url, headers=member.headers, json={"owner_id": member.id})
    assert unchanged.status_code == 200

    moved = await client.patch(url, headers=admin.headers, json={"owner_id": other.id})
    assert moved.status_code == 200, moved.text
    assert moved.json()["owner_id"] == other.id
    members = await client.get(f"{url}/members", headers=other.headers)
    roles = {m["user_id"]: m["role"] for m in members.json()["data"]}
    assert roles == {member.id: "maintainer", other.id: "owner"}

    nobody = await client.patch(url, headers=admin.headers, json={"owner_id": 999_999})
    assert nobody.status_code == 404
    assert nobody.json()["error"]["details"][0]["field"] == "owner_id"


async def test_delete_takes_members_components_and_deployments(
    app: FastAPI, client: httpx.AsyncClient
) -> None:
    account = await make_account(app)
    project = await make_project(app, account.user)
    url = f"/api/v1/projects/{project.id}"
    component = await client.post(
        f"{url}/components", headers=account.headers, json={"name": "api"}
    )
    deployment = await client.post(
        f"{url}/deployments", headers=account.headers, json={"environment": "prod", "ref": "v1"}
    )
    assert component.status_code == deployment.status_code == 201

    deleted = await client.delete(url, headers=account.headers)
    assert deleted.status_code == 204
    assert (await client.get(url, headers=account.headers)).status_code == 404
    assert (
        await client.get(component.headers["Location"], headers=account.headers)
    ).status_code == 404
    assert (
        await client.get(deployment.headers["Location"], headers=account.headers)
    ).status_code == 404
    tables = await snapshot(app)
    assert tables["projects"] == tables["project_members"] == tables["components"] == []
    [event] = await stored_events(app, "project.deleted")
    assert event.data["id"] == project.id
    assert event.data["name"] == project.name


async def test_etag_conditional_requests(app: FastAPI, client: httpx.AsyncClient) -> None:
    account = await make_account(app)
    project = await make_project(app, account.user)
    url = f"/api/v1/projects/{project.id}"
    first = await client.get(url, headers=account.headers)
    etag = first.headers["ETag"]

    cached = await client.get(url, headers={**account.headers, "If-None-Match": etag})
    assert cached.status_code == 304
    assert cached.content == b""

    changed = await client.patch(
        url, headers={**account.headers, "If-Match": etag}, json={"name": "first editor"}
    )
    assert changed.status_code == 200
    assert changed.headers["ETag"] != etag

    before = await snapshot(app)
    stale = await client.patch(
        url, headers={**account.headers, "If-Match": etag}, json={"name": "second editor"}
    )
    assert stale.status_code == 412
    assert error_code(stale) == "PRECONDITION_FAILED"
    stale_delete = await client.delete(url, headers={**account.headers, "If-Match": etag})
    assert stale_delete.status_code == 412
    assert await snapshot(app) == before
    fresh = await client.delete(
        url, headers={**account.headers, "If-Match": changed.headers["ETag"]}
    )
    assert fresh.status_code == 204


async def _set_created_at(app: FastAPI, project_id: int, moment: datetime) -> None:
    async with app.state.db.session_scope() as session:
        await session.execute(
            update(Project).where(Project.id == project_id).values(created_at=moment)
        )


async def test_list_filters(app: FastAPI, client: httpx.AsyncClient) -> None:
    alice = await make_account(app)
    bob = await make_account(app)
    apollo = await make_project(
        app, alice.user, name="Apollo", description="Moon landing", visibility="public"
    )
    gemini = await make_project(
        app, alice.user, name="Gemini", description="two seats to the MOON", status="archived"
    )
    mercury = await make_project(app, bob.user, name="Mercury", visibility="internal")
    await make_project(app, bob.user, name="Bob's secret")  # private: never listed for alice
    await _set_created_at(app, apollo.id, datetime(2024, 1, 15, 10, 0, tzinfo=UTC))
    await _set_created_at(app, gemini.id, datetime(2024, 1, 15, 12, 0, tzinfo=UTC))
    await _set_created_at(app, mercury.id, datetime(2024, 3, 1, tzinfo=UTC))

    async def names(query: str) -> list[str]:
        response = await client.get(f"/api/v1/projects?{query}", headers=alice.headers)
        assert response.status_code == 200, response.text
        return sorted(project["name"] for project in response.json()["data"])

    assert await names("") == ["Apollo", "Gemini", "Mercury"]
    assert await names("status=archived") == ["Gemini"]
    assert await names("visibility=internal") == ["Mercury"]
    assert await names(f"owner_id={bob.id}") == ["Mercury"]
    assert await names("search=moon") == ["Apollo", "Gemini"]
    assert await names("search=MERC") == ["Mercury"]
    assert await names("created_after=2024-01-15T11:00:00Z") == ["Gemini", "Mercury"]
    # Time-zone aware: 12:30+02:00 is 10:30Z, after Apollo and before Gemini.
    assert await names("created_before=2024-01-15T12:30:00%2B02:00") == ["Apollo"]
    assert await names("created_after=2024-01-15T12:30:00%2B02:00&status=active") == ["Mercury"]

    for query, parameter in [
        ("status=deleted", "status"),
        ("visibility=everyone", "visibility"),
        ("owner_id=abc", "owner_id"),
        ("created_after=yesterday", "created_after"),
        ("colour=red", "colour"),
        ("sort=owner_password", "sort"),
        ("limit=101", "limit"),
    ]:
        response = await client.get(f"/api/v1/projects?{query}", headers=alice.headers)
        assert response.status_code == 400, query
        assert response.json()["error"]["details"][0]["field"] == parameter


async def test_cursor_pages_cover_every_visible_project_once(
    app: FastAPI, client: httpx.AsyncClient
) -> None:
    account = await make_account(app)
    made = [await make_project(app, account.user, name=f"p{n:02d}") for n in range(7)]
    seen: list[int] = []
    url = "/api/v1/projects?limit=3&cursor=&sort=name"
    while True:
        response = await client.get(url, headers=account.headers)
        assert response.status_code == 200, response.text
        page = response.json()
        seen += [project["id"] for project in page["data"]]
        if not page["pagination"]["has_more"]:
            break
        url = f"/api/v1/projects?limit=3&sort=name&cursor={page['pagination']['next_cursor']}"
    assert seen == [project.id for project in made]


async def test_totals_count_what_each_caller_sees(app: FastAPI, client: httpx.AsyncClient) -> None:
    """``total`` subtracts other owners' private projects from both sides of the caller's id."""
    before = await make_account(app)
    me = await make_account(app)
    after = await make_account(app)
    admin = await make_account(app, role="admin")
    mine = [
        await make_project(app, me.user, name="mine private"),
        await make_project(app, me.user, name="mine public", visibility="public"),
    ]
    await make_project(app, before.user, name="before private")
    shared = await make_project(app, before.user, name="before shared", status="archived")
    await add_member(app, shared, me.user)
    internal = await make_project(app, before.user, name="before internal", visibility="internal")
    await make_project(app, after.user, name="after private")
    await make_project(app, after.user, name="after private too", status="archived")
    public = await make_project(app, after.user, name="after public", visibility="public")

    async def listed(query: str, headers: dict[str, str] | None = None) -> tuple[int, set[int]]:
        response = await client.get(f"/api/v1/projects?{query}", headers=headers or {})
        assert response.status_code == 200, response.text
        page = response.json()
        return page["pagination"]["total"], {project["id"] for project in page["data"]}

    visible = {p.id for p in mine} | {shared.id, internal.id, public.id}
    assert await listed("limit=100", me.headers) == (5, visible)
    total, first_two = await listed("limit=2", me.headers)
    assert (total, len(first_two)) == (5, 2)
    assert (await listed("limit=100&status=archived", me.headers)) == (1, {shared.id})
    assert (await listed("limit=100&cursor=&include_total=true", me.headers))[0] == 5
    assert (await listed("limit=100&offset=50", me.headers)) == (5, set())
    assert (await listed("limit=100"))[0] == 2  # anonymous: the public ones
    assert (await listed("limit=100", admin.headers))[0] == 8
    assert (await listed("limit=100", after.headers))[0] == 5


async def test_list_and_get_write_exactly_the_project_model(
    app: FastAPI, client: httpx.AsyncClient
) -> None:
    """Projects are written straight to JSON (``project_json``); the bytes are ``ProjectOut``'s."""
    account = await make_account(app)
    made = await make_project(
        app,
        account.user,
        name='Ünïcødé "quoted" \\ </script> \u2028 😀',
        description="line one\nline two\ttab",
        settings=SettingsIn(auto_deploy=True),
    )
    async with app.state.db.session_scope() as session:
        stored = await session.get(Project, made.id)
        assert stored is not None
        expected = resource_body(to_out(stored, livemode=True))
    got_one = await client.get(f"/api/v1/projects/{made.id}", headers=account.headers)
    assert got_one.content == expected
    listed = await client.get("/api/v1/projects?limit=1&cursor=", headers=account.headers)
    assert listed.content.startswith(b'{"data":[' + expected + b"]")


@pytest.mark.parametrize(
    "stored_settings",
    [
        {"auto_deploy": True, "notifications": False},  # as the API writes them
        {"notifications": False, "auto_deploy": True},  # another order
        {"auto_deploy": True},  # a key missing
        {"auto_deploy": True, "notifications": False, "retired": 1},  # a key too many
        {},
    ],
)
async def test_a_page_writes_each_project_as_its_model(
    app: FastAPI, client: httpx.AsyncClient, stored_settings: dict[str, object]
) -> None:
    """A page's projects are written in one step (``rendered_projects``); whatever settings a row
    holds, each is ``ProjectOut``'s bytes, in the counted and the cursor modes."""
    account = await make_account(app)
    made = [await make_project(app, account.user, description=f"d{n}") for n in range(3)]
    async with app.state.db.session_scope() as session:
        await session.execute(
            update(Project).where(Project.id == made[1].id).values(settings=stored_settings)
        )
    async with app.state.db.session_scope() as session:
        stored = [await session.get(Project, project.id) for project in reversed(made)]
        expected = b",".join(resource_body(to_out(p, livemode=True)) for p in stored if p)
    for query in ("limit=10", "limit=10&cursor=", "limit=10&cursor=&include_total=true"):
        listed = await client.get(f"/api/v1/projects?{query}", headers=account.headers)
        assert listed.content.startswith(b'{"data":[' + expected + b'],"pagination":'), query


async def test_two_editors_with_the_same_etag_never_both_win(
    app: FastAPI, client: httpx.AsyncClient
) -> None:
    account = await make_account(app)
    project = await make_project(app, account.user)
    url = f"/api/v1/projects/{project.id}"
    etag = (await client.get(url, headers=account.headers)).headers["ETag"]
    headers = {**account.headers, "If-Match": etag}
    first, second = await asyncio.gather(
        client.patch(url, headers=headers, json={"description": "first"}),
        client.patch(url, headers=headers, json={"description": "second"}),
    )
    assert sorted([first.status_code, second.status_code]) == [200, 412]
    winner = first if first.status_code == 200 else second
    final = await client.get(url, headers=account.headers)
    assert final.json()["description"] == winner.json()["description"]
    assert len(await stored_events(app, "project.updated")) == 1
