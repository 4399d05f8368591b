"""Reading rows back after a request, and signing in, for the users and API key tests."""

from __future__ import annotations

from typing import Any

import httpx
from fastapi import FastAPI
from sqlalchemy import func, select

from rostra.api_keys.models import ApiKey
from rostra.users.models import User
from tests.factories import PASSWORD

PREFIXES = ["/api/v1", "/v1"]


async def stored_user(app: FastAPI, user_id: int) -> User | None:
    async with app.state.db.session_scope() as session:
        return await session.get(User, user_id)


async def stored_user_fields(app: FastAPI, user_id: int) -> dict[str, Any]:
    """Every column of the row, to compare before and after a refused write."""
    user = await stored_user(app, user_id)
    assert user is not None
    return {column.key: getattr(user, column.key) for column in User.__table__.columns}


async def count_users(app: FastAPI) -> int:
    async with app.state.db.session_scope() as session:
        return int(await session.scalar(select(func.count()).select_from(User)) or 0)


async def stored_keys(app: FastAPI, user_id: int) -> list[ApiKey]:
    async with app.state.db.session_scope() as session:
        rows = await session.scalars(select(ApiKey).where(ApiKey.user_id == user_id))
        return list(rows.all())


async def login_headers(client: httpx.AsyncClient, user: User) -> dict[str, str]:
    """A login access token (no key scopes: all of the user's rights)."""
    response = await client.post(
        "/api/v1/auth/login", json={"username": user.username, "password": PASSWORD}
    )
    assert response.status_code == 200, response.text
    return {"Authorization": f"Bearer {response.json()['access_token']}"}


def error_of(response: httpx.Response) -> dict[str, Any]:
    body = response.json()
    assert set(body) == {"error"}, body
    error: dict[str, Any] = body["error"]
    assert error["request_id"] == response.headers["X-Request-ID"]
    return error


def error_fields(response: httpx.Response) -> list[str]:
    return [detail["field"] for detail in error_of(response).get("details", [])]
