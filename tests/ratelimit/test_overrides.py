"""Per-account overrides: admins give an account its own limits, or none at all."""

from __future__ import annotations

from typing import Any

import httpx
import pytest
from fastapi import FastAPI

from rostra.ratelimit.models import RateLimitOverride
from tests.factories import Account, make_account, make_key
from tests.ratelimit.helpers import PLANS, USAGE, USER, has_no_limit_fields, limit_fields
from tests.users.helpers import error_fields, error_of

OVERRIDES = "/api/v1/rate-limit-overrides"


@pytest.fixture
def settings_overrides() -> dict[str, object]:
    return {"rate_limit_plans": PLANS}


async def stored_override(app: FastAPI, user_id: int) -> dict[str, Any] | None:
    async with app.state.db.session_scope() as session:
        row = await session.get(RateLimitOverride, user_id)
        if row is None:
            return None
        return {c.key: getattr(row, c.key) for c in RateLimitOverride.__table__.columns}


async def put(
    client: httpx.AsyncClient, admin: Account, user_id: int, body: dict[str, Any], **headers: str
) -> httpx.Response:
    return await client.put(
        f"{OVERRIDES}/{user_id}", headers={**admin.headers, **headers}, json=body
    )


async def test_an_override_replaces_the_plans_limits(
    app: FastAPI, client: httpx.AsyncClient
) -> None:
    admin = await make_account(app, role="admin", plan="enterprise")
    account = await make_account(app)
    assert limit_fields(await client.get(USER, headers=account.headers))[0] == 5
    created = await put(
        client, admin, account.id, {"per_hour": 100, "per_minute": 3, "note": "trial"}
    )
    assert created.status_code == 201, created.text
    assert created.headers["Location"].endswith(f"{OVERRIDES}/{account.id}")
    body = created.json()
    assert {k: body[k] for k in ("user_id", "per_hour", "per_minute", "overage", "note")} == {
        "user_id": account.id,
        "per_hour": 100,
        "per_minute": 3,
        "overage": False,
        "note": "trial",
    }
    assert body["created_at"].endswith("Z")
    # The request counted before the override still counts: windows belong to the account.
    answers = [await client.get(USER, headers=account.headers) for _ in range(3)]
    assert [a.status_code for a in answers] == [200, 200, 429]
    assert limit_fields(answers[0])[:2] == (3, 1)
    assert answers[0].headers["RateLimit-Policy"] == '"hour";q=100;w=3600, "minute";q=3;w=60'
    usage = (await client.get(USAGE, headers=account.headers)).json()
    assert usage["limits_from"] == "override"
    assert usage["plan"] == "free"


async def test_an_unlimited_override_lifts_every_limit(
    app: FastAPI, client: httpx.AsyncClient
) -> None:
    admin = await make_account(app, role="admin", plan="enterprise")
    account = await make_account(app, plan="enterprise")
    response = await put(client, admin, account.id, {"per_hour": None, "per_minute": None})
    assert response.status_code == 201
    answers = [await client.get(USER, headers=account.headers) for _ in range(12)]
    assert all(a.status_code == 200 for a in answers)
    assert all(has_no_limit_fields(a) for a in answers)


async def test_replacing_and_removing_an_override(app: FastAPI, client: httpx.AsyncClient) -> None:
    admin = await make_account(app, role="admin", plan="enterprise")
    account = await make_account(app)
    first = await put(client, admin, account.id, {"per_hour": 50, "per_minute": 2})
    replaced = await put(
        client, admin, account.id, {"per_hour": 60, "per_minute": 9, "overage": True}
    )
    assert replaced.status_code == 200
    assert replaced.json()["per_minute"] == 9
    assert replaced.json()["note"] is None
    # Read back what an admin may send back as it was read.
    read = await client.get(f"{OVERRIDES}/{account.id}", headers=admin.headers)
    assert read.json() == replaced.json()
    echoed = await put(client, admin, account.id, read.json(), **{"If-Match": read.headers["ETag"]})
    assert echoed.status_code == 200, echoed.text
    assert limit_fields(await client.get(USER, headers=account.headers))[0] == 9
    stale = await put(
        client,
        admin,
        account.id,
        {"per_hour": 1, "per_minute": 1},
        **{"If-Match": first.headers["ETag"]},
    )
    assert stale.status_code == 412
    assert (await stored_override(app, account.id) or {})["per_minute"] == 9
    listed = await client.get(OVERRIDES, headers=admin.headers)
    assert [o["user_id"] for o in listed.json()["data"]] == [account.id]
    removed = await client.delete(f"{OVERRIDES}/{account.id}", headers=admin.headers)
    assert removed.status_code == 204
    assert await stored_override(app, account.id) is None
    assert (await client.get(f"{OVERRIDES}/{account.id}", headers=admin.headers)).status_code == 404
    assert limit_fields(await client.get(USER, headers=account.headers))[0] == 5


async def test_only_admins_set_overrides(app: FastAPI, client: httpx.AsyncClient) -> None:
    member = await make_account(app)
    refused = await put(client, member, member.id, {"per_hour": None, "per_minute": None})
    assert refused.status_code == 403
    assert error_of(refused)["code"] == "INSUFFICIENT_PERMISSIONS"
    admin = await make_account(app, role="admin", plan="enterprise")
    read_only = Account(admin.user, await make_key(app, admin.user, scopes=["read"]))
    assert (
        await put(client, read_only, member.id, {"per_hour": 1, "per_minute": 1})
    ).status_code == 403
    assert (await client.get(OVERRIDES, headers=member.headers)).status_code == 403
    assert await stored_override(app, member.id) is None


async def test_bad_overrides_are_refused(app: FastAPI, client: httpx.AsyncClient) -> None:
    admin = await make_account(app, role="admin", plan="enterprise")
    account = await make_account(app)
    missing_user = await put(client, admin, 987654, {"per_hour": 1, "per_minute": 1})
    assert missing_user.status_code == 404
    negative = await put(client, admin, account.id, {"per_hour": -1, "per_minute": 1})
    assert negative.status_code == 400
    assert error_fields(negative) == ["per_hour"]
    unknown = await put(client, admin, account.id, {"per_hour": 1, "per_minute": 1, "burst": 2})
    assert unknown.status_code == 400
    assert error_fields(unknown) == ["burst"]
    absent = await put(client, admin, account.id, {"per_hour": 1})
    assert absent.status_code == 400
    assert error_fields(absent) == ["per_minute"]
    assert await stored_override(app, account.id) is None


async def test_overrides_go_with_the_account(app: FastAPI, client: httpx.AsyncClient) -> None:
    admin = await make_account(app, role="admin", plan="enterprise")
    account = await make_account(app)
    await put(client, admin, account.id, {"per_hour": 1, "per_minute": 1})
    deleted = await client.delete(f"/api/v1/users/{account.id}", headers=admin.headers)
    assert deleted.status_code == 204, deleted.text
    assert await stored_override(app, account.id) is None
