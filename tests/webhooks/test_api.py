"""The /webhooks routes: registration, reading, changes, secrets, pings and redelivery."""

from __future__ import annotations

import base64
from datetime import timedelta

import httpx
import orjson
import pytest
from fastapi import FastAPI
from sqlalchemy import select

from rostra.core.db import utcnow
from rostra.events.models import Event
from rostra.webhooks.models import (
    DELIVERIES_DUE,
    FAILED,
    PENDING,
    SUCCEEDED,
    WebhookAttempt,
    WebhookDelivery,
    WebhookEndpoint,
)
from tests.factories import make_account
from tests.webhooks.endpoints import PUBLIC_URL, stored_deliveries, stored_endpoint

SEED_003_BODY = {
    "url": "https://your-app.com/webhooks/pmh",
    "events": ["course.completed", "user.registered"],
    "secret": "your_webhook_secret",
}


@pytest.fixture
def settings_overrides() -> dict[str, object]:
    return {"rate_limit_enabled": False}


async def test_seed_003_body_works_as_written(app: FastAPI, client: httpx.AsyncClient) -> None:
    """``requests.post("https://api.pythonmasteryhub.com/webhooks", json=webhook_config, ...)``."""
    account = await make_account(app)
    created = await client.post("/v1/webhooks", headers=account.headers, json=SEED_003_BODY)
    assert created.status_code == 201, created.text
    body = created.json()
    assert body["url"] == SEED_003_BODY["url"]
    assert body["events"] == ["course.completed", "user.registered"]
    assert body["secret"] == "your_webhook_secret"
    assert body["secret_last4"] == "cret"
    assert (body["active"], body["max_attempts"], body["description"]) == (True, 8, "")
    assert (body["owner_id"], body["project_id"], body["livemode"]) == (account.id, None, True)
    assert (body["disabled_reason"], body["failing_since"]) == (None, None)
    assert created.headers["Location"].endswith(f"/v1/webhooks/{body['id']}")

    fetched = await client.get(created.headers["Location"], headers=account.headers)
    assert fetched.status_code == 200
    assert "secret" not in fetched.json()
    assert fetched.json() == {k: v for k, v in body.items() if k != "secret"}
    stored = await stored_endpoint(app, body["id"])
    assert stored is not None
    assert stored.secret == "your_webhook_secret"


async def test_a_generated_secret_is_shown_once(app: FastAPI, client: httpx.AsyncClient) -> None:
    account = await make_account(app)
    created = await client.post(
        "/api/v1/webhooks", headers=account.headers, json={"url": PUBLIC_URL, "events": ["*"]}
    )
    assert created.status_code == 201, created.text
    secret = created.json()["secret"]
    assert secret.startswith("whsec_")
    assert len(base64.b64decode(secret.removeprefix("whsec_"))) == 24
    assert created.json()["secret_last4"] == secret[-4:]

    listed = await client.get("/api/v1/webhooks", headers=account.headers)
    fetched = await client.get(created.headers["Location"], headers=account.headers)
    for text in (listed.text, fetched.text):
        assert secret not in text
        assert secret.removeprefix("whsec_") not in text


