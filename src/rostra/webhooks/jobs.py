"""The delivery worker: claims due deliveries, sends them, records how each went.

The lease is what makes a delivery "never lost". A worker claims due rows of active endpoints
in one short transaction (``FOR UPDATE SKIP LOCKED`` on PostgreSQL, so workers on many hosts
never claim the same row; SQLite has one writer at a time), and in it counts the attempt and
pushes ``next_attempt_at`` to the end of a lease longer than any send. It commits, sends, and
records the outcome only if it still holds the lease (the row is pending with the lease end it
set: a redelivery or another worker that took over an expired lease wins). A worker killed
mid-send leaves the row due again at the lease end, and the next one sends it again with the
same ``message_id``: receivers de-duplicate by ``webhook-id``.

Throughput: claims come in batches as slots free up, sends run concurrently (bounded overall
and per endpoint), and outcomes are written in batches, a few statements per batch.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, cast

import structlog
from sqlalchemy import Table, bindparam, func, insert, select, update
from sqlalchemy.ext.asyncio import AsyncSession

import rostra
from rostra.core.config import Settings
from rostra.core.db import Database, take_write_turn, utcnow
from rostra.core.metrics import Metrics
from rostra.lib.webhooks.schedule import RetrySchedule
from rostra.lib.webhooks.sender import SendOutcome, WebhookSender
from rostra.lib.webhooks.signing import InvalidSecret, secret_key
from rostra.webhooks.models import (
    DELIVERIES_DUE,
    FAILED,
    PENDING,
    SUCCEEDED,
    WebhookAttempt,
    WebhookDelivery,
    WebhookEndpoint,
)

log = structlog.get_logger(__name__)

USER_AGENT = f"Rostra-Webhooks/{rostra.__version__}"
CLAIM_BATCH = 200
CLAIM_AHEAD = 2
"""A worker holds up to this many times its concurrency in claimed rows, so the next batch is
claimed while the last one is being sent (a claim is a database round trip or two)."""
RECORD_COALESCE_SECONDS = 0.005
"""Outcomes finishing this close together are written in one transaction."""
SHUTDOWN_GRACE_SECONDS = 5.0
RETRY_AFTER_STORAGE_ERROR_SECONDS = 1.0
GONE_REASON = "410 Gone from the receiver"
MAX_ERROR_CHARS = 500

# Core tables: the worker writes in bulk (executemany), beside the ORM's unit of work.
_deliveries = cast(Table, WebhookDelivery.__table__)
_endpoints = cast(Table, WebhookEndpoint.__table__)
_attempts = cast(Table, WebhookAttempt.__table__)

Clock = Callable[[], datetime]


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


@dataclass(frozen=True)
class Result:
    claim: Claim
    outcome: SendOutcome
    started_at: datetime


async def queue_depth(db: Database, *, now: datetime | None = None) -> int:
    """Deliveries due now that no worker has sent yet (those of disabled endpoints too)."""
    query = (
        select(func.count())
        .select_from(_deliveries)
        .where(_deliveries.c.status == PENDING, _deliveries.c.next_attempt_at <= (now or utcnow()))
    )
    async with db.sessions() as session:
        return int((await session.execute(query)).scalar_one())


class DeliveryWorker:
    """Delivers webhooks until ``stop()``; one per process (embedded in the server or alone)."""

    def __init__(
        self,
        db: Database,
        settings: Settings,
        *,
        metrics: Metrics | None = None,
        clock: Clock = utcnow,
        sender: WebhookSender | None = None,
    ) -> None:
        self.db = db
        self.metrics = metrics
        self.clock = clock
        self.poll_seconds = settings.webhooks_poll_seconds
        self.concurrency = settings.webhooks_concurrency
        self.endpoint_concurrency = settings.webhooks_endpoint_concurrency
        self.disable_after = timedelta(days=settings.webhooks_disable_after_days)
        self.lease = timedelta(seconds=settings.webhooks_lease_seconds)
        self.schedule = RetrySchedule(delays=tuple(settings.webhooks_retry_delays_seconds))
        self.shutdown_grace = SHUTDOWN_GRACE_SECONDS
        self.sender = sender or WebhookSender(
            timeout=settings.webhooks_timeout_seconds,
            allow_private=settings.webhooks_allow_private,
            user_agent=USER_AGENT,
            max_connections=settings.webhooks_concurrency,
        )
        self._is_postgres = not settings.is_sqlite
        # SQLite has one writer: this process's claims and records take turns here rather
        # than in SQLite's busy handler, which sleeps up to 100 ms between tries.
        self._sqlite_writes = asyncio.Lock() if settings.is_sqlite else None
        self._slots = asyncio.Semaphore(self.concurrency)
        self._sending: set[asyncio.Task[None]] = set()
        """One task per claimed row: waiting for a slot, or sending."""
        self._in_flight: dict[int, int] = {}
        """Claimed rows per endpoint id (at most the endpoint concurrency)."""
        self._capped: set[int] = set()
        """Endpoints that had more due rows than free slots at the last claim."""
        self._more_due = False
        self._results: list[Result] = []
        self._abandoned: list[tuple[Claim, bool]] = []
        """Claims cut short at shutdown, to hand back, each with whether it was sent."""
        self._handing_back: set[asyncio.Task[None]] = set()
        self._failing: set[int] = set()
        """Endpoints whose failure streak this worker recorded and has not seen end."""
        self._results_ready = asyncio.Event()
        self._wake = asyncio.Event()
        self._stopping = asyncio.Event()

    # -- the loop ---------------------------------------------------------------------------

    async def run(self) -> None:
        """Claim and send until ``stop()``; then let sends finish for a few seconds."""
        recorder = asyncio.create_task(self._record_forever())
        listener = asyncio.create_task(self._listen_for_new_deliveries())
        try:
            while not self._stopping.is_set():
                self._wake.clear()
                try:
                    full = await self.claim_and_send()
                except Exception as exc:  # the database is away: try again after a poll
                    log.warning("webhook_claim_failed", error=repr(exc))
                    full = False
                if full and self._room() >= self._refill_at():
                    continue
                with contextlib.suppress(TimeoutError):
                    async with asyncio.timeout(self.poll_seconds):
                        await self._wake.wait()
        finally:
            listener.cancel()
            await self._finish_sends()
            self._stopping.set()
            self._results_ready.set()
            await recorder
            await self.sender.aclose()

    def stop(self) -> None:
        """Stop claiming; ``run`` returns once the sends under way end (or the grace runs out)."""
        self._stopping.set()
        self._wake.set()

    async def _listen_for_new_deliveries(self) -> None:
        """Deliveries committed in this process wake the loop at once (others wait a poll)."""
        while True:
            if await self.db.notifications.wait(DELIVERIES_DUE, timeout=3600):
                self._wake.set()

    @contextlib.asynccontextmanager
    async def _writing(self) -> AsyncIterator[None]:
        if self._sqlite_writes is None:
            yield
            return
        async with self._sqlite_writes:
            yield

    def _room(self) -> int:
        """How many more rows this worker may claim now."""
        return CLAIM_AHEAD * self.concurrency - len(self._sending)

    def _refill_at(self) -> int:
        """Claim again once there is room for this many: batches, not a row per round trip."""
        return max(1, min(CLAIM_BATCH, self.concurrency) // 4)

    # -- claiming and sending ---------------------------------------------------------------

    async def claim_and_send(self) -> bool:
        """Claim what there is room for and start sending it; True when the claim was full
        (more may be due)."""
        limit = min(CLAIM_BATCH, self._room())
        if limit <= 0:
            return False
        claims = await self.claim(limit)
        for claim in claims:
            self._in_flight[claim.endpoint_id] = self._in_flight.get(claim.endpoint_id, 0) + 1
            task = asyncio.create_task(self._deliver(claim))
            self._sending.add(task)
            task.add_done_callback(self._sending.discard)
        return len(claims) == limit

    async def claim(self, limit: int) -> list[Claim]:
        """Lease up to ``limit`` due deliveries, at most the free slots of each endpoint."""
        now = self.clock()
        saturated = [
            endpoint_id
            for endpoint_id, sending in self._in_flight.items()
            if sending >= self.endpoint_concurrency
        ]
        async with self._writing(), self.db.session_scope() as session:
            rows = await self._due_rows(session, now, limit, saturated)
            taken: list[Any] = []
            room = {e: self.endpoint_concurrency - n for e, n in self._in_flight.items()}
            self._capped.clear()
            for row in rows:
                free = room.get(row.endpoint_id, self.endpoint_concurrency)
                if free <= 0:
                    self._capped.add(row.endpoint_id)
                    continue
                room[row.endpoint_id] = free - 1
                taken.append(row)
            self._more_due = len(rows) == limit or bool(self._capped)
            if not taken:
                return []
            lease_end = now + self.lease
            await session.execute(
                update(_deliveries)
                .where(_deliveries.c.id.in_([row.id for row in taken]))
                .values(attempts=_deliveries.c.attempts + 1, next_attempt_at=lease_end)
            )
        return [_claim_of(row, lease_end, now) for row in taken]

    async def _due_rows(
        self, session: AsyncSession, now: datetime, limit: int, saturated: list[int]
    ) -> list[Any]:
        d, e = _deliveries, _endpoints
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
        if saturated:
            query = query.where(d.c.endpoint_id.not_in(saturated))
        if self._is_postgres:
            query = query.with_for_update(skip_locked=True, of=d)
        else:
            await take_write_turn(session, WebhookDelivery)
        return list((await session.execute(query)).all())

    async def _deliver(self, claim: Claim) -> None:
        sent = False
        try:
            async with self._slots:
                started_at = self.clock()
                if self._stopping.is_set():
                    self._abandoned.append((claim, False))
                    return
                if started_at > claim.lease_end - self.lease / 2:
                    # Waited half its lease for a slot (receivers far slower than the rest):
                    # hand it back untried rather than risk another worker sending it too.
                    self._hand_back_later([(claim, False)])
                    return
                sent = True
                outcome = await self._send(claim)
        except asyncio.CancelledError:
            self._abandoned.append((claim, sent))
            raise
        finally:
            self._release_slot(claim.endpoint_id)
        self._results.append(Result(claim, outcome, started_at))
        self._results_ready.set()
        if self.metrics is not None:
            self.metrics.webhook_delivery_duration.observe(outcome.duration_ms / 1000)

    async def _send(self, claim: Claim) -> SendOutcome:
        try:
            keys = [secret_key(secret) for secret in claim.secrets]
        except InvalidSecret as exc:
            return SendOutcome(status_code=None, duration_ms=0, error=f"not sent: {exc}")
        return await self.sender.send(
            claim.url,
            message_id=claim.message_id,
            body=claim.payload.encode("utf-8"),
            keys=keys,
        )

    def _release_slot(self, endpoint_id: int) -> None:
        left = self._in_flight[endpoint_id] - 1
        if left:
            self._in_flight[endpoint_id] = left
        else:
            del self._in_flight[endpoint_id]
        if not self._more_due:
            return
        # This task still counts in ``_sending`` until it returns.
        if endpoint_id in self._capped or self._room() + 1 >= self._refill_at():
            self._wake.set()

    async def _finish_sends(self) -> None:
        """Give the sends under way a few seconds; cut the rest short and hand their rows back
        (with the claimed rows that never got to be sent)."""
        if self._sending:
            _, unfinished = await asyncio.wait(set(self._sending), timeout=self.shutdown_grace)
            for task in unfinished:
                task.cancel()
            await asyncio.gather(*unfinished, return_exceptions=True)
        if self._abandoned:
            await self.hand_back(self._abandoned)
        if self._handing_back:
            await asyncio.gather(*self._handing_back, return_exceptions=True)

    def _hand_back_later(self, claims: list[tuple[Claim, bool]]) -> None:
        task = asyncio.create_task(self.hand_back(claims))
        self._handing_back.add(task)
        task.add_done_callback(self._handing_back.discard)

    async def hand_back(self, claims: list[tuple[Claim, bool]]) -> None:
        """Make claims due again at once (while this worker still holds their lease), so the
        next worker need not wait for the lease to run out. An attempt never sent is uncounted."""
        now = self.clock()
        rows = [
            {"b_id": c.delivery_id, "b_lease": c.lease_end, "b_now": now, "b_unsent": int(not sent)}
            for c, sent in claims
        ]
        try:
            async with self._writing(), self.db.session_scope() as session:
                await session.execute(_HAND_BACK, rows)
        except Exception as exc:  # their leases run out instead
            log.warning("webhook_hand_back_failed", error=repr(exc), deliveries=len(rows))

    # -- recording --------------------------------------------------------------------------

    async def _record_forever(self) -> None:
        while True:
            await self._results_ready.wait()
            if not self._stopping.is_set():
                await asyncio.sleep(RECORD_COALESCE_SECONDS)
            self._results_ready.clear()
            batch, self._results = self._results, []
            if batch:
                try:
                    await self.record(batch)
                except Exception as exc:
                    # The leases outlive this: keep the outcomes and write them again shortly.
                    log.warning("webhook_record_failed", error=repr(exc), outcomes=len(batch))
                    self._results[:0] = batch
                    if self._stopping.is_set():
                        return
                    await asyncio.sleep(RETRY_AFTER_STORAGE_ERROR_SECONDS)
                    self._results_ready.set()
                    continue
            if self._stopping.is_set() and not self._sending and not self._results:
                return

    async def record(self, results: list[Result]) -> None:
        """Write the outcomes of ``results`` in one transaction: the delivery rows (only where
        this worker still holds the lease), one attempt row each, and the endpoints' state."""
        now = self.clock()
        updates = [self._delivery_update(result, now) for result in results]
        outcomes = [values.pop("outcome") for values in updates]
        async with self._writing(), self.db.session_scope() as session:
            await session.execute(_RECORD_OUTCOME, updates)
            await session.execute(
                insert(_attempts),
                [
                    {
                        "delivery_id": r.claim.delivery_id,
                        "attempt": r.claim.attempt,
                        "started_at": r.started_at,
                        "status_code": r.outcome.status_code,
                        "duration_ms": r.outcome.duration_ms,
                        "error": _clip(r.outcome.error),
                    }
                    for r in results
                ],
            )
            await self._record_endpoint_health(session, results, now)
        if self.metrics is not None:
            for outcome in outcomes:
                self.metrics.webhook_deliveries.labels(outcome=outcome).inc()

    def _delivery_update(self, result: Result, now: datetime) -> dict[str, Any]:
        claim, outcome = result.claim, result.outcome
        values: dict[str, Any] = {
            "b_id": claim.delivery_id,
            "b_lease": claim.lease_end,
            "b_code": outcome.status_code,
            "b_error": _clip(outcome.error),
            "b_ms": outcome.duration_ms,
            "b_delivered": None,
        }
        if outcome.succeeded:
            values.update(b_status=SUCCEEDED, b_next=None, b_delivered=now, outcome="success")
        elif claim.attempt >= claim.max_attempts:
            values.update(b_status=FAILED, b_next=None, outcome="failed")
        else:
            delay = self.schedule.delay_after(claim.attempt, retry_after=outcome.retry_after)
            values.update(b_status=PENDING, b_next=now + timedelta(seconds=delay), outcome="retry")
        return values

    async def _record_endpoint_health(
        self, session: AsyncSession, results: list[Result], now: datetime
    ) -> None:
        """Keep each endpoint's failure streak; disable it on a 410 or after days of failing."""
        last_by_endpoint: dict[int, Result] = {}
        first_failure: dict[int, datetime] = {}
        for result in results:  # in the order they finished
            endpoint_id = result.claim.endpoint_id
            last_by_endpoint[endpoint_id] = result
            if result.outcome.succeeded:
                first_failure.pop(endpoint_id, None)
            else:
                first_failure.setdefault(endpoint_id, result.started_at)
        e = _endpoints
        # Only an endpoint seen failing (when claimed, or by this worker since) can have a
        # streak to end: most batches then cost no statement for it.
        maybe_failing = self._failing | {
            r.claim.endpoint_id for r in results if r.claim.endpoint_failing
        }
        healthy = sorted(
            i for i, r in last_by_endpoint.items() if r.outcome.succeeded and i in maybe_failing
        )
        failing = sorted(i for i, r in last_by_endpoint.items() if not r.outcome.succeeded)
        gone = sorted({r.claim.endpoint_id for r in results if r.outcome.gone})
        if healthy:
            await session.execute(
                update(e)
                .where(e.c.id.in_(healthy), e.c.failing_since.is_not(None))
                .values(failing_since=None)
            )
        if failing:
            await session.execute(
                _START_FAILURE_STREAK,
                [{"b_id": i, "b_since": first_failure.get(i, now)} for i in failing],
            )
        self._failing.difference_update(healthy)
        self._failing.update(failing)
        if gone:
            await session.execute(
                update(e)
                .where(e.c.id.in_(gone), e.c.active.is_(True))
                .values(active=False, disabled_reason=GONE_REASON, updated_at=now)
            )
        if failing:
            await self._disable_long_failing(session, failing, now)

    async def _disable_long_failing(
        self, session: AsyncSession, failing: list[int], now: datetime
    ) -> None:
        e = _endpoints
        cutoff = now - self.disable_after
        stale = await session.execute(
            select(e.c.id, e.c.failing_since).where(
                e.c.id.in_(failing), e.c.active.is_(True), e.c.failing_since <= cutoff
            )
        )
        days = self.disable_after / timedelta(days=1)
        for endpoint_id, since in stale.all():
            reason = (
                f"Disabled after failing for more than {days:g} days: every attempt since "
                f"{since:%Y-%m-%d %H:%M} UTC failed"
            )
            await session.execute(
                update(e)
                .where(e.c.id == endpoint_id)
                .values(active=False, disabled_reason=reason, updated_at=now)
            )
            log.warning("webhook_endpoint_disabled", endpoint_id=endpoint_id, reason=reason)


