"""Delivery and the endpoint's state: 410 and long failure disable it, PATCH re-enables it and
its backlog goes out; redeliver, rotate-secret, ownership and the SSRF guard at delivery."""

from __future__ import annotations

import asyncio
from datetime import timedelta

import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy import update
from standardwebhooks import Webhook, WebhookVerificationError

from rostra.webhooks.models import PENDING, SUCCEEDED, WebhookEndpoint
from tests.factories import make_account, make_project
from tests.webhooks.endpoints import make_endpoint, stored_deliveries, stored_endpoint
from tests.webhooks.receiver import Receiver, Reply
from tests.webhooks.workers import FAST_DELIVERY, MovableClock, delivery, running_worker, until


@pytest.fixture
def settings_overrides() -> dict[str, object]:
    return dict(FAST_DELIVERY)


async def create_project(client: httpx.AsyncClient, headers: dict[str, str], name: str) -> int:
    created = await client.post("/api/v1/projects", headers=headers, json={"name": name})
    assert created.status_code == 201, created.text
    return int(created.json()["id"])


async def endpoint_state(app: FastAPI, endpoint_id: int) -> WebhookEndpoint:
    found = await stored_endpoint(app, endpoint_id)
    assert found is not None
    return found


async def test_410_disables_the_endpoint_and_patch_active_sends_the_backlog(
    app: FastAPI, client: httpx.AsyncClient
) -> None:
    alice = await make_account(app)
    clock = MovableClock()
    async with Receiver() as receiver, running_worker(app, clock):
        endpoint = await make_endpoint(app, alice.user, url=receiver.url())
        receiver.script(Reply(410))
        await create_project(client, alice.headers, "first")
        await receiver.wait_for(1)
        await until(lambda: _disabled(app, endpoint.id))

        gone = await endpoint_state(app, endpoint.id)
        assert gone.disabled_reason == "410 Gone from the receiver"
        shown = await client.get(f"/api/v1/webhooks/{endpoint.id}", headers=alice.headers)
        assert shown.json()["active"] is False

        # Nothing goes out while it is disabled, however long: the row waits, pending. Events
        # while it is disabled are not queued for it at all (fan-out skips inactive endpoints).
        await create_project(client, alice.headers, "second")
        clock.advance(3600)
        await asyncio.sleep(0.3)
        assert len(receiver.requests()) == 1
        [waiting] = await stored_deliveries(app)
        assert waiting.status == PENDING

        enabled = await client.patch(
            f"/api/v1/webhooks/{endpoint.id}", headers=alice.headers, json={"active": True}
        )
        assert enabled.status_code == 200, enabled.text
        first, again = await receiver.wait_for(2)
        await until(lambda: _all_delivered(app))

    assert first.webhook_id == again.webhook_id == waiting.message_id
    assert b'"first"' in again.body
    state = await endpoint_state(app, endpoint.id)
    assert (state.active, state.disabled_reason, state.failing_since) == (True, None, None)


async def test_an_endpoint_failing_for_days_is_disabled_with_the_reason(
    app: FastAPI, client: httpx.AsyncClient
) -> None:
    alice = await make_account(app)
    clock = MovableClock()
    async with Receiver(default=Reply(500)) as receiver, running_worker(app, clock):
        endpoint = await make_endpoint(app, alice.user, url=receiver.url(), max_attempts=20)
        await create_project(client, alice.headers, "failing")
        await receiver.wait_for(1)
        await until(lambda: _failing(app, endpoint.id))
        since = (await endpoint_state(app, endpoint.id)).failing_since
        assert since is not None

        # Four days of failures: still enabled; the streak keeps its first failure.
        clock.advance(4 * 86_400)
        await receiver.wait_for(2)
        await asyncio.sleep(0.2)
        still = await endpoint_state(app, endpoint.id)
        assert (still.active, still.failing_since) == (True, since)

        clock.advance(1.5 * 86_400)
        await receiver.wait_for(3)
        await until(lambda: _disabled(app, endpoint.id))

    disabled = await endpoint_state(app, endpoint.id)
    assert disabled.disabled_reason is not None
    assert "more than 5 days" in disabled.disabled_reason
    assert f"{since:%Y-%m-%d %H:%M}" in disabled.disabled_reason


async def test_a_success_ends_the_failure_streak(app: FastAPI, client: httpx.AsyncClient) -> None:
    alice = await make_account(app)
    clock = MovableClock()
    async with Receiver() as receiver, running_worker(app, clock):
        endpoint = await make_endpoint(app, alice.user, url=receiver.url())
        async with app.state.db.session_scope() as session:
            await session.execute(
                update(WebhookEndpoint)
                .where(WebhookEndpoint.id == endpoint.id)
                .values(failing_since=clock() - timedelta(days=4))
            )
        await create_project(client, alice.headers, "recovered")
        await receiver.wait_for(1)
        await until(lambda: _all_delivered(app))
        await until(lambda: _not_failing(app, endpoint.id))
    assert (await endpoint_state(app, endpoint.id)).active is True


async def test_a_host_resolving_to_loopback_is_refused_at_delivery(
    app: FastAPI, client: httpx.AsyncClient
) -> None:
    """Registered while private targets were allowed; the worker no longer allows them."""
    alice = await make_account(app)
    async with Receiver() as receiver, running_worker(app, webhooks_allow_private=False):
        await make_endpoint(app, alice.user, url=receiver.url(host="localhost"))
        await create_project(client, alice.headers, "internal")
        await until(lambda: _attempted(app))
        await asyncio.sleep(0.2)
    assert receiver.requests() == []
    [refused] = await stored_deliveries(app)
    assert refused.status == PENDING
    assert refused.last_status_code is None
    assert refused.last_error is not None
    assert refused.last_error.startswith("refused: the host localhost resolves to 127.0.0.1")
    assert "loopback" in refused.last_error


