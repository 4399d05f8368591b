"""The real ``rostra serve`` process, set up with the CLI and spoken to over HTTP."""

from __future__ import annotations

import signal
import subprocess
import time
import uuid
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx
import orjson
import pytest

from tests.cli.helpers import ROSTRA, closed_port, rostra_env, run_rostra

pytestmark = pytest.mark.e2e

START_TIMEOUT_SECONDS = 90
STOP_TIMEOUT_SECONDS = 30
PASSWORD = "e2e password that is long"


@contextmanager
def running_server(env: Mapping[str, str], cwd: Path, log: Path) -> Iterator[str]:
    """``rostra serve`` on a free port until the block ends; it must then stop cleanly."""
    port = closed_port()
    base_url = f"http://127.0.0.1:{port}"
    with log.open("ab") as out:
        process = subprocess.Popen(
            [ROSTRA, "serve", "--port", str(port)],
            env=dict(env),
            cwd=cwd,
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    try:
        _wait_until_healthy(base_url, process, log)
        yield base_url
    finally:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout=STOP_TIMEOUT_SECONDS)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
            pytest.fail(f"rostra serve did not stop on SIGTERM:\n{log.read_text()}")
    # A graceful stop: uvicorn shuts the app down, then ends as the signal asks.
    assert process.returncode in (0, -signal.SIGTERM), log.read_text()
    assert "Application shutdown complete." in log.read_text()


def _wait_until_healthy(base_url: str, process: subprocess.Popen[bytes], log: Path) -> None:
    deadline = time.monotonic() + START_TIMEOUT_SECONDS
    while time.monotonic() < deadline:
        if process.poll() is not None:
            pytest.fail(f"rostra serve exited with {process.returncode}:\n{log.read_text()}")
        try:
            if httpx.get(f"{base_url}/health", timeout=2).status_code == 200:
                return
        except httpx.TransportError:
            pass
        time.sleep(0.25)
    pytest.fail(f"rostra serve did not become healthy:\n{log.read_text()}")


def _log_lines(log: Path) -> list[dict[str, Any]]:
    return [orjson.loads(line) for line in log.read_text().splitlines() if line.startswith("{")]


def _create_user_and_key(env: Mapping[str, str], cwd: Path) -> str:
    user = run_rostra(
        [
            "users",
            "create",
            "--username",
            "e2e",
            "--email",
            "e2e@example.com",
            "--password",
            PASSWORD,
        ],
        env,
        cwd,
    )
    assert user.returncode == 0, user
    key = run_rostra(["keys", "create", "--user", "e2e"], env, cwd)
    assert key.returncode == 0, key
    secret = key.stdout.strip()
    assert secret.startswith("sk_live_")
    return secret


def _talk(base_url: str, secret: str) -> str:
    """The API as a client sees it; returns a login access token."""
    with httpx.Client(base_url=base_url, timeout=30) as http:
        me = http.get("/api/v1/user", headers={"Authorization": f"Bearer {secret}"})
        assert me.status_code == 200, me.text
        assert me.json()["username"] == "e2e"
        assert me.headers["API-Version"] == "v1"
        # HEAD: the head of the GET's answer, and no body on the wire.
        head = http.head("/api/v1/user", headers={"Authorization": f"Bearer {secret}"})
        assert head.status_code == 200
        assert head.content == b""
        assert head.headers["Content-Length"] == me.headers["Content-Length"]
        assert head.headers["ETag"] == me.headers["ETag"]

        login = http.post("/api/v1/auth/login", json={"username": "e2e", "password": PASSWORD})
        assert login.status_code == 200, login.text
        token: str = login.json()["access_token"]
        again = http.get("/v1/user", headers={"Authorization": f"Bearer {token}"})
        assert again.status_code == 200, again.text
        assert again.json()["email"] == "e2e@example.com"

        missing = http.get("/api/v1/no-such-route", headers={"X-Request-ID": "e2e-missing-1"})
        assert missing.status_code == 404
        assert missing.json() == {
            "error": {
                "code": "RESOURCE_NOT_FOUND",
                "message": missing.json()["error"]["message"],
                "request_id": "e2e-missing-1",
            }
        }
        assert missing.headers["X-Request-ID"] == "e2e-missing-1"
    return token


def test_serve_on_a_new_sqlite_file(tmp_path: Path) -> None:
    """No settings but the database path: serve migrates it and keeps a generated key."""
    database = tmp_path / "data" / "rostra.db"
    env = rostra_env(f"sqlite+aiosqlite:///{database}", secret_key=None)
    log = tmp_path / "serve.log"

    with running_server(env, tmp_path, log) as base_url:
        health = httpx.get(f"{base_url}/health", timeout=10).json()
        assert health == {"status": "ok", "checks": {"database": "ok", "redis": "disabled"}}
        token = _talk(base_url, _create_user_and_key(env, tmp_path))

    lines = _log_lines(log)
    assert any(line.get("event") == "secret_key_generated" for line in lines)
    access = [line for line in lines if line.get("request_id") == "e2e-missing-1"]
    assert [(line["event"], line["status"], line["path"]) for line in access] == [
        ("request", 404, "/api/v1/no-such-route")
    ]
    assert database.with_name("rostra.db.secret").is_file()

    # A restart keeps the generated key: the sign-in from before still works.
    with running_server(env, tmp_path, log) as base_url:
        me = httpx.get(
            f"{base_url}/api/v1/user", headers={"Authorization": f"Bearer {token}"}, timeout=30
        )
        assert me.status_code == 200, me.text


@pytest.mark.parametrize("backend", ["postgres"])
def test_serve_on_postgresql_with_redis(database_url: str, redis_url: str, tmp_path: Path) -> None:
    # A key prefix of its own: the shared Redis may hold counters of other runs for user 1.
    env = rostra_env(
        database_url, redis_url=redis_url, rate_limit_key_prefix=f"rostra:e2e:{uuid.uuid4().hex}:"
    )
    with running_server(env, tmp_path, tmp_path / "serve.log") as base_url:
        health = httpx.get(f"{base_url}/api/v1/health", timeout=10).json()
        assert health == {"status": "ok", "checks": {"database": "ok", "redis": "ok"}}
        _talk(base_url, _create_user_and_key(env, tmp_path))
