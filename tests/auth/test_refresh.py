"""Refresh-token rotation, reuse detection and the grace period for a client racing itself."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable

import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy import select, text, update

from rostra.auth.models import RefreshToken
from rostra.auth.tokens import encode_access_token
from rostra.core.config import Settings
from rostra.lib.secrets import fast_hash
from tests.auth.conftest import FakeClock
from tests.auth.helpers import (
    LOGIN,
    REFRESH,
    assert_unauthenticated,
    bearer,
    login,
    refresh,
    refresh_token_count,
    session_id_of,
    sessions_of,
    whoami,
)
from tests.factories import PASSWORD, make_user


async def test_refresh_rotates_the_pair(
    app: FastAPI, client: httpx.AsyncClient, settings: Settings
) -> None:
    user = await make_user(app)
    first = await login(client, user)
    response = await refresh(client, first["refresh_token"])
    assert response.status_code == 200, response.text
    assert response.headers["Cache-Control"] == "no-store"
    second = response.json()
    assert second["token_type"] == "bearer"
    assert second["expires_in"] == settings.access_token_ttl_seconds
    assert second["refresh_token"] != first["refresh_token"]
    assert second["access_token"] != first["access_token"]
    assert await whoami(client, second["access_token"]) == 200

    # The same session goes on, with one more token in its family.
    key = settings.signing_key()
    session_id = session_id_of(key, first["access_token"])
    assert session_id_of(key, second["access_token"]) == session_id
    assert await refresh_token_count(app, session_id) == 2
    third = await refresh(client, second["refresh_token"])
    assert third.status_code == 200, third.text
    assert await refresh_token_count(app, session_id) == 3


async def test_refresh_accepts_a_form_body(app: FastAPI, client: httpx.AsyncClient) -> None:
    user = await make_user(app)
    first = await login(client, user)
    response = await client.post(REFRESH, data={"refresh_token": first["refresh_token"]})
    assert response.status_code == 200, response.text
    assert await whoami(client, response.json()["access_token"]) == 200


@pytest.mark.parametrize("settings_overrides", [{"refresh_grace_seconds": 0}])
async def test_reusing_a_rotated_token_ends_the_whole_family(
    app: FastAPI, client: httpx.AsyncClient, settings: Settings
) -> None:
    user = await make_user(app)
    first = await login(client, user)
    other_device = await login(client, user)
    second = (await refresh(client, first["refresh_token"])).json()
    assert await whoami(client, second["access_token"]) == 200

    replay = await refresh(client, first["refresh_token"])
    assert_unauthenticated(replay)
    assert "already used" in replay.json()["error"]["message"]

    # The newer refresh token and every access token of the session are dead now.
    assert_unauthenticated(await refresh(client, second["refresh_token"]))
    assert await whoami(client, second["access_token"]) == 401
    assert await whoami(client, first["access_token"]) == 401
    session_id = session_id_of(settings.signing_key(), first["access_token"])
    by_id = {row.id: row for row in await sessions_of(app, user.id)}
    assert by_id[session_id].revoked_at is not None
    assert by_id[session_id].revoked_reason == "refresh_token_reused"
    # No pair was issued for the replay.
    assert await refresh_token_count(app, session_id) == 2

    # The user's other session is untouched.
    assert await whoami(client, other_device["access_token"]) == 200
    assert (await refresh(client, other_device["refresh_token"])).status_code == 200


async def test_sequential_replay_within_the_grace_period_gets_the_same_pair(
    app: FastAPI, client: httpx.AsyncClient, settings: Settings
) -> None:
    user = await make_user(app)
    first = await login(client, user)
    second = await refresh(client, first["refresh_token"])
    again = await refresh(client, first["refresh_token"])
    assert second.status_code == again.status_code == 200, again.text
    assert again.json()["access_token"] == second.json()["access_token"]
    assert again.json()["refresh_token"] == second.json()["refresh_token"]

    session_id = session_id_of(settings.signing_key(), first["access_token"])
    assert await refresh_token_count(app, session_id) == 2
    [row] = await sessions_of(app, user.id)
    assert row.revoked_at is None
    # The pair handed out twice is a live one.
    assert await whoami(client, again.json()["access_token"]) == 200
    assert (await refresh(client, again.json()["refresh_token"])).status_code == 200


async def test_grace_period_ends_on_time(
    app: FastAPI, client: httpx.AsyncClient, settings: Settings, clock: FakeClock
) -> None:
    grace = settings.refresh_grace_seconds
    user = await make_user(app)
    first = await login(client, user)
    clock.advance(30)
    second = (await refresh(client, first["refresh_token"])).json()

    clock.advance(grace)  # exactly at the end of the grace period: still the same pair
    inside = await refresh(client, first["refresh_token"])
    assert inside.status_code == 200, inside.text
    assert inside.json()["refresh_token"] == second["refresh_token"]
    assert inside.json()["access_token"] == second["access_token"]
    # Its access token has aged by the grace period.
    assert inside.json()["expires_in"] == settings.access_token_ttl_seconds - grace

    clock.advance(1)
    late = await refresh(client, first["refresh_token"])
    assert_unauthenticated(late)
    [row] = await sessions_of(app, user.id)
    assert row.revoked_reason == "refresh_token_reused"
    assert await whoami(client, second["access_token"]) == 401


async def test_concurrent_refreshes_get_the_same_pair(
    app: FastAPI, client: httpx.AsyncClient, settings: Settings
) -> None:
    user = await make_user(app)
    first = await login(client, user)
    responses = await asyncio.gather(*(refresh(client, first["refresh_token"]) for _ in range(2)))
    assert [r.status_code for r in responses] == [200, 200], [r.text for r in responses]
    a, b = (r.json() for r in responses)
    assert (a["access_token"], a["refresh_token"]) == (b["access_token"], b["refresh_token"])

    session_id = session_id_of(settings.signing_key(), first["access_token"])
    assert await refresh_token_count(app, session_id) == 2
    [row] = await sessions_of(app, user.id)
    assert row.revoked_at is None
    assert await whoami(client, a["access_token"]) == 200


async def _wait_until(condition: Callable[[], Awaitable[bool]]) -> None:
    async with asyncio.timeout(5):
        while not await condition():  # noqa: ASYNC110 (polling the database: no event to await)
            await asyncio.sleep(0.01)


async def test_refreshes_queued_behind_a_row_lock_rotate_once(
    app: FastAPI, client: httpx.AsyncClient, settings: Settings, backend: str
) -> None:
    """Both refreshes wait on the token's row lock (held here), then run: one rotates, the
    other finds the token rotated within the grace period and gets the same pair."""
    user = await make_user(app)
    first = await login(client, user)
    token_hash = fast_hash(first["refresh_token"])
    engine = app.state.db.engine

    async with engine.connect() as blocker:
        await blocker.execute(
            update(RefreshToken)
            .where(RefreshToken.token_hash == token_hash)
            .values(rotated_at=RefreshToken.rotated_at)
        )
        racing = [asyncio.create_task(refresh(client, first["refresh_token"])) for _ in range(2)]
        if backend == "postgres":

            async def both_waiting() -> bool:
                async with engine.connect() as probe:
                    waiting = await probe.scalar(
                        text("SELECT count(*) FROM pg_locks WHERE NOT granted")
                    )
                return int(waiting or 0) >= 2

            await _wait_until(both_waiting)
        else:
            await asyncio.sleep(0.2)  # SQLite cannot show waiters; they sit in busy_timeout
        assert not any(task.done() for task in racing)
        await blocker.commit()

    responses = await asyncio.gather(*racing)
    assert [r.status_code for r in responses] == [200, 200], [r.text for r in responses]
    a, b = (r.json() for r in responses)
    assert (a["access_token"], a["refresh_token"]) == (b["access_token"], b["refresh_token"])
    session_id = session_id_of(settings.signing_key(), first["access_token"])
    assert await refresh_token_count(app, session_id) == 2
    [row] = await sessions_of(app, user.id)
    assert row.revoked_at is None


@pytest.mark.parametrize("settings_overrides", [{"refresh_token_ttl_seconds": 300}])
async def test_expired_refresh_token_is_refused(
    app: FastAPI, client: httpx.AsyncClient, clock: FakeClock
) -> None:
    user = await make_user(app)
    clock.advance(-300)  # signed in 15 minutes ago with a 5-minute refresh token
    first = await login(client, user)
    clock.advance(301)
    assert_unauthenticated(await refresh(client, first["refresh_token"]))
    # A refused refresh rotates nothing: the row is as it was.
    async with app.state.db.session_scope() as session:
        token = await session.scalar(
            select(RefreshToken).where(RefreshToken.token_hash == fast_hash(first["refresh_token"]))
        )
        assert token is not None
        assert token.rotated_at is None


async def test_unknown_refresh_token_is_refused(app: FastAPI, client: httpx.AsyncClient) -> None:
    assert_unauthenticated(await refresh(client, "rt_" + "x" * 43))


async def test_refresh_after_logout_is_refused(app: FastAPI, client: httpx.AsyncClient) -> None:
    user = await make_user(app)
    first = await login(client, user)
    out = await client.post(
        "/api/v1/auth/logout", headers={"Authorization": f"Bearer {first['access_token']}"}
    )
    assert out.status_code == 204
    assert_unauthenticated(await refresh(client, first["refresh_token"]))
    [row] = await sessions_of(app, user.id)
    assert row.revoked_reason == "logout"


async def test_token_endpoints_ignore_a_stale_authorization_header(
    app: FastAPI, client: httpx.AsyncClient, settings: Settings
) -> None:
    """Clients attach their access token to every call; refreshing is what they do once it has
    expired, so sign-in and refresh must not refuse the request for that header."""
    user = await make_user(app)
    first = await login(client, user)
    key = settings.signing_key()
    expired = encode_access_token(
        key,
        user_id=user.id,
        session_id=session_id_of(key, first["access_token"]),
        issued_at=int(time.time()) - 3600,
        ttl_seconds=settings.access_token_ttl_seconds,
        token_id="expired",
    )
    assert await whoami(client, expired) == 401

    refreshed = await client.post(
        REFRESH, json={"refresh_token": first["refresh_token"]}, headers=bearer(expired)
    )
    assert refreshed.status_code == 200, refreshed.text
    signed_in = await client.post(
        LOGIN, json={"username": user.username, "password": PASSWORD}, headers=bearer(expired)
    )
    assert signed_in.status_code == 200, signed_in.text
