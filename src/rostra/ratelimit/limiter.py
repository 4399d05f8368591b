"""The limiter: who is counted, against which policy, and what a refusal or a dead store means.

Accounts are counted by user id, so all of an account's keys and sessions share its limits;
anonymous callers by client address. The policy is the account's override if an admin set one,
else its plan's. Nothing here reads the database per request: the principal carries the plan,
and overrides are held in memory and re-read every few seconds.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Mapping
from dataclasses import dataclass

import structlog
from prometheus_client import Counter
from redis.asyncio import Redis
from sqlalchemy.exc import SQLAlchemyError
from starlette.types import Message, Scope

from rostra.core.config import Settings
from rostra.core.db import Database
from rostra.core.errors import RateLimited, ServiceUnavailable
from rostra.core.metrics import Metrics
from rostra.core.security import Principal
from rostra.lib.ratelimit import (
    ANONYMOUS,
    Decision,
    MemoryStore,
    PlanLimits,
    Policy,
    RateLimitStore,
    RedisStore,
    StoreUnavailable,
    Usage,
    client_address,
    client_key,
    parse_networks,
)
from rostra.ratelimit import service

log = structlog.get_logger(__name__)

FAILURE_LOG_INTERVAL_SECONDS = 10.0
OVERRIDE_RETRY_SECONDS = 1.0


class OverrideCache:
    """Every per-account override, in memory; re-read whole when older than ``ttl_seconds``.

    Overrides are few (admins set them by hand), so one query for all of them every few seconds
    costs less than any per-request lookup. A change made through this process is seen at
    once (``invalidate``); other processes see it within ``ttl_seconds``.
    """

    def __init__(self, db: Database, ttl_seconds: float) -> None:
        self.db = db
        self.ttl_seconds = ttl_seconds
        self._policies: dict[int, Policy] = {}
        self._fresh_until = float("-inf")
        self._loaded = False
        self._lock = asyncio.Lock()
        self._changes = 0

    def invalidate(self) -> None:
        self._changes += 1
        self._fresh_until = float("-inf")

    def fresh(self) -> Mapping[int, Policy] | None:
        """Every override, when no reload is due (the path of nearly every request); else None."""
        return self._policies if time.monotonic() < self._fresh_until else None

    async def get(self, user_id: int) -> Policy | None:
        # Until the first load everyone waits for it; after that a reload runs in one request
        # while the others go on with what is known.
        if time.monotonic() >= self._fresh_until and (not self._loaded or not self._lock.locked()):
            async with self._lock:
                if time.monotonic() >= self._fresh_until:
                    await self._reload()
        return self._policies.get(user_id)

    async def _reload(self) -> None:
        changes = self._changes
        try:
            async with self.db.session_scope() as session:
                limits = await service.all_override_limits(session)
        except (SQLAlchemyError, OSError) as exc:
            log.warning("rate_limit_overrides_unreadable", error=repr(exc))
            self._fresh_until = time.monotonic() + OVERRIDE_RETRY_SECONDS
            return
        self._policies = {
            user_id: plan.policy(service.OVERRIDE_POLICY) for user_id, plan in limits.items()
        }
        self._loaded = True
        # A change committed while this read ran may be missing from it: read again next time.
        if changes == self._changes:
            self._fresh_until = time.monotonic() + self.ttl_seconds


class RateLimitMetrics:
    def __init__(self, metrics: Metrics) -> None:
        self.refusals = metrics.rate_limit_refusals
        self.overage = Counter(
            "rostra_rate_limit_overage",
            "Requests admitted over an hourly quota that allows overage, by plan",
            ["plan"],
            registry=metrics.registry,
        )
        self.store_failures = Counter(
            "rostra_rate_limit_store_failures",
            "Requests the rate-limit store could not count, by what was done with them",
            ["outcome"],
            registry=metrics.registry,
        )


@dataclass(slots=True)
class Counted:
    """One request as the limiter counted it; enough to refund it and to write its fields.

    ``add_fields`` is the request's response-start hook (``core.middleware``): the fields are
    added when the response starts, whatever it is (a 404, a 429, a 500); a 304 is refunded
    there first, so it costs nothing.
    """

    key: str
    policy: Policy
    decision: Decision
    limiter: RateLimiter
    refund_not_modified: bool = True

    async def add_fields(self, message: Message) -> None:
        decision = self.decision
        if message["status"] == 304 and self.refund_not_modified and decision.allowed:
            decision = await self.limiter.refund(self)
        fields = self.policy.fields
        if fields is not None:  # else nothing is limited
            message["headers"].extend(fields.render(decision))


class RateLimiter:
    def __init__(
        self,
        *,
        store: RateLimitStore,
        plans: Mapping[str, PlanLimits],
        overrides: OverrideCache,
        metrics: Metrics,
        trusted_proxies: list[str],
        fail_closed: bool = False,
        enabled: bool = True,
    ) -> None:
        self.store = store
        self._hit_now = store.hit_now
        self.plans = {name: limits.policy(name) for name, limits in plans.items()}
        self.overrides = overrides
        self.metrics = RateLimitMetrics(metrics)
        self.trusted_proxies = parse_networks(trusted_proxies)
        self.fail_closed = fail_closed
        self.enabled = enabled
        self._failure_logged_at = float("-inf")
        self._failures_unlogged = 0

    @classmethod
    def from_settings(
        cls, settings: Settings, db: Database, redis: Redis | None, metrics: Metrics
    ) -> RateLimiter:
        store: RateLimitStore = (
            MemoryStore()
            if redis is None
            else RedisStore(
                redis,
                prefix=settings.rate_limit_key_prefix,
                timeout_seconds=settings.redis_timeout_seconds,
            )
        )
        return cls(
            store=store,
            plans=settings.rate_limit_plans,
            overrides=OverrideCache(db, settings.rate_limit_overrides_cache_seconds),
            metrics=metrics,
            trusted_proxies=settings.trusted_proxies,
            fail_closed=settings.rate_limit_fail_closed,
            enabled=settings.rate_limit_enabled,
        )

    def caller_key(self, scope: Scope, principal: Principal | None) -> str:
        if principal is not None:
            return f"user:{principal.user_id}"
        client = scope.get("client")
        forwarded = [
            value.decode("latin-1")
            for name, value in scope["headers"]
            if name == b"x-forwarded-for"
        ]
        peer = client[0] if client else None
        return client_key(client_address(peer, forwarded, self.trusted_proxies))

    async def policy_for(self, principal: Principal | None) -> Policy:
        if principal is None:
            return self.plans[ANONYMOUS]
        return self._account_policy(principal, await self.overrides.get(principal.user_id))

    def _account_policy(self, principal: Principal, override: Policy | None) -> Policy:
        return override or self.plans.get(principal.plan) or self.plans["free"]

    async def count(self, scope: Scope, principal: Principal | None) -> Counted | None:
        """Count the request if the caller's windows have room (the decision says whether).

        None when the store cannot be asked and the request goes through uncounted; raises
        ServiceUnavailable instead when configured to fail closed.
        """
        key = self.caller_key(scope, principal)
        # While the overrides are fresh (nearly always), without awaiting policy_for.
        overrides = self.overrides.fresh()
        if principal is None or overrides is None:
            policy = await self.policy_for(principal)
        else:
            policy = self._account_policy(principal, overrides.get(principal.user_id))
        try:
            decision = await self.store.hit(key, policy)
        except StoreUnavailable as exc:
            self._store_failed(exc)
            return None
        if not decision.allowed or decision.overage:
            self._count_in_metrics(policy, decision)
        return Counted(key, policy, decision, self)

    def count_now(self, scope: Scope, principal: Principal | None) -> Counted | None:
        """``count`` without awaiting anything, when nothing is to be waited for: a store that
        counts at once (memory) and overrides that need no reload. None when something is;
        ``count`` then.

        The path of nearly every request with the memory store, so the caller's key and
        policy are found here as ``caller_key`` and ``_account_policy`` find them, without
        calling them."""
        hit_now = self._hit_now
        if hit_now is None:
            return None
        if principal is None:
            key, policy = self.caller_key(scope, None), self.plans[ANONYMOUS]
        else:
            overrides = self.overrides.fresh()
            if overrides is None:
                return None
            user_id = principal.user_id
            key = f"user:{user_id}"
            plans = self.plans
            policy = overrides.get(user_id) or plans.get(principal.plan) or plans["free"]
        decision = hit_now(key, policy)
        if not decision.allowed or decision.overage:
            self._count_in_metrics(policy, decision)
        return Counted(key, policy, decision, self)

    def _count_in_metrics(self, policy: Policy, decision: Decision) -> None:
        """A refusal, or an admission over a quota that allows overage."""
        if not decision.allowed:
            self.metrics.refusals.labels(policy.name).inc()
        elif decision.overage:
            self.metrics.overage.labels(policy.name).inc()

    @staticmethod
    def refusal(counted: Counted) -> RateLimited:
        retry_after = counted.decision.retry_after()
        return RateLimited(
            retry_after,
            f"Too many requests for the {counted.policy.name} limits; retry in {retry_after} s",
        )

    async def refund(self, counted: Counted) -> Decision:
        """Give back a counted request; answers the decision as it now stands."""
        try:
            await self.store.refund(counted.key, counted.decision)
        except StoreUnavailable as exc:
            log.warning("rate_limit_refund_failed", error=str(exc))
            return counted.decision
        return counted.decision.refunded()

    async def usage(self, scope: Scope, principal: Principal | None) -> tuple[Counted, Usage]:
        key = self.caller_key(scope, principal)
        policy = await self.policy_for(principal)
        try:
            usage = await self.store.peek(key, policy)
        except StoreUnavailable as exc:
            raise ServiceUnavailable("The rate-limit store is unavailable") from exc
        return Counted(key, policy, usage.decision(), self, refund_not_modified=False), usage

    def _store_failed(self, exc: StoreUnavailable) -> None:
        """Count every failure, log one line per interval, then admit or refuse as configured."""
        self.metrics.store_failures.labels("refused" if self.fail_closed else "admitted").inc()
        self._failures_unlogged += 1
        if time.monotonic() - self._failure_logged_at >= FAILURE_LOG_INTERVAL_SECONDS:
            log.error(
                "rate_limit_store_unavailable",
                error=str(exc),
                requests=self._failures_unlogged,
                action="refused with 503" if self.fail_closed else "admitted uncounted",
            )
            self._failure_logged_at = time.monotonic()
            self._failures_unlogged = 0
        if self.fail_closed:
            raise ServiceUnavailable(
                "Rate limits cannot be checked right now; retry shortly",
                headers={"Retry-After": "1"},
            )
