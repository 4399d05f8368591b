"""Logout, the list of signed-in sessions and ending one of them."""

from __future__ import annotations

import httpx
from fastapi import FastAPI

from rostra.core.config import Settings
from rostra.users.models import User
from tests.auth.conftest import FakeClock
from tests.auth.helpers import (
    LOGOUT,
    SESSIONS,
    assert_unauthenticated,
    bearer,
    login,
    refresh,
    session_id_of,
    sessions_of,
    whoami,
)
from tests.factories import make_account, make_key, make_user


async def _assert_session_ended(
    app: FastAPI, client: httpx.AsyncClient, user: User, pair: dict[str, str], session_id: int
) -> None:
    assert await whoami(client, pair["access_token"]) == 401
    assert_unauthenticated(await refresh(client, pair["refresh_token"]))
    row = {s.id: s for s in await sessions_of(app, user.id)}[session_id]
    assert row.revoked_at is not None


async def test_logout_with_the_access_token_ends_its_session_only(
    app: FastAPI, client: httpx.AsyncClient, settings: Settings
) -> None:
    user = await make_user(app)
    laptop = await login(client, user)
    phone = await login(client, user)
    assert await whoami(client, laptop["access_token"]) == 200  # cached as a verified credential

    response = await client.post(LOGOUT, headers=bearer(laptop["access_token"]))
    assert response.status_code == 204
    assert response.content == b""
    laptop_id = session_id_of(settings.signing_key(), laptop["access_token"])
    await _assert_session_ended(app, client, user, laptop, laptop_id)
    assert {s.id: s for s in await sessions_of(app, user.id)}[laptop_id].revoked_reason == "logout"
    assert await whoami(client, phone["access_token"]) == 200


async def test_logout_with_a_refresh_token_in_the_body(
    app: FastAPI, client: httpx.AsyncClient, settings: Settings
) -> None:
    user = await make_user(app)
    pair = await login(client, user)
    response = await client.post(LOGOUT, json={"refresh_token": pair["refresh_token"]})
    assert response.status_code == 204, response.text
    session_id = session_id_of(settings.signing_key(), pair["access_token"])
    await _assert_session_ended(app, client, user, pair, session_id)


async def test_logout_with_a_refresh_token_ignores_a_stale_authorization_header(
    app: FastAPI, client: httpx.AsyncClient, settings: Settings
) -> None:
    """A client whose access token has already died can still sign out with its refresh token."""
    user = await make_user(app)
    pair = await login(client, user)
    response = await client.post(
        LOGOUT,
        data={"refresh_token": pair["refresh_token"]},
        headers=bearer("not.a.token"),
    )
    assert response.status_code == 204, response.text
    session_id = session_id_of(settings.signing_key(), pair["access_token"])
    await _assert_session_ended(app, client, user, pair, session_id)


async def test_logout_refusals_change_nothing(app: FastAPI, client: httpx.AsyncClient) -> None:
    account = await make_account(app)
    pair = await login(client, account.user)

    assert_unauthenticated(await client.post(LOGOUT))
    assert_unauthenticated(await client.post(LOGOUT, json={"refresh_token": "rt_unknown"}))
    # An API key is not a session: it must name the session by its refresh token.
    by_key = await client.post(LOGOUT, headers=account.headers)
    assert by_key.status_code == 400
    assert by_key.json()["error"]["details"] == [
        {"field": "refresh_token", "message": "Send the refresh token of the session to end"}
    ]
    [row] = await sessions_of(app, account.id)
    assert row.revoked_at is None
    assert await whoami(client, pair["access_token"]) == 200


async def test_logout_twice_with_the_refresh_token_is_harmless(
    app: FastAPI, client: httpx.AsyncClient
) -> None:
    user = await make_user(app)
    pair = await login(client, user)
    for _ in range(2):
        response = await client.post(LOGOUT, json={"refresh_token": pair["refresh_token"]})
        assert response.status_code == 204
    [row] = await sessions_of(app, user.id)
    assert row.revoked_reason == "logout"


async def test_sessions_lists_the_callers_live_sessions(
    app: FastAPI, client: httpx.AsyncClient, settings: Settings, clock: FakeClock
) -> None:
    user = await make_user(app)
    stranger = await make_user(app)
    await login(client, stranger, user_agent="Stranger/1.0")
    firefox = await login(client, user, user_agent="Mozilla/5.0 Firefox/128.0")
    clock.advance(60)
    curl = await login(client, user, user_agent="curl/8.5.0")
    ended = await login(client, user, user_agent="Ended/1.0")
    assert (await client.post(LOGOUT, headers=bearer(ended["access_token"]))).status_code == 204
    clock.advance(60)
    firefox = (await refresh(client, firefox["refresh_token"])).json()  # used after curl

    response = await client.get(SESSIONS, headers=bearer(curl["access_token"]))
    assert response.status_code == 200, response.text
    body = response.json()
    key = settings.signing_key()
    firefox_id = session_id_of(key, firefox["access_token"])
    curl_id = session_id_of(key, curl["access_token"])
    # Most recently used first.
    assert [item["id"] for item in body["data"]] == [firefox_id, curl_id]
    by_id = {item["id"]: item for item in body["data"]}
    assert by_id[curl_id]["device"] == "curl/8.5.0"
    assert by_id[curl_id]["current"] is True
    assert by_id[firefox_id]["device"] == "Mozilla/5.0 Firefox/128.0"
    assert by_id[firefox_id]["current"] is False
    assert by_id[firefox_id]["created_at"] < by_id[curl_id]["created_at"]
    assert by_id[firefox_id]["last_used_at"] > by_id[curl_id]["last_used_at"]
    for item in body["data"]:
        assert item["created_at"].endswith("Z")
        assert item["last_used_at"].endswith("Z")
        assert item["ip"] == "127.0.0.1"
        assert item["livemode"] is True
    assert body["pagination"]["total"] == 2
    assert "rt_" not in response.text

    first_page = await client.get(
        SESSIONS, params={"limit": 1}, headers=bearer(curl["access_token"])
    )
    assert [item["id"] for item in first_page.json()["data"]] == [firefox_id]
    assert 'rel="next"' in first_page.headers["Link"]


