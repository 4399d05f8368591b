"""The deprecated /api/v1/legacy mirror: the same routes in seed 004's envelope (contract 1)."""

from __future__ import annotations

import re
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime

import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy import func, select

from rostra.users.models import User
from tests.factories import make_account, make_user

LEGACY = "/api/v1/legacy"


async def find_user(app: FastAPI, email: str) -> User | None:
    async with app.state.db.session_scope() as session:
        user: User | None = await session.scalar(select(User).where(User.email == email))
        return user


async def count_users(app: FastAPI) -> int:
    async with app.state.db.session_scope() as session:
        return int(await session.scalar(select(func.count()).select_from(User)) or 0)


def assert_deprecated(answer: httpx.Response, successor: str) -> None:
    deprecation = answer.headers["Deprecation"]
    assert re.fullmatch(r"@\d+", deprecation)
    deprecated_at = datetime.fromtimestamp(int(deprecation[1:]), UTC)
    sunset = parsedate_to_datetime(answer.headers["Sunset"])
    assert answer.headers["Sunset"].endswith(" GMT")
    assert sunset > deprecated_at
    assert f'<http://testserver{successor}>; rel="successor-version"' in answer.headers["Link"]


async def test_seed_004_creates_a_user_in_its_envelope(
    app: FastAPI, client: httpx.AsyncClient
) -> None:
    admin = await make_account(app, role="admin")
    # Seed 004's cURL example, as written.
    answer = await client.post(
        f"{LEGACY}/users",
        json={"name": "John Doe", "email": "john@example.com"},
        headers={**admin.headers, "Content-Type": "application/json"},
    )
    assert answer.status_code == 201
    document = answer.json()
    assert document["status"] == "success"
    assert document["message"] == "Resource created successfully"
    assert document["data"]["name"] == "John Doe"
    assert document["data"]["username"] == "john"
    assert_deprecated(answer, "/api/v1/users")
    created = await find_user(app, "john@example.com")
    assert created is not None
    assert document["data"]["id"] == created.id
    assert answer.headers["Location"] == f"http://testserver/api/v1/users/{created.id}"


async def test_a_resource_is_the_canonical_one_wrapped(
    app: FastAPI, client: httpx.AsyncClient
) -> None:
    member = await make_account(app, name="Grace")
    canonical = await client.get(f"/api/v1/users/{member.id}", headers=member.headers)
    legacy = await client.get(f"{LEGACY}/users/{member.id}", headers=member.headers)
    assert legacy.status_code == 200
    assert legacy.json() == {
        "status": "success",
        "data": canonical.json(),
        "message": "Resource retrieved successfully",
    }
    assert legacy.headers["Content-Type"] == "application/json"
    assert_deprecated(legacy, f"/api/v1/users/{member.id}")
    # The canonical address carries none of it.
    assert "Deprecation" not in canonical.headers
    assert "Sunset" not in canonical.headers

    # The ETag is the canonical representation's: conditional requests work the same.
    assert legacy.headers["ETag"] == canonical.headers["ETag"]
    not_modified = await client.get(
        f"{LEGACY}/users/{member.id}",
        headers={**member.headers, "If-None-Match": legacy.headers["ETag"]},
    )
    assert not_modified.status_code == 304
    assert not_modified.content == b""
    assert not_modified.headers["Deprecation"] == legacy.headers["Deprecation"]


async def test_a_list_carries_its_pagination(app: FastAPI, client: httpx.AsyncClient) -> None:
    admin = await make_account(app, role="admin")
    for _ in range(3):
        await make_user(app)
    answer = await client.get(f"{LEGACY}/users?page=1&per_page=2", headers=admin.headers)
    assert answer.status_code == 200
    document = answer.json()
    assert set(document) == {"status", "data", "pagination"}
    assert document["status"] == "success"
    assert len(document["data"]) == 2
    pagination = document["pagination"]
    assert (pagination["page"], pagination["per_page"]) == (1, 2)
    assert pagination["total"] == 4
    assert pagination["pages"] == 2
    # Pagination links stay on the mirror; the successor is the canonical list.
    next_page = httpx.URL(answer.links["next"]["url"])
    assert next_page.path == f"{LEGACY}/users"
    assert next_page.params["page"] == "2"
    assert_deprecated(answer, "/api/v1/users?page=1&per_page=2")


