"""The one list of routers: every domain's router is one line here.

Every /api/v1 route also answers under /v1 (seed 001's clients call ``/v1/users``); the
service endpoints also answer at the root.
"""

from __future__ import annotations

from fastapi import Depends, FastAPI

from rostra.api_keys.router import router as api_keys_router
from rostra.auth.router import router as auth_router
from rostra.components.router import router as components_router
from rostra.datasets.router import router as datasets_router
from rostra.datasets.service import hand_over_data_sets
from rostra.deployments.router import router as deployments_router
from rostra.events.router import build_router as build_events_router
from rostra.events.service import add_subscriber
from rostra.legacy.envelope import LEGACY_SEGMENT
from rostra.projects.router import router as projects_router
from rostra.projects.service import hand_over_projects, member_project_ids
from rostra.ratelimit.deps import count_request
from rostra.ratelimit.router import router as ratelimit_router
from rostra.ratelimit.router import usage_router
from rostra.system.router import router as system_router
from rostra.users.router import router as users_router
from rostra.users.service import add_deletion_guard
from rostra.webhooks.router import router as webhooks_router
from rostra.webhooks.service import fan_out

API_PREFIX = "/api/v1"
SHORT_PREFIX = "/v1"

DOMAIN_ROUTERS = (
    users_router,
    api_keys_router,
    auth_router,
    ratelimit_router,
    projects_router,
    components_router,
    deployments_router,
    datasets_router,
    build_events_router(member_project_ids),
    webhooks_router,
)

# Domains above users that hold a user's rows decide what becomes of them when the user goes.
USER_DELETION_GUARDS = (hand_over_projects, hand_over_data_sets)

# Domains above events that add rows for every event, in the event's own transaction.
EVENT_SUBSCRIBERS = (fan_out,)


COUNTED = [Depends(count_request)]


def _include_api(app: FastAPI, prefix: str, *, documented: bool) -> None:
    """Every domain router straight under ``prefix``: FastAPI walks included routers level by
    level on each request, so one flat level keeps route matching cheap."""
    for router in DOMAIN_ROUTERS:
        app.include_router(
            router, prefix=prefix, dependencies=COUNTED, include_in_schema=documented
        )
    # Not counted against the rate limits: the service endpoints and GET /usage.
    app.include_router(system_router, prefix=prefix, include_in_schema=documented)
    app.include_router(usage_router, prefix=prefix, include_in_schema=documented)


def install_domain_hooks() -> None:
    """Register what lower domains call back into: the deletion guards and event subscribers.
    Anything that changes data without the app (a CLI command) calls this first."""
    for guard in USER_DELETION_GUARDS:
        add_deletion_guard(guard)
    for subscriber in EVENT_SUBSCRIBERS:
        add_subscriber(subscriber)


def mount_routes(app: FastAPI) -> None:
    install_domain_hooks()
    app.include_router(system_router)
    _include_api(app, API_PREFIX, documented=True)
    _include_api(app, SHORT_PREFIX, documented=False)
    # The deprecated mirror (seed 004's envelope): rostra.legacy wraps what these answer.
    for prefix in (API_PREFIX, SHORT_PREFIX):
        for router in DOMAIN_ROUTERS:
            app.include_router(
                router,
                prefix=prefix + LEGACY_SEGMENT,
                dependencies=COUNTED,
                include_in_schema=False,
            )
