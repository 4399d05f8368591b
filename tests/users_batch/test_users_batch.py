"""POST /users/batch (contract section 4): per-item results, and all or nothing when atomic."""

from __future__ import annotations

from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy import func, select

from rostra.events.models import Event
from rostra.users.models import User
from tests.factories import make_account, make_user

BATCH = "/api/v1/users/batch"


async def users_by_email(app: FastAPI) -> dict[str, User]:
    async with app.state.db.session_scope() as session:
        return {user.email: user for user in (await session.scalars(select(User))).all()}


async def count_events(app: FastAPI, event_type: str) -> int:
    async with app.state.db.session_scope() as session:
        query = select(func.count()).select_from(Event).where(Event.type == event_type)
        return int(await session.scalar(query) or 0)


async def test_each_operation_succeeds_or_fails_on_its_own(
    app: FastAPI, client: httpx.AsyncClient
) -> None:
    admin = await make_account(app, role="admin")
    to_change = await make_user(app, email="change@example.com")
    to_delete = await make_user(app, email="delete@example.com")
    taken = await make_user(app, email="taken@example.com")
    operations: list[dict[str, Any]] = [
        {"op": "create", "data": {"email": "new@example.com", "name": "New", "role": "admin"}},
        {"op": "update", "id": to_change.id, "data": {"name": "Changed", "plan": "starter"}},
        {"op": "delete", "id": to_delete.id},
        {"op": "update", "id": 999_999, "data": {"name": "Nobody"}},
        {"op": "create", "data": {"email": "taken@example.com"}},
        {"op": "update", "id": to_change.id, "data": {"email": taken.email}},
        {"op": "create", "data": {"email": "after@example.com"}},
    ]
    created_before = await count_events(app, "user.created")

    answer = await client.post(BATCH, json={"operations": operations}, headers=admin.headers)
    assert answer.status_code == 200
    results = answer.json()["results"]
    assert [item["index"] for item in results] == list(range(7))
    assert [item["status"] for item in results] == [201, 200, 204, 404, 409, 409, 201]
    assert results[0]["data"]["email"] == "new@example.com"
    assert results[0]["data"]["role"] == "admin"
    assert results[1]["data"]["name"] == "Changed"
    assert results[2]["data"] is None
    assert results[3]["error"]["code"] == "RESOURCE_NOT_FOUND"
    assert results[4]["error"]["code"] == "RESOURCE_CONFLICT"
    assert results[5]["error"]["details"] == [
        {"field": "email", "message": "This email is already taken"}
    ]
    for item in results:
        assert ("data" in item) != ("error" in item)

    users = await users_by_email(app)
    assert users["new@example.com"].role == "admin"
    assert users["new@example.com"].id == results[0]["data"]["id"]
    assert users["change@example.com"].name == "Changed"
    assert users["change@example.com"].plan == "starter"
    assert "delete@example.com" not in users
    assert "after@example.com" in users
    assert await count_events(app, "user.created") == created_before + 2


async def test_atomic_applies_everything_when_all_succeed(
    app: FastAPI, client: httpx.AsyncClient
) -> None:
    admin = await make_account(app, role="admin")
    target = await make_user(app, email="target@example.com")
    answer = await client.post(
        BATCH,
        json={
            "atomic": True,
            "operations": [
                {"op": "create", "data": {"email": "a1@example.com"}},
                {"op": "update", "id": target.id, "data": {"profile": {"timezone": "UTC"}}},
            ],
        },
        headers=admin.headers,
    )
    assert answer.status_code == 200
    assert [item["status"] for item in answer.json()["results"]] == [201, 200]
    users = await users_by_email(app)
    assert "a1@example.com" in users
    assert users["target@example.com"].timezone == "UTC"


async def test_atomic_undoes_everything_when_one_fails(
    app: FastAPI, client: httpx.AsyncClient
) -> None:
    admin = await make_account(app, role="admin")
    target = await make_user(app, email="keep@example.com", name="Kept")
    doomed = await make_user(app, email="doomed@example.com")
    users_before = await users_by_email(app)
    created_before = await count_events(app, "user.created")
    answer = await client.post(
        BATCH,
        json={
            "atomic": True,
            "operations": [
                {"op": "create", "data": {"email": "rolled@example.com"}},
                {"op": "update", "id": target.id, "data": {"name": "Lost"}},
                {"op": "delete", "id": doomed.id},
                {"op": "delete", "id": 999_999},
                {"op": "create", "data": {"email": "keep@example.com"}},
            ],
        },
        headers=admin.headers,
    )
    assert answer.status_code == 200
    results = answer.json()["results"]
    assert [item["status"] for item in results] == [424, 424, 424, 404, 409]
    for item in results[:3]:
        assert item["error"]["code"] == "BATCH_ROLLED_BACK"
        assert "3, 4" in item["error"]["message"]
    assert results[3]["error"]["code"] == "RESOURCE_NOT_FOUND"

    users = await users_by_email(app)
    assert set(users) == set(users_before)
    assert users["keep@example.com"].name == "Kept"
    assert await count_events(app, "user.created") == created_before


