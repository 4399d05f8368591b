from __future__ import annotations

import httpx
import pytest
from fastapi import FastAPI

from tests.factories import PASSWORD, make_account, make_user
from tests.users.helpers import (
    PREFIXES,
    error_fields,
    error_of,
    stored_user,
    stored_user_fields,
)


async def test_get_current_user_with_api_key(app: FastAPI, client: httpx.AsyncClient) -> None:
    account = await make_account(app, first_name="John", timezone="UTC", language="en")
    response = await client.get("/api/v1/user", headers=account.headers)
    assert response.status_code == 200
    body = response.json()
    assert body["id"] == account.id
    assert body["email"] == account.user.email
    assert body["profile"] == {
        "first_name": "John",
        "last_name": None,
        "timezone": "UTC",
        "language": "en",
    }
    assert body["created_at"].endswith("Z")
    assert body["livemode"] is True
    assert "password" not in response.text
    assert "argon2" not in response.text
    assert response.headers["API-Version"] == "v1"
    assert response.headers["X-Request-ID"].startswith("req_")
    assert response.headers["ETag"]


async def test_patch_current_user_merges_profile(app: FastAPI, client: httpx.AsyncClient) -> None:
    account = await make_account(app, first_name="John", last_name="Doe")
    response = await client.patch(
        "/api/v1/user",
        headers=account.headers,
        json={"profile": {"first_name": "Jane", "timezone": "America/New_York", "language": "es"}},
    )
    assert response.status_code == 200, response.text
    assert response.json()["profile"] == {
        "first_name": "Jane",
        "last_name": "Doe",
        "timezone": "America/New_York",
        "language": "es",
    }
    again = await client.get("/api/v1/user", headers=account.headers)
    assert again.json()["profile"]["first_name"] == "Jane"


@pytest.mark.parametrize("prefix", PREFIXES)
async def test_current_user_answers_under_both_prefixes(
    app: FastAPI, client: httpx.AsyncClient, prefix: str
) -> None:
    account = await make_account(app)
    response = await client.get(f"{prefix}/user", headers=account.headers)
    assert response.status_code == 200
    assert response.json()["username"] == account.user.username
    patched = await client.patch(f"{prefix}/user", headers=account.headers, json={"name": "N"})
    assert patched.status_code == 200
    assert patched.json()["name"] == "N"


@pytest.mark.parametrize(
    "headers",
    [
        {},
        {"Authorization": "Bearer sk_live_doesnotexist"},
        {"Authorization": "Bearer test_sk_doesnotexist"},
        {"Authorization": "Bearer not.a.jwt"},
        {"Authorization": "Basic dXNlcjpwYXNz"},
    ],
)
async def test_current_user_needs_a_valid_credential(
    client: httpx.AsyncClient, headers: dict[str, str]
) -> None:
    for method in ("GET", "PATCH"):
        response = await client.request(method, "/api/v1/user", headers=headers, json={})
        assert response.status_code == 401
        assert error_of(response)["code"] == "AUTHENTICATION_REQUIRED"
        assert response.headers["WWW-Authenticate"].startswith("Bearer")


@pytest.mark.parametrize(
    ("profile", "field"),
    [
        ({"timezone": "Mars/Olympus_Mons"}, "profile.timezone"),
        ({"timezone": "EST5EDT "}, None),  # stripped, then valid: no error expected
        ({"timezone": "america/new_york"}, "profile.timezone"),
        ({"timezone": 5}, "profile.timezone"),
        ({"language": "klingon"}, "profile.language"),
        ({"language": "xx"}, "profile.language"),
        ({"language": "e"}, "profile.language"),
        ({"language": ""}, "profile.language"),
        ({"first_name": "x" * 101}, "profile.first_name"),
        ({"nickname": "Jo"}, "profile.nickname"),
    ],
)
async def test_profile_validation_names_the_field_and_changes_nothing(
    app: FastAPI, client: httpx.AsyncClient, profile: dict[str, object], field: str | None
) -> None:
    account = await make_account(app, first_name="John", timezone="UTC", language="en")
    before = await stored_user_fields(app, account.id)
    response = await client.patch(
        "/api/v1/user", headers=account.headers, json={"name": "Changed", "profile": profile}
    )
    if field is None:
        assert response.status_code == 200, response.text
        return
    assert response.status_code == 400
    assert error_of(response)["code"] == "VALIDATION_ERROR"
    assert error_fields(response) == [field]
    assert await stored_user_fields(app, account.id) == before


async def test_language_codes_are_standardised(app: FastAPI, client: httpx.AsyncClient) -> None:
    account = await make_account(app)
    response = await client.patch(
        "/api/v1/user",
        headers=account.headers,
        json={"profile": {"language": "pt_BR", "timezone": "Asia/Kolkata"}},
    )
    assert response.status_code == 200, response.text
    assert response.json()["profile"]["language"] == "pt-BR"
    assert response.json()["profile"]["timezone"] == "Asia/Kolkata"
    stored = await stored_user(app, account.id)
    assert stored is not None
    assert stored.language == "pt-BR"