async def test_list_is_the_callers_own_and_admins_see_all(
    app: FastAPI, client: httpx.AsyncClient
) -> None:
    alice, bob = await make_account(app), await make_account(app)
    admin = await make_account(app, role="admin")
    for account, n in ((alice, 3), (bob, 1)):
        for i in range(n):
            response = await client.post(
                "/api/v1/webhooks",
                headers=account.headers,
                json={"url": f"{PUBLIC_URL}/{i}", "events": ["project.created"]},
            )
            assert response.status_code == 201

    mine = await client.get("/api/v1/webhooks?limit=2", headers=alice.headers)
    assert mine.status_code == 200
    page = mine.json()
    assert [w["owner_id"] for w in page["data"]] == [alice.id, alice.id]
    assert page["pagination"] == {
        "limit": 2,
        "offset": 0,
        "total": 3,
        "has_more": True,
        "next_cursor": page["pagination"]["next_cursor"],
    }
    assert 'rel="next"' in mine.headers["Link"]
    assert all("secret" not in w for w in page["data"])
    # newest first by default
    assert [w["url"] for w in page["data"]] == [f"{PUBLIC_URL}/2", f"{PUBLIC_URL}/1"]

    everyone = await client.get("/api/v1/webhooks", headers=admin.headers)
    assert everyone.json()["pagination"]["total"] == 4
    bobs = await client.get(f"/api/v1/webhooks?owner_id={bob.id}", headers=admin.headers)
    assert [w["owner_id"] for w in bobs.json()["data"]] == [bob.id]
    cursor = await client.get("/api/v1/webhooks?cursor=&limit=1", headers=alice.headers)
    assert cursor.json()["pagination"]["has_more"] is True

    unknown = await client.get("/api/v1/webhooks?colour=red", headers=alice.headers)
    assert unknown.status_code == 400
    assert unknown.json()["error"]["details"][0]["field"] == "colour"
    bad_sort = await client.get("/api/v1/webhooks?sort=secret", headers=alice.headers)
    assert bad_sort.status_code == 400


async def test_patch_with_etags_and_reenabling(app: FastAPI, client: httpx.AsyncClient) -> None:
    account = await make_account(app)
    created = await client.post(
        "/api/v1/webhooks", headers=account.headers, json={"url": PUBLIC_URL, "events": ["*"]}
    )
    url = created.headers["Location"]
    fetched = await client.get(url, headers=account.headers)
    etag = fetched.headers["ETag"]
    not_modified = await client.get(url, headers={**account.headers, "If-None-Match": etag})
    assert not_modified.status_code == 304

    patched = await client.patch(
        url,
        headers={**account.headers, "If-Match": etag},
        json={
            "url": PUBLIC_URL + "/v2",
            "events": ["deployment.failed", "deployment.completed", "deployment.failed"],
            "description": "deploys",
            "max_attempts": 3,
        },
    )
    assert patched.status_code == 200, patched.text
    body = patched.json()
    assert body["url"] == PUBLIC_URL + "/v2"
    assert body["events"] == ["deployment.failed", "deployment.completed"]
    assert (body["description"], body["max_attempts"]) == ("deploys", 3)
    assert "secret" not in body

    stale = await client.patch(
        url, headers={**account.headers, "If-Match": etag}, json={"description": "lost"}
    )
    assert stale.status_code == 412
    assert (await client.get(url, headers=account.headers)).json()["description"] == "deploys"

    # The server disabled it (a 410 from the receiver, say); PATCH active=true turns it back on.
    async with app.state.db.session_scope() as session:
        stored = await session.get(WebhookEndpoint, body["id"])
        assert stored is not None
        stored.active = False
        stored.disabled_reason = "410 Gone from the receiver"
        stored.failing_since = utcnow()
    disabled = (await client.get(url, headers=account.headers)).json()
    assert (disabled["active"], disabled["disabled_reason"]) == (
        False,
        "410 Gone from the receiver",
    )
    assert disabled["failing_since"] is not None
    await app.state.db.notifications.wait(DELIVERIES_DUE, 0)
    enabled = await client.patch(url, headers=account.headers, json={"active": True})
    assert await app.state.db.notifications.wait(DELIVERIES_DUE, 0.01)  # the backlog goes now
    assert enabled.status_code == 200
    assert (enabled.json()["active"], enabled.json()["disabled_reason"]) == (True, None)
    assert enabled.json()["failing_since"] is None

    # An object read back may be sent as is: the fields it shows are read-only, not unknown.
    echoed = await client.patch(url, headers=account.headers, json=enabled.json())
    assert echoed.status_code == 200, echoed.text
    assert echoed.json()["updated_at"] >= enabled.json()["updated_at"]

    moved = await client.patch(url, headers=account.headers, json={"project_id": 12345})
    assert moved.status_code == 400
    assert moved.json()["error"]["details"][0]["field"] == "project_id"


