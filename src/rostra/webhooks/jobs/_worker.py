"""The loop: claim ahead of the sends, send within the bounds, record in batches, stop cleanly."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Callable
from datetime import datetime, timedelta

import structlog

import rostra
from rostra.core.config import Settings
from rostra.core.db import Database, utcnow
from rostra.core.metrics import Metrics
from rostra.lib.webhooks.schedule import RetrySchedule
from rostra.lib.webhooks.sender import SendOutcome, WebhookSender
from rostra.lib.webhooks.signing import InvalidSecret, secret_key
from rostra.webhooks.jobs import _claims
from rostra.webhooks.jobs._claims import Claim
from rostra.webhooks.jobs._outcomes import OutcomeRecorder, Result
from rostra.webhooks.models import DELIVERIES_DUE

log = structlog.get_logger(__name__)

USER_AGENT = f"Rostra-Webhooks/{rostra.__version__}"
CLAIM_BATCH = 200
CLAIM_AHEAD = 2
"""A worker holds up to this many times its concurrency in claimed rows, so the next batch is
claimed while the last one is being sent (a claim is a few database round trips)."""
RECORD_COALESCE_SECONDS = 0.005
"""Outcomes finishing this close together are written in one transaction."""
SHUTDOWN_GRACE_SECONDS = 5.0
RETRY_AFTER_STORAGE_ERROR_SECONDS = 1.0

Clock = Callable[[], datetime]


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
        self.lease = timedelta(seconds=settings.webhooks_lease_seconds)
        self.shutdown_grace = SHUTDOWN_GRACE_SECONDS
        self.recorder = OutcomeRecorder(
            RetrySchedule(delays=tuple(settings.webhooks_retry_delays_seconds)),
            timedelta(days=settings.webhooks_disable_after_days),
        )
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
        """Endpoints that had more due rows than room at the last claim."""
        self._more_due = False
        self._results: list[Result] = []
        self._abandoned: list[tuple[Claim, bool]] = []
        """Claims cut short at shutdown, to hand back, each with whether it was sent."""
        self._handing_back: set[asyncio.Task[None]] = set()
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
        """Lease up to ``limit`` due deliveries, within each endpoint's room."""
        now = self.clock()
        room = {e: self.endpoint_concurrency - n for e, n in self._in_flight.items()}
        full_endpoints = [endpoint_id for endpoint_id, left in room.items() if left <= 0]
        async with self._writing(), self.db.session_scope() as session:
            rows = await _claims.due_rows(
                session,
                now=now,
                limit=limit,
                skip_endpoints=full_endpoints,
                postgres=self._is_postgres,
            )
            taken = []
            self._capped.clear()
            for row in rows:
                left = room.get(row.endpoint_id, self.endpoint_concurrency)
                if left <= 0:
                    self._capped.add(row.endpoint_id)
                    continue
                room[row.endpoint_id] = left - 1
                taken.append(row)
            self._more_due = len(rows) == limit or bool(self._capped)
            if not taken:
                return []
            return await _claims.lease(session, taken, now=now, lease_end=now + self.lease)

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
            self._release(claim.endpoint_id)
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

    def _release(self, endpoint_id: int) -> None:
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
        """Make claims due again at once, so the next worker need not wait for their lease."""
        try:
            async with self._writing(), self.db.session_scope() as session:
                await _claims.hand_back(session, claims, now=self.clock())
        except Exception as exc:  # their leases run out instead
            log.warning("webhook_hand_back_failed", error=repr(exc), deliveries=len(claims))

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
        """Write the outcomes of ``results`` in one transaction, and count them."""
        async with self._writing(), self.db.session_scope() as session:
            outcomes = await self.recorder.record(session, results, self.clock())
        if self.metrics is not None:
            for outcome in outcomes:
                self.metrics.webhook_deliveries.labels(outcome=outcome).inc()
