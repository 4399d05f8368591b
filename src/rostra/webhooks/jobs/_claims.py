"""Claiming due deliveries under a lease, handing them back, and counting what is due."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any, cast

from sqlalchemy import Table, bindparam, func, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from rostra.core.db import Database, take_write_turn, utcnow
from rostra.webhooks.models import PENDING, WebhookAttempt, WebhookDelivery, WebhookEndpoint

# Core tables: the worker reads and writes in bulk (executemany), beside the ORM.
deliveries = cast(Table, WebhookDelivery.__table__)
endpoints = cast(Table, WebhookEndpoint.__table__)
attempts = cast(Table, WebhookAttempt.__table__)


@dataclass(frozen=True)
class Claim:
    """A leased delivery with what sending it needs."""

    delivery_id: int
    endpoint_id: int
    message_id: str
    payload: str
    attempt: int
    """This attempt's number (1-based), already counted in the row."""
    lease_end: datetime
    url: str
    secrets: tuple[str, ...]
    """The secrets that sign it: the current one, then a rotated-out one still in its 24 h."""
    max_attempts: int
    endpoint_failing: bool
    """The endpoint was in a failure streak when this was claimed (a success must end it)."""


async def due_rows(
    session: AsyncSession, *, now: datetime, limit: int, skip_endpoints: list[int], postgres: bool
) -> list[Any]:
    """Due rows of active endpoints (but those skipped), oldest first, locked for this
    transaction: ``SKIP LOCKED`` rows on PostgreSQL, the write lock on SQLite."""
    d, e = deliveries, endpoints
    query = (
        select(
            d.c.id,
            d.c.endpoint_id,
            d.c.message_id,
            d.c.payload,
            d.c.attempts,
            e.c.url,
            e.c.secret,
            e.c.previous_secret,
            e.c.previous_secret_expires_at,
            e.c.max_attempts,
            e.c.failing_since,
        )
        .join_from(d, e, e.c.id == d.c.endpoint_id)
        .where(d.c.status == PENDING, d.c.next_attempt_at <= now, e.c.active.is_(True))
        .order_by(d.c.next_attempt_at)
        .limit(limit)
    )
    if skip_endpoints:
        query = query.where(d.c.endpoint_id.not_in(skip_endpoints))
    if postgres:
        return list((await session.execute(query.with_for_update(skip_locked=True, of=d))).all())
    # SQLite: look before taking the one write lock, so an idle worker's polls never hold up
    # the server's writes; then read again under the lock, as another process may have claimed.
    if not (await session.execute(query.limit(1))).first():
        return []
    await take_write_turn(session, WebhookDelivery)
    return list((await session.execute(query)).all())


async def lease(
    session: AsyncSession, rows: list[Any], *, now: datetime, lease_end: datetime
) -> list[Claim]:
    """Count an attempt for each row and hold it until ``lease_end``."""
    await session.execute(
        update(deliveries)
        .where(deliveries.c.id.in_([row.id for row in rows]))
        .values(attempts=deliveries.c.attempts + 1, next_attempt_at=lease_end)
    )
    return [_claim_of(row, lease_end, now) for row in rows]


def _claim_of(row: Any, lease_end: datetime, now: datetime) -> Claim:
    secrets = [row.secret]
    expires = row.previous_secret_expires_at
    if row.previous_secret and expires is not None and expires > now:
        secrets.append(row.previous_secret)
    return Claim(
        delivery_id=row.id,
        endpoint_id=row.endpoint_id,
        message_id=row.message_id,
        payload=row.payload,
        attempt=row.attempts + 1,
        lease_end=lease_end,
        url=row.url,
        secrets=tuple(secrets),
        max_attempts=row.max_attempts,
        endpoint_failing=row.failing_since is not None,
    )


async def hand_back(
    session: AsyncSession, claims: list[tuple[Claim, bool]], *, now: datetime
) -> None:
    """Make claims due again at once, where the lease is still ours; an attempt that was never
    sent (the bool is False) is uncounted."""
    rows = [
        {"b_id": c.delivery_id, "b_lease": c.lease_end, "b_now": now, "b_unsent": int(not sent)}
        for c, sent in claims
    ]
    await session.execute(_HAND_BACK, rows)


_HAND_BACK = (
    update(deliveries)
    .where(
        deliveries.c.id == bindparam("b_id"),
        deliveries.c.status == PENDING,
        deliveries.c.next_attempt_at == bindparam("b_lease"),
    )
    .values(
        next_attempt_at=bindparam("b_now"),
        attempts=deliveries.c.attempts - bindparam("b_unsent"),
    )
)


async def queue_depth(db: Database, *, now: datetime | None = None) -> int:
    """Deliveries due now that no worker has sent yet (those of disabled endpoints too)."""
    query = (
        select(func.count())
        .select_from(deliveries)
        .where(deliveries.c.status == PENDING, deliveries.c.next_attempt_at <= (now or utcnow()))
    )
    async with db.sessions() as session:
        return int((await session.execute(query)).scalar_one())