@pytest.mark.parametrize(
    ("method", "path", "body", "status", "code"),
    [
        ("GET", "/users/999999", None, 404, "RESOURCE_NOT_FOUND"),
        ("POST", "/users", {"email": "not-an-email"}, 400, "VALIDATION_ERROR"),
        ("POST", "/users", {"email": "x@example.com", "nope": 1}, 400, "VALIDATION_ERROR"),
        ("GET", "/no-such-thing", None, 404, "RESOURCE_NOT_FOUND"),
        ("PUT", "/api-keys", {}, 405, "METHOD_NOT_ALLOWED"),
    ],
)
async def test_errors_come_in_the_error_envelope(
    app: FastAPI,
    client: httpx.AsyncClient,
    method: str,
    path: str,
    body: dict[str, object] | None,
    status: int,
    code: str,
) -> None:
    admin = await make_account(app, role="admin")
    users_before = await count_users(app)
    answer = await client.request(method, LEGACY + path, json=body, headers=admin.headers)
    assert answer.status_code == status
    document = answer.json()
    assert set(document) == {"status", "error"}
    assert document["status"] == "error"
    assert document["error"]["code"] == code
    assert document["error"]["request_id"] == answer.headers["X-Request-ID"]
    assert_deprecated(answer, "/api/v1" + path)
    assert await count_users(app) == users_before


async def test_a_missing_credential_is_a_401_in_the_envelope(
    app: FastAPI, client: httpx.AsyncClient
) -> None:
    answer = await client.post(f"{LEGACY}/api-keys", json={"name": "x"})
    assert answer.status_code == 401
    assert answer.headers["WWW-Authenticate"].startswith("Bearer")
    assert answer.json()["status"] == "error"
    assert answer.json()["error"]["code"] == "AUTHENTICATION_REQUIRED"


async def test_a_stale_if_match_changes_nothing(app: FastAPI, client: httpx.AsyncClient) -> None:
    member = await make_account(app)
    answer = await client.patch(
        f"{LEGACY}/users/{member.id}",
        json={"name": "Changed"},
        headers={**member.headers, "If-Match": '"stale"'},
    )
    assert answer.status_code == 412
    assert answer.json()["error"]["code"] == "PRECONDITION_FAILED"
    user = await find_user(app, member.user.email)
    assert user is not None
    assert user.name is None


async def test_changes_and_deletion(app: FastAPI, client: httpx.AsyncClient) -> None:
    admin = await make_account(app, role="admin")
    target = await make_user(app)
    changed = await client.patch(
        f"{LEGACY}/users/{target.id}", json={"name": "Renamed"}, headers=admin.headers
    )
    assert changed.status_code == 200
    assert changed.json()["message"] == "Resource updated successfully"
    assert changed.json()["data"]["name"] == "Renamed"

    deleted = await client.delete(f"{LEGACY}/users/{target.id}", headers=admin.headers)
    assert deleted.status_code == 200
    assert deleted.json() == {
        "status": "success",
        "data": None,
        "message": "Resource deleted successfully",
    }
    assert_deprecated(deleted, f"/api/v1/users/{target.id}")
    assert await find_user(app, target.email) is None


async def test_api_keys_are_mirrored_too(app: FastAPI, client: httpx.AsyncClient) -> None:
    member = await make_account(app)
    created = await client.post(f"{LEGACY}/api-keys", json={"name": "old"}, headers=member.headers)
    assert created.status_code == 201
    assert created.json()["data"]["secret"].startswith("sk_live_")
    listed = await client.get(f"{LEGACY}/api-keys", headers=member.headers)
    assert listed.json()["status"] == "success"
    assert {key["name"] for key in listed.json()["data"]} >= {"old"}


async def test_the_short_prefix_has_its_mirror(app: FastAPI, client: httpx.AsyncClient) -> None:
    member = await make_account(app)
    answer = await client.get("/v1/legacy/user", headers=member.headers)
    assert answer.status_code == 200
    assert answer.json()["data"]["id"] == member.id
    assert_deprecated(answer, "/v1/user")


async def test_only_resource_routes_are_mirrored(app: FastAPI, client: httpx.AsyncClient) -> None:
    health = await client.get(f"{LEGACY}/health")
    assert health.status_code == 404
    assert health.json()["status"] == "error"
    schema = (await client.get("/openapi.json")).json()
    assert not [path for path in schema["paths"] if "/legacy" in path]


async def test_an_idempotent_replay_is_wrapped_once(
    app: FastAPI, client: httpx.AsyncClient
) -> None:
    member = await make_account(app)
    headers = {**member.headers, "Idempotency-Key": "legacy-1"}
    first = await client.post(f"{LEGACY}/api-keys", json={"name": "k"}, headers=headers)
    again = await client.post(f"{LEGACY}/api-keys", json={"name": "k"}, headers=headers)
    assert again.headers["Idempotent-Replayed"] == "true"
    assert again.json() == first.json()
    assert again.json()["status"] == "success"
    assert_deprecated(again, "/api/v1/api-keys")

    reused = await client.post(f"{LEGACY}/api-keys", json={"name": "other"}, headers=headers)
    assert reused.status_code == 422
    assert set(reused.json()) == {"status", "error"}
    assert reused.json()["error"]["code"] == "IDEMPOTENCY_KEY_REUSED"
