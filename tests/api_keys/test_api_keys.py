"""API keys: creation, the secret shown once and stored as SHA-256, scopes, expiry, revocation."""

from __future__ import annotations

import hashlib
from datetime import UTC, datetime, timedelta

import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy import select, update

from rostra.api_keys.models import ApiKey
from tests.factories import make_account, make_key, make_user
from tests.users.helpers import PREFIXES, error_fields, error_of, login_headers, stored_keys


async def _stored_key(app: FastAPI, key_id: int) -> ApiKey | None:
    async with app.state.db.session_scope() as session:
        return await session.get(ApiKey, key_id)


@pytest.mark.parametrize("prefix", PREFIXES)
async def test_create_live_key_shows_the_secret_once(
    app: FastAPI, client: httpx.AsyncClient, prefix: str
) -> None:
    account = await make_account(app)
    response = await client.post(
        f"{prefix}/api-keys", headers=account.headers, json={"name": "ci", "scopes": ["read"]}
    )
    assert response.status_code == 201, response.text
    body = response.json()
    secret = body["secret"]
    assert secret.startswith("sk_live_")
    assert len(secret) >= 40
    assert body["prefix"] == secret[: len(body["prefix"])]
    assert len(body["prefix"]) < len(secret) - 20
    assert body["livemode"] is True
    assert body["scopes"] == ["read"]
    assert body["name"] == "ci"
    assert body["user_id"] == account.id
    assert body["last_used_at"] is None
    assert body["revoked_at"] is None
    assert response.headers["Location"].endswith(f"/api/v1/api-keys/{body['id']}")

    # Stored only as its SHA-256: no column holds the secret.
    stored = await _stored_key(app, body["id"])
    assert stored is not None
    assert stored.secret_hash == hashlib.sha256(secret.encode()).hexdigest()
    columns = [str(getattr(stored, c.key)) for c in ApiKey.__table__.columns]
    assert not any(secret in value for value in columns)

    # Never shown again: not by GET, not in the list.
    for url in (response.headers["Location"], f"{prefix}/api-keys"):
        shown = await client.get(url, headers=account.headers)
        assert shown.status_code == 200
        assert secret not in shown.text
        assert '"secret"' not in shown.text
        assert body["prefix"] in shown.text

    works = await client.get("/api/v1/user", headers={"Authorization": f"Bearer {secret}"})
    assert works.status_code == 200
    assert works.json()["id"] == account.id


async def test_create_test_key_for_the_sandbox(app: FastAPI, client: httpx.AsyncClient) -> None:
    account = await make_account(app)
    response = await client.post(
        "/api/v1/api-keys", headers=account.headers, json={"name": "sandbox", "mode": "test"}
    )
    assert response.status_code == 201, response.text
    body = response.json()
    assert body["secret"].startswith("test_sk_")
    assert body["prefix"].startswith("test_sk_")
    assert body["livemode"] is False
    stored = await _stored_key(app, body["id"])
    assert stored is not None
    assert stored.livemode is False
    me = await client.get("/api/v1/user", headers={"Authorization": f"Bearer {body['secret']}"})
    assert me.status_code == 200
    assert me.json()["livemode"] is False


async def test_a_test_key_cannot_mint_a_live_key(app: FastAPI, client: httpx.AsyncClient) -> None:
    account = await make_account(app)
    test_key = await make_key(app, account.user, mode="test")
    headers = {"Authorization": f"Bearer {test_key}"}
    refused = await client.post("/api/v1/api-keys", headers=headers, json={"mode": "live"})
    assert refused.status_code == 403
    assert error_fields(refused) == ["mode"]
    allowed = await client.post("/api/v1/api-keys", headers=headers, json={"mode": "test"})
    assert allowed.status_code == 201
    assert len(await stored_keys(app, account.id)) == 3


