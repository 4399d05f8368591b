"""Delivery to real loopback receivers: signed, retried with the same webhook-id, recorded."""

from __future__ import annotations

from datetime import timedelta

import httpx
import pytest
from fastapi import FastAPI
from standardwebhooks import Webhook

from rostra.webhooks.models import FAILED, PENDING, SUCCEEDED
from tests.factories import make_account
from tests.webhooks.endpoints import make_endpoint, stored_deliveries, stored_endpoint
from tests.webhooks.receiver import Receiver, Reply
from tests.webhooks.workers import (
    FAST_DELIVERY,
    MovableClock,
    attempts,
    delivery,
    running_worker,
    until,
)


@pytest.fixture
def settings_overrides() -> dict[str, object]:
    return dict(FAST_DELIVERY)


async def create_project(client: httpx.AsyncClient, headers: dict[str, str], name: str) -> None:
    created = await client.post("/api/v1/projects", headers=headers, json={"name": name})
    assert created.status_code == 201, created.text


async def test_a_delivery_is_signed_and_verifies_with_standardwebhooks(
    app: FastAPI, client: httpx.AsyncClient
) -> None:
    alice = await make_account(app)
    async with Receiver() as receiver, running_worker(app):
        endpoint = await make_endpoint(app, alice.user, url=receiver.url())
        await create_project(client, alice.headers, "signed")
        [request] = await receiver.wait_for(1)
        [stored] = await stored_deliveries(app)
        await until(lambda: _status_is(app, stored.id, SUCCEEDED))

    assert request.path == "/hook"
    assert request.body == stored.payload.encode()
    assert request.headers["content-type"] == "application/json"
    assert request.headers["user-agent"].startswith("Rostra-Webhooks/")
    assert request.webhook_id == stored.message_id
    body = Webhook(endpoint.secret).verify(request.body, request.headers)
    assert body["event"] == "project.created"
    assert body["data"]["name"] == "signed"

    done = await delivery(app, stored.id)
    assert (done.attempts, done.last_status_code, done.last_error) == (1, 200, None)
    assert done.next_attempt_at is None
    assert done.delivered_at is not None
    [attempt] = await attempts(app, stored.id)
    assert (attempt.attempt, attempt.status_code, attempt.error) == (1, 200, None)
    assert attempt.duration_ms >= 0


async def test_a_raw_client_secret_signs_with_its_utf8_bytes(
    app: FastAPI, client: httpx.AsyncClient
) -> None:
    alice = await make_account(app)
    async with Receiver() as receiver, running_worker(app):
        await make_endpoint(app, alice.user, url=receiver.url(), secret="your_webhook_secret")
        await create_project(client, alice.headers, "raw secret")
        [request] = await receiver.wait_for(1)
    Webhook(b"your_webhook_secret").verify(request.body, request.headers)


async def test_failures_are_retried_on_the_schedule_with_the_same_webhook_id(
    app: FastAPI, client: httpx.AsyncClient
) -> None:
    alice = await make_account(app)
    clock = MovableClock()
    async with Receiver() as receiver, running_worker(app, clock):
        endpoint = await make_endpoint(app, alice.user, url=receiver.url())
        receiver.script(Reply(500, body=b"boom"), Reply(503))
        await create_project(client, alice.headers, "retried")
        await receiver.wait_for(1)
        [stored] = await stored_deliveries(app)
        await until(lambda: _attempts_recorded(app, stored.id, 1))

        first = await delivery(app, stored.id)
        assert (first.status, first.attempts, first.last_status_code) == (PENDING, 1, 500)
        assert first.last_error == "HTTP 500: boom"
        assert first.next_attempt_at is not None
        wait = first.next_attempt_at - clock()
        assert timedelta(seconds=3.5) < wait < timedelta(seconds=6)  # 5 s, +-15 %

        clock.advance(6)
        await receiver.wait_for(2)
        await until(lambda: _attempts_recorded(app, stored.id, 2))
        second = await delivery(app, stored.id)
        assert (second.status, second.attempts, second.last_status_code) == (PENDING, 2, 503)
        assert second.next_attempt_at is not None
        wait = second.next_attempt_at - clock()
        assert timedelta(seconds=250) < wait < timedelta(seconds=350)  # 300 s, +-15 %

        clock.advance(350)
        await receiver.wait_for(3)
        await until(lambda: _status_is(app, stored.id, SUCCEEDED))

    requests = receiver.requests()
    assert len(requests) == 3
    assert {r.webhook_id for r in requests} == {stored.message_id}
    assert {r.body for r in requests} == {stored.payload.encode()}
    for request in requests:
        Webhook(endpoint.secret).verify(request.body, request.headers)
    tries = await attempts(app, stored.id)
    assert [(a.attempt, a.status_code) for a in tries] == [(1, 500), (2, 503), (3, 200)]
    assert (await stored_endpoint(app, endpoint.id)).failing_since is None  # type: ignore[union-attr]