async def test_patch_secret_replaces_it_at_once(app: FastAPI, client: httpx.AsyncClient) -> None:
    account = await make_account(app)
    created = await client.post("/api/v1/webhooks", headers=account.headers, json=SEED_003_BODY)
    url = created.headers["Location"]
    patched = await client.patch(
        url, headers=account.headers, json={"secret": "another-long-secret-value"}
    )
    assert patched.status_code == 200
    assert "secret" not in patched.json()
    assert patched.json()["secret_last4"] == "alue"
    stored = await stored_endpoint(app, created.json()["id"])
    assert stored is not None
    assert (stored.secret, stored.previous_secret) == ("another-long-secret-value", None)

    short = await client.patch(url, headers=account.headers, json={"secret": "too-short"})
    assert short.status_code == 400
    assert short.json()["error"]["details"][0]["field"] == "secret"
    null = await client.patch(url, headers=account.headers, json={"url": None})
    assert null.status_code == 400
    assert null.json()["error"]["details"][0]["field"] == "url"


async def test_rotate_secret_keeps_the_old_one_for_a_day(
    app: FastAPI, client: httpx.AsyncClient
) -> None:
    account = await make_account(app)
    created = await client.post("/api/v1/webhooks", headers=account.headers, json=SEED_003_BODY)
    url = created.headers["Location"]
    before = utcnow()
    rotated = await client.post(url + "/rotate-secret", headers=account.headers)
    assert rotated.status_code == 200, rotated.text
    new_secret = rotated.json()["secret"]
    assert new_secret.startswith("whsec_")
    assert new_secret != "your_webhook_secret"
    assert rotated.json()["secret_last4"] == new_secret[-4:]
    assert rotated.json()["previous_secret_expires_at"] is not None

    stored = await stored_endpoint(app, created.json()["id"])
    assert stored is not None
    assert (stored.secret, stored.previous_secret) == (new_secret, "your_webhook_secret")
    assert stored.previous_secret_expires_at is not None
    window = stored.previous_secret_expires_at - before
    assert timedelta(hours=23, minutes=59) < window < timedelta(hours=24, minutes=1)

    fetched = await client.get(url, headers=account.headers)
    assert new_secret not in fetched.text
    assert "your_webhook_secret" not in fetched.text
    assert (
        fetched.json()["previous_secret_expires_at"] == rotated.json()["previous_secret_expires_at"]
    )

    again = await client.post(url + "/rotate-secret", headers=account.headers)
    stored = await stored_endpoint(app, created.json()["id"])
    assert stored is not None
    assert (stored.secret, stored.previous_secret) == (again.json()["secret"], new_secret)


async def test_delete_takes_the_deliveries_with_it(app: FastAPI, client: httpx.AsyncClient) -> None:
    account = await make_account(app)
    created = await client.post(
        "/api/v1/webhooks", headers=account.headers, json={"url": PUBLIC_URL, "events": ["*"]}
    )
    url = created.headers["Location"]
    assert (await client.post(url + "/test", headers=account.headers)).status_code == 202
    stale = await client.delete(url, headers={**account.headers, "If-Match": '"stale"'})
    assert stale.status_code == 412
    deleted = await client.delete(url, headers=account.headers)
    assert deleted.status_code == 204
    assert (await client.get(url, headers=account.headers)).status_code == 404
    assert await stored_deliveries(app) == []


