from __future__ import annotations

import asyncio

import httpx
from fastapi import FastAPI
from typer.testing import CliRunner

from rostra.cli.main import app as cli
from rostra.core.config import Settings
from tests.access.helpers import error_code, stored_events
from tests.factories import PASSWORD, add_member, make_account, make_project

CONTRACT_TYPES = {
    "user.created",
    "user.registered",
    "user.updated",
    "user.deleted",
    "project.created",
    "project.updated",
    "project.deleted",
    "component.created",
    "component.updated",
    "component.deleted",
    "deployment.started",
    "deployment.completed",
    "deployment.failed",
    "data.created",
    "data.updated",
    "data.deleted",
    "ping",
}


async def _event_types(
    client: httpx.AsyncClient, headers: dict[str, str], query: str = ""
) -> list[str]:
    response = await client.get(f"/api/v1/events?sort=id&order=asc{query}", headers=headers)
    assert response.status_code == 200, response.text
    return [event["event"] for event in response.json()["data"]]


async def test_event_body_is_the_contracts(app: FastAPI, client: httpx.AsyncClient) -> None:
    account = await make_account(app)
    created = await client.post("/api/v1/projects", headers=account.headers, json={"name": "P"})
    response = await client.get("/api/v1/events?type=project.created", headers=account.headers)
    [event] = response.json()["data"]
    assert set(event) == {"id", "event", "timestamp", "data", "livemode"}
    assert event["id"].startswith("evt_")
    assert event["event"] == "project.created"
    assert event["timestamp"].endswith("Z")
    assert event["data"] == created.json()


async def test_callers_see_their_own_and_their_projects_events(
    app: FastAPI, client: httpx.AsyncClient
) -> None:
    alice = await make_account(app)
    bob = await make_account(app)
    admin = await make_account(app, role="admin")
    bobs = await make_project(app, bob.user)
    assert await _event_types(client, alice.headers) == ["user.created"]
    assert await _event_types(client, bob.headers) == ["user.created", "project.created"]

    await add_member(app, bobs, alice.user)
    # Now a member: the project's whole history, but still not Bob's own account events.
    assert await _event_types(client, alice.headers) == [
        "user.created",
        "project.created",
        "project.member_added",
    ]
    everything = await _event_types(client, admin.headers)
    assert everything.count("user.created") == 3
    assert await _event_types(client, alice.headers, f"&project_id={bobs.id}") == [
        "project.created",
        "project.member_added",
    ]
    unknown = await client.get("/api/v1/events?type=user.exploded", headers=alice.headers)
    assert unknown.status_code == 400
    assert unknown.json()["error"]["details"][0]["field"] == "type"
    assert (await client.get("/api/v1/events")).status_code == 401


async def test_event_types(app: FastAPI, client: httpx.AsyncClient) -> None:
    account = await make_account(app)
    response = await client.get("/api/v1/events/types", headers=account.headers)
    assert response.status_code == 200
    body = response.json()
    types = {item["type"] for item in body["data"]}
    assert types >= CONTRACT_TYPES
    assert all(item["description"] for item in body["data"])
    assert body["pagination"]["total"] == len(body["data"])
    assert body["pagination"]["has_more"] is False
    assert response.headers["Link"].endswith('/api/v1/events/types>; rel="first"')
    refused = await client.get("/api/v1/events/types?limit=5", headers=account.headers)
    assert refused.status_code == 400


async def test_user_events(app: FastAPI, client: httpx.AsyncClient) -> None:
    admin = await make_account(app, role="admin")
    created = await client.post(
        "/api/v1/users",
        headers=admin.headers,
        json={"name": "John Doe", "email": "john@example.com"},
    )
    assert created.status_code == 201, created.text
    registered = await client.post(
        "/api/v1/auth/register", json={"email": "ada@example.com", "password": PASSWORD}
    )
    assert registered.status_code == 201, registered.text
    updated = await client.patch(
        f"/api/v1/users/{created.json()['id']}", headers=admin.headers, json={"name": "Johnny"}
    )
    assert updated.status_code == 200
    deleted = await client.delete(f"/api/v1/users/{registered.json()['id']}", headers=admin.headers)
    assert deleted.status_code == 204

    [made] = [e for e in await stored_events(app, "user.created") if e.owner_id != admin.id]
    assert made.data["email"] == "john@example.com"
    assert made.actor_id == admin.id
    [signed_up] = await stored_events(app, "user.registered")
    assert signed_up.data["username"] == "ada"
    assert signed_up.actor_id is None
    [changed] = await stored_events(app, "user.updated")
    assert changed.data["name"] == "Johnny"
    [gone] = await stored_events(app, "user.deleted")
    assert gone.data["id"] == registered.json()["id"]
    assert "password" not in str([e.data for e in await stored_events(app)])


async def test_cli_user_creation_is_an_event(
    app: FastAPI, client: httpx.AsyncClient, settings: Settings
) -> None:
    env = {
        "ROSTRA_DATABASE_URL": settings.database_url,
        "ROSTRA_SECRET_KEY": "cli-test-secret-key-that-is-long-enough-42",
    }
    args = ["users", "create", "--username", "ops", "--email", "ops@example.com"]
    args += ["--password", PASSWORD]
    result = await asyncio.to_thread(CliRunner().invoke, cli, args, env=env)
    assert result.exit_code == 0, result.output
    [event] = [e for e in await stored_events(app, "user.created") if e.data["username"] == "ops"]
    assert event.owner_id == int(result.stdout.strip())
    assert event.actor_id is None


async def test_event_ids_only_grow(app: FastAPI, client: httpx.AsyncClient) -> None:
    account = await make_account(app)
    for name in ("a", "b", "c"):
        await client.post("/api/v1/projects", headers=account.headers, json={"name": name})
    events = await stored_events(app)
    ids = [event.id for event in events]
    assert ids == sorted(set(ids))
    assert len({event.public_id for event in events}) == len(events)
    assert [e.data["name"] for e in events if e.type == "project.created"] == ["a", "b", "c"]
    first_page = await client.get("/api/v1/events?limit=2&cursor=&sort=id", headers=account.headers)
    assert first_page.json()["pagination"]["has_more"] is True
    cursor = first_page.json()["pagination"]["next_cursor"]
    rest = await client.get(
        f"/api/v1/events?limit=2&sort=id&cursor={cursor}", headers=account.headers
    )
    assert rest.status_code == 200
    assert error_code(
        await client.get("/api/v1/events?cursor=forged", headers=account.headers)
    ) == ("VALIDATION_ERROR")