async def test_retry_after_is_honoured(app: FastAPI, client: httpx.AsyncClient) -> None:
    alice = await make_account(app)
    clock = MovableClock()
    async with Receiver() as receiver, running_worker(app, clock):
        await make_endpoint(app, alice.user, url=receiver.url())
        receiver.script(Reply(429, headers={"Retry-After": "120"}))
        await create_project(client, alice.headers, "later")
        await receiver.wait_for(1)
        [stored] = await stored_deliveries(app)
        await until(lambda: _attempts_recorded(app, stored.id, 1))
        first = await delivery(app, stored.id)
        assert first.next_attempt_at is not None
        wait = first.next_attempt_at - clock()
        assert timedelta(seconds=118) < wait <= timedelta(seconds=120)

        clock.advance(60)  # past the schedule's 5 s, before the receiver's 120 s
        await _quiet(app)
        assert len(receiver.requests()) == 1
        clock.advance(61)
        await receiver.wait_for(2)


async def test_it_gives_up_after_max_attempts(app: FastAPI, client: httpx.AsyncClient) -> None:
    alice = await make_account(app)
    clock = MovableClock()
    async with Receiver(default=Reply(500)) as receiver, running_worker(app, clock):
        await make_endpoint(app, alice.user, url=receiver.url(), max_attempts=2)
        await create_project(client, alice.headers, "doomed")
        await receiver.wait_for(1)
        [stored] = await stored_deliveries(app)
        await until(lambda: _attempts_recorded(app, stored.id, 1))
        clock.advance(10)
        await until(lambda: _status_is(app, stored.id, FAILED))
        clock.advance(10_000)
        await _quiet(app)
    done = await delivery(app, stored.id)
    assert (done.attempts, done.next_attempt_at, done.last_status_code) == (2, None, 500)
    assert len(receiver.requests()) == 2


async def test_a_slow_receiver_times_out_and_is_retried(
    app: FastAPI, client: httpx.AsyncClient
) -> None:
    alice = await make_account(app)
    clock = MovableClock()
    async with (
        Receiver() as receiver,
        running_worker(app, clock, webhooks_timeout_seconds=0.3) as worker,
    ):
        await make_endpoint(app, alice.user, url=receiver.url())
        receiver.script(Reply(200, delay=2))
        await create_project(client, alice.headers, "slow")
        [stored] = await stored_deliveries(app)
        await until(lambda: _attempts_recorded(app, stored.id, 1))
        first = await delivery(app, stored.id)
        assert first.status == PENDING
        assert first.last_status_code is None
        assert first.last_error == "timed out after 0.3 s"
        assert first.last_duration_ms is not None
        assert first.last_duration_ms < 1500
        clock.advance(6)
        await until(lambda: _status_is(app, stored.id, SUCCEEDED))
        assert worker.lease >= timedelta(seconds=60)
    assert {r.webhook_id for r in receiver.requests()} == {stored.message_id}


async def test_a_redirect_is_a_failure_and_not_followed(
    app: FastAPI, client: httpx.AsyncClient
) -> None:
    alice = await make_account(app)
    async with Receiver() as receiver, running_worker(app):
        await make_endpoint(app, alice.user, url=receiver.url())
        receiver.script(Reply(302, headers={"Location": receiver.url("/elsewhere")}))
        await create_project(client, alice.headers, "moved")
        [stored] = await stored_deliveries(app)
        await until(lambda: _attempts_recorded(app, stored.id, 1))
        await _quiet(app)
    assert [r.path for r in receiver.requests()] == ["/hook"]
    done = await delivery(app, stored.id)
    assert (done.status, done.last_status_code) == (PENDING, 302)
    assert done.last_error is not None
    assert "not followed" in done.last_error


async def _status_is(app: FastAPI, delivery_id: int, status: str) -> bool:
    return (await delivery(app, delivery_id)).status == status


async def _attempts_recorded(app: FastAPI, delivery_id: int, count: int) -> bool:
    return len(await attempts(app, delivery_id)) >= count


async def _quiet(app: FastAPI) -> None:
    """Long enough for a polling worker to have sent anything that was due."""
    import asyncio

    await asyncio.sleep(0.3)
