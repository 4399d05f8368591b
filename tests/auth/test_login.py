from __future__ import annotations

from datetime import timedelta

import httpx
import pytest
from fastapi import FastAPI

from rostra.core.config import Settings
from rostra.core.db import utcnow
from rostra.users import service as users
from tests.auth.helpers import (
    LOGIN,
    assert_unauthenticated,
    bearer,
    session_id_of,
    sessions_of,
    whoami,
)
from tests.factories import PASSWORD, make_user


def _assert_token_pair(body: dict[str, object], settings: Settings) -> None:
    assert set(body) == {"access_token", "token_type", "expires_in", "refresh_token"}
    assert body["token_type"] == "bearer"
    assert body["expires_in"] == settings.access_token_ttl_seconds
    assert isinstance(body["access_token"], str)
    assert body["access_token"].count(".") == 2
    assert isinstance(body["refresh_token"], str)
    assert body["refresh_token"].startswith("rt_")


async def test_login_with_json_username_gives_a_working_bearer_token(
    app: FastAPI, client: httpx.AsyncClient, settings: Settings
) -> None:
    user = await make_user(app)
    response = await client.post(LOGIN, json={"username": user.username, "password": PASSWORD})
    assert response.status_code == 200, response.text
    assert response.headers["Cache-Control"] == "no-store"
    body = response.json()
    _assert_token_pair(body, settings)

    for prefix in ("/api/v1", "/v1"):
        me = await client.get(f"{prefix}/user", headers=bearer(body["access_token"]))
        assert me.status_code == 200, me.text
        assert me.json()["id"] == user.id
        assert me.json()["email"] == user.email


async def test_login_with_json_email_in_any_case(
    app: FastAPI, client: httpx.AsyncClient, settings: Settings
) -> None:
    user = await make_user(app, email="Mixed.Case@Example.com")
    response = await client.post(
        LOGIN, json={"email": "MIXED.case@example.COM", "password": PASSWORD}
    )
    assert response.status_code == 200, response.text
    _assert_token_pair(response.json(), settings)
    assert await whoami(client, response.json()["access_token"]) == 200
    assert (await sessions_of(app, user.id))[0].user_id == user.id


@pytest.mark.parametrize("login_field", ["username", "email"])
async def test_login_with_a_form_body(
    app: FastAPI, client: httpx.AsyncClient, settings: Settings, login_field: str
) -> None:
    """Seed 003 posts a dict with requests, which sends application/x-www-form-urlencoded; an
    OAuth-style form carries the email in ``username``."""
    user = await make_user(app)
    for name in (user.username, user.email):
        response = await client.post(LOGIN, data={login_field: name, "password": PASSWORD})
        assert response.status_code == 200, response.text
        _assert_token_pair(response.json(), settings)
        assert await whoami(client, response.json()["access_token"]) == 200
    assert len(await sessions_of(app, user.id)) == 2


async def test_login_username_is_case_insensitive(app: FastAPI, client: httpx.AsyncClient) -> None:
    user = await make_user(app, username="Alice")
    response = await client.post(LOGIN, json={"username": "aLICE", "password": PASSWORD})
    assert response.status_code == 200, response.text
    assert (
        session_id_of(app.state.settings.signing_key(), response.json()["access_token"])
        == (await sessions_of(app, user.id))[0].id
    )


async def test_login_sets_last_login(app: FastAPI, client: httpx.AsyncClient) -> None:
    user = await make_user(app)
    assert user.last_login is None
    before = utcnow() - timedelta(seconds=1)
    response = await client.post(LOGIN, json={"username": user.username, "password": PASSWORD})
    assert response.status_code == 200

    async with app.state.db.session_scope() as session:
        stored = await users.get_user(session, user.id)
        assert stored.last_login is not None
        assert stored.last_login >= before
    me = await client.get("/api/v1/user", headers=bearer(response.json()["access_token"]))
    assert me.json()["last_login"] is not None
    assert me.json()["last_login"].endswith("Z")


