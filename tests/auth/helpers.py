"""Shared steps of the auth tests: signing in, presenting tokens, reading sessions back."""

from __future__ import annotations

from typing import Any

import httpx
from fastapi import FastAPI
from sqlalchemy import func, select

from rostra.auth.models import AuthSession, RefreshToken
from rostra.auth.tokens import decode_access_token
from rostra.users.models import User
from tests.factories import PASSWORD

LOGIN = "/api/v1/auth/login"
REFRESH = "/api/v1/auth/refresh"
LOGOUT = "/api/v1/auth/logout"
SESSIONS = "/api/v1/auth/sessions"
REGISTER = "/api/v1/auth/register"


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


async def login(
    client: httpx.AsyncClient, user: User, *, user_agent: str | None = None
) -> dict[str, Any]:
    headers = {"User-Agent": user_agent} if user_agent else {}
    response = await client.post(
        LOGIN, json={"username": user.username, "password": PASSWORD}, headers=headers
    )
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


async def refresh(client: httpx.AsyncClient, refresh_token: str) -> httpx.Response:
    return await client.post(REFRESH, json={"refresh_token": refresh_token})


async def whoami(client: httpx.AsyncClient, access_token: str) -> int:
    """The status of GET /user with this access token."""
    return (await client.get("/api/v1/user", headers=bearer(access_token))).status_code


def assert_unauthenticated(response: httpx.Response) -> None:
    assert response.status_code == 401, response.text
    assert response.json()["error"]["code"] == "AUTHENTICATION_REQUIRED"
    assert response.headers["WWW-Authenticate"].startswith("Bearer")


async def sessions_of(app: FastAPI, user_id: int) -> list[AuthSession]:
    async with app.state.db.session_scope() as session:
        rows = await session.scalars(
            select(AuthSession).where(AuthSession.user_id == user_id).order_by(AuthSession.id)
        )
        return list(rows.all())


async def refresh_token_count(app: FastAPI, session_id: int) -> int:
    async with app.state.db.session_scope() as session:
        count = await session.scalar(
            select(func.count()).where(RefreshToken.session_id == session_id)
        )
        return int(count or 0)


async def user_count(app: FastAPI) -> int:
    async with app.state.db.session_scope() as session:
        return int(await session.scalar(select(func.count()).select_from(User)) or 0)


def session_id_of(key: str, access_token: str) -> int:
    return decode_access_token(key, access_token).session_id


async def session_count(app: FastAPI) -> int:
    """Every sign-in session in the database, of any user."""
    async with app.state.db.session_scope() as session:
        return int(await session.scalar(select(func.count()).select_from(AuthSession)) or 0)
