"""Bad input on every auth endpoint: each is refused with the contract's code, and nothing
changes (no session opened, no user created)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
from fastapi import FastAPI

from rostra.core.config import Settings
from tests.auth.helpers import (
    LOGIN,
    LOGOUT,
    REFRESH,
    REGISTER,
    SESSIONS,
    bearer,
    login,
    session_count,
    sessions_of,
    user_count,
)
from tests.factories import PASSWORD, make_user

BODY_ENDPOINTS = [LOGIN, REFRESH, LOGOUT, REGISTER]


async def _nothing_changed(app: FastAPI, users_before: int) -> None:
    assert await user_count(app) == users_before
    assert await session_count(app) == 0


def _error(response: httpx.Response, status: int, code: str) -> dict[str, Any]:
    assert response.status_code == status, response.text
    error: dict[str, Any] = response.json()["error"]
    assert error["code"] == code
    assert error["request_id"] == response.headers["X-Request-ID"]
    return error


@pytest.mark.parametrize("path", BODY_ENDPOINTS)
async def test_malformed_json_is_400(app: FastAPI, client: httpx.AsyncClient, path: str) -> None:
    await make_user(app)
    response = await client.post(
        path,
        content=b'{"username": "a", "password": ',
        headers={"Content-Type": "application/json"},
    )
    error = _error(response, 400, "VALIDATION_ERROR")
    assert error["details"] == [{"field": "body", "message": "Malformed JSON"}]
    await _nothing_changed(app, 1)


@pytest.mark.parametrize(
    ("path", "body", "fields"),
    [
        (LOGIN, {"username": 5, "password": ["secret"]}, ["username", "password"]),
        (LOGIN, {"email": True, "password": None}, ["email", "password"]),
        (REFRESH, {"refresh_token": 12345}, ["refresh_token"]),
        (REFRESH, {"refresh_token": "x" * 201}, ["refresh_token"]),
        (LOGOUT, {"refresh_token": {"nested": 1}}, ["refresh_token"]),
        (REGISTER, {"email": "not an email", "password": 12345678}, ["email", "password"]),
        (
            REGISTER,
            {"email": "a@example.com", "password": "long enough", "username": "a b"},
            ["username"],
        ),
        (LOGIN, [{"username": "a", "password": "b"}], ["body"]),
        (REGISTER, "just a string", ["body"]),
    ],
    ids=[
        "login-types",
        "login-bool-null",
        "refresh-int",
        "refresh-too-long",
        "logout-object",
        "register-types",
        "register-bad-username",
        "login-array",
        "register-string",
    ],
)
async def test_wrong_types_are_400_with_one_detail_per_field(
    app: FastAPI, client: httpx.AsyncClient, path: str, body: object, fields: list[str]
) -> None:
    await make_user(app)
    response = await client.post(path, json=body)
    error = _error(response, 400, "VALIDATION_ERROR")
    assert [detail["field"] for detail in error["details"]] == fields
    assert all(detail["message"] for detail in error["details"])
    await _nothing_changed(app, 1)


@pytest.mark.parametrize(
    ("path", "body"),
    [
        (LOGIN, {"username": "{username}", "password": "{password}", "remember_me": True}),
        (REFRESH, {"refresh_token": "rt_x", "grant_type": "refresh_token"}),
        (LOGOUT, {"refresh_token": "rt_x", "everywhere": True}),
        (REGISTER, {"email": "new@example.com", "password": "long enough", "is_admin": True}),
    ],
    ids=["login", "refresh", "logout", "register"],
)
async def test_unknown_fields_are_400(
    app: FastAPI, client: httpx.AsyncClient, path: str, body: dict[str, Any]
) -> None:
    user = await make_user(app)
    sent = {
        k: v.format(username=user.username, password=PASSWORD) if isinstance(v, str) else v
        for k, v in body.items()
    }
    response = await client.post(path, json=sent)
    error = _error(response, 400, "VALIDATION_ERROR")
    unknown = next(k for k in body if k not in ("username", "password", "refresh_token", "email"))
    assert error["details"] == [{"field": unknown, "message": "Unknown field"}]
    await _nothing_changed(app, 1)


async def test_unknown_form_fields_are_400(app: FastAPI, client: httpx.AsyncClient) -> None:
    user = await make_user(app)
    response = await client.post(
        LOGIN, data={"username": user.username, "password": PASSWORD, "grant_type": "password"}
    )
    error = _error(response, 400, "VALIDATION_ERROR")
    assert error["details"] == [{"field": "grant_type", "message": "Unknown field"}]
    await _nothing_changed(app, 1)


@pytest.mark.parametrize(
    ("path", "body", "expected"),
    [
        (
            LOGIN,
            {},
            [
                {"field": "username", "message": "Send a username or an email"},
                {"field": "password", "message": "This field is required"},
            ],
        ),
        (
            LOGIN,
            {"password": "secret"},
            [{"field": "username", "message": "Send a username or an email"}],
        ),
        (
            LOGIN,
            {"username": "someone"},
            [{"field": "password", "message": "This field is required"}],
        ),
        (REFRESH, {}, [{"field": "refresh_token", "message": "This field is required"}]),
        (
            REGISTER,
            {},
            [
                {"field": "email", "message": "This field is required"},
                {"field": "password", "message": "This field is required"},
            ],
        ),
        (
            REGISTER,
            {"email": "new@example.com"},
            [{"field": "password", "message": "This field is required"}],
        ),
    ],
    ids=[
        "login-empty",
        "login-no-name",
        "login-no-password",
        "refresh-empty",
        "register-empty",
        "register-no-password",
    ],
)
async def test_missing_fields_are_400_one_detail_each(
    app: FastAPI,
    client: httpx.AsyncClient,
    path: str,
    body: dict[str, Any],
    expected: list[dict[str, str]],
) -> None:
    await make_user(app)
    response = await client.post(path, json=body)
    error = _error(response, 400, "VALIDATION_ERROR")
    assert error["details"] == expected
    await _nothing_changed(app, 1)


async def test_login_with_empty_form_fields_is_400(app: FastAPI, client: httpx.AsyncClient) -> None:
    response = await client.post(LOGIN, data={"username": "", "password": ""})
    error = _error(response, 400, "VALIDATION_ERROR")
    assert [d["field"] for d in error["details"]] == ["username", "password"]


@pytest.mark.parametrize("path", BODY_ENDPOINTS)
async def test_huge_body_is_413(
    app: FastAPI, client: httpx.AsyncClient, settings: Settings, path: str
) -> None:
    await make_user(app)
    padding = b"a" * settings.max_body_bytes
    response = await client.post(
        path,
        content=b'{"username": "' + padding + b'", "password": "x"}',
        headers={"Content-Type": "application/json"},
    )
    _error(response, 413, "PAYLOAD_TOO_LARGE")
    await _nothing_changed(app, 1)


@pytest.mark.parametrize("path", BODY_ENDPOINTS)
async def test_huge_chunked_body_is_413(
    app: FastAPI, client: httpx.AsyncClient, settings: Settings, path: str
) -> None:
    """Without a Content-Length the limit is enforced while the body streams in."""
    chunk = b"a" * 65536

    async def stream() -> AsyncIterator[bytes]:
        yield b'{"refresh_token": "'
        for _ in range(settings.max_body_bytes // len(chunk) + 2):
            yield chunk
        yield b'"}'

    response = await client.post(
        path, content=stream(), headers={"Content-Type": "application/json"}
    )
    assert "content-length" not in response.request.headers
    _error(response, 413, "PAYLOAD_TOO_LARGE")
    await _nothing_changed(app, 0)


@pytest.mark.parametrize("path", BODY_ENDPOINTS)
@pytest.mark.parametrize(
    "content_type", ["text/plain", "application/xml", "application/octet-stream"]
)
async def test_wrong_content_type_is_415(
    app: FastAPI, client: httpx.AsyncClient, path: str, content_type: str
) -> None:
    user = await make_user(app)
    body = f'{{"username": "{user.username}", "password": "{PASSWORD}"}}'
    response = await client.post(path, content=body, headers={"Content-Type": content_type})
    _error(response, 415, "UNSUPPORTED_MEDIA_TYPE")
    await _nothing_changed(app, 1)


async def test_register_takes_json_only(app: FastAPI, client: httpx.AsyncClient) -> None:
    response = await client.post(
        REGISTER, data={"email": "form@example.com", "password": "long enough"}
    )
    _error(response, 415, "UNSUPPORTED_MEDIA_TYPE")
    assert await user_count(app) == 0


async def test_bad_session_id_and_list_parameters_are_400(
    app: FastAPI, client: httpx.AsyncClient
) -> None:
    user = await make_user(app)
    pair = await login(client, user)
    headers = bearer(pair["access_token"])
    not_a_number = await client.delete(f"{SESSIONS}/abc", headers=headers)
    assert _error(not_a_number, 400, "VALIDATION_ERROR")["details"][0]["field"] == "session_id"
    for params in ({"limit": "1000"}, {"sort": "ip"}, {"device": "x"}):
        response = await client.get(SESSIONS, params=params, headers=headers)
        error = _error(response, 400, "VALIDATION_ERROR")
        assert error["details"][0]["field"] == next(iter(params))
    [row] = await sessions_of(app, user.id)
    assert row.revoked_at is None