async def test_login_records_the_device_and_address(
    app: FastAPI, client: httpx.AsyncClient
) -> None:
    user = await make_user(app)
    response = await client.post(
        LOGIN,
        json={"username": user.username, "password": PASSWORD},
        headers={"User-Agent": "Mozilla/5.0 (X11; Linux x86_64) Firefox/128.0"},
    )
    assert response.status_code == 200
    [stored] = await sessions_of(app, user.id)
    assert stored.device == "Mozilla/5.0 (X11; Linux x86_64) Firefox/128.0"
    assert stored.ip == "127.0.0.1"
    assert stored.revoked_at is None


@pytest.mark.parametrize(
    ("settings_overrides", "recorded"),
    [({}, "127.0.0.1"), ({"trusted_proxies": ["127.0.0.1"]}, "203.0.113.7")],
    ids=["direct", "behind-trusted-proxy"],
)
async def test_session_address_believes_only_trusted_proxies(
    app: FastAPI, client: httpx.AsyncClient, recorded: str
) -> None:
    user = await make_user(app)
    response = await client.post(
        LOGIN,
        json={"username": user.username, "password": PASSWORD},
        headers={"X-Forwarded-For": "198.51.100.1, 203.0.113.7"},
    )
    assert response.status_code == 200
    [stored] = await sessions_of(app, user.id)
    assert stored.ip == recorded


@pytest.mark.parametrize(
    "body",
    [
        {"username": "{username}", "password": "wrong password"},
        {"email": "{email}", "password": "wrong password"},
        {"username": "nobody-here", "password": PASSWORD},
        {"email": "nobody@example.com", "password": PASSWORD},
        # the password is never trimmed: its spaces are part of it
        {"username": "{username}", "password": f" {PASSWORD} "},
    ],
    ids=["wrong-password", "wrong-password-email", "unknown-user", "unknown-email", "padded"],
)
async def test_wrong_credentials_are_401_and_open_no_session(
    app: FastAPI, client: httpx.AsyncClient, body: dict[str, str]
) -> None:
    user = await make_user(app)
    sent = {k: v.format(username=user.username, email=user.email) for k, v in body.items()}
    response = await client.post(LOGIN, json=sent)
    assert_unauthenticated(response)
    assert response.json()["error"]["message"] == "The username, email or password is wrong"
    assert "access_token" not in response.text
    assert await sessions_of(app, user.id) == []
    async with app.state.db.session_scope() as session:
        assert (await users.get_user(session, user.id)).last_login is None


async def test_password_with_surrounding_spaces_is_kept_as_sent(
    app: FastAPI, client: httpx.AsyncClient
) -> None:
    user = await make_user(app, password="  spaced out  ")
    stripped = await client.post(LOGIN, json={"username": user.username, "password": "spaced out"})
    assert_unauthenticated(stripped)
    exact = await client.post(LOGIN, json={"username": user.username, "password": "  spaced out  "})
    assert exact.status_code == 200, exact.text


async def test_user_without_a_password_cannot_sign_in(
    app: FastAPI, client: httpx.AsyncClient
) -> None:
    user = await make_user(app, password=None)
    response = await client.post(LOGIN, json={"username": user.username, "password": "anything"})
    assert_unauthenticated(response)
    assert await sessions_of(app, user.id) == []


async def test_seed_003_signs_in_at_the_root(app: FastAPI, client: httpx.AsyncClient) -> None:
    """``requests.post("https://api.pythonmasteryhub.com/auth/login", {"username": ..., ...})``:
    the API answers at the root too, and requests sends the dict as a form."""
    user = await make_user(app)
    response = await client.post(
        "/auth/login", data={"username": user.username, "password": PASSWORD}
    )
    assert response.status_code == 200, response.text
    token = response.json()["access_token"]
    assert await whoami(client, token) == 200