async def test_ping_is_one_delivery_for_this_endpoint_only(
    app: FastAPI, client: httpx.AsyncClient
) -> None:
    account = await make_account(app)
    first = await client.post(
        "/api/v1/webhooks", headers=account.headers, json={"url": PUBLIC_URL, "events": ["*"]}
    )
    await client.post(
        "/api/v1/webhooks", headers=account.headers, json={"url": PUBLIC_URL, "events": ["*"]}
    )
    events_before = await _event_count(app)
    assert not await app.state.db.notifications.wait(DELIVERIES_DUE, 0.01)

    pinged = await client.post(first.headers["Location"] + "/test", headers=account.headers)
    assert pinged.status_code == 202, pinged.text
    body = pinged.json()
    assert body["webhook_id"] == first.json()["id"]
    assert body["event_type"] == "ping"
    assert body["event_id"].startswith("evt_")
    assert body["message_id"].startswith("msg_")
    assert (body["status"], body["attempts"], body["delivered_at"]) == (PENDING, 0, None)
    assert body["next_retry_at"] is not None
    assert pinged.headers["Location"].endswith(
        f"/webhooks/{first.json()['id']}/deliveries/{body['id']}"
    )
    assert await app.state.db.notifications.wait(DELIVERIES_DUE, 0.01)

    [delivery] = await stored_deliveries(app)
    assert (delivery.endpoint_id, delivery.event_id) == (first.json()["id"], None)
    payload = orjson.loads(delivery.payload)
    assert payload["id"] == body["event_id"]
    assert payload["event"] == "ping"
    assert payload["timestamp"].endswith("Z")
    assert payload["data"]["id"] == first.json()["id"]
    assert "secret" not in payload["data"]
    assert await _event_count(app) == events_before  # a ping is no event of the log


async def test_deliveries_list_detail_and_redeliver(
    app: FastAPI, client: httpx.AsyncClient
) -> None:
    account = await make_account(app)
    created = await client.post(
        "/api/v1/webhooks", headers=account.headers, json={"url": PUBLIC_URL, "events": ["*"]}
    )
    url = created.headers["Location"]
    ids = []
    for _ in range(3):
        ids.append((await client.post(url + "/test", headers=account.headers)).json()["id"])

    # As the worker would leave them: one failed after its attempts, one succeeded.
    started = utcnow()
    async with app.state.db.session_scope() as session:
        failed = await session.get(WebhookDelivery, ids[0])
        succeeded = await session.get(WebhookDelivery, ids[1])
        assert failed is not None
        assert succeeded is not None
        failed.status, failed.attempts, failed.next_attempt_at = FAILED, 2, None
        failed.last_status_code, failed.last_error, failed.last_duration_ms = 500, "HTTP 500", 12
        session.add_all(
            [
                WebhookAttempt(
                    delivery_id=failed.id,
                    attempt=n,
                    started_at=started + timedelta(seconds=n),
                    status_code=500,
                    duration_ms=10 + n,
                    error="HTTP 500",
                )
                for n in (1, 2)
            ]
        )
        succeeded.status, succeeded.attempts, succeeded.next_attempt_at = SUCCEEDED, 1, None
        succeeded.delivered_at, succeeded.last_status_code = started, 204

    listed = await client.get(url + "/deliveries", headers=account.headers)
    assert listed.status_code == 200
    rows = listed.json()["data"]
    assert [row["id"] for row in rows] == ids[::-1]
    by_id = {row["id"]: row for row in rows}
    assert by_id[ids[0]]["status"] == FAILED
    assert (by_id[ids[0]]["last_status_code"], by_id[ids[0]]["last_error"]) == (500, "HTTP 500")
    assert (by_id[ids[0]]["attempts"], by_id[ids[0]]["next_retry_at"]) == (2, None)
    assert by_id[ids[1]]["delivered_at"] is not None
    assert by_id[ids[2]]["next_retry_at"] is not None

    only_failed = await client.get(url + "/deliveries?status=failed", headers=account.headers)
    assert [row["id"] for row in only_failed.json()["data"]] == [ids[0]]
    bad_status = await client.get(url + "/deliveries?status=lost", headers=account.headers)
    assert bad_status.status_code == 400

    detail = await client.get(f"{url}/deliveries/{ids[0]}", headers=account.headers)
    assert detail.status_code == 200
    assert [
        (a["attempt"], a["status_code"], a["duration_ms"]) for a in detail.json()["attempt_log"]
    ] == [(1, 500, 11), (2, 500, 12)]
    assert detail.json()["payload"]["event"] == "ping"
    message_id = detail.json()["message_id"]

    await app.state.db.notifications.wait(DELIVERIES_DUE, 0)  # drop the pings' wake-up
    again = await client.post(f"{url}/deliveries/{ids[0]}/redeliver", headers=account.headers)
    assert again.status_code == 202, again.text
    assert (again.json()["id"], again.json()["message_id"]) == (ids[0], message_id)
    assert (again.json()["status"], again.json()["attempts"]) == (PENDING, 2)
    assert await app.state.db.notifications.wait(DELIVERIES_DUE, 0.01)
    async with app.state.db.session_scope() as session:
        stored = await session.get(WebhookDelivery, ids[0])
        assert stored is not None
        assert stored.status == PENDING
        assert stored.next_attempt_at is not None
        assert stored.next_attempt_at <= utcnow()

    redone = await client.post(f"{url}/deliveries/{ids[1]}/redeliver", headers=account.headers)
    assert redone.status_code == 202
    assert (redone.json()["status"], redone.json()["delivered_at"]) == (PENDING, None)

    other = await client.post(
        "/api/v1/webhooks", headers=account.headers, json={"url": PUBLIC_URL, "events": ["*"]}
    )
    wrong_parent = await client.get(
        f"{other.headers['Location']}/deliveries/{ids[0]}", headers=account.headers
    )
    assert wrong_parent.status_code == 404
    missing = await client.post(f"{url}/deliveries/999999/redeliver", headers=account.headers)
    assert missing.status_code == 404


