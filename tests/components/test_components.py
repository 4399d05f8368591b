from __future__ import annotations

import httpx
import pytest
from fastapi import FastAPI

from tests.access.helpers import error_code, snapshot, stored_events
from tests.factories import add_member, make_account, make_component, make_project

CATALOGUE_ENTRY = {
    "name": "payments-api",
    "type": "api",
    "lifecycle": "production",
    "description": "Takes the money",
    "tags": ["billing", "python"],
    "links": [{"title": "Runbook", "url": "https://wiki.example.com/payments"}],
}


async def test_create_both_ways_and_read(app: FastAPI, client: httpx.AsyncClient) -> None:
    account = await make_account(app)
    project = await make_project(app, account.user)

    nested = await client.post(
        f"/api/v1/projects/{project.id}/components", headers=account.headers, json=CATALOGUE_ENTRY
    )
    assert nested.status_code == 201, nested.text
    body = nested.json()
    assert {k: body[k] for k in CATALOGUE_ENTRY} == CATALOGUE_ENTRY
    assert body["project_id"] == project.id
    assert body["owner_id"] == account.id
    assert nested.headers["Location"].endswith(f"/api/v1/components/{body['id']}")
    assert (await client.get(nested.headers["Location"], headers=account.headers)).json() == body

    flat = await client.post(
        "/api/v1/components",
        headers=account.headers,
        json={"project_id": project.id, "name": "website"},
    )
    assert flat.status_code == 201, flat.text
    assert flat.json()["type"] == "service"
    assert flat.json()["lifecycle"] == "experimental"
    assert flat.json()["tags"] == flat.json()["links"] == []

    missing_project = await client.post(
        "/api/v1/components", headers=account.headers, json={"name": "orphan"}
    )
    assert missing_project.status_code == 400
    assert missing_project.json()["error"]["details"][0]["field"] == "project_id"

    listed = await client.get(f"/api/v1/projects/{project.id}/components", headers=account.headers)
    assert sorted(c["name"] for c in listed.json()["data"]) == ["payments-api", "website"]
    created_events = await stored_events(app, "component.created")
    assert [event.data for event in created_events] == [body, flat.json()]


async def test_names_are_unique_in_a_project(app: FastAPI, client: httpx.AsyncClient) -> None:
    account = await make_account(app)
    first = await make_project(app, account.user)
    second = await make_project(app, account.user)
    await make_component(app, first, name="api")
    before = await snapshot(app)
    clash = await client.post(
        f"/api/v1/projects/{first.id}/components", headers=account.headers, json={"name": "api"}
    )
    assert clash.status_code == 409
    assert error_code(clash) == "RESOURCE_CONFLICT"
    assert await snapshot(app) == before
    elsewhere = await client.post(
        f"/api/v1/projects/{second.id}/components", headers=account.headers, json={"name": "api"}
    )
    assert elsewhere.status_code == 201

    other = await make_component(app, first, name="worker")
    renamed = await client.patch(
        f"/api/v1/components/{other.id}", headers=account.headers, json={"name": "api"}
    )
    assert renamed.status_code == 409