async def test_redeliver_sends_the_same_message_again(
    app: FastAPI, client: httpx.AsyncClient
) -> None:
    alice = await make_account(app)
    async with Receiver() as receiver, running_worker(app):
        endpoint = await make_endpoint(app, alice.user, url=receiver.url())
        await create_project(client, alice.headers, "again")
        await receiver.wait_for(1)
        await until(lambda: _all_delivered(app))
        [stored] = await stored_deliveries(app)

        answer = await client.post(
            f"/api/v1/webhooks/{endpoint.id}/deliveries/{stored.id}/redeliver",
            headers=alice.headers,
        )
        assert answer.status_code == 202, answer.text
        first, second = await receiver.wait_for(2)
        await until(lambda: _all_delivered(app))

    assert first.webhook_id == second.webhook_id == stored.message_id
    assert first.body == second.body
    assert (await delivery(app, stored.id)).attempts == 2


async def test_after_rotate_secret_both_secrets_verify(
    app: FastAPI, client: httpx.AsyncClient
) -> None:
    alice = await make_account(app)
    async with Receiver() as receiver, running_worker(app):
        endpoint = await make_endpoint(app, alice.user, url=receiver.url())
        rotated = await client.post(
            f"/api/v1/webhooks/{endpoint.id}/rotate-secret", headers=alice.headers
        )
        assert rotated.status_code == 200, rotated.text
        new_secret = rotated.json()["secret"]
        assert new_secret != endpoint.secret
        await create_project(client, alice.headers, "rotated")
        [request] = await receiver.wait_for(1)

    signatures = request.headers["webhook-signature"].split(" ")
    assert len(signatures) == 2
    Webhook(new_secret).verify(request.body, request.headers)
    Webhook(endpoint.secret).verify(request.body, request.headers)
    # Each signature stands for one secret: the new one first.
    alone = {**request.headers, "webhook-signature": signatures[0]}
    Webhook(new_secret).verify(request.body, alone)
    with pytest.raises(WebhookVerificationError):
        Webhook(endpoint.secret).verify(request.body, alone)


async def test_once_the_rotation_ends_only_the_new_secret_signs(
    app: FastAPI, client: httpx.AsyncClient
) -> None:
    alice = await make_account(app)
    async with Receiver() as receiver, running_worker(app):
        endpoint = await make_endpoint(app, alice.user, url=receiver.url())
        await client.post(f"/api/v1/webhooks/{endpoint.id}/rotate-secret", headers=alice.headers)
        async with app.state.db.session_scope() as session:
            await session.execute(
                update(WebhookEndpoint)
                .where(WebhookEndpoint.id == endpoint.id)
                .values(previous_secret_expires_at=WebhookEndpoint.created_at)
            )
        await create_project(client, alice.headers, "after the rotation")
        [request] = await receiver.wait_for(1)
    assert len(request.headers["webhook-signature"].split(" ")) == 1
    with pytest.raises(WebhookVerificationError):
        Webhook(endpoint.secret).verify(request.body, request.headers)


async def test_only_events_the_owner_may_see_arrive(
    app: FastAPI, client: httpx.AsyncClient
) -> None:
    alice, bob = await make_account(app), await make_account(app)
    async with Receiver() as alices, Receiver() as bobs, running_worker(app):
        await make_endpoint(app, alice.user, url=alices.url())
        await make_endpoint(app, bob.user, url=bobs.url())
        await create_project(client, bob.headers, "bob's private project")
        await make_project(app, alice.user, name="alice's project")
        [for_bob] = await bobs.wait_for(1)
        [for_alice] = await alices.wait_for(1)
        await asyncio.sleep(0.2)
        assert len(alices.requests()) == len(bobs.requests()) == 1
    assert b"bob's private project" in for_bob.body
    assert b"alice's project" in for_alice.body


async def test_a_ping_arrives(app: FastAPI, client: httpx.AsyncClient) -> None:
    alice = await make_account(app)
    async with Receiver() as receiver, running_worker(app):
        endpoint = await make_endpoint(app, alice.user, url=receiver.url())
        answer = await client.post(f"/api/v1/webhooks/{endpoint.id}/test", headers=alice.headers)
        assert answer.status_code == 202, answer.text
        [request] = await receiver.wait_for(1)
    body = Webhook(endpoint.secret).verify(request.body, request.headers)
    assert body["event"] == "ping"
    await until(lambda: _all_delivered(app))


async def _disabled(app: FastAPI, endpoint_id: int) -> bool:
    return not (await endpoint_state(app, endpoint_id)).active


async def _failing(app: FastAPI, endpoint_id: int) -> bool:
    return (await endpoint_state(app, endpoint_id)).failing_since is not None


async def _not_failing(app: FastAPI, endpoint_id: int) -> bool:
    return not await _failing(app, endpoint_id)


async def _all_delivered(app: FastAPI) -> bool:
    return all(d.status == SUCCEEDED for d in await stored_deliveries(app))


async def _attempted(app: FastAPI) -> bool:
    return all(d.attempts > 0 and d.last_error for d in await stored_deliveries(app))
