"""POST, GET, PUT, PATCH and DELETE on /users: seeds, authorization, privacy, conflicts."""

from __future__ import annotations

import asyncio
from typing import Any

import httpx
import pytest
from fastapi import FastAPI

from tests.factories import make_account, make_key, make_user
from tests.users.helpers import (
    PREFIXES,
    count_users,
    error_fields,
    error_of,
    login_headers,
    stored_keys,
    stored_user,
    stored_user_fields,
)

USER_FIELDS = {
    "id",
    "username",
    "email",
    "name",
    "role",
    "plan",
    "created_at",
    "updated_at",
    "last_login",
    "profile",
    "livemode",
}


@pytest.mark.parametrize("prefix", PREFIXES)
async def test_seed_004_create_with_only_name_and_email(
    app: FastAPI, client: httpx.AsyncClient, prefix: str
) -> None:
    admin = await make_account(app, role="admin")
    response = await client.post(
        f"{prefix}/users",
        headers={**admin.headers, "Content-Type": "application/json"},
        content=b'{"name": "John Doe", "email": "john@example.com"}',
    )
    assert response.status_code == 201, response.text
    body = response.json()
    assert set(body) == USER_FIELDS
    assert body["username"] == "john"
    assert body["name"] == "John Doe"
    assert body["email"] == "john@example.com"
    assert body["role"] == "member"
    assert body["plan"] == "free"
    assert response.headers["Location"].endswith(f"/api/v1/users/{body['id']}")
    assert response.headers["ETag"]
    fetched = await client.get(response.headers["Location"], headers=admin.headers)
    assert fetched.status_code == 200
    assert fetched.json() == body

    second = await client.post(
        f"{prefix}/users",
        headers=admin.headers,
        json={"name": "John Doe", "email": "john@other.com"},
    )
    assert second.status_code == 201, second.text
    assert second.json()["username"] not in ("john", "John")
    assert second.json()["username"].startswith("john")
    stored = await stored_user(app, second.json()["id"])
    assert stored is not None
    assert stored.username == second.json()["username"]
    assert stored.password_hash is None


async def test_username_made_from_an_awkward_email_is_valid(
    app: FastAPI, client: httpx.AsyncClient
) -> None:
    admin = await make_account(app, role="admin")
    await make_user(app, username="jo", email="jo@somewhere.org")
    for email, expected in (("Jo@Example.com", "jo2"), ("o'brien+tag@example.com", "o_brien_tag")):
        response = await client.post("/api/v1/users", headers=admin.headers, json={"email": email})
        assert response.status_code == 201, response.text
        assert response.json()["username"] == expected
        assert response.json()["email"] == email.lower()


async def test_seed_002_create_with_username_email_password(
    app: FastAPI, client: httpx.AsyncClient
) -> None:
    admin = await make_account(app, role="admin")
    response = await client.post(
        "/api/v1/users",
        headers=admin.headers,
        json={"username": "john_doe", "email": "john@example.com", "password": "secure_password"},
    )
    assert response.status_code == 201, response.text
    body = response.json()
    assert body["username"] == "john_doe"
    assert body["email"] == "john@example.com"
    assert body["created_at"].endswith("Z")
    assert "password" not in response.text
    assert "argon2" not in response.text
    stored = await stored_user(app, body["id"])
    assert stored is not None
    assert stored.password_hash is not None
    assert stored.password_hash.startswith("$argon2id$")
    login = await client.post(
        "/api/v1/auth/login", json={"username": "john_doe", "password": "secure_password"}
    )
    assert login.status_code == 200


async def test_admin_creates_user_with_role_plan_and_profile(
    app: FastAPI, client: httpx.AsyncClient
) -> None:
    admin = await make_account(app, role="admin")
    response = await client.post(
        "/api/v1/users",
        headers=admin.headers,
        json={
            "username": "boss",
            "email": "boss@example.com",
            "role": "admin",
            "plan": "enterprise",
            "profile": {"first_name": "Ada", "timezone": "Europe/London", "language": "en-GB"},
        },
    )
    assert response.status_code == 201, response.text
    body = response.json()
    assert (body["role"], body["plan"]) == ("admin", "enterprise")
    assert body["profile"] == {
        "first_name": "Ada",
        "last_name": None,
        "timezone": "Europe/London",
        "language": "en-GB",
    }


