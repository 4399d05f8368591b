"""User A with user B's ids, on every route that takes one: 404 for what A may not see, 403
for what A sees but may not change, and nothing changed in the database either way."""

from __future__ import annotations

import httpx
from fastapi import FastAPI

from tests.access.helpers import error_code, snapshot
from tests.access.world import PROJECT_ROUTES, Route, World, body_for, make_world
from tests.factories import make_account, make_component, make_project


async def _call(
    client: httpx.AsyncClient,
    route: Route,
    world: World,
    headers: dict[str, str] | None,
    caller_id: int,
    **ids: int,
) -> httpx.Response:
    return await client.request(
        route.method,
        route.url({**world.ids, **ids}),
        headers=headers,
        json=body_for(route, caller_id, world),
    )


async def test_another_users_private_project_is_404_on_every_verb(
    app: FastAPI, client: httpx.AsyncClient
) -> None:
    world = await make_world(app, "private")
    intruder = await make_account(app)
    before = await snapshot(app)
    for route in PROJECT_ROUTES:
        response = await _call(client, route, world, intruder.headers, intruder.id)
        assert response.status_code == 404, f"{route}: {response.status_code} {response.text}"
        assert error_code(response) == "RESOURCE_NOT_FOUND", route
    assert await snapshot(app) == before


async def test_anonymous_callers_get_404_or_401_on_a_private_project(
    app: FastAPI, client: httpx.AsyncClient
) -> None:
    world = await make_world(app, "private")
    before = await snapshot(app)
    for route in PROJECT_ROUTES:
        response = await _call(client, route, world, None, 0)
        expected = 401 if route.writes else 404
        assert response.status_code == expected, f"{route}: {response.text}"
    assert await snapshot(app) == before


async def test_a_public_project_is_read_by_all_and_changed_by_none(
    app: FastAPI, client: httpx.AsyncClient
) -> None:
    world = await make_world(app, "public")
    outsider = await make_account(app)
    before = await snapshot(app)
    for route in PROJECT_ROUTES:
        response = await _call(client, route, world, outsider.headers, outsider.id)
        expected = 403 if route.writes else 200
        assert response.status_code == expected, f"{route}: {response.status_code} {response.text}"
        if route.writes:
            assert error_code(response) == "INSUFFICIENT_PERMISSIONS", route
        anonymous = await _call(client, route, world, None, 0)
        assert anonymous.status_code == (401 if route.writes else 200), f"anonymous {route}"
    assert await snapshot(app) == before


async def test_an_internal_project_is_for_signed_in_readers(
    app: FastAPI, client: httpx.AsyncClient
) -> None:
    world = await make_world(app, "internal")
    colleague = await make_account(app)
    before = await snapshot(app)
    for route in PROJECT_ROUTES:
        response = await _call(client, route, world, colleague.headers, colleague.id)
        assert response.status_code == (403 if route.writes else 200), f"{route}: {response.text}"
        if not route.writes:
            anonymous = await _call(client, route, world, None, 0)
            assert anonymous.status_code == 404, f"anonymous {route}"
    listed = await client.get("/api/v1/projects")
    assert listed.json()["data"] == []
    assert await snapshot(app) == before


async def test_another_users_personal_data_set_is_404(
    app: FastAPI, client: httpx.AsyncClient
) -> None:
    world = await make_world(app, "public")
    intruder = await make_account(app)
    before = await snapshot(app)
    for method, body in [
        ("GET", None),
        ("PUT", {"name": "x", "values": []}),
        ("PATCH", {"name": "x"}),
        ("DELETE", None),
    ]:
        response = await client.request(
            method, f"/api/v1/data/{world.personal_data}", headers=intruder.headers, json=body
        )
        assert response.status_code == 404, method
    listed = await client.get("/api/v1/data", headers=intruder.headers)
    assert world.personal_data not in [d["id"] for d in listed.json()["data"]]
    assert await snapshot(app) == before


async def test_bodies_naming_anothers_private_things_are_404(
    app: FastAPI, client: httpx.AsyncClient
) -> None:
    world = await make_world(app, "private")
    intruder = await make_account(app)
    own_project = await make_project(app, intruder.user)
    await make_component(app, own_project, name="mine")
    before = await snapshot(app)
    attempts = [
        ("/api/v1/components", {"name": "x", "project_id": world.ids["project"]}, "project_id"),
        (
            "/api/v1/data",
            {"name": "x", "values": [], "project_id": world.ids["project"]},
            "project_id",
        ),
        (
            f"/api/v1/projects/{own_project.id}/deployments",
            {"environment": "prod", "ref": "main", "component_id": world.ids["component"]},
            "component_id",
        ),
    ]
    for url, body, field in attempts:
        response = await client.post(url, headers=intruder.headers, json=body)
        assert response.status_code == 404, url
        assert response.json()["error"]["details"][0]["field"] == field
    assert await snapshot(app) == before


async def test_lists_never_show_anothers_private_things(
    app: FastAPI, client: httpx.AsyncClient
) -> None:
    world = await make_world(app, "private")
    intruder = await make_account(app)
    for path in ("/projects", "/components", "/deployments", "/data", "/events"):
        response = await client.get(f"/api/v1{path}", headers=intruder.headers)
        assert response.status_code == 200, path
        data = response.json()["data"]
        if path == "/events":
            assert [event["event"] for event in data] == ["user.created"]
        else:
            assert data == [], path
    owner_view = await client.get("/api/v1/projects", headers=world.owner.headers)
    assert [p["id"] for p in owner_view.json()["data"]] == [world.ids["project"]]
