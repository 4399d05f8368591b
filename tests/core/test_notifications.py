"""After-commit notifications: a waiter hears a topic only once the transaction commits."""

from __future__ import annotations

import asyncio

import pytest
from fastapi import FastAPI

from rostra.core.db import Notifications, notify_after_commit


async def test_wait_times_out_without_a_notification() -> None:
    assert await Notifications().wait("t", 0.01) is False


async def test_a_notification_sent_before_the_wait_is_kept_once() -> None:
    notifications = Notifications()
    notifications.notify("t")
    notifications.notify("t")
    assert await notifications.wait("t", 0.01) is True
    assert await notifications.wait("t", 0.01) is False
    assert await notifications.wait("other", 0.01) is False


async def test_every_waiter_wakes() -> None:
    notifications = Notifications()
    waiters = [asyncio.create_task(notifications.wait("t", 1.0)) for _ in range(3)]
    await asyncio.sleep(0)
    notifications.notify("t")
    assert await asyncio.gather(*waiters) == [True, True, True]


async def test_only_a_committed_transaction_notifies(app: FastAPI) -> None:
    db = app.state.db
    waiter = asyncio.create_task(db.notifications.wait("t", 1.0))
    async with db.session_scope() as session:
        notify_after_commit(session, "t")
        await asyncio.sleep(0.01)
        assert not waiter.done()  # not before the commit
    assert await waiter is True

    async def notify_then_fail() -> None:
        async with db.session_scope() as session:
            notify_after_commit(session, "t")
            raise RuntimeError

    with pytest.raises(RuntimeError):
        await notify_then_fail()
    assert await db.notifications.wait("t", 0.01) is False