async def test_create_is_refused_to_members_and_keys_without_admin_scope(
    app: FastAPI, client: httpx.AsyncClient
) -> None:
    member = await make_account(app)
    admin = await make_account(app, role="admin")
    admin_write_key = await make_key(app, admin.user, scopes=["read", "write"])
    before = await count_users(app)
    body = {"username": "newbie", "email": "newbie@example.com"}
    for headers in (member.headers, {"Authorization": f"Bearer {admin_write_key}"}):
        response = await client.post("/api/v1/users", headers=headers, json=body)
        assert response.status_code == 403
        assert error_of(response)["code"] == "INSUFFICIENT_PERMISSIONS"
    anonymous = await client.post("/api/v1/users", json=body)
    assert anonymous.status_code == 401
    assert await count_users(app) == before


async def test_admin_through_login_token_may_create(
    app: FastAPI, client: httpx.AsyncClient
) -> None:
    admin = await make_account(app, role="admin")
    headers = await login_headers(client, admin.user)
    response = await client.post(
        "/api/v1/users", headers=headers, json={"email": "via-token@example.com"}
    )
    assert response.status_code == 201, response.text


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"username": "TAKEN", "email": "new@example.com"}, "username"),
        ({"username": "fresh", "email": "Taken@Example.COM"}, "email"),
        ({"email": "taken@example.com"}, "email"),
    ],
)
async def test_duplicate_username_or_email_is_409(
    app: FastAPI, client: httpx.AsyncClient, body: dict[str, str], field: str
) -> None:
    admin = await make_account(app, role="admin")
    await make_user(app, username="taken", email="taken@example.com")
    before = await count_users(app)
    response = await client.post("/api/v1/users", headers=admin.headers, json=body)
    assert response.status_code == 409
    assert error_of(response)["code"] == "RESOURCE_CONFLICT"
    assert field in error_fields(response)
    assert await count_users(app) == before


@pytest.mark.parametrize("clash", ["username", "email"])
async def test_concurrent_creates_of_one_name_give_one_201_and_409s(
    app: FastAPI, client: httpx.AsyncClient, clash: str
) -> None:
    admin = await make_account(app, role="admin")
    before = await count_users(app)

    def body(i: int) -> dict[str, str]:
        if clash == "username":
            return {"username": "racer" if i % 2 else "RACER", "email": f"racer{i}@example.com"}
        return {"username": f"racer{i}", "email": "racer@example.com"}

    responses = await asyncio.gather(
        *(client.post("/api/v1/users", headers=admin.headers, json=body(i)) for i in range(8))
    )
    statuses = sorted(r.status_code for r in responses)
    assert statuses == [201] + [409] * 7, [r.text for r in responses]
    for response in responses:
        if response.status_code == 409:
            assert error_of(response)["code"] == "RESOURCE_CONFLICT"
    assert await count_users(app) == before + 1


async def test_concurrent_creates_from_one_email_name_get_distinct_usernames(
    app: FastAPI, client: httpx.AsyncClient
) -> None:
    admin = await make_account(app, role="admin")
    responses = await asyncio.gather(
        *(
            client.post("/api/v1/users", headers=admin.headers, json={"email": f"jo@site{i}.com"})
            for i in range(6)
        )
    )
    assert [r.status_code for r in responses] == [201] * 6, [r.text for r in responses]
    usernames = {r.json()["username"] for r in responses}
    assert len(usernames) == 6
    assert "jo" in usernames


async def test_members_read_others_without_email(app: FastAPI, client: httpx.AsyncClient) -> None:
    member = await make_account(app)
    other = await make_user(app, first_name="Olga")
    response = await client.get(f"/api/v1/users/{other.id}", headers=member.headers)
    assert response.status_code == 200
    body = response.json()
    assert body["username"] == other.username
    assert body["email"] is None
    assert body["profile"]["first_name"] == "Olga"
    assert other.email not in response.text

    own = await client.get(f"/api/v1/users/{member.id}", headers=member.headers)
    assert own.json()["email"] == member.user.email
    admin = await make_account(app, role="admin")
    as_admin = await client.get(f"/api/v1/users/{other.id}", headers=admin.headers)
    assert as_admin.json()["email"] == other.email


@pytest.mark.parametrize("method", ["GET", "PUT", "PATCH", "DELETE"])
async def test_nonexistent_user_is_404(
    app: FastAPI, client: httpx.AsyncClient, method: str
) -> None:
    admin = await make_account(app, role="admin")
    member = await make_account(app)
    body = {"username": "ghost", "email": "ghost@example.com"}
    for account in (admin, member):
        response = await client.request(
            method, "/api/v1/users/999999", headers=account.headers, json=body
        )
        assert response.status_code == 404
        assert error_of(response)["code"] == "RESOURCE_NOT_FOUND"


