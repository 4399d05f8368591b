"""ETag, If-None-Match (304) and If-Match (412) on users: two editors never overwrite unseen."""

from __future__ import annotations

import asyncio

import httpx
import pytest
from fastapi import FastAPI

from tests.factories import make_account, make_user
from tests.users.helpers import error_of, stored_user, stored_user_fields


@pytest.mark.parametrize("path", ["/api/v1/user", "/api/v1/users/{id}", "/v1/users/{id}"])
async def test_if_none_match_answers_304_without_a_body(
    app: FastAPI, client: httpx.AsyncClient, path: str
) -> None:
    account = await make_account(app)
    url = path.format(id=account.id)
    first = await client.get(url, headers=account.headers)
    etag = first.headers["ETag"]
    assert etag.startswith('"')
    assert etag.endswith('"')
    for header in (etag, f"W/{etag}", f'"other", {etag}', "*"):
        again = await client.get(url, headers={**account.headers, "If-None-Match": header})
        assert again.status_code == 304, header
        assert again.content == b""
        assert again.headers["ETag"] == etag
    stale = await client.get(url, headers={**account.headers, "If-None-Match": '"stale"'})
    assert stale.status_code == 200
    assert stale.json() == first.json()


async def test_etag_changes_when_the_user_changes(app: FastAPI, client: httpx.AsyncClient) -> None:
    account = await make_account(app)
    before = (await client.get("/api/v1/user", headers=account.headers)).headers["ETag"]
    patched = await client.patch("/api/v1/user", headers=account.headers, json={"name": "New"})
    assert patched.headers["ETag"] != before
    after = await client.get("/api/v1/user", headers={**account.headers, "If-None-Match": before})
    assert after.status_code == 200
    assert after.json()["name"] == "New"
    assert after.headers["ETag"] == patched.headers["ETag"]


@pytest.mark.parametrize(
    ("method", "path", "body"),
    [
        ("PATCH", "/api/v1/user", {"name": "Lost update"}),
        ("PATCH", "/api/v1/users/{id}", {"name": "Lost update"}),
        ("PUT", "/api/v1/users/{id}", {"username": "lost", "email": "lost@example.com"}),
        ("DELETE", "/api/v1/users/{id}", None),
    ],
)
async def test_stale_if_match_is_412_and_changes_nothing(
    app: FastAPI,
    client: httpx.AsyncClient,
    method: str,
    path: str,
    body: dict[str, str] | None,
) -> None:
    account = await make_account(app)
    url = path.format(id=account.id)
    stale = (await client.get(f"/api/v1/users/{account.id}", headers=account.headers)).headers[
        "ETag"
    ]
    # Another editor changes the user after our read.
    assert (
        await client.patch("/api/v1/user", headers=account.headers, json={"name": "Theirs"})
    ).status_code == 200
    before = await stored_user_fields(app, account.id)
    for header in (stale, f"W/{stale}"):
        response = await client.request(
            method, url, headers={**account.headers, "If-Match": header}, json=body
        )
        assert response.status_code == 412
        assert error_of(response)["code"] == "PRECONDITION_FAILED"
    assert await stored_user_fields(app, account.id) == before


@pytest.mark.parametrize(
    ("method", "path", "body", "status"),
    [
        ("PATCH", "/api/v1/user", {"name": "Mine"}, 200),
        ("PATCH", "/api/v1/users/{id}", {"name": "Mine"}, 200),
        ("PUT", "/api/v1/users/{id}", {"username": "mine", "email": "mine@example.com"}, 200),
        ("DELETE", "/api/v1/users/{id}", None, 204),
    ],
)
async def test_current_if_match_lets_the_write_through(
    app: FastAPI,
    client: httpx.AsyncClient,
    method: str,
    path: str,
    body: dict[str, str] | None,
    status: int,
) -> None:
    account = await make_account(app)
    etag = (await client.get("/api/v1/user", headers=account.headers)).headers["ETag"]
    response = await client.request(
        method, path.format(id=account.id), headers={**account.headers, "If-Match": etag}, json=body
    )
    assert response.status_code == status, response.text
    stored = await stored_user(app, account.id)
    if method == "DELETE":
        assert stored is None
    else:
        assert stored is not None
        assert stored.name == (body or {}).get("name")


async def test_admin_if_match_uses_the_admin_view(app: FastAPI, client: httpx.AsyncClient) -> None:
    admin = await make_account(app, role="admin")
    member = await make_user(app)
    etag = (await client.get(f"/api/v1/users/{member.id}", headers=admin.headers)).headers["ETag"]
    response = await client.patch(
        f"/api/v1/users/{member.id}",
        headers={**admin.headers, "If-Match": etag},
        json={"plan": "starter"},
    )
    assert response.status_code == 200, response.text


async def test_concurrent_editors_with_one_tag_one_wins_one_gets_412(
    app: FastAPI, client: httpx.AsyncClient
) -> None:
    account = await make_account(app)
    etag = (await client.get("/api/v1/user", headers=account.headers)).headers["ETag"]
    responses = await asyncio.gather(
        *(
            client.patch(
                "/api/v1/user",
                headers={**account.headers, "If-Match": etag},
                json={"name": f"Editor {i}"},
            )
            for i in range(4)
        )
    )
    assert sorted(r.status_code for r in responses) == [200, 412, 412, 412]
    winner = next(r for r in responses if r.status_code == 200)
    stored = await stored_user(app, account.id)
    assert stored is not None
    assert stored.name == winner.json()["name"]
