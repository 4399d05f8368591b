"""Recording attempts: the delivery rows, one attempt row each, and the endpoints' health."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import structlog
from sqlalchemy import bindparam, insert, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from rostra.lib.webhooks.schedule import RetrySchedule
from rostra.lib.webhooks.sender import SendOutcome
from rostra.webhooks.jobs._claims import Claim, attempts, deliveries, endpoints
from rostra.webhooks.models import FAILED, PENDING, SUCCEEDED

log = structlog.get_logger(__name__)

GONE_REASON = "410 Gone from the receiver"
MAX_ERROR_CHARS = 500


@dataclass(frozen=True)
class Result:
    claim: Claim
    outcome: SendOutcome
    started_at: datetime


class OutcomeRecorder:
    """Writes batches of results; remembers which endpoints it saw start failing."""

    def __init__(self, schedule: RetrySchedule, disable_after: timedelta) -> None:
        self.schedule = schedule
        self.disable_after = disable_after
        self._failing: set[int] = set()
        """Endpoints whose failure streak this worker recorded and has not seen end."""

    async def record(
        self, session: AsyncSession, results: list[Result], now: datetime
    ) -> list[str]:
        """Write ``results`` (delivery rows only where the lease is still this worker's);
        the outcome of each: "success", "retry" or "failed"."""
        updates = [self._delivery_update(result, now) for result in results]
        outcomes = [values.pop("outcome") for values in updates]
        await session.execute(_RECORD_OUTCOME, updates)
        await session.execute(
            insert(attempts),
            [
                {
                    "delivery_id": r.claim.delivery_id,
                    "attempt": r.claim.attempt,
                    "started_at": r.started_at,
                    "status_code": r.outcome.status_code,
                    "duration_ms": r.outcome.duration_ms,
                    "error": clip(r.outcome.error),
                }
                for r in results
            ],
        )
        await self._record_endpoint_health(session, results, now)
        return outcomes

    def _delivery_update(self, result: Result, now: datetime) -> dict[str, Any]:
        claim, outcome = result.claim, result.outcome
        values: dict[str, Any] = {
            "b_id": claim.delivery_id,
            "b_lease": claim.lease_end,
            "b_code": outcome.status_code,
            "b_error": clip(outcome.error),
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
        e = endpoints
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
        e = endpoints
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


def clip(error: str | None) -> str | None:
    return None if error is None else error[:MAX_ERROR_CHARS]


_RECORD_OUTCOME = (
    update(deliveries)
    .where(
        deliveries.c.id == bindparam("b_id"),
        deliveries.c.status == PENDING,
        deliveries.c.next_attempt_at == bindparam("b_lease"),
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

_START_FAILURE_STREAK = (
    update(endpoints)
    .where(endpoints.c.id == bindparam("b_id"), endpoints.c.failing_since.is_(None))
    .values(failing_since=bindparam("b_since"))
)
