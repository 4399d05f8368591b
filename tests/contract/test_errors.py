"""Section 6: every failure answers the error envelope (or RFC 9457 problem details)."""

from __future__ import annotations

from collections.abc import AsyncIterator

import httpx
import pytest
from fastapi import FastAPI

from tests.contract.helpers import LogCapture, assert_context_headers, count_users, error_of
from tests.factories import PASSWORD, make_account

BODY_LIMIT = 2048
PREFIXES = ["/api/v1", "/v1"]


@pytest.fixture
def settings_overrides() -> dict[str, object]:
    return {"max_body_bytes": BODY_LIMIT}


def new_user(name: str, padding: int = 0) -> dict[str, str]:
    """A valid ``POST /users`` body, made ``padding`` characters longer through ``name``."""
    return {"username": name, "email": f"{name}@example.com", "name": "x" * padding}


async def test_unknown_route_is_resource_not_found(client: httpx.AsyncClient) -> None:
    for path in ("/api/v1/no-such-thing", "/v1/no-such-thing", "/no-such-thing", "/api/v2/users"):
        response = await client.get(path)
        assert response.status_code == 404, path
        error_of(response, "RESOURCE_NOT_FOUND")
        assert_context_headers(response)


@pytest.mark.parametrize("prefix", PREFIXES)
async def test_missing_resource_is_resource_not_found(
    app: FastAPI, client: httpx.AsyncClient, prefix: str
) -> None:
    admin = await make_account(app, role="admin")
    response = await client.get(f"{prefix}/users/987654", headers=admin.headers)
    assert response.status_code == 404
    error_of(response, "RESOURCE_NOT_FOUND")


@pytest.mark.parametrize("prefix", PREFIXES)
async def test_wrong_method_is_method_not_allowed_with_allow(
    app: FastAPI, client: httpx.AsyncClient, prefix: str
) -> None:
    account = await make_account(app)
    response = await client.delete(f"{prefix}/user", headers=account.headers)
    assert response.status_code == 405
    error_of(response, "METHOD_NOT_ALLOWED")
    assert {"GET", "PATCH"} <= {m.strip() for m in response.headers["Allow"].split(",")}
    # The refused DELETE removed nothing.
    assert (await client.get(f"{prefix}/user", headers=account.headers)).status_code == 200


@pytest.mark.parametrize("path", ["/api/v1/users", "/api/v1/auth/login"])
async def test_malformed_json_is_a_validation_error(
    app: FastAPI, client: httpx.AsyncClient, path: str
) -> None:
    admin = await make_account(app, role="admin")
    before = await count_users(app)
    response = await client.post(
        path,
        content=b'{"username": "ann", "email":',
        headers={**admin.headers, "Content-Type": "application/json"},
    )
    assert response.status_code == 400
    error = error_of(response, "VALIDATION_ERROR")
    assert error["details"] == [{"field": "body", "message": "Malformed JSON"}]
    assert await count_users(app) == before


async def test_validation_error_has_one_detail_per_field(
    app: FastAPI, client: httpx.AsyncClient
) -> None:
    admin = await make_account(app, role="admin")
    before = await count_users(app)
    response = await client.post(
        "/api/v1/users",
        headers=admin.headers,
        json={
            "username": "not a valid name!",
            "email": "not-an-email",
            "password": "short",
            "role": "emperor",
            "shoe_size": 44,
            "profile": {"timezone": "Mars/Olympus", "language": "??"},
        },
    )
    assert response.status_code == 400, response.text
    error = error_of(response, "VALIDATION_ERROR")
    fields = [detail["field"] for detail in error["details"]]
    assert sorted(fields) == sorted(
        [
            "username",
            "email",
            "password",
            "role",
            "shoe_size",
            "profile.timezone",
            "profile.language",
        ]
    )
    assert all(isinstance(d["message"], str) and d["message"] for d in error["details"])
    assert {"field": "shoe_size", "message": "Unknown field"} in error["details"]
    assert await count_users(app) == before


async def test_missing_required_field_names_it(app: FastAPI, client: httpx.AsyncClient) -> None:
    admin = await make_account(app, role="admin")
    response = await client.post("/api/v1/users", headers=admin.headers, json={"name": "Ann"})
    assert response.status_code == 400
    details = error_of(response, "VALIDATION_ERROR")["details"]
    assert details == [{"field": "email", "message": "This field is required"}]