async def test_default_scopes_are_those_of_the_creating_credential(
    app: FastAPI, client: httpx.AsyncClient
) -> None:
    admin = await make_account(app, role="admin")
    narrow = await make_key(app, admin.user, scopes=["api_keys:write", "users:read"])
    made = await client.post(
        "/api/v1/api-keys", headers={"Authorization": f"Bearer {narrow}"}, json={}
    )
    assert made.status_code == 201, made.text
    assert made.json()["scopes"] == ["api_keys:write", "users:read"]
    assert made.json()["name"]
    by_login = await client.post(
        "/api/v1/api-keys", headers=await login_headers(client, admin.user), json={}
    )
    assert set(by_login.json()["scopes"]) == {"admin", "read", "write"}
    member = await make_account(app)
    by_member = await client.post("/api/v1/api-keys", headers=member.headers, json={})
    assert set(by_member.json()["scopes"]) == {"read", "write"}


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"scopes": ["superuser"]}, "scopes"),
        ({"scopes": ["users:admin"]}, "scopes"),
        ({"scopes": ["nothing:read"]}, "scopes"),
        ({"scopes": []}, "scopes"),
        ({"scopes": "read"}, "scopes"),
        ({"scopes": [1]}, "scopes.0"),
        ({"mode": "prod"}, "mode"),
        ({"name": ""}, "name"),
        ({"name": "x" * 101}, "name"),
        ({"expires_at": "2001-01-01T00:00:00Z"}, "expires_at"),
        ({"expires_at": "next week"}, "expires_at"),
        ({"secret": "sk_live_mine"}, "secret"),
        ({"prefix": "sk_live_"}, "prefix"),
        ({"user_id": 1}, "user_id"),
    ],
)
async def test_bad_key_bodies_are_400_naming_the_field(
    app: FastAPI, client: httpx.AsyncClient, body: dict[str, object], field: str
) -> None:
    account = await make_account(app)
    response = await client.post("/api/v1/api-keys", headers=account.headers, json=body)
    assert response.status_code == 400, response.text
    assert error_of(response)["code"] == "VALIDATION_ERROR"
    assert error_fields(response) == [field]
    assert len(await stored_keys(app, account.id)) == 1


async def test_malformed_and_huge_key_bodies(app: FastAPI, client: httpx.AsyncClient) -> None:
    account = await make_account(app)
    malformed = await client.post(
        "/api/v1/api-keys",
        headers={**account.headers, "Content-Type": "application/json"},
        content=b'{"name": ',
    )
    assert malformed.status_code == 400
    assert error_fields(malformed) == ["body"]
    huge = await client.post(
        "/api/v1/api-keys",
        headers=account.headers,
        json={"name": "x" * (app.state.settings.max_body_bytes + 1)},
    )
    assert huge.status_code == 413
    assert error_of(huge)["code"] == "PAYLOAD_TOO_LARGE"
    assert len(await stored_keys(app, account.id)) == 1


@pytest.mark.parametrize(
    ("role", "held", "requested"),
    [
        ("member", ["read", "write"], ["admin"]),
        ("admin", ["read", "write"], ["admin"]),
        ("admin", ["write"], ["admin", "read"]),
        ("member", ["api_keys:write", "users:read"], ["read"]),
        ("member", ["api_keys:write", "users:read"], ["write"]),
        ("member", ["api_keys:write", "users:read"], ["projects:read"]),
        ("member", ["api_keys:write"], ["users:write"]),
    ],
)
async def test_a_credential_cannot_mint_wider_scopes_than_its_own(
    app: FastAPI, client: httpx.AsyncClient, role: str, held: list[str], requested: list[str]
) -> None:
    user = await make_user(app, role=role)
    secret = await make_key(app, user, scopes=held)
    response = await client.post(
        "/api/v1/api-keys",
        headers={"Authorization": f"Bearer {secret}"},
        json={"scopes": requested},
    )
    assert response.status_code == 403
    assert error_of(response)["code"] == "INSUFFICIENT_PERMISSIONS"
    assert error_fields(response) == ["scopes"]
    assert len(await stored_keys(app, user.id)) == 1


@pytest.mark.parametrize(
    ("held", "requested"),
    [
        (["write"], ["projects:write", "read"]),
        (["api_keys:write", "users:read"], ["users:read"]),
        (["admin"], ["admin"]),
    ],
)
async def test_narrower_or_equal_scopes_may_be_minted(
    app: FastAPI, client: httpx.AsyncClient, held: list[str], requested: list[str]
) -> None:
    admin = await make_user(app, role="admin")
    secret = await make_key(app, admin, scopes=held)
    response = await client.post(
        "/api/v1/api-keys",
        headers={"Authorization": f"Bearer {secret}"},
        json={"scopes": requested},
    )
    assert response.status_code == 201, response.text
    assert response.json()["scopes"] == sorted(requested)


async def test_members_never_hold_the_admin_scope(app: FastAPI, client: httpx.AsyncClient) -> None:
    member = await make_account(app)
    response = await client.post(
        "/api/v1/api-keys",
        headers=await login_headers(client, member.user),
        json={"scopes": ["admin"]},
    )
    assert response.status_code == 403
    assert len(await stored_keys(app, member.id)) == 1


