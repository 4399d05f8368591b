"""Reading the contract's envelopes and the server's JSON log back in the contract tests."""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any

import httpx
import orjson
import pytest
from fastapi import FastAPI
from sqlalchemy import func, select

from rostra.core.logging import configure_logging
from rostra.users.models import User

GENERATED_REQUEST_ID = re.compile(r"req_[0-9a-f]{24}")


def error_of(response: httpx.Response, code: str) -> dict[str, Any]:
    """The envelope's error, checked for its code, its content type and its request id."""
    assert response.headers["content-type"] == "application/json", response.headers
    body = response.json()
    assert set(body) == {"error"}, body
    error: dict[str, Any] = body["error"]
    assert error["code"] == code, body
    assert isinstance(error["message"], str)
    assert error["message"]
    assert error["request_id"] == response.headers["X-Request-ID"]
    return error


def assert_context_headers(response: httpx.Response) -> None:
    assert response.headers["API-Version"] == "v1"
    assert response.headers["X-Request-ID"]


async def count_users(app: FastAPI) -> int:
    async with app.state.db.session_scope() as session:
        return int(await session.scalar(select(func.count()).select_from(User)) or 0)


class LogCapture:
    """The JSON lines the server wrote to stdout while a test ran."""

    def __init__(self, capsys: pytest.CaptureFixture[str]) -> None:
        self.capsys = capsys

    def lines(self) -> list[dict[str, Any]]:
        out = self.capsys.readouterr().out
        return [orjson.loads(line) for line in out.splitlines() if line.startswith("{")]


def capture_logs(capsys: pytest.CaptureFixture[str]) -> Iterator[LogCapture]:
    """The server's lines at info level, which the tests' settings otherwise leave out."""
    configure_logging("info")
    yield LogCapture(capsys)
    configure_logging("warning")
