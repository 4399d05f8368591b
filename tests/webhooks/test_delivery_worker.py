"""The worker itself: the lease, claims shared by workers, concurrency bounds, shutdown, the
embedded worker in the server's lifespan, and what /status and /metrics show."""

from __future__ import annotations

import asyncio
import time

import httpx
import pytest
from fastapi import FastAPI

from rostra.lib.webhooks.sender import SendOutcome
from rostra.webhooks.jobs import DeliveryWorker, Result
from rostra.webhooks.models import PENDING, SUCCEEDED
from tests.factories import make_account
from tests.webhooks.endpoints import make_endpoint, stored_deliveries
from tests.webhooks.receiver import Receiver, Reply
from tests.webhooks.workers import (
    FAST_DELIVERY,
    MovableClock,
    attempts,
    delivery,
    running_worker,
    until,
)

QUICK = {"webhooks_poll_seconds": 0.05}


@pytest.fixture
def settings_overrides() -> dict[str, object]:
    # A long poll: whatever arrives quickly was woken by the commit, not found by polling.
    return {**FAST_DELIVERY, "webhooks_poll_seconds": 30.0, "metrics_public": True}


async def create_projects(client: httpx.AsyncClient, headers: dict[str, str], count: int) -> None:
    for n in range(count):
        created = await client.post("/api/v1/projects", headers=headers, json={"name": f"p{n}"})
        assert created.status_code == 201, created.text


def idle_worker(app: FastAPI, clock: MovableClock) -> DeliveryWorker:
    return DeliveryWorker(app.state.db, app.state.settings, clock=clock)


async def test_a_claim_whose_worker_died_goes_out_again_after_the_lease(
    app: FastAPI, client: httpx.AsyncClient
) -> None:
    alice = await make_account(app)
    await make_endpoint(app, alice.user)
    await create_projects(client, alice.headers, 1)
    clock = MovableClock()
    dead, next_one = idle_worker(app, clock), idle_worker(app, clock)
    try:
        [lost] = await dead.claim(10)  # ... and the process is killed before it records anything
        assert lost.attempt == 1
        stored = await delivery(app, lost.delivery_id)
        assert (stored.status, stored.attempts, stored.next_attempt_at) == (
            PENDING,
            1,
            lost.lease_end,
        )
        assert await next_one.claim(10) == []
        clock.advance(dead.lease.total_seconds() - 1)
        assert await next_one.claim(10) == []
        clock.advance(2)
        [retaken] = await next_one.claim(10)
        assert (retaken.delivery_id, retaken.message_id) == (lost.delivery_id, lost.message_id)
        assert retaken.attempt == 2

        # The first worker's late word no longer counts: the lease is the second one's.
        ok = SendOutcome(status_code=200, duration_ms=1)
        await dead.record([Result(lost, ok, clock())])
        assert (await delivery(app, lost.delivery_id)).status == PENDING
        await next_one.record([Result(retaken, ok, clock())])
        assert (await delivery(app, lost.delivery_id)).status == SUCCEEDED
        assert [a.attempt for a in await attempts(app, lost.delivery_id)] == [1, 2]
    finally:
        await dead.sender.aclose()
        await next_one.sender.aclose()


async def test_workers_claiming_at_once_never_share_a_delivery(
    app: FastAPI, client: httpx.AsyncClient
) -> None:
    alice = await make_account(app)
    for _ in range(5):
        await make_endpoint(app, alice.user)
    await create_projects(client, alice.headers, 8)  # 40 deliveries
    clock = MovableClock()
    workers = [idle_worker(app, clock) for _ in range(3)]
    try:
        claims = await asyncio.gather(*(worker.claim(20) for worker in workers))
        ids = [claim.delivery_id for batch in claims for claim in batch]
        assert len(ids) == len(set(ids))
        assert all(len(batch) <= 20 for batch in claims)
        more = await asyncio.gather(*(worker.claim(20) for worker in workers))
        ids += [claim.delivery_id for batch in more for claim in batch]
        assert sorted(ids) == sorted(d.id for d in await stored_deliveries(app))
    finally:
        for worker in workers:
            await worker.sender.aclose()


async def test_sends_to_one_endpoint_are_bounded(app: FastAPI, client: httpx.AsyncClient) -> None:
    alice = await make_account(app)
    async with (
        Receiver(default=Reply(200, delay=0.2)) as receiver,
        running_worker(app, **QUICK, webhooks_endpoint_concurrency=2, webhooks_concurrency=50),
    ):
        await make_endpoint(app, alice.user, url=receiver.url())
        await create_projects(client, alice.headers, 6)
        await receiver.wait_for(6)
    assert receiver.most_at_once == 2


