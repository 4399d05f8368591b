"""Key scopes narrow what a user may do; bad bodies are refused before anything changes."""

from __future__ import annotations

import httpx
from fastapi import FastAPI

from tests.access.helpers import error_code, snapshot
from tests.access.world import CREATE_ROUTES, PROJECT_ROUTES, body_for, make_world
from tests.factories import make_account, make_key

BODY_ROUTES = tuple(route for route in (*PROJECT_ROUTES, *CREATE_ROUTES) if route.body)


async def test_a_read_key_gets_403_on_every_write(app: FastAPI, client: httpx.AsyncClient) -> None:
    world = await make_world(app, "private")
    other = await make_account(app)
    read_key = await make_key(app, world.owner.user, scopes=["read"])
    headers = {"Authorization": f"Bearer {read_key}"}
    before = await snapshot(app)
    for route in (*PROJECT_ROUTES, *CREATE_ROUTES):
        response = await client.request(
            route.method,
            route.url(world.ids),
            headers=headers,
            json=body_for(route, other.id, world),
        )
        if route.writes:
            assert response.status_code == 403, f"{route}: {response.text}"
            assert error_code(response) == "INSUFFICIENT_PERMISSIONS"
        else:
            assert response.status_code == 200, f"{route}: {response.text}"
    assert await snapshot(app) == before


async def test_resource_scopes(app: FastAPI, client: httpx.AsyncClient) -> None:
    world = await make_world(app, "private")
    key = await make_key(app, world.owner.user, scopes=["projects:read", "projects:write"])
    headers = {"Authorization": f"Bearer {key}"}
    project_url = f"/api/v1/projects/{world.ids['project']}"
    assert (await client.get(project_url, headers=headers)).status_code == 200
    assert (
        await client.patch(project_url, headers=headers, json={"name": "ok"})
    ).status_code == 200
    before = await snapshot(app)
    for method, path, body in [
        ("GET", "/components", None),
        ("POST", f"/projects/{world.ids['project']}/components", {"name": "x"}),
        ("GET", f"/deployments/{world.ids['deployment']}", None),
        ("PATCH", f"/deployments/{world.ids['deployment']}", {"status": "started"}),
        ("GET", "/data", None),
        ("GET", "/events", None),
    ]:
        response = await client.request(method, f"/api/v1{path}", headers=headers, json=body)
        assert response.status_code == 403, f"{method} {path}"
    assert await snapshot(app) == before


async def test_bad_bodies_on_every_write(app: FastAPI, client: httpx.AsyncClient) -> None:
    world = await make_world(app, "private")
    headers = {**world.owner.headers, "Content-Type": "application/json"}
    before = await snapshot(app)
    for route in BODY_ROUTES:
        url = route.url(world.ids)
        malformed = await client.request(route.method, url, headers=headers, content=b'{"name": ')
        assert malformed.status_code == 400, f"{route}: {malformed.text}"
        assert error_code(malformed) == "VALIDATION_ERROR"

        not_an_object = await client.request(route.method, url, headers=headers, content=b"[1, 2]")
        assert not_an_object.status_code == 400, f"{route}: {not_an_object.text}"

        body = body_for(route, world.owner.id, world) or {}
        unknown = await client.request(
            route.method, url, headers=headers, json={**body, "is_superuser": True}
        )
        assert unknown.status_code == 400, f"{route}: {unknown.text}"
        fields = [detail["field"] for detail in unknown.json()["error"]["details"]]
        assert "is_superuser" in fields, route

        huge = await client.request(
            route.method, url, headers=headers, content=b'{"name": "' + b"x" * 1_100_000 + b'"}'
        )
        assert huge.status_code == 413, f"{route}: {huge.status_code}"
        assert error_code(huge) == "PAYLOAD_TOO_LARGE"
    assert await snapshot(app) == before


async def test_wrong_types_in_ids(app: FastAPI, client: httpx.AsyncClient) -> None:
    world = await make_world(app, "private")
    for path, field in [
        ("/projects/abc", "project_id"),
        ("/components/1.5", "component_id"),
        ("/deployments/x", "deployment_id"),
        ("/data/-", "data_set_id"),
    ]:
        response = await client.get(f"/api/v1{path}", headers=world.owner.headers)
        assert response.status_code == 400, path
        assert response.json()["error"]["details"][0]["field"] == field
    missing = await client.get("/api/v1/projects/987654", headers=world.owner.headers)
    assert missing.status_code == 404
