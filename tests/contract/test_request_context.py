"""Sections 1 and 6: X-Request-ID and API-Version on every response, and in the log."""

from __future__ import annotations

import httpx
from fastapi import FastAPI

from tests.contract.helpers import (
    GENERATED_REQUEST_ID,
    LogCapture,
    assert_context_headers,
    count_users,
    error_of,
)
from tests.factories import make_account


async def test_every_kind_of_response_carries_both_headers(
    app: FastAPI, client: httpx.AsyncClient
) -> None:
    account = await make_account(app)
    ok = await client.get("/api/v1/user", headers=account.headers)
    not_modified = await client.get(
        "/api/v1/user", headers={**account.headers, "If-None-Match": ok.headers["ETag"]}
    )
    responses = {
        200: ok,
        304: not_modified,
        401: await client.get("/api/v1/user"),
        404: await client.get("/api/v1/nothing-here"),
        405: await client.put("/health"),
        400: await client.get("/health", headers={"API-Version": "v7"}),
    }
    for status, response in responses.items():
        assert response.status_code == status, response.text
        assert_context_headers(response)
        assert GENERATED_REQUEST_ID.fullmatch(response.headers["X-Request-ID"])
    ids = {response.headers["X-Request-ID"] for response in responses.values()}
    assert len(ids) == len(responses)


async def test_a_sane_client_request_id_is_kept(client: httpx.AsyncClient) -> None:
    for sent in ("abc-123", "7f3c9a2e-5b1d-4c8e-9f0a-1b2c3d4e5f60", "trace:span.01_x"):
        response = await client.get("/api/v1/no-such-route", headers={"X-Request-ID": sent})
        assert response.headers["X-Request-ID"] == sent
        assert error_of(response, "RESOURCE_NOT_FOUND")["request_id"] == sent


async def test_an_insane_client_request_id_is_replaced(client: httpx.AsyncClient) -> None:
    for sent in ("has spaces in it", "<script>alert(1)</script>", "x" * 129, "", "quote\"'d"):
        response = await client.get("/api/v1/no-such-route", headers={"X-Request-ID": sent})
        returned = response.headers["X-Request-ID"]
        assert GENERATED_REQUEST_ID.fullmatch(returned), sent
        assert error_of(response, "RESOURCE_NOT_FOUND")["request_id"] == returned


async def test_the_request_id_is_in_the_log_line_of_the_request(
    client: httpx.AsyncClient, logs: LogCapture
) -> None:
    own = await client.get("/health", headers={"X-Request-ID": "from-the-client-1"})
    generated = await client.get("/api/v1/missing")
    lines = [line for line in logs.lines() if line.get("event") == "request"]
    by_id = {line["request_id"]: line for line in lines}
    assert by_id["from-the-client-1"]["status"] == own.status_code == 200
    assert by_id["from-the-client-1"]["path"] == "/health"
    line = by_id[generated.headers["X-Request-ID"]]
    assert line["status"] == 404
    assert line["method"] == "GET"
    assert line["path"] == "/api/v1/missing"
    assert isinstance(line["duration_ms"], float)
    assert line["level"] == "info"
    assert line["timestamp"].endswith("Z")


async def test_api_version_v1_is_accepted(client: httpx.AsyncClient) -> None:
    for version in ("v1", "V1", " v1 "):
        response = await client.get("/health", headers={"API-Version": version})
        assert response.status_code == 200, version
        assert response.headers["API-Version"] == "v1"


async def test_another_api_version_is_refused(client: httpx.AsyncClient) -> None:
    for version in ("v2", "v0", "2024-01-01", "1"):
        response = await client.get("/api/v1/user", headers={"API-Version": version})
        assert response.status_code == 400, version
        error_of(response, "UNSUPPORTED_API_VERSION")
        assert response.headers["API-Version"] == "v1"


async def test_a_write_with_another_api_version_changes_nothing(
    app: FastAPI, client: httpx.AsyncClient
) -> None:
    admin = await make_account(app, role="admin")
    before = await count_users(app)
    response = await client.post(
        "/api/v1/users",
        headers={**admin.headers, "API-Version": "v2"},
        json={"username": "future", "email": "future@example.com"},
    )
    assert response.status_code == 400
    error_of(response, "UNSUPPORTED_API_VERSION")
    assert await count_users(app) == before