async def _event_count(app: FastAPI) -> int:
    async with app.state.db.session_scope() as session:
        return len((await session.scalars(select(Event.id))).all())


async def test_a_disabled_webhook_cannot_be_pinged(app: FastAPI, client: httpx.AsyncClient) -> None:
    account = await make_account(app)
    created = await client.post(
        "/api/v1/webhooks",
        headers=account.headers,
        json={"url": PUBLIC_URL, "events": ["*"], "active": False},
    )
    assert created.json()["active"] is False
    refused = await client.post(created.headers["Location"] + "/test", headers=account.headers)
    assert refused.status_code == 409
    assert refused.json()["error"]["code"] == "RESOURCE_CONFLICT"
    assert await stored_deliveries(app) == []


@pytest.mark.parametrize("settings_overrides", [{}])
async def test_webhook_routes_count_against_the_rate_limit(
    app: FastAPI, client: httpx.AsyncClient
) -> None:
    account = await make_account(app)
    first = await client.get("/api/v1/webhooks", headers=account.headers)
    second = await client.get("/api/v1/webhooks", headers=account.headers)
    assert first.status_code == second.status_code == 200
    remaining = [int(r.headers["X-RateLimit-Remaining"]) for r in (first, second)]
    assert remaining[1] == remaining[0] - 1


async def test_the_openapi_document_describes_the_routes(client: httpx.AsyncClient) -> None:
    document = (await client.get("/openapi.json")).json()
    paths = document["paths"]
    assert set(paths["/api/v1/webhooks"]) == {"get", "post"}
    assert set(paths["/api/v1/webhooks/{webhook_id}"]) == {"get", "patch", "delete"}
    for suffix in ("/rotate-secret", "/test", "/deliveries/{delivery_id}/redeliver"):
        assert "post" in paths["/api/v1/webhooks/{webhook_id}" + suffix]
    created = paths["/api/v1/webhooks"]["post"]["responses"]["201"]
    assert "WebhookWithSecret" in str(created)