@pytest.mark.parametrize("method", ["GET", "PUT", "PATCH", "DELETE"])
async def test_anonymous_gets_401_on_users(
    app: FastAPI, client: httpx.AsyncClient, method: str
) -> None:
    user = await make_user(app)
    before = await stored_user_fields(app, user.id)
    response = await client.request(
        method, f"/api/v1/users/{user.id}", json={"username": "x", "email": "x@example.com"}
    )
    assert response.status_code == 401
    assert response.headers["WWW-Authenticate"].startswith("Bearer")
    assert (await client.get("/api/v1/users")).status_code == 401
    assert await stored_user_fields(app, user.id) == before


@pytest.mark.parametrize(
    ("method", "body"),
    [
        ("PATCH", {"name": "Hacked"}),
        ("PUT", {"username": "hacked", "email": "hacked@example.com"}),
        ("DELETE", None),
    ],
)
async def test_member_cannot_change_another_user(
    app: FastAPI, client: httpx.AsyncClient, method: str, body: dict[str, str] | None
) -> None:
    member = await make_account(app)
    victim = await make_user(app, first_name="Vic")
    before = await stored_user_fields(app, victim.id)
    response = await client.request(
        method, f"/api/v1/users/{victim.id}", headers=member.headers, json=body
    )
    assert response.status_code == 403
    assert error_of(response)["code"] == "INSUFFICIENT_PERMISSIONS"
    assert await stored_user_fields(app, victim.id) == before


async def test_put_back_what_was_read_changes_nothing_but_updated_at(
    app: FastAPI, client: httpx.AsyncClient
) -> None:
    member = await make_account(app, first_name="Pat", timezone="UTC", language="en")
    read = await client.get(f"/api/v1/users/{member.id}", headers=member.headers)
    sent = read.json()
    response = await client.put(f"/api/v1/users/{member.id}", headers=member.headers, json=sent)
    assert response.status_code == 200, response.text
    body = response.json()
    assert {k: v for k, v in body.items() if k != "updated_at"} == {
        k: v for k, v in sent.items() if k != "updated_at"
    }


async def test_put_replaces_every_writable_field(app: FastAPI, client: httpx.AsyncClient) -> None:
    member = await make_account(app, name="Old Name", first_name="Old", last_name="Name")
    response = await client.put(
        f"/api/v1/users/{member.id}",
        headers=member.headers,
        json={
            "id": 1234567,
            "created_at": "2001-01-01T00:00:00Z",
            "username": "renamed",
            "email": "renamed@example.com",
            "profile": {"timezone": "Europe/Paris"},
        },
    )
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["id"] == member.id
    assert body["username"] == "renamed"
    assert body["email"] == "renamed@example.com"
    assert body["name"] is None
    assert body["profile"] == {
        "first_name": None,
        "last_name": None,
        "timezone": "Europe/Paris",
        "language": None,
    }
    assert body["role"] == "member"
    assert body["created_at"] != "2001-01-01T00:00:00Z"
    stored = await stored_user(app, member.id)
    assert stored is not None
    assert (stored.username, stored.first_name, stored.name) == ("renamed", None, None)


@pytest.mark.parametrize("missing", ["username", "email"])
async def test_put_needs_the_required_fields(
    app: FastAPI, client: httpx.AsyncClient, missing: str
) -> None:
    member = await make_account(app)
    before = await stored_user_fields(app, member.id)
    body = {"username": "someone", "email": "someone@example.com", "name": "X"}
    del body[missing]
    response = await client.put(f"/api/v1/users/{member.id}", headers=member.headers, json=body)
    assert response.status_code == 400
    assert error_fields(response) == [missing]
    assert await stored_user_fields(app, member.id) == before


@pytest.mark.parametrize(
    ("method", "body"),
    [
        ("PATCH", {"role": "admin"}),
        ("PATCH", {"plan": "professional", "name": "Upgraded"}),
        ("PUT", {"username": "me", "email": "me@example.com", "role": "admin"}),
        ("PUT", {"username": "me", "email": "me@example.com", "plan": "enterprise"}),
    ],
)
async def test_member_privileged_fields_are_403_and_nothing_applied(
    app: FastAPI, client: httpx.AsyncClient, method: str, body: dict[str, str]
) -> None:
    member = await make_account(app)
    before = await stored_user_fields(app, member.id)
    response = await client.request(
        method, f"/api/v1/users/{member.id}", headers=member.headers, json=body
    )
    assert response.status_code == 403
    assert error_of(response)["code"] == "INSUFFICIENT_PERMISSIONS"
    assert await stored_user_fields(app, member.id) == before