async def test_expired_key_is_401(app: FastAPI, client: httpx.AsyncClient) -> None:
    account = await make_account(app)
    soon = datetime.now(UTC) + timedelta(days=1)
    made = await client.post(
        "/api/v1/api-keys",
        headers=account.headers,
        json={"expires_at": soon.isoformat().replace("+00:00", "Z")},
    )
    assert made.status_code == 201, made.text
    assert made.json()["expires_at"] == soon.strftime("%Y-%m-%dT%H:%M:%SZ")
    secret = made.json()["secret"]
    async with app.state.db.session_scope() as session:
        await session.execute(
            update(ApiKey)
            .where(ApiKey.id == made.json()["id"])
            .values(expires_at=datetime.now(UTC) - timedelta(seconds=1))
        )
    response = await client.get("/api/v1/user", headers={"Authorization": f"Bearer {secret}"})
    assert response.status_code == 401
    assert error_of(response)["code"] == "AUTHENTICATION_REQUIRED"
    assert response.headers["WWW-Authenticate"].startswith("Bearer")


async def test_unexpired_key_with_expiry_works(app: FastAPI, client: httpx.AsyncClient) -> None:
    account = await make_account(app)
    made = await client.post(
        "/api/v1/api-keys", headers=account.headers, json={"expires_at": "2999-01-01T00:00:00"}
    )
    assert made.json()["expires_at"] == "2999-01-01T00:00:00Z"
    response = await client.get(
        "/api/v1/user", headers={"Authorization": f"Bearer {made.json()['secret']}"}
    )
    assert response.status_code == 200


async def test_revoked_key_is_401_at_once(app: FastAPI, client: httpx.AsyncClient) -> None:
    account = await make_account(app)
    doomed = await make_key(app, account.user)
    doomed_headers = {"Authorization": f"Bearer {doomed}"}
    # Used first, so it sits in this process's credential cache.
    assert (await client.get("/api/v1/user", headers=doomed_headers)).status_code == 200
    async with app.state.db.session_scope() as session:
        key_id = await session.scalar(
            select(ApiKey.id).where(
                ApiKey.secret_hash == hashlib.sha256(doomed.encode()).hexdigest()
            )
        )
    response = await client.delete(f"/api/v1/api-keys/{key_id}", headers=account.headers)
    assert response.status_code == 204
    assert response.content == b""
    after = await client.get("/api/v1/user", headers=doomed_headers)
    assert after.status_code == 401
    assert error_of(after)["code"] == "AUTHENTICATION_REQUIRED"
    stored = await _stored_key(app, key_id)
    assert stored is not None
    assert stored.revoked_at is not None
    shown = await client.get(f"/api/v1/api-keys/{key_id}", headers=account.headers)
    assert shown.json()["revoked_at"] is not None
    # Revoking again changes nothing and still answers 204.
    again = await client.delete(f"/api/v1/api-keys/{key_id}", headers=account.headers)
    assert again.status_code == 204
    assert (await client.get("/api/v1/user", headers=account.headers)).status_code == 200


async def test_a_key_may_revoke_itself(app: FastAPI, client: httpx.AsyncClient) -> None:
    account = await make_account(app)
    listed = await client.get("/api/v1/api-keys", headers=account.headers)
    own_id = listed.json()["data"][0]["id"]
    response = await client.delete(f"/api/v1/api-keys/{own_id}", headers=account.headers)
    assert response.status_code == 204
    assert (await client.get("/api/v1/user", headers=account.headers)).status_code == 401


async def test_last_used_at_is_set_on_use(app: FastAPI, client: httpx.AsyncClient) -> None:
    account = await make_account(app)
    (key,) = await stored_keys(app, account.id)
    assert key.last_used_at is None
    before = datetime.now(UTC) - timedelta(seconds=1)
    response = await client.get(f"/api/v1/api-keys/{key.id}", headers=account.headers)
    assert response.status_code == 200
    assert response.json()["last_used_at"] is not None
    (used,) = await stored_keys(app, account.id)
    assert used.last_used_at is not None
    assert used.last_used_at >= before


@pytest.mark.parametrize("method", ["GET", "DELETE"])
async def test_another_users_key_is_404_and_stays_valid(
    app: FastAPI, client: httpx.AsyncClient, method: str
) -> None:
    owner = await make_account(app)
    snoop = await make_account(app)
    (key,) = await stored_keys(app, owner.id)
    response = await client.request(method, f"/api/v1/api-keys/{key.id}", headers=snoop.headers)
    assert response.status_code == 404
    assert error_of(response)["code"] == "RESOURCE_NOT_FOUND"
    assert owner.key not in response.text
    missing = await client.request(method, "/api/v1/api-keys/999999", headers=snoop.headers)
    assert missing.status_code == 404
    assert (await _stored_key(app, key.id)).revoked_at is None  # type: ignore[union-attr]
    assert (await client.get("/api/v1/user", headers=owner.headers)).status_code == 200


