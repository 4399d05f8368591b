"""GET /usage (never counted) and the admins' per-account overrides (counted as usual)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Request
from sqlalchemy import select
from starlette.responses import Response

from rostra.core.deps import (
    CursorCodecDep,
    DatabaseDep,
    OptionalPrincipal,
    SessionDep,
    list_params,
    require_admin,
)
from rostra.core.errors import Forbidden
from rostra.core.http import check_if_match, etag_of, resource_body, resource_response, resource_url
from rostra.core.listing import ListParams, ListSpec, paginate
from rostra.core.routing import domain_router
from rostra.core.schemas import IdPath
from rostra.core.security import Principal
from rostra.lib.ratelimit import ANONYMOUS
from rostra.ratelimit import service
from rostra.ratelimit.deps import RateLimiterDep, show_rate_limit
from rostra.ratelimit.models import RateLimitOverride
from rostra.ratelimit.schemas import OverrideIn, OverrideOut, UsageOut

router = domain_router(tags=["rate limits"])
usage_router = APIRouter(tags=["rate limits"])
"""Its routes are not admitted (counted): asking how much is left costs nothing."""

Admin = Annotated[Principal, Depends(require_admin())]

OVERRIDE_LIST = ListSpec(
    id_column=RateLimitOverride.user_id,
    sort_columns={
        "created_at": RateLimitOverride.created_at,
        "updated_at": RateLimitOverride.updated_at,
        "user_id": RateLimitOverride.user_id,
    },
    created_column=RateLimitOverride.created_at,
)


@usage_router.get("/usage", response_model=UsageOut, summary="Your rate-limit windows and overage")
async def get_usage(
    request: Request, principal: OptionalPrincipal, limiter: RateLimiterDep
) -> Response:
    """The caller's windows (an account's, or an anonymous caller's address) and the overage
    counted this month. Not counted against the limits it shows."""
    if principal is not None and not principal.allows("read", "usage"):
        raise Forbidden("This credential lacks the 'usage:read' or 'read' scope")
    counted, usage = await limiter.usage(request.scope, principal)
    show_rate_limit(request, counted)
    body = service.usage_out(
        usage,
        policy=counted.policy,
        plan=principal.plan if principal is not None else ANONYMOUS,
        user_id=principal.user_id if principal is not None else None,
        client_ip=counted.key.removeprefix("ip:") if principal is None else None,
        livemode=principal.livemode if principal is not None else True,
    )
    return resource_response(request, body)


@router.get(
    "/rate-limit-overrides",
    response_model=list[OverrideOut],
    summary="List accounts with their own limits (admins)",
)
async def list_overrides(
    request: Request,
    session: SessionDep,
    codec: CursorCodecDep,
    _: Admin,
    params: Annotated[ListParams, Depends(list_params(OVERRIDE_LIST))],
) -> Response:
    return await paginate(
        session, request, select(RateLimitOverride), OVERRIDE_LIST, params, codec, service.to_out
    )


@router.get(
    "/rate-limit-overrides/{user_id}",
    response_model=OverrideOut,
    summary="An account's own limits (admins)",
)
async def get_override(
    request: Request, user_id: IdPath, session: SessionDep, _: Admin
) -> Response:
    return resource_response(request, service.to_out(await service.get_override(session, user_id)))


@router.put(
    "/rate-limit-overrides/{user_id}",
    response_model=OverrideOut,
    summary="Give an account its own limits, replacing its plan's (admins)",
)
async def put_override(
    request: Request,
    user_id: IdPath,
    data: OverrideIn,
    db: DatabaseDep,
    limiter: RateLimiterDep,
    _: Admin,
) -> Response:
    """``null`` is unlimited, so ``{"per_hour": null, "per_minute": null}`` lifts every limit."""
    async with db.session_scope() as session:
        existing = await session.get(RateLimitOverride, user_id)
        if existing is not None:
            check_if_match(request, etag_of(resource_body(service.to_out(existing))))
        override, created = await service.put_override(session, user_id=user_id, data=data)
        body = service.to_out(override)
    # After the commit: a request racing it must not cache the old limits again.
    limiter.overrides.invalidate()
    if created:
        location = resource_url(request, "get_override", user_id=user_id)
        return resource_response(request, body, status_code=201, headers={"Location": location})
    return resource_response(request, body)


@router.delete(
    "/rate-limit-overrides/{user_id}",
    status_code=204,
    summary="Put an account back on its plan's limits (admins)",
)
async def delete_override(
    request: Request, user_id: IdPath, db: DatabaseDep, limiter: RateLimiterDep, _: Admin
) -> Response:
    async with db.session_scope() as session:
        override = await service.get_override(session, user_id)
        check_if_match(request, etag_of(resource_body(service.to_out(override))))
        await service.delete_override(session, override=override)
    limiter.overrides.invalidate()
    return Response(status_code=204)