async def test_sessions_with_an_api_key_marks_none_current(
    app: FastAPI, client: httpx.AsyncClient
) -> None:
    account = await make_account(app)
    await login(client, account.user)
    response = await client.get(SESSIONS, headers=account.headers)
    assert response.status_code == 200
    assert [item["current"] for item in response.json()["data"]] == [False]


async def test_sessions_needs_a_credential(client: httpx.AsyncClient) -> None:
    assert_unauthenticated(await client.get(SESSIONS))
    assert_unauthenticated(await client.delete(f"{SESSIONS}/1"))


async def test_ending_one_session_kills_its_tokens(
    app: FastAPI, client: httpx.AsyncClient, settings: Settings
) -> None:
    user = await make_user(app)
    here = await login(client, user)
    lost_phone = await login(client, user)
    assert await whoami(client, lost_phone["access_token"]) == 200
    phone_id = session_id_of(settings.signing_key(), lost_phone["access_token"])

    response = await client.delete(f"{SESSIONS}/{phone_id}", headers=bearer(here["access_token"]))
    assert response.status_code == 204
    await _assert_session_ended(app, client, user, lost_phone, phone_id)
    assert await whoami(client, here["access_token"]) == 200
    listed = await client.get(SESSIONS, headers=bearer(here["access_token"]))
    assert phone_id not in [item["id"] for item in listed.json()["data"]]

    # An ended session is gone: ending it again is a 404.
    again = await client.delete(f"{SESSIONS}/{phone_id}", headers=bearer(here["access_token"]))
    assert again.status_code == 404
    assert again.json()["error"]["code"] == "RESOURCE_NOT_FOUND"


async def test_ending_the_current_session_signs_the_caller_out(
    app: FastAPI, client: httpx.AsyncClient, settings: Settings
) -> None:
    user = await make_user(app)
    pair = await login(client, user)
    session_id = session_id_of(settings.signing_key(), pair["access_token"])
    response = await client.delete(f"{SESSIONS}/{session_id}", headers=bearer(pair["access_token"]))
    assert response.status_code == 204
    await _assert_session_ended(app, client, user, pair, session_id)


async def test_another_users_session_is_not_found_and_survives(
    app: FastAPI, client: httpx.AsyncClient, settings: Settings
) -> None:
    owner = await make_user(app)
    intruder = await make_account(app)
    victim = await login(client, owner)
    victim_id = session_id_of(settings.signing_key(), victim["access_token"])
    intruder_pair = await login(client, intruder.user)

    for headers in (bearer(intruder_pair["access_token"]), intruder.headers):
        response = await client.delete(f"{SESSIONS}/{victim_id}", headers=headers)
        assert response.status_code == 404
        assert response.json()["error"]["code"] == "RESOURCE_NOT_FOUND"
    missing = await client.delete(f"{SESSIONS}/999999", headers=intruder.headers)
    assert missing.status_code == 404
    assert missing.json()["error"]["message"] == response.json()["error"]["message"].replace(
        str(victim_id), "999999"
    )  # the same answer as for a session that does not exist: nothing leaks

    listed = await client.get(SESSIONS, headers=intruder.headers)
    assert victim_id not in [item["id"] for item in listed.json()["data"]]
    [row] = await sessions_of(app, owner.id)
    assert row.revoked_at is None
    assert await whoami(client, victim["access_token"]) == 200


async def test_read_only_key_may_list_but_not_end_sessions(
    app: FastAPI, client: httpx.AsyncClient, settings: Settings
) -> None:
    user = await make_user(app)
    pair = await login(client, user)
    session_id = session_id_of(settings.signing_key(), pair["access_token"])
    read_key = await make_key(app, user, scopes=["read"])

    listed = await client.get(SESSIONS, headers=bearer(read_key))
    assert listed.status_code == 200
    refused = await client.delete(f"{SESSIONS}/{session_id}", headers=bearer(read_key))
    assert refused.status_code == 403
    assert refused.json()["error"]["code"] == "INSUFFICIENT_PERMISSIONS"
    [row] = await sessions_of(app, user.id)
    assert row.revoked_at is None
    assert await whoami(client, pair["access_token"]) == 200