async def test_invalid_query_parameter_is_named(app: FastAPI, client: httpx.AsyncClient) -> None:
    admin = await make_account(app, role="admin")
    response = await client.get("/api/v1/users?limit=100000", headers=admin.headers)
    assert response.status_code == 400
    fields = [d["field"] for d in error_of(response, "VALIDATION_ERROR")["details"]]
    assert fields == ["limit"]


async def test_body_within_the_limit_is_accepted(app: FastAPI, client: httpx.AsyncClient) -> None:
    admin = await make_account(app, role="admin")
    body = new_user("roomy", padding=150)
    response = await client.post("/api/v1/users", headers=admin.headers, json=body)
    assert response.status_code == 201, response.text


async def test_declared_body_over_the_limit_is_payload_too_large(
    app: FastAPI, client: httpx.AsyncClient
) -> None:
    admin = await make_account(app, role="admin")
    before = await count_users(app)
    response = await client.post(
        "/api/v1/users", headers=admin.headers, json=new_user("huge", padding=BODY_LIMIT)
    )
    assert response.status_code == 413
    error_of(response, "PAYLOAD_TOO_LARGE")
    assert_context_headers(response)
    assert await count_users(app) == before


async def test_chunked_body_over_the_limit_is_payload_too_large(
    app: FastAPI, client: httpx.AsyncClient
) -> None:
    """No Content-Length: the body is counted as it arrives."""
    admin = await make_account(app, role="admin")
    before = await count_users(app)
    chunk = b" " * 512

    async def chunks() -> AsyncIterator[bytes]:
        yield b'{"username": "streamed", "email": "streamed@example.com", "name": "'
        for _ in range(BODY_LIMIT // len(chunk) + 1):
            yield chunk
        yield b'"}'

    response = await client.post(
        "/api/v1/users",
        content=chunks(),
        headers={**admin.headers, "Content-Type": "application/json"},
    )
    assert response.request.headers["Transfer-Encoding"] == "chunked"
    assert "Content-Length" not in response.request.headers
    assert response.status_code == 413, response.text
    error_of(response, "PAYLOAD_TOO_LARGE")
    assert await count_users(app) == before


async def test_chunked_login_form_over_the_limit_is_payload_too_large(
    client: httpx.AsyncClient,
) -> None:
    async def chunks() -> AsyncIterator[bytes]:
        yield b"username=ann&password="
        for _ in range(5):
            yield b"p" * 1024

    response = await client.post(
        "/api/v1/auth/login",
        content=chunks(),
        headers={"Content-Type": "application/x-www-form-urlencoded"},
    )
    assert response.status_code == 413
    error_of(response, "PAYLOAD_TOO_LARGE")


async def test_body_over_the_limit_is_refused_on_a_route_that_reads_none(
    app: FastAPI, client: httpx.AsyncClient
) -> None:
    account = await make_account(app)
    response = await client.request(
        "GET", "/api/v1/user", headers=account.headers, content=b"x" * (BODY_LIMIT + 1)
    )
    assert response.status_code == 413
    error_of(response, "PAYLOAD_TOO_LARGE")


async def test_non_json_body_on_a_json_route_is_unsupported_media_type(
    app: FastAPI, client: httpx.AsyncClient
) -> None:
    admin = await make_account(app, role="admin")
    before = await count_users(app)
    for content_type in ("text/plain", "application/xml", "application/x-www-form-urlencoded"):
        response = await client.post(
            "/api/v1/users",
            headers={**admin.headers, "Content-Type": content_type},
            content=b'{"username": "typed", "email": "typed@example.com"}',
        )
        assert response.status_code == 415, (content_type, response.text)
        error_of(response, "UNSUPPORTED_MEDIA_TYPE")
    assert await count_users(app) == before


async def test_non_json_non_form_login_is_unsupported_media_type(
    app: FastAPI, client: httpx.AsyncClient
) -> None:
    account = await make_account(app)
    response = await client.post(
        "/api/v1/auth/login",
        headers={"Content-Type": "text/plain"},
        content=f'{{"username": "{account.user.username}", "password": "{PASSWORD}"}}',
    )
    assert response.status_code == 415
    error_of(response, "UNSUPPORTED_MEDIA_TYPE")


async def test_json_body_without_content_type_is_read_as_json(
    app: FastAPI, client: httpx.AsyncClient
) -> None:
    admin = await make_account(app, role="admin")
    response = await client.post(
        "/api/v1/users",
        headers=admin.headers,
        content=b'{"username": "untyped", "email": "untyped@example.com"}',
    )
    assert "Content-Type" not in response.request.headers
    assert response.status_code == 201, response.text
    assert response.json()["username"] == "untyped"


@pytest.fixture
def failing_app(app: FastAPI) -> FastAPI:
    """The app with one route that fails the way a bug would."""

    async def explode() -> None:
        raise RuntimeError("kaboom: secret internals")

    app.add_api_route("/api/v1/test-explode", explode, methods=["GET"])
    # Ahead of the /api/v1 mount, which would otherwise take the path.
    app.router.routes.insert(0, app.router.routes.pop())
    return app


async def test_unexpected_exception_is_server_error_without_a_trace(
    failing_app: FastAPI, client: httpx.AsyncClient, logs: LogCapture
) -> None:
    response = await client.get("/api/v1/test-explode", headers={"X-Request-ID": "trace-me-500"})
    assert response.status_code == 500
    error = error_of(response, "SERVER_ERROR")
    assert error["request_id"] == "trace-me-500"
    assert_context_headers(response)
    for leak in ("kaboom", "Traceback", "RuntimeError", "explode"):
        assert leak not in response.text

    lines = logs.lines()
    crash = [line for line in lines if line.get("event") == "unhandled_exception"]
    assert len(crash) == 1
    assert crash[0]["request_id"] == "trace-me-500"
    assert crash[0]["level"] == "error"
    assert "Traceback" in crash[0]["exception"]
    assert "RuntimeError: kaboom: secret internals" in crash[0]["exception"]
    access = [line for line in lines if line.get("event") == "request"]
    assert access == [
        {
            **access[0],
            "request_id": "trace-me-500",
            "status": 500,
            "method": "GET",
            "path": "/api/v1/test-explode",
        }
    ]


async def test_the_server_keeps_serving_after_a_crash(
    failing_app: FastAPI, client: httpx.AsyncClient
) -> None:
    assert (await client.get("/api/v1/test-explode")).status_code == 500
    assert (await client.get("/health")).status_code == 200


PROBLEM_JSON = "application/problem+json"


async def test_problem_details_for_an_unknown_route(client: httpx.AsyncClient) -> None:
    response = await client.get("/api/v1/nowhere", headers={"Accept": PROBLEM_JSON})
    assert response.status_code == 404
    assert response.headers["content-type"] == PROBLEM_JSON
    problem = response.json()
    assert problem["status"] == 404
    assert problem["code"] == "RESOURCE_NOT_FOUND"
    assert problem["type"].endswith("/resource_not_found")
    assert problem["title"]
    assert problem["detail"]
    assert problem["request_id"] == response.headers["X-Request-ID"]
    assert "error" not in problem


async def test_problem_details_for_a_validation_error(
    app: FastAPI, client: httpx.AsyncClient
) -> None:
    admin = await make_account(app, role="admin")
    response = await client.post(
        "/api/v1/users",
        headers={**admin.headers, "Accept": f"{PROBLEM_JSON}, application/json;q=0.5"},
        json={"email": "nope"},
    )
    assert response.status_code == 400
    assert response.headers["content-type"] == PROBLEM_JSON
    problem = response.json()
    assert problem["code"] == "VALIDATION_ERROR"
    assert problem["status"] == 400
    assert [error["field"] for error in problem["errors"]] == ["email"]


async def test_problem_details_for_a_crash(failing_app: FastAPI, client: httpx.AsyncClient) -> None:
    response = await client.get("/api/v1/test-explode", headers={"Accept": PROBLEM_JSON})
    assert response.status_code == 500
    assert response.headers["content-type"] == PROBLEM_JSON
    problem = response.json()
    assert problem["code"] == "SERVER_ERROR"
    assert problem["request_id"] == response.headers["X-Request-ID"]
    assert "kaboom" not in response.text


async def test_authentication_required_carries_www_authenticate(
    client: httpx.AsyncClient,
) -> None:
    response = await client.get("/api/v1/user")
    assert response.status_code == 401
    error_of(response, "AUTHENTICATION_REQUIRED")
    assert response.headers["WWW-Authenticate"].startswith("Bearer")
