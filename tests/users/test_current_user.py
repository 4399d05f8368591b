from __future__ import annotations

import httpx
from fastapi import FastAPI

from tests.factories import make_account


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
