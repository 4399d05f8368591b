"""Per-account rate-limit overrides (admins), and the usage report of a caller."""

from __future__ import annotations

from datetime import UTC, datetime

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from rostra.core.errors import NotFound
from rostra.lib.ratelimit import PlanLimits, Usage
from rostra.lib.ratelimit.policy import Policy
from rostra.ratelimit.models import RateLimitOverride
from rostra.ratelimit.schemas import (
    OverageUsage,
    OverrideIn,
    OverrideOut,
    UsageOut,
    WindowUsage,
)
from rostra.users.service import get_user

OVERRIDE_POLICY = "override"
"""The policy name of an account whose limits an admin set (in metrics and /usage)."""


def to_out(override: RateLimitOverride) -> OverrideOut:
    return OverrideOut.model_validate(override)


async def get_override(session: AsyncSession, user_id: int) -> RateLimitOverride:
    override = await session.get(RateLimitOverride, user_id)
    if override is None:
        raise NotFound(f"User {user_id} has no rate-limit override")
    return override


async def put_override(
    session: AsyncSession, *, user_id: int, data: OverrideIn
) -> tuple[RateLimitOverride, bool]:
    """Set the account's limits, replacing any earlier override; answers (override, created)."""
    await get_user(session, user_id)
    override = await session.get(RateLimitOverride, user_id)
    created = override is None
    if override is None:
        override = RateLimitOverride(user_id=user_id)
        session.add(override)
    for field, value in data.model_dump().items():
        setattr(override, field, value)
    await session.flush()
    await session.refresh(override)
    return override, created


async def delete_override(session: AsyncSession, *, override: RateLimitOverride) -> None:
    await session.delete(override)
    await session.flush()


async def all_override_limits(session: AsyncSession) -> dict[int, PlanLimits]:
    rows = await session.execute(
        select(
            RateLimitOverride.user_id,
            RateLimitOverride.per_hour,
            RateLimitOverride.per_minute,
            RateLimitOverride.overage,
        )
    )
    return {
        user_id: PlanLimits(per_hour=per_hour, per_minute=per_minute, overage=overage)
        for user_id, per_hour, per_minute, overage in rows
    }


def usage_out(
    usage: Usage,
    *,
    policy: Policy,
    plan: str,
    user_id: int | None,
    client_ip: str | None,
    livemode: bool,
) -> UsageOut:
    windows = [
        WindowUsage(
            name=state.window.name,
            seconds=state.window.seconds,
            limit=state.window.limit,
            used=state.used,
            remaining=state.remaining,
            reset=-(-state.resets_at_ms // 1000),
            resets_at=datetime.fromtimestamp(state.resets_at_ms / 1000, UTC),
            over_limit="refused" if state.window.blocks else "overage",
            overage=state.overage,
        )
        for state in usage.states
    ]
    return UsageOut(
        plan=plan,
        limits_from="override" if policy.name == OVERRIDE_POLICY else "plan",
        user_id=user_id,
        client_ip=client_ip,
        windows=windows,
        overage=OverageUsage(
            allowed=any(not s.window.blocks for s in usage.states),
            period=usage.period,
            requests=usage.period_overage,
        ),
        livemode=livemode,
    )