async def test_admin_sets_role_and_plan_of_another_user(
    app: FastAPI, client: httpx.AsyncClient
) -> None:
    admin = await make_account(app, role="admin")
    member = await make_account(app)
    response = await client.patch(
        f"/api/v1/users/{member.id}",
        headers=admin.headers,
        json={"role": "admin", "plan": "professional"},
    )
    assert response.status_code == 200, response.text
    assert (response.json()["role"], response.json()["plan"]) == ("admin", "professional")
    stored = await stored_user(app, member.id)
    assert stored is not None
    assert (stored.role, stored.plan) == ("admin", "professional")
    # The promoted user's own login now carries admin rights at once.
    promoted = await login_headers(client, member.user)
    created = await client.post(
        "/api/v1/users", headers=promoted, json={"email": "promoted-made@example.com"}
    )
    assert created.status_code == 201


async def test_admin_replaces_another_user(app: FastAPI, client: httpx.AsyncClient) -> None:
    admin = await make_account(app, role="admin")
    member = await make_user(app, plan="starter")
    response = await client.put(
        f"/api/v1/users/{member.id}",
        headers=admin.headers,
        json={"username": member.username, "email": "moved@example.com", "name": "Moved"},
    )
    assert response.status_code == 200, response.text
    # role and plan left out of a PUT stay as they were
    assert (response.json()["role"], response.json()["plan"]) == ("member", "starter")
    assert response.json()["email"] == "moved@example.com"


async def test_patch_other_user_rename_clash_is_409(
    app: FastAPI, client: httpx.AsyncClient
) -> None:
    admin = await make_account(app, role="admin")
    first = await make_user(app, username="first")
    second = await make_user(app, username="second")
    before = await stored_user_fields(app, second.id)
    response = await client.patch(
        f"/api/v1/users/{second.id}", headers=admin.headers, json={"username": "FIRST"}
    )
    assert response.status_code == 409
    assert await stored_user_fields(app, second.id) == before
    assert (await stored_user(app, first.id)) is not None


async def test_user_deletes_themself_and_their_keys_stop_working(
    app: FastAPI, client: httpx.AsyncClient
) -> None:
    member = await make_account(app)
    assert (await client.get("/api/v1/user", headers=member.headers)).status_code == 200
    response = await client.delete(f"/api/v1/users/{member.id}", headers=member.headers)
    assert response.status_code == 204
    assert response.content == b""
    assert await stored_user(app, member.id) is None
    assert await stored_keys(app, member.id) == []
    after = await client.get("/api/v1/user", headers=member.headers)
    assert after.status_code == 401


@pytest.mark.parametrize("prefix", PREFIXES)
async def test_admin_deletes_another_user(
    app: FastAPI, client: httpx.AsyncClient, prefix: str
) -> None:
    admin = await make_account(app, role="admin")
    member = await make_account(app)
    response = await client.delete(f"{prefix}/users/{member.id}", headers=admin.headers)
    assert response.status_code == 204
    gone = await client.get(f"{prefix}/users/{member.id}", headers=admin.headers)
    assert gone.status_code == 404
    again = await client.delete(f"{prefix}/users/{member.id}", headers=admin.headers)
    assert again.status_code == 404


async def test_admin_key_without_admin_scope_acts_as_member(
    app: FastAPI, client: httpx.AsyncClient
) -> None:
    admin = await make_account(app, role="admin")
    plain = {"Authorization": f"Bearer {await make_key(app, admin.user, scopes=['write'])}"}
    victim = await make_user(app)
    before = await stored_user_fields(app, victim.id)
    for method, body in (("PATCH", {"name": "x"}), ("DELETE", None)):
        response = await client.request(
            method, f"/api/v1/users/{victim.id}", headers=plain, json=body
        )
        assert response.status_code == 403
    seen = await client.get(f"/api/v1/users/{victim.id}", headers=plain)
    assert seen.json()["email"] is None
    assert await stored_user_fields(app, victim.id) == before


async def test_user_answer_never_carries_secrets(app: FastAPI, client: httpx.AsyncClient) -> None:
    admin = await make_account(app, role="admin")
    responses: list[Any] = [
        await client.get("/api/v1/user", headers=admin.headers),
        await client.get(f"/api/v1/users/{admin.id}", headers=admin.headers),
        await client.get("/api/v1/users", headers=admin.headers),
    ]
    for response in responses:
        assert response.status_code == 200
        assert "password" not in response.text
        assert "$argon2" not in response.text
        assert admin.key not in response.text