async def test_profile_fields_can_be_cleared_with_null(
    app: FastAPI, client: httpx.AsyncClient
) -> None:
    account = await make_account(app, first_name="John", timezone="UTC")
    response = await client.patch(
        "/api/v1/user", headers=account.headers, json={"profile": {"timezone": None}}
    )
    assert response.status_code == 200
    assert response.json()["profile"]["timezone"] is None
    assert response.json()["profile"]["first_name"] == "John"


@pytest.mark.parametrize("body", [{"role": "admin"}, {"plan": "enterprise"}])
async def test_member_cannot_raise_own_role_or_plan(
    app: FastAPI, client: httpx.AsyncClient, body: dict[str, str]
) -> None:
    account = await make_account(app)
    before = await stored_user_fields(app, account.id)
    response = await client.patch(
        "/api/v1/user", headers=account.headers, json={"name": "Sneaky", **body}
    )
    assert response.status_code == 403
    assert error_of(response)["code"] == "INSUFFICIENT_PERMISSIONS"
    assert error_fields(response) == list(body)
    assert await stored_user_fields(app, account.id) == before


async def test_member_may_send_back_the_role_and_plan_they_have(
    app: FastAPI, client: httpx.AsyncClient
) -> None:
    account = await make_account(app)
    response = await client.patch(
        "/api/v1/user",
        headers=account.headers,
        json={"role": "member", "plan": "free", "name": "Same Rights"},
    )
    assert response.status_code == 200, response.text
    assert response.json()["name"] == "Same Rights"


async def test_read_only_fields_sent_to_patch_are_ignored(
    app: FastAPI, client: httpx.AsyncClient
) -> None:
    account = await make_account(app)
    before = await stored_user(app, account.id)
    assert before is not None
    response = await client.patch(
        "/api/v1/user",
        headers=account.headers,
        json={
            "id": 424242,
            "created_at": "2000-01-01T00:00:00Z",
            "updated_at": "2000-01-01T00:00:00Z",
            "last_login": "2000-01-01T00:00:00Z",
            "livemode": False,
            "name": "Jane",
        },
    )
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["id"] == account.id
    assert body["livemode"] is True
    assert body["last_login"] is None
    assert body["created_at"] != "2000-01-01T00:00:00Z"
    after = await stored_user(app, account.id)
    assert after is not None
    assert after.created_at == before.created_at
    assert after.last_login is None
    assert after.name == "Jane"


@pytest.mark.parametrize("field", ["username", "email", "role", "plan", "password"])
async def test_patch_refuses_null_for_fields_a_user_must_have(
    app: FastAPI, client: httpx.AsyncClient, field: str
) -> None:
    account = await make_account(app)
    before = await stored_user_fields(app, account.id)
    response = await client.patch("/api/v1/user", headers=account.headers, json={field: None})
    assert response.status_code == 400
    assert error_fields(response) == [field]
    assert await stored_user_fields(app, account.id) == before


async def test_patch_password_changes_the_sign_in_password(
    app: FastAPI, client: httpx.AsyncClient
) -> None:
    account = await make_account(app)
    response = await client.patch(
        "/api/v1/user", headers=account.headers, json={"password": "a new long password"}
    )
    assert response.status_code == 200
    assert "password" not in response.text
    old = await client.post(
        "/api/v1/auth/login", json={"username": account.user.username, "password": PASSWORD}
    )
    assert old.status_code == 401
    new = await client.post(
        "/api/v1/auth/login",
        json={"username": account.user.username, "password": "a new long password"},
    )
    assert new.status_code == 200


async def test_patch_current_user_username_clash_is_409_any_case(
    app: FastAPI, client: httpx.AsyncClient
) -> None:
    await make_user(app, username="taken_name", email="taken@example.com")
    account = await make_account(app)
    before = await stored_user_fields(app, account.id)
    for body, field in (
        ({"username": "TAKEN_name"}, "username"),
        ({"email": "Taken@Example.com"}, "email"),
    ):
        response = await client.patch("/api/v1/user", headers=account.headers, json=body)
        assert response.status_code == 409
        assert error_of(response)["code"] == "RESOURCE_CONFLICT"
        assert error_fields(response) == [field]
    assert await stored_user_fields(app, account.id) == before


async def test_user_may_change_the_case_of_their_own_username(
    app: FastAPI, client: httpx.AsyncClient
) -> None:
    account = await make_account(app, username="casey")
    response = await client.patch(
        "/api/v1/user", headers=account.headers, json={"username": "Casey"}
    )
    assert response.status_code == 200, response.text
    assert response.json()["username"] == "Casey"


async def test_admin_may_change_own_plan(app: FastAPI, client: httpx.AsyncClient) -> None:
    admin = await make_account(app, role="admin")
    response = await client.patch(
        "/api/v1/user", headers=admin.headers, json={"plan": "enterprise"}
    )
    assert response.status_code == 200
    assert response.json()["plan"] == "enterprise"
    stored = await stored_user(app, admin.id)
    assert stored is not None
    assert stored.plan == "enterprise"