async def test_sends_overall_are_bounded(app: FastAPI, client: httpx.AsyncClient) -> None:
    alice = await make_account(app)
    async with (
        Receiver(default=Reply(200, delay=0.2)) as receiver,
        running_worker(app, **QUICK, webhooks_endpoint_concurrency=10, webhooks_concurrency=3),
    ):
        for n in range(4):
            await make_endpoint(app, alice.user, url=receiver.url(f"/hook/{n}"))
        await create_projects(client, alice.headers, 3)  # 12 deliveries
        await receiver.wait_for(12)
    assert receiver.most_at_once == 3


async def test_stopping_lets_a_send_under_way_finish(
    app: FastAPI, client: httpx.AsyncClient
) -> None:
    alice = await make_account(app)
    async with Receiver(default=Reply(200, delay=0.5)) as receiver:
        worker = DeliveryWorker(app.state.db, app.state.settings.model_copy(update=QUICK))
        running = asyncio.create_task(worker.run())
        await make_endpoint(app, alice.user, url=receiver.url())
        await create_projects(client, alice.headers, 1)
        await receiver.wait_for(1)
        worker.stop()
        await asyncio.wait_for(running, 5)
    [done] = await stored_deliveries(app)
    assert done.status == SUCCEEDED


async def test_a_send_cut_short_at_shutdown_is_handed_back(
    app: FastAPI, client: httpx.AsyncClient
) -> None:
    alice = await make_account(app)
    async with Receiver(default=Reply(200, delay=5)) as receiver:
        worker = DeliveryWorker(app.state.db, app.state.settings.model_copy(update=QUICK))
        worker.shutdown_grace = 0.1
        running = asyncio.create_task(worker.run())
        await make_endpoint(app, alice.user, url=receiver.url())
        await create_projects(client, alice.headers, 1)
        await receiver.wait_for(1)
        started = time.monotonic()
        worker.stop()
        await asyncio.wait_for(running, 5)
        assert time.monotonic() - started < 2
    [cut] = await stored_deliveries(app)
    assert (cut.status, cut.attempts) == (PENDING, 1)
    assert cut.next_attempt_at is not None
    assert cut.next_attempt_at <= MovableClock()()  # due again now, not at the lease's end


async def test_the_embedded_worker_is_woken_by_the_commit(
    app: FastAPI, client: httpx.AsyncClient
) -> None:
    alice = await make_account(app)
    async with Receiver() as receiver, app.router.lifespan_context(app):
        await make_endpoint(app, alice.user, url=receiver.url())
        sent = time.time()
        await create_projects(client, alice.headers, 1)
        [request] = await receiver.wait_for(1, within=5)
        assert request.at - sent < 1.0  # the poll is 30 s: the commit woke it
        await until(lambda: _all(app, SUCCEEDED))


class TestTurnedOff:
    @pytest.fixture
    def settings_overrides(self) -> dict[str, object]:
        return {**FAST_DELIVERY, "webhooks_worker_enabled": False}

    async def test_no_embedded_worker(self, app: FastAPI, client: httpx.AsyncClient) -> None:
        alice = await make_account(app)
        async with Receiver() as receiver:
            await make_endpoint(app, alice.user, url=receiver.url())
            async with app.router.lifespan_context(app):
                await create_projects(client, alice.headers, 1)
                await asyncio.sleep(0.3)
        assert receiver.requests() == []


async def test_status_shows_the_queue_and_metrics_count_outcomes(
    app: FastAPI, client: httpx.AsyncClient
) -> None:
    alice = await make_account(app)
    async with Receiver() as receiver:
        await make_endpoint(app, alice.user, url=receiver.url())
        receiver.script(Reply(500))
        await create_projects(client, alice.headers, 3)
        status = await client.get("/status")
        assert status.json()["webhook_queue_depth"] == 3
        async with running_worker(app, **QUICK, webhooks_endpoint_concurrency=1):
            await receiver.wait_for(3)
            await until(lambda: _recorded(app, 3))
        status = await client.get("/status")
        assert status.json()["webhook_queue_depth"] == 0  # the failed one is due in 5 s

    text = (await client.get("/metrics")).text
    assert 'rostra_webhook_deliveries_total{outcome="success"} 2.0' in text
    assert 'rostra_webhook_deliveries_total{outcome="retry"} 1.0' in text
    assert "rostra_webhook_delivery_duration_seconds_count 3.0" in text
    assert "rostra_webhook_queue_depth 0.0" in text


async def _recorded(app: FastAPI, count: int) -> bool:
    return sum(d.last_status_code is not None for d in await stored_deliveries(app)) == count


async def _all(app: FastAPI, status: str) -> bool:
    return all(d.status == status for d in await stored_deliveries(app))


async def test_status_answers_while_the_queue_cannot_be_counted(
    app: FastAPI, client: httpx.AsyncClient
) -> None:
    async def database_away() -> int:
        raise ConnectionRefusedError("the database is away")

    app.state.metrics.webhook_queue_depth_probe = database_away
    status = await client.get("/status")
    assert status.status_code == 200
    assert status.json()["webhook_queue_depth"] is None
    assert (await client.get("/metrics")).status_code == 200