async def test_admin_may_see_and_revoke_any_key(app: FastAPI, client: httpx.AsyncClient) -> None:
    admin = await make_account(app, role="admin")
    owner = await make_account(app)
    (key,) = await stored_keys(app, owner.id)
    shown = await client.get(f"/api/v1/api-keys/{key.id}", headers=admin.headers)
    assert shown.status_code == 200
    assert shown.json()["user_id"] == owner.id
    listed = await client.get(f"/api/v1/api-keys?user_id={owner.id}", headers=admin.headers)
    assert [row["id"] for row in listed.json()["data"]] == [key.id]
    assert (
        await client.delete(f"/api/v1/api-keys/{key.id}", headers=admin.headers)
    ).status_code == 204
    assert (await client.get("/api/v1/user", headers=owner.headers)).status_code == 401


async def test_list_shows_only_the_callers_keys(app: FastAPI, client: httpx.AsyncClient) -> None:
    account = await make_account(app)
    other = await make_account(app)
    for name in ("deploy bot", "laptop", "CI runner"):
        await make_key(app, account.user, name=name)
    response = await client.get("/api/v1/api-keys", headers=account.headers)
    assert response.status_code == 200
    rows = response.json()["data"]
    assert len(rows) == 4
    assert {row["user_id"] for row in rows} == {account.id}
    assert response.json()["pagination"]["total"] == 4
    assert "Link" in response.headers
    # Another user's id in the filter shows nothing to a member.
    snooped = await client.get(f"/api/v1/api-keys?user_id={other.id}", headers=account.headers)
    assert snooped.json()["data"] == []

    searched = await client.get("/api/v1/api-keys?search=ci", headers=account.headers)
    assert [row["name"] for row in searched.json()["data"]] == ["CI runner"]
    by_name = await client.get("/api/v1/api-keys?sort=name&limit=2", headers=account.headers)
    assert [row["name"] for row in by_name.json()["data"]] == ["API key", "CI runner"]
    assert by_name.json()["pagination"]["has_more"] is True
    paged = await client.get("/api/v1/api-keys?page=2&per_page=3", headers=account.headers)
    assert len(paged.json()["data"]) == 1
    assert paged.json()["pagination"]["pages"] == 2
    cursor = by_name.json()["pagination"]["next_cursor"]
    rest = await client.get(
        "/api/v1/api-keys", params={"sort": "name", "cursor": cursor}, headers=account.headers
    )
    assert [row["name"] for row in rest.json()["data"]] == ["deploy bot", "laptop"]


@pytest.mark.parametrize(
    ("query", "field"),
    [
        ("secret=x", "secret"),
        ("limit=500", "limit"),
        ("sort=secret_hash", "sort"),
        ("user_id=abc", "user_id"),
        ("user_id=99999999999999999999", "user_id"),
        ("cursor=forged", "cursor"),
    ],
)
async def test_bad_key_list_parameters_are_400(
    app: FastAPI, client: httpx.AsyncClient, query: str, field: str
) -> None:
    account = await make_account(app)
    response = await client.get(f"/api/v1/api-keys?{query}", headers=account.headers)
    assert response.status_code == 400
    assert error_fields(response) == [field]


async def test_key_endpoints_need_a_credential(app: FastAPI, client: httpx.AsyncClient) -> None:
    account = await make_account(app)
    (key,) = await stored_keys(app, account.id)
    for method, url in (
        ("GET", "/api/v1/api-keys"),
        ("POST", "/api/v1/api-keys"),
        ("GET", f"/api/v1/api-keys/{key.id}"),
        ("DELETE", f"/api/v1/api-keys/{key.id}"),
    ):
        response = await client.request(method, url, json={})
        assert response.status_code == 401, url
    assert (await _stored_key(app, key.id)).revoked_at is None  # type: ignore[union-attr]


async def test_key_id_that_no_key_can_have_is_400(app: FastAPI, client: httpx.AsyncClient) -> None:
    account = await make_account(app)
    for key_id in ("abc", "0", "99999999999999999999"):
        response = await client.get(f"/api/v1/api-keys/{key_id}", headers=account.headers)
        assert response.status_code == 400
        assert error_fields(response) == ["key_id"]
