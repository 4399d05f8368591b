"""HEAD: every address that answers GET answers HEAD as GET would, without the body (RFC 9110,
section 9.3.2; the server leaves the body out, tests/e2e/test_serve.py shows it on the wire)."""

from __future__ import annotations

import httpx
from fastapi import FastAPI

from tests.contract.helpers import LogCapture
from tests.factories import make_account

DESCRIBING = ("Content-Type", "Content-Length", "ETag", "Link", "Cache-Control", "API-Version")


async def test_head_answers_with_the_head_of_the_get(
    app: FastAPI, client: httpx.AsyncClient
) -> None:
    account = await make_account(app)
    created = await client.post(
        "/api/v1/projects", json={"name": "headed"}, headers=account.headers
    )
    assert created.status_code == 201, created.text
    project = created.json()["id"]
    for path in (
        f"/api/v1/projects/{project}",
        "/api/v1/projects?limit=5",
        "/v1/user",
        "/api/v1/legacy/projects",
        "/health",
    ):
        got = await client.get(path, headers=account.headers)
        head = await client.head(path, headers=account.headers)
        assert head.status_code == got.status_code == 200, (path, head.text)
        for name in DESCRIBING:
            assert head.headers.get(name) == got.headers.get(name), (path, name)
        assert "X-RateLimit-Remaining" in head.headers or path == "/health"


async def test_a_conditional_head_is_not_modified(app: FastAPI, client: httpx.AsyncClient) -> None:
    account = await make_account(app)
    etag = (await client.get("/api/v1/user", headers=account.headers)).headers["ETag"]
    head = await client.head("/api/v1/user", headers={**account.headers, "If-None-Match": etag})
    assert head.status_code == 304


async def test_head_where_there_is_no_get_is_405(app: FastAPI, client: httpx.AsyncClient) -> None:
    account = await make_account(app)
    refused = await client.head("/api/v1/auth/login", headers=account.headers)
    assert refused.status_code == 405
    assert refused.headers["Allow"] == "POST"
    missing = await client.head("/api/v1/nothing-here", headers=account.headers)
    assert missing.status_code == 404
    assert missing.content == b""  # the envelope's head alone
    assert missing.headers["Content-Type"] == "application/json"


async def test_a_head_is_logged_and_counted_as_a_head_of_its_route(
    app: FastAPI, client: httpx.AsyncClient, logs: LogCapture
) -> None:
    account = await make_account(app)
    sent = await client.head(
        "/api/v1/user", headers={**account.headers, "X-Request-ID": "head-request-1"}
    )
    assert sent.status_code == 200
    [line] = [line for line in logs.lines() if line.get("request_id") == "head-request-1"]
    assert (line["method"], line["status"], line["path"]) == ("HEAD", 200, "/api/v1/user")
    admin = await make_account(app, role="admin")
    metrics = (await client.get("/metrics", headers=admin.headers)).text
    assert 'method="HEAD",route="/api/v1/user",status="200"' in metrics
