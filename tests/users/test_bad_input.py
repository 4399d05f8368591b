"""Bad bodies and ids on every users endpoint: 400 naming the field, 413, and nothing changed."""

from __future__ import annotations

import httpx
import pytest
from fastapi import FastAPI

from tests.factories import Account, make_account
from tests.users.helpers import count_users, error_fields, error_of, stored_user_fields

# (method, path); {id} is the caller's own id, so only the body can be wrong.
WRITES = [
    ("POST", "/api/v1/users"),
    ("PATCH", "/api/v1/user"),
    ("PUT", "/api/v1/users/{id}"),
    ("PATCH", "/api/v1/users/{id}"),
]


async def _admin(app: FastAPI) -> Account:
    return await make_account(app, role="admin", first_name="Ada")


async def _assert_nothing_changed(app: FastAPI, admin: Account, before: dict[str, object]) -> None:
    assert await stored_user_fields(app, admin.id) == before
    assert await count_users(app) == 1


@pytest.mark.parametrize(("method", "path"), WRITES)
@pytest.mark.parametrize("raw", [b"{'name': 'x'}", b'{"name": "x"} trailing'])
async def test_malformed_json_is_400(
    app: FastAPI, client: httpx.AsyncClient, method: str, path: str, raw: bytes
) -> None:
    admin = await _admin(app)
    before = await stored_user_fields(app, admin.id)
    response = await client.request(
        method,
        path.format(id=admin.id),
        headers={**admin.headers, "Content-Type": "application/json"},
        content=raw,
    )
    assert response.status_code == 400
    error = error_of(response)
    assert error["code"] == "VALIDATION_ERROR"
    assert error_fields(response) == ["body"]
    await _assert_nothing_changed(app, admin, before)


@pytest.mark.parametrize(("method", "path"), WRITES[:3])  # the three body schemas
@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"username": "ok_name", "email": 123}, "email"),
        ({"username": "ok_name", "email": "not-an-email"}, "email"),
        ({"username": ["list"], "email": "a@example.com"}, "username"),
        ({"username": "has space", "email": "a@example.com"}, "username"),
        ({"username": "-leading", "email": "a@example.com"}, "username"),
        ({"username": "x" * 65, "email": "a@example.com"}, "username"),
        ({"username": "ok_name", "email": "a@example.com", "name": 5}, "name"),
        ({"username": "ok_name", "email": "a@example.com", "profile": "x"}, "profile"),
        ({"username": "ok_name", "email": "a@example.com", "password": "short"}, "password"),
        ({"username": "ok_name", "email": "a@example.com", "role": "root"}, "role"),
        ({"username": "ok_name", "email": "a@example.com", "plan": "gold"}, "plan"),
        ({"username": "ok_name", "email": "a@example.com", "nickname": "x"}, "nickname"),
        ({"username": "ok_name", "email": "a@example.com", "password_hash": "x"}, "password_hash"),
        (
            {"username": "ok_name", "email": "a@example.com", "profile": {"shoe": 42}},
            "profile.shoe",
        ),
    ],
)
async def test_wrong_types_and_unknown_fields_are_400_naming_the_field(
    app: FastAPI,
    client: httpx.AsyncClient,
    method: str,
    path: str,
    body: dict[str, object],
    field: str,
) -> None:
    admin = await _admin(app)
    before = await stored_user_fields(app, admin.id)
    response = await client.request(
        method, path.format(id=admin.id), headers=admin.headers, json=body
    )
    assert response.status_code == 400, response.text
    assert error_of(response)["code"] == "VALIDATION_ERROR"
    assert error_fields(response) == [field]
    await _assert_nothing_changed(app, admin, before)


@pytest.mark.parametrize(("method", "path"), WRITES)
@pytest.mark.parametrize("body", [[], "text", 42, None])
async def test_a_body_that_is_not_an_object_is_400(
    app: FastAPI, client: httpx.AsyncClient, method: str, path: str, body: object
) -> None:
    admin = await _admin(app)
    response = await client.request(
        method, path.format(id=admin.id), headers=admin.headers, json=body
    )
    assert response.status_code == 400
    assert error_of(response)["code"] == "VALIDATION_ERROR"


@pytest.mark.parametrize(("method", "path"), WRITES)
async def test_huge_body_is_413(
    app: FastAPI, client: httpx.AsyncClient, method: str, path: str
) -> None:
    admin = await _admin(app)
    before = await stored_user_fields(app, admin.id)
    filler = "x" * (app.state.settings.max_body_bytes + 1)
    response = await client.request(
        method,
        path.format(id=admin.id),
        headers=admin.headers,
        json={"username": "big", "email": "big@example.com", "name": filler},
    )
    assert response.status_code == 413
    assert error_of(response)["code"] == "PAYLOAD_TOO_LARGE"
    await _assert_nothing_changed(app, admin, before)


@pytest.mark.parametrize("method", ["GET", "PUT", "PATCH", "DELETE"])
async def test_an_id_no_user_can_have_is_400_naming_it(
    app: FastAPI, client: httpx.AsyncClient, method: str
) -> None:
    admin = await _admin(app)
    before = await stored_user_fields(app, admin.id)
    for user_id in ("abc", "1.5", "0", "-3", "2147483648", "9" * 23):
        response = await client.request(
            method,
            f"/api/v1/users/{user_id}",
            headers=admin.headers,
            json={"username": "x", "email": "x@example.com"},
        )
        assert response.status_code == 400, user_id
        assert error_of(response)["code"] == "VALIDATION_ERROR"
        assert error_fields(response) == ["user_id"]
    await _assert_nothing_changed(app, admin, before)


async def test_the_largest_id_is_a_plain_404(app: FastAPI, client: httpx.AsyncClient) -> None:
    admin = await _admin(app)
    response = await client.get("/api/v1/users/2147483647", headers=admin.headers)
    assert response.status_code == 404


async def test_a_transfer_to_no_user_can_have_is_400(
    app: FastAPI, client: httpx.AsyncClient
) -> None:
    admin = await _admin(app)
    before = await stored_user_fields(app, admin.id)
    for heir in ("abc", "0", "9" * 23):
        response = await client.delete(
            f"/api/v1/users/{admin.id}?transfer_to={heir}", headers=admin.headers
        )
        assert response.status_code == 400, heir
        assert error_fields(response) == ["transfer_to"]
    await _assert_nothing_changed(app, admin, before)