_RECORD_OUTCOME = (
    update(_deliveries)
    .where(
        _deliveries.c.id == bindparam("b_id"),
        _deliveries.c.status == PENDING,
        _deliveries.c.next_attempt_at == bindparam("b_lease"),
    )
    .values(
        status=bindparam("b_status"),
        next_attempt_at=bindparam("b_next"),
        last_status_code=bindparam("b_code"),
        last_error=bindparam("b_error"),
        last_duration_ms=bindparam("b_ms"),
        delivered_at=bindparam("b_delivered"),
    )
)

_HAND_BACK = (
    update(_deliveries)
    .where(
        _deliveries.c.id == bindparam("b_id"),
        _deliveries.c.status == PENDING,
        _deliveries.c.next_attempt_at == bindparam("b_lease"),
    )
    .values(
        next_attempt_at=bindparam("b_now"),
        attempts=_deliveries.c.attempts - bindparam("b_unsent"),
    )
)

_START_FAILURE_STREAK = (
    update(_endpoints)
    .where(_endpoints.c.id == bindparam("b_id"), _endpoints.c.failing_since.is_(None))
    .values(failing_since=bindparam("b_since"))
)


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


def _clip(error: str | None) -> str | None:
    return None if error is None else error[:MAX_ERROR_CHARS]