async def test_patch_put_and_delete(app: FastAPI, client: httpx.AsyncClient) -> None:
    account = await make_account(app)
    project = await make_project(app, account.user)
    created = await client.post(
        f"/api/v1/projects/{project.id}/components", headers=account.headers, json=CATALOGUE_ENTRY
    )
    url = created.headers["Location"]

    patched = await client.patch(
        url, headers=account.headers, json={"lifecycle": "deprecated", "tags": ["legacy"]}
    )
    assert patched.status_code == 200, patched.text
    assert patched.json()["lifecycle"] == "deprecated"
    assert patched.json()["tags"] == ["legacy"]
    assert patched.json()["links"] == CATALOGUE_ENTRY["links"]

    replaced = await client.put(url, headers=account.headers, json={"name": "payments"})
    assert replaced.status_code == 200, replaced.text
    body = replaced.json()
    assert (body["name"], body["type"], body["description"], body["tags"]) == (
        "payments",
        "service",
        None,
        [],
    )
    assert body["owner_id"] == account.id
    echoed = await client.put(url, headers=account.headers, json=body)
    assert echoed.status_code == 200, echoed.text

    other_project = await make_project(app, account.user)
    before = await snapshot(app)
    moved = await client.patch(url, headers=account.headers, json={"project_id": other_project.id})
    assert moved.status_code == 400
    assert moved.json()["error"]["details"][0]["field"] == "project_id"
    assert await snapshot(app) == before

    deleted = await client.delete(url, headers=account.headers)
    assert deleted.status_code == 204
    assert (await client.get(url, headers=account.headers)).status_code == 404
    kinds = [e.type for e in await stored_events(app) if e.type.startswith("component.")]
    assert kinds == [
        "component.created",
        "component.updated",
        "component.updated",
        "component.updated",
        "component.deleted",
    ]


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"name": "api", "type": "database"}, "type"),
        ({"name": "api", "lifecycle": "retired"}, "lifecycle"),
        ({"name": "api", "links": [{"title": "x", "url": "javascript:alert(1)"}]}, "links.0.url"),
        ({"name": "api", "links": [{"url": "https://x.example.com"}]}, "links.0.title"),
        ({"name": "api", "tags": "billing"}, "tags"),
        ({"name": "api", "tags": ["two words"]}, "tags.0"),
        ({"name": ""}, "name"),
        ({"name": "a/b"}, "name"),
        ({"name": "api", "colour": "red"}, "colour"),
    ],
)
async def test_bad_bodies(
    app: FastAPI, client: httpx.AsyncClient, body: dict[str, object], field: str
) -> None:
    account = await make_account(app)
    project = await make_project(app, account.user)
    before = await snapshot(app)
    response = await client.post(
        f"/api/v1/projects/{project.id}/components", headers=account.headers, json=body
    )
    assert response.status_code == 400, response.text
    assert field in [d["field"] for d in response.json()["error"]["details"]]
    assert await snapshot(app) == before


async def test_owner_id_is_for_admins(app: FastAPI, client: httpx.AsyncClient) -> None:
    owner = await make_account(app)
    colleague = await make_account(app)
    admin = await make_account(app, role="admin")
    project = await make_project(app, owner.user)
    await add_member(app, project, colleague.user, "maintainer")
    before = await snapshot(app)
    given = await client.post(
        f"/api/v1/projects/{project.id}/components",
        headers=owner.headers,
        json={"name": "api", "owner_id": colleague.id},
    )
    assert given.status_code == 403
    assert await snapshot(app) == before
    component = await make_component(app, project, name="api", owner_id=owner.id)
    taken = await client.patch(
        f"/api/v1/components/{component.id}", headers=colleague.headers, json={"owner_id": None}
    )
    assert taken.status_code == 403
    reassigned = await client.patch(
        f"/api/v1/components/{component.id}", headers=admin.headers, json={"owner_id": colleague.id}
    )
    assert reassigned.status_code == 200
    assert reassigned.json()["owner_id"] == colleague.id


async def test_list_filters_and_visibility(app: FastAPI, client: httpx.AsyncClient) -> None:
    alice = await make_account(app)
    bob = await make_account(app)
    mine = await make_project(app, alice.user)
    public = await make_project(app, bob.user, visibility="public")
    private = await make_project(app, bob.user)
    await make_component(app, mine, name="billing", type="api", description="Invoices")
    await make_component(app, mine, name="site", type="website", lifecycle="production")
    await make_component(app, public, name="docs", type="website")
    await make_component(app, private, name="secret-sauce")

    async def names(query: str, headers: dict[str, str] | None = None) -> list[str]:
        response = await client.get(f"/api/v1/components?{query}", headers=headers)
        assert response.status_code == 200, response.text
        return sorted(c["name"] for c in response.json()["data"])

    assert await names("", alice.headers) == ["billing", "docs", "site"]
    assert await names("") == ["docs"]  # anonymous: public projects only
    assert await names("type=website", alice.headers) == ["docs", "site"]
    assert await names("lifecycle=production", alice.headers) == ["site"]
    assert await names(f"project_id={public.id}", alice.headers) == ["docs"]
    assert await names(f"project_id={private.id}", alice.headers) == []
    assert await names("search=INVOICE", alice.headers) == ["billing"]
    nested = await client.get(
        f"/api/v1/projects/{mine.id}/components?type=api", headers=alice.headers
    )
    assert [c["name"] for c in nested.json()["data"]] == ["billing"]
    bad = await client.get("/api/v1/components?type=database", headers=alice.headers)
    assert bad.status_code == 400
    # project_id is the path's on the nested list.
    assert (
        await client.get(
            f"/api/v1/projects/{mine.id}/components?project_id=1", headers=alice.headers
        )
    ).status_code == 400
