"""Never lost: the real ``rostra worker`` process, SIGKILLed again and again while it delivers
1,000 events, then restarted; every event arrives at least once, a duplicate with the same
webhook-id and body as the original."""

from __future__ import annotations

import asyncio
import signal
import subprocess
import time
from collections import defaultdict
from pathlib import Path

import orjson
import pytest
from fastapi import FastAPI
from pydantic import BaseModel
from sqlalchemy import func, select

from rostra.events import service as events
from rostra.webhooks.models import SUCCEEDED, WebhookDelivery
from tests.cli.helpers import ROSTRA, rostra_env
from tests.factories import make_user
from tests.webhooks.endpoints import make_endpoint, stored_deliveries
from tests.webhooks.receiver import Receiver, Reply

pytestmark = pytest.mark.e2e

EVENTS = 1_000
KILLS = 4
TIME_LIMIT_SECONDS = 60


@pytest.fixture
def settings_overrides() -> dict[str, object]:
    return {"webhooks_allow_private": True}


def start_worker(database_url: str, log: Path) -> subprocess.Popen[bytes]:
    env = rostra_env(
        database_url,
        WEBHOOKS_ALLOW_PRIVATE="true",
        WEBHOOKS_POLL_SECONDS="0.05",
        WEBHOOKS_TIMEOUT_SECONDS="1",
        WEBHOOKS_LEASE_SECONDS="2",  # a killed worker's claims come back quickly
        WEBHOOKS_RETRY_DELAYS_SECONDS="0.2",
        WEBHOOKS_CONCURRENCY="20",
        WEBHOOKS_ENDPOINT_CONCURRENCY="20",
        LOG_LEVEL="warning",
    )
    with log.open("ab") as out:
        return subprocess.Popen([ROSTRA, "worker"], env=env, stdout=out, stderr=subprocess.STDOUT)


class Thing(BaseModel):
    n: int


async def produce_events(app: FastAPI, owner_id: int) -> None:
    """1,000 events recorded through the events service (which fans them out), 100 per
    transaction, as a busy API would."""
    for batch in range(EVENTS // 100):
        async with app.state.db.transaction() as writes:
            for n in range(100):
                await events.record(
                    writes,
                    event_type="data.created",
                    data=Thing(n=batch * 100 + n),
                    owner_id=owner_id,
                )


async def test_sigkilled_workers_lose_nothing(
    app: FastAPI, database_url: str, tmp_path: Path
) -> None:
    deadline = time.monotonic() + TIME_LIMIT_SECONDS
    owner = await make_user(app)
    log = tmp_path / "worker.log"
    # Answers take a little while, so that every kill lands on sends under way.
    async with Receiver(default=Reply(200, delay=0.01)) as receiver:
        await make_endpoint(app, owner, url=receiver.url())
        await produce_events(app, owner.id)

        for kill in range(KILLS):
            worker = start_worker(database_url, log)
            target = (kill + 1) * EVENTS // (KILLS + 2)
            while len(receiver.received) < target:
                assert worker.poll() is None, log.read_text()
                assert time.monotonic() < deadline, f"only {len(receiver.received)} arrived"
                await asyncio.sleep(0.005)
            worker.send_signal(signal.SIGKILL)
            worker.wait()
            assert worker.returncode == -signal.SIGKILL

        last = start_worker(database_url, log)
        try:
            while not await _all_succeeded(app):
                assert last.poll() is None, log.read_text()
                assert time.monotonic() < deadline, f"{len(receiver.received)} requests so far"
                await asyncio.sleep(0.1)
        finally:
            last.send_signal(signal.SIGTERM)
            assert await asyncio.to_thread(last.wait, 15) == 0, log.read_text()

    deliveries = await stored_deliveries(app)
    assert len(deliveries) == EVENTS
    bodies_by_id: dict[str, set[bytes]] = defaultdict(set)
    for request in receiver.requests():
        bodies_by_id[request.webhook_id].add(request.body)
    # Every delivery arrived, under its own webhook-id, always with the same body.
    assert set(bodies_by_id) == {d.message_id for d in deliveries}
    assert all(len(bodies) == 1 for bodies in bodies_by_id.values())
    events_by_id = {orjson.loads(next(iter(b)))["id"] for b in bodies_by_id.values()}
    assert len(events_by_id) == EVENTS
    # The kills landed mid-delivery: some arrived twice (at least once, never lost).
    assert len(receiver.requests()) > EVENTS


async def _all_succeeded(app: FastAPI) -> bool:
    query = select(func.count()).where(WebhookDelivery.status != SUCCEEDED)
    async with app.state.db.session_scope() as session:
        return (await session.execute(query)).scalar_one() == 0
