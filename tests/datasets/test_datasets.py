from __future__ import annotations

import httpx
import orjson
from fastapi import FastAPI

from tests.access.helpers import error_code, snapshot, stored_events
from tests.factories import add_member, make_account, make_data_set, make_project

SEED_001_BODY = {"name": "Sample Dataset", "values": [1, 2, 3, 4, 5]}


async def test_seed_001_example_works_as_written(app: FastAPI, client: httpx.AsyncClient) -> None:
    """``requests.post("https://api.example.com/v1/data", json=data, headers=...)``."""
    account = await make_account(app)
    created = await client.post("/v1/data", headers=account.headers, json=SEED_001_BODY)
    assert created.status_code == 201, created.text
    body = created.json()
    assert (body["name"], body["values"], body["metadata"]) == (
        "Sample Dataset",
        [1, 2, 3, 4, 5],
        {},
    )
    assert (body["project_id"], body["owner_id"]) == (None, account.id)
    assert created.headers["Location"].endswith(f"/v1/data/{body['id']}")
    fetched = await client.get(f"/api/v1/data/{body['id']}", headers=account.headers)
    assert fetched.json() == body
    [event] = await stored_events(app, "data.created")
    assert event.data == body


async def test_put_patch_delete(app: FastAPI, client: httpx.AsyncClient) -> None:
    account = await make_account(app)
    created = await client.post(
        "/api/v1/data",
        headers=account.headers,
        json={
            "name": "temps",
            "values": [20.5, None, "n/a", {"t": 21}],
            "metadata": {"unit": "C", "source": {"kind": "sensor", "id": 7}},
        },
    )
    assert created.status_code == 201, created.text
    url = created.headers["Location"]

    patched = await client.patch(
        url,
        headers=account.headers,
        json={"metadata": {"unit": "F", "source": {"id": None, "room": "lab"}}, "values": [1]},
    )
    assert patched.status_code == 200, patched.text
    assert patched.json()["metadata"] == {"unit": "F", "source": {"kind": "sensor", "room": "lab"}}
    assert patched.json()["values"] == [1]
    assert patched.json()["name"] == "temps"

    replaced = await client.put(url, headers=account.headers, json={"name": "t", "values": []})
    assert replaced.status_code == 200, replaced.text
    assert (replaced.json()["name"], replaced.json()["values"], replaced.json()["metadata"]) == (
        "t",
        [],
        {},
    )
    needs_values = await client.put(url, headers=account.headers, json={"name": "t"})
    assert needs_values.status_code == 400

    deleted = await client.delete(url, headers=account.headers)
    assert deleted.status_code == 204
    assert (await client.get(url, headers=account.headers)).status_code == 404
    kinds = [e.type for e in await stored_events(app) if e.type.startswith("data.")]
    assert kinds == ["data.created", "data.updated", "data.updated", "data.deleted"]


async def test_body_over_the_limit_is_413(app: FastAPI, client: httpx.AsyncClient) -> None:
    account = await make_account(app)
    before = await snapshot(app)
    values = list(range(300_000))  # about 2 MiB of JSON; the default limit is 1 MiB
    payload = orjson.dumps({"name": "huge", "values": values})
    assert len(payload) > 1024 * 1024
    response = await client.post(
        "/api/v1/data",
        headers={**account.headers, "Content-Type": "application/json"},
        content=payload,
    )
    assert response.status_code == 413
    assert error_code(response) == "PAYLOAD_TOO_LARGE"
    assert await snapshot(app) == before


async def test_bad_bodies(app: FastAPI, client: httpx.AsyncClient) -> None:
    account = await make_account(app)
    before = await snapshot(app)
    cases: list[tuple[dict[str, object], str]] = [
        ({"values": [1]}, "name"),
        ({"name": "x"}, "values"),
        ({"name": "x", "values": "1,2,3"}, "values"),
        ({"name": "x", "values": [1], "metadata": [1]}, "metadata"),
        ({"name": "x", "values": [1], "size": 1}, "size"),
        ({"name": ["x"], "values": [1]}, "name"),
    ]
    for body, field in cases:
        response = await client.post("/api/v1/data", headers=account.headers, json=body)
        assert response.status_code == 400, body
        assert field in [d["field"] for d in response.json()["error"]["details"]], body
    malformed = await client.post(
        "/api/v1/data",
        headers={**account.headers, "Content-Type": "application/json"},
        content=b'{"name": "x", "values": [1,',
    )
    assert malformed.status_code == 400
    assert error_code(malformed) == "VALIDATION_ERROR"
    assert await snapshot(app) == before


async def test_project_data_sets_follow_the_project(
    app: FastAPI, client: httpx.AsyncClient
) -> None:
    owner = await make_account(app)
    viewer = await make_account(app)
    outsider = await make_account(app)
    project = await make_project(app, owner.user)
    await add_member(app, project, viewer.user, "viewer")
    created = await client.post(
        "/api/v1/data",
        headers=owner.headers,
        json={**SEED_001_BODY, "project_id": project.id},
    )
    assert created.status_code == 201, created.text
    url = created.headers["Location"]
    assert (await client.get(url, headers=viewer.headers)).status_code == 200
    assert (await client.get(url, headers=outsider.headers)).status_code == 404

    before = await snapshot(app)
    changed = await client.patch(url, headers=viewer.headers, json={"name": "mine"})
    assert changed.status_code == 403
    in_project = await client.post(
        "/api/v1/data", headers=viewer.headers, json={**SEED_001_BODY, "project_id": project.id}
    )
    assert in_project.status_code == 403
    hidden = await client.post(
        "/api/v1/data", headers=outsider.headers, json={**SEED_001_BODY, "project_id": project.id}
    )
    assert hidden.status_code == 404
    assert hidden.json()["error"]["details"][0]["field"] == "project_id"
    assert await snapshot(app) == before
    elsewhere = await make_project(app, owner.user)
    before = await snapshot(app)
    for project_id in (None, elsewhere.id):
        moved = await client.patch(url, headers=owner.headers, json={"project_id": project_id})
        assert moved.status_code == 400
        assert moved.json()["error"]["details"][0]["field"] == "project_id"
    assert await snapshot(app) == before
    same = await client.put(
        url, headers=owner.headers, json={**SEED_001_BODY, "project_id": project.id}
    )
    assert same.status_code == 200
    assert same.json()["project_id"] == project.id


async def test_list_shows_own_and_visible_project_data(
    app: FastAPI, client: httpx.AsyncClient
) -> None:
    alice = await make_account(app)
    bob = await make_account(app)
    public = await make_project(app, bob.user, visibility="public")
    private = await make_project(app, bob.user)
    await make_data_set(app, alice.user, name="alice notes")
    await make_data_set(app, bob.user, name="bob notes")
    await make_data_set(app, bob.user, public, name="public figures")
    await make_data_set(app, bob.user, private, name="private figures")

    async def names(query: str, headers: dict[str, str] | None) -> list[str]:
        response = await client.get(f"/api/v1/data?{query}", headers=headers)
        assert response.status_code == 200, response.text
        return sorted(d["name"] for d in response.json()["data"])

    assert await names("", alice.headers) == ["alice notes", "public figures"]
    assert await names("", bob.headers) == ["bob notes", "private figures", "public figures"]
    assert await names("", None) == ["public figures"]
    assert await names("search=FIG", bob.headers) == ["private figures", "public figures"]
    assert await names(f"project_id={private.id}", bob.headers) == ["private figures"]
    assert await names(f"owner_id={alice.id}", bob.headers) == []
