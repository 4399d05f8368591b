"""A body over the size limit, streamed without Content-Length, under an Idempotency-Key."""

from __future__ import annotations

from collections.abc import AsyncIterator

import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy import select

from rostra.idempotency.models import IdempotencyKey
from tests.factories import make_account


@pytest.fixture
def settings_overrides() -> dict[str, object]:
    return {"max_body_bytes": 2048}


async def test_an_oversized_streamed_body_is_refused(
    app: FastAPI, client: httpx.AsyncClient
) -> None:
    admin = await make_account(app, role="admin")

    async def chunks() -> AsyncIterator[bytes]:
        for _ in range(4):
            yield b" " * 1024

    answer = await client.post(
        "/api/v1/users",
        content=chunks(),
        headers={
            **admin.headers,
            "Idempotency-Key": "big",
            "Content-Type": "application/json",
        },
    )
    assert answer.status_code == 413
    assert answer.json()["error"]["code"] == "PAYLOAD_TOO_LARGE"
    async with app.state.db.session_scope() as session:
        assert (await session.scalars(select(IdempotencyKey))).all() == []
