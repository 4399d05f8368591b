"""The bound on concurrent argon2id hashes: a flood is refused with 503, never queued forever."""

from __future__ import annotations

import asyncio
import threading

import httpx
import pytest
from argon2 import PasswordHasher
from fastapi import FastAPI

from rostra.core.config import Settings
from rostra.lib.passwords import BoundedPasswordHasher
from tests.auth.helpers import LOGIN, REGISTER, sessions_of, user_count
from tests.factories import PASSWORD, make_user


class GatedHasher(PasswordHasher):
    """argon2id that holds every verification until the test opens the gate."""

    def __init__(self) -> None:
        super().__init__(time_cost=1, memory_cost=1024, parallelism=1)
        self.started = threading.Semaphore(0)
        self.gate = threading.Event()

    def verify(self, hash: str | bytes, password: str | bytes) -> bool:
        self.started.release()
        self.gate.wait(timeout=10)
        return super().verify(hash, password)


def _gate(app: FastAPI, settings: Settings) -> GatedHasher:
    gated = GatedHasher()
    app.state.password_hasher = BoundedPasswordHasher(
        concurrency=settings.password_hash_concurrency,
        queue=settings.password_hash_queue,
        hasher=gated,
    )
    return gated


async def _wait_started(gated: GatedHasher, count: int = 1) -> None:
    for _ in range(count):
        assert await asyncio.to_thread(gated.started.acquire, True, 5)


def _assert_busy(response: httpx.Response) -> None:
    assert response.status_code == 503, response.text
    assert response.json()["error"]["code"] == "SERVICE_UNAVAILABLE"
    assert int(response.headers["Retry-After"]) >= 1


@pytest.mark.parametrize(
    "settings_overrides", [{"password_hash_concurrency": 1, "password_hash_queue": 0}]
)
async def test_login_flood_beyond_the_bound_is_503(
    app: FastAPI, client: httpx.AsyncClient, settings: Settings
) -> None:
    user = await make_user(app)
    gated = _gate(app, settings)
    credentials = {"username": user.username, "password": PASSWORD}

    first = asyncio.create_task(client.post(LOGIN, json=credentials))
    await _wait_started(gated)
    _assert_busy(await client.post(LOGIN, json=credentials))
    _assert_busy(await client.post(REGISTER, json={"email": "x@example.com", "password": "p" * 9}))
    assert await user_count(app) == 1
    assert len(await sessions_of(app, user.id)) == 0

    gated.gate.set()
    assert (await first).status_code == 200
    # The slot is free again.
    assert (await client.post(LOGIN, json=credentials)).status_code == 200
    assert len(await sessions_of(app, user.id)) == 2


@pytest.mark.parametrize(
    "settings_overrides", [{"password_hash_concurrency": 1, "password_hash_queue": 1}]
)
async def test_logins_within_the_queue_wait_their_turn(
    app: FastAPI, client: httpx.AsyncClient, settings: Settings
) -> None:
    user = await make_user(app)
    gated = _gate(app, settings)
    credentials = {"username": user.username, "password": PASSWORD}

    running = asyncio.create_task(client.post(LOGIN, json=credentials))
    await _wait_started(gated)
    queued = asyncio.create_task(client.post(LOGIN, json=credentials))
    # Once the queued login holds the one waiting place, a third is refused at once.
    hasher: BoundedPasswordHasher = app.state.password_hasher
    async with asyncio.timeout(5):
        while hasher._in_flight < 2:  # noqa: ASYNC110 (no event marks a caller as queued)
            await asyncio.sleep(0.01)
    _assert_busy(await client.post(LOGIN, json=credentials))
    assert not queued.done()

    gated.gate.set()
    assert [(await running).status_code, (await queued).status_code] == [200, 200]
    assert len(await sessions_of(app, user.id)) == 2