async def test_a_hundred_operations_are_allowed(app: FastAPI, client: httpx.AsyncClient) -> None:
    admin = await make_account(app, role="admin")
    operations = [{"op": "create", "data": {"email": f"bulk{n}@example.com"}} for n in range(100)]
    answer = await client.post(BATCH, json={"operations": operations}, headers=admin.headers)
    assert answer.status_code == 200
    assert {item["status"] for item in answer.json()["results"]} == {201}
    assert len(await users_by_email(app)) == 101


@pytest.mark.parametrize(
    ("body", "field"),
    [
        (
            {"operations": [{"op": "create", "data": {"email": "x@example.com"}}] * 101},
            "operations",
        ),
        ({"operations": []}, "operations"),
        ({}, "operations"),
        ({"operations": {"op": "create"}}, "operations"),
        ({"operations": [{"op": "upsert", "id": 1}]}, "operations.0"),
        ({"operations": [{"op": "update", "data": {"name": "x"}}]}, "operations.0.update.id"),
        ({"operations": [{"op": "update", "id": 1}]}, "operations.0.update.data"),
        ({"operations": [{"op": "delete", "id": 1, "data": {}}]}, "operations.0.delete.data"),
        ({"operations": [{"op": "create", "id": 1, "data": {}}]}, "operations.0.create.id"),
        ({"operations": [{"op": "delete", "id": "one"}]}, "operations.0.delete.id"),
        ({"operations": [{"op": "delete", "id": 10**23}]}, "operations.0.delete.id"),
        ({"operations": [{"op": "update", "id": 0, "data": {}}]}, "operations.0.update.id"),
        ({"operations": [{"op": "delete", "id": 1}], "atomic": "perhaps"}, "atomic"),
        ({"operations": [{"op": "delete", "id": 1}], "mode": "fast"}, "mode"),
    ],
)
async def test_a_malformed_batch_is_a_400_and_runs_nothing(
    app: FastAPI, client: httpx.AsyncClient, body: dict[str, Any], field: str
) -> None:
    admin = await make_account(app, role="admin")
    victim = await make_user(app)
    users_before = await users_by_email(app)
    answer = await client.post(BATCH, json=body, headers=admin.headers)
    assert answer.status_code == 400
    error = answer.json()["error"]
    assert error["code"] == "VALIDATION_ERROR"
    assert field in [detail["field"] for detail in error["details"]]
    assert set(await users_by_email(app)) == set(users_before)
    assert victim.email in users_before


async def test_bad_data_in_one_operation_refuses_the_whole_batch(
    app: FastAPI, client: httpx.AsyncClient
) -> None:
    admin = await make_account(app, role="admin")
    answer = await client.post(
        BATCH,
        json={
            "operations": [
                {"op": "create", "data": {"email": "fine@example.com"}},
                {"op": "create", "data": {"email": "not-an-email"}},
            ]
        },
        headers=admin.headers,
    )
    assert answer.status_code == 400
    fields = [detail["field"] for detail in answer.json()["error"]["details"]]
    assert fields == ["operations.1.create.data.email"]
    assert "fine@example.com" not in await users_by_email(app)


@pytest.mark.parametrize(
    ("role", "scopes", "status", "code"),
    [
        ("member", None, 403, "INSUFFICIENT_PERMISSIONS"),
        ("admin", ["read"], 403, "INSUFFICIENT_PERMISSIONS"),
        (None, None, 401, "AUTHENTICATION_REQUIRED"),
    ],
)
async def test_only_admins_with_write_rights_may_batch(
    app: FastAPI,
    client: httpx.AsyncClient,
    role: str | None,
    scopes: list[str] | None,
    status: int,
    code: str,
) -> None:
    headers = {}
    if role is not None:
        headers = (await make_account(app, role=role, scopes=scopes)).headers
    target = await make_user(app, email="untouched@example.com")
    answer = await client.post(
        BATCH,
        json={
            "operations": [
                {"op": "create", "data": {"email": "sneaky@example.com"}},
                {"op": "delete", "id": target.id},
            ]
        },
        headers=headers,
    )
    assert answer.status_code == status
    assert answer.json()["error"]["code"] == code
    users = await users_by_email(app)
    assert "sneaky@example.com" not in users
    assert "untouched@example.com" in users


async def test_a_batch_replays_under_its_idempotency_key(
    app: FastAPI, client: httpx.AsyncClient
) -> None:
    admin = await make_account(app, role="admin")
    body = {"operations": [{"op": "create", "data": {"email": "once@example.com"}}]}
    headers = {**admin.headers, "Idempotency-Key": "batch-1"}
    first = await client.post(BATCH, json=body, headers=headers)
    again = await client.post(BATCH, json=body, headers=headers)
    assert first.json()["results"][0]["status"] == 201
    assert again.headers["Idempotent-Replayed"] == "true"
    assert again.json() == first.json()
    assert len([u for u in await users_by_email(app) if u == "once@example.com"]) == 1
