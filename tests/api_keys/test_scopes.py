"""What a key's scopes allow on the users and API key routes (section 3: scopes narrow)."""

from __future__ import annotations

import httpx
import pytest
from fastapi import FastAPI

from tests.factories import make_key, make_user
from tests.users.helpers import count_users, error_of, stored_keys, stored_user_fields

# (method, path, body); {me} is the caller's id, {key} the id of one of the caller's keys.
USER_AND_KEY_WRITES = [
    ("PATCH", "/api/v1/user", {"name": "Changed"}),
    ("PUT", "/api/v1/users/{me}", {"username": "changed", "email": "changed@example.com"}),
    ("PATCH", "/api/v1/users/{me}", {"name": "Changed"}),
    ("DELETE", "/api/v1/users/{me}", None),
    ("POST", "/api/v1/users", {"email": "new@example.com"}),
    ("POST", "/api/v1/api-keys", {"scopes": ["read"]}),
    ("DELETE", "/api/v1/api-keys/{key}", None),
]
READS = [
    "/api/v1/user",
    "/api/v1/users",
    "/api/v1/users/{me}",
    "/api/v1/api-keys",
    "/api/v1/api-keys/{key}",
]


async def _caller(
    app: FastAPI, scopes: list[str], role: str = "admin"
) -> tuple[dict[str, str], dict[str, int]]:
    user = await make_user(app, role=role)
    secret = await make_key(app, user, scopes=scopes)
    (key,) = await stored_keys(app, user.id)
    return {"Authorization": f"Bearer {secret}"}, {"me": user.id, "key": key.id}


@pytest.mark.parametrize(("method", "path", "body"), USER_AND_KEY_WRITES)
async def test_a_read_key_gets_403_on_every_write(
    app: FastAPI,
    client: httpx.AsyncClient,
    method: str,
    path: str,
    body: dict[str, object] | None,
) -> None:
    # Even an administrator's key: the scope narrows what the user could do.
    headers, ids = await _caller(app, ["read"])
    before = await stored_user_fields(app, ids["me"])
    users_before = await count_users(app)
    response = await client.request(method, path.format(**ids), headers=headers, json=body)
    assert response.status_code == 403
    assert error_of(response)["code"] == "INSUFFICIENT_PERMISSIONS"
    assert await stored_user_fields(app, ids["me"]) == before
    assert await count_users(app) == users_before
    (key,) = await stored_keys(app, ids["me"])
    assert key.revoked_at is None
    for read in READS:
        assert (await client.get(read.format(**ids), headers=headers)).status_code == 200, read


async def test_users_read_allows_reading_users_only(
    app: FastAPI, client: httpx.AsyncClient
) -> None:
    headers, ids = await _caller(app, ["users:read"], role="member")
    other = await make_user(app)
    for url in ("/api/v1/user", "/api/v1/users", f"/api/v1/users/{other.id}"):
        assert (await client.get(url, headers=headers)).status_code == 200, url
    before = await stored_user_fields(app, ids["me"])
    for method, path, body in USER_AND_KEY_WRITES[:3]:
        response = await client.request(method, path.format(**ids), headers=headers, json=body)
        assert response.status_code == 403
    assert await stored_user_fields(app, ids["me"]) == before
    # Keys are another resource: users:read does not reach them.
    assert (await client.get("/api/v1/api-keys", headers=headers)).status_code == 403
    assert (await client.get(f"/api/v1/api-keys/{ids['key']}", headers=headers)).status_code == 403


async def test_users_write_allows_own_changes_but_not_keys(
    app: FastAPI, client: httpx.AsyncClient
) -> None:
    headers, ids = await _caller(app, ["users:write"], role="member")
    patched = await client.patch("/api/v1/user", headers=headers, json={"name": "Allowed"})
    assert patched.status_code == 200
    assert (await client.get("/api/v1/users", headers=headers)).status_code == 200
    refused = await client.post("/api/v1/api-keys", headers=headers, json={"scopes": ["read"]})
    assert refused.status_code == 403
    assert len(await stored_keys(app, ids["me"])) == 1


async def test_other_resource_scopes_reach_neither_users_nor_keys(
    app: FastAPI, client: httpx.AsyncClient
) -> None:
    headers, _ = await _caller(app, ["projects:read", "projects:write"], role="member")
    for url in ("/api/v1/user", "/api/v1/users", "/api/v1/api-keys"):
        assert (await client.get(url, headers=headers)).status_code == 403, url


async def test_admin_actions_through_a_key_need_the_admin_scope(
    app: FastAPI, client: httpx.AsyncClient
) -> None:
    member = await make_user(app)
    plain, _ = await _caller(app, ["read", "write"])
    admin_scoped, _ = await _caller(app, ["admin"])
    before = await stored_user_fields(app, member.id)
    for headers, expected in ((plain, 403), (admin_scoped, 200)):
        response = await client.patch(
            f"/api/v1/users/{member.id}", headers=headers, json={"plan": "starter"}
        )
        assert response.status_code == expected
        if expected == 403:
            assert await stored_user_fields(app, member.id) == before
    created = await client.post(
        "/api/v1/users", headers=admin_scoped, json={"email": "scoped@example.com"}
    )
    assert created.status_code == 201
    # With the admin scope, emails of others show; without it, they do not.
    shown = await client.get(f"/api/v1/users/{member.id}", headers=admin_scoped)
    hidden = await client.get(f"/api/v1/users/{member.id}", headers=plain)
    assert shown.json()["email"] == member.email
    assert hidden.json()["email"] is None
