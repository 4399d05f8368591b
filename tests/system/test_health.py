"""Section 10: /health checks the database and, when configured, Redis."""

from __future__ import annotations

from collections.abc import AsyncIterator

import httpx
import pytest
from fastapi import FastAPI

from rostra.app import create_app
from rostra.core.config import Settings
from tests.cli.helpers import closed_port
from tests.conftest import TEST_SECRET

PATHS = ["/health", "/api/v1/health", "/v1/health"]


async def test_healthy_without_redis(client: httpx.AsyncClient) -> None:
    for path in PATHS:
        response = await client.get(path)
        assert response.status_code == 200, path
        assert response.json() == {
            "status": "ok",
            "checks": {"database": "ok", "redis": "disabled"},
        }


class TestWithRedis:
    @pytest.fixture
    def settings_overrides(self, redis_url: str) -> dict[str, object]:
        return {"redis_url": redis_url}

    async def test_healthy_with_redis(self, client: httpx.AsyncClient) -> None:
        response = await client.get("/health")
        assert response.status_code == 200
        assert response.json() == {"status": "ok", "checks": {"database": "ok", "redis": "ok"}}


@pytest.fixture
async def broken_client(
    broken: tuple[str, ...], database_url: str
) -> AsyncIterator[httpx.AsyncClient]:
    """A server whose stores named by the test's ``broken`` parameter are unreachable."""
    port = closed_port()
    settings = Settings(
        _env_file=None,  # type: ignore[call-arg]
        database_url=(
            f"postgresql+asyncpg://postgres@127.0.0.1:{port}/rostra"
            if "database" in broken
            else database_url
        ),
        redis_url=f"redis://127.0.0.1:{port}/0" if "redis" in broken else None,
        secret_key=TEST_SECRET,
        environment="test",
        log_level="error",
        rate_limit_enabled=False,
    )
    app: FastAPI = create_app(settings)
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as http:
        yield http
    await app.state.db.dispose()
    if app.state.redis is not None:
        await app.state.redis.aclose()


def _unavailable(response: httpx.Response) -> dict[str, object]:
    assert response.status_code == 503, response.text
    body: dict[str, object] = response.json()
    assert body["status"] == "unavailable"
    error = body["error"]
    assert isinstance(error, dict)
    assert error["code"] == "SERVICE_UNAVAILABLE"
    assert error["request_id"] == response.headers["X-Request-ID"]
    return body


@pytest.mark.parametrize("broken", [("redis",)])
async def test_unreachable_redis_is_named(broken_client: httpx.AsyncClient) -> None:
    for path in PATHS:
        body = _unavailable(await broken_client.get(path))
        assert body["checks"] == {"database": "ok", "redis": "error"}
        assert "redis" in str(body["error"])
        assert "database" not in str(body["error"])


@pytest.mark.parametrize("broken", [("database",)])
async def test_unreachable_database_is_named(broken_client: httpx.AsyncClient) -> None:
    body = _unavailable(await broken_client.get("/health"))
    assert body["checks"] == {"database": "error", "redis": "disabled"}
    assert "database" in str(body["error"])


@pytest.mark.parametrize("broken", [("database", "redis")])
async def test_every_failing_check_is_named(broken_client: httpx.AsyncClient) -> None:
    body = _unavailable(await broken_client.get("/api/v1/health"))
    assert body["checks"] == {"database": "error", "redis": "error"}
    message = str(body["error"])
    assert "database" in message
    assert "redis" in message
