from __future__ import annotations

import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy import select

from rostra.events.models import Event
from rostra.users.models import User
from tests.auth.helpers import LOGIN, REGISTER, user_count, whoami
from tests.factories import make_user

NEW = {"email": "Ada.Lovelace@Example.com", "password": "analytical engine", "name": "Ada"}


async def registered_events(app: FastAPI) -> list[Event]:
    async with app.state.db.session_scope() as session:
        rows = await session.scalars(select(Event).where(Event.type == "user.registered"))
        return list(rows.all())


async def test_register_creates_a_member_who_can_sign_in(
    app: FastAPI, client: httpx.AsyncClient
) -> None:
    response = await client.post(REGISTER, json=NEW)
    assert response.status_code == 201, response.text
    body = response.json()
    assert body["email"] == "ada.lovelace@example.com"
    assert body["username"] == "ada.lovelace"
    assert body["name"] == "Ada"
    assert body["role"] == "member"
    assert body["plan"] == "free"
    assert body["last_login"] is None
    assert response.headers["Location"].endswith(f"/api/v1/users/{body['id']}")
    assert "password" not in response.text
    assert "argon2" not in response.text

    async with app.state.db.session_scope() as session:
        stored = await session.get(User, body["id"])
        assert stored is not None
        assert stored.role == "member"
        assert stored.password_hash is not None
        assert stored.password_hash.startswith("$argon2id$")
    [event] = await registered_events(app)
    assert event.data["id"] == body["id"]
    assert event.data["username"] == "ada.lovelace"
    assert "password" not in str(event.data)

    signed_in = await client.post(LOGIN, json={"email": NEW["email"], "password": NEW["password"]})
    assert signed_in.status_code == 200, signed_in.text
    assert await whoami(client, signed_in.json()["access_token"]) == 200


async def test_register_with_a_username_and_profile(
    app: FastAPI, client: httpx.AsyncClient
) -> None:
    response = await client.post(
        REGISTER,
        json={**NEW, "username": "ada", "profile": {"timezone": "Europe/London"}},
    )
    assert response.status_code == 201, response.text
    assert response.json()["username"] == "ada"
    assert response.json()["profile"]["timezone"] == "Europe/London"


@pytest.mark.parametrize("settings_overrides", [{"registration_open": False}])
@pytest.mark.parametrize("body", [NEW, {}], ids=["valid", "invalid"])
async def test_register_closed_is_403_and_creates_nothing(
    app: FastAPI, client: httpx.AsyncClient, body: dict[str, str]
) -> None:
    response = await client.post(REGISTER, json=body)
    assert response.status_code == 403
    assert response.json()["error"]["code"] == "INSUFFICIENT_PERMISSIONS"
    assert await user_count(app) == 0
    assert await registered_events(app) == []


@pytest.mark.parametrize(
    "privileged",
    [{"role": "admin"}, {"plan": "enterprise"}, {"role": "member"}, {"plan": "free"}],
    ids=["role-admin", "plan-enterprise", "role-member", "plan-free"],
)
async def test_register_refuses_role_and_plan(
    app: FastAPI, client: httpx.AsyncClient, privileged: dict[str, str]
) -> None:
    response = await client.post(REGISTER, json={**NEW, **privileged})
    assert response.status_code == 403, response.text
    error = response.json()["error"]
    assert error["code"] == "INSUFFICIENT_PERMISSIONS"
    assert error["details"][0]["field"] == next(iter(privileged))
    assert await user_count(app) == 0
    assert await registered_events(app) == []


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"email": "TAKEN@example.com", "password": "long enough"}, "email"),
        ({"email": "new@example.com", "username": "TAKEN", "password": "long enough"}, "username"),
    ],
    ids=["email", "username"],
)
async def test_register_duplicate_is_409_and_changes_nothing(
    app: FastAPI, client: httpx.AsyncClient, body: dict[str, str], field: str
) -> None:
    existing = await make_user(app, username="taken", email="taken@example.com")
    response = await client.post(REGISTER, json=body)
    assert response.status_code == 409, response.text
    assert response.json()["error"]["code"] == "RESOURCE_CONFLICT"
    assert response.json()["error"]["details"] == [
        {"field": field, "message": f"This {field} is already taken"}
    ]
    assert await user_count(app) == 1
    async with app.state.db.session_scope() as session:
        [only] = (await session.scalars(select(User))).all()
        assert only.id == existing.id
        assert only.email == "taken@example.com"


async def test_register_refuses_a_short_password(app: FastAPI, client: httpx.AsyncClient) -> None:
    response = await client.post(REGISTER, json={**NEW, "password": "short"})
    assert response.status_code == 400
    assert [d["field"] for d in response.json()["error"]["details"]] == ["password"]
    assert await user_count(app) == 0
