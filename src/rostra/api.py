"""The one list of routers: every domain's router is one line here.

Every /api/v1 route also answers under /v1 (seed 001's clients call ``/v1/users``); the
service endpoints also answer at the root.
"""

from __future__ import annotations

from fastapi import FastAPI
from fastapi.routing import APIRoute

from rostra.api_keys.router import router as api_keys_router
from rostra.auth.router import router as auth_router
from rostra.components.router import router as components_router
from rostra.core.routing import AdmittedRoute
from rostra.datasets.router import router as datasets_router
from rostra.datasets.service import hand_over_data_sets
from rostra.deployments.router import router as deployments_router
from rostra.events.router import build_router as build_events_router
from rostra.legacy.envelope import LEGACY_SEGMENT
from rostra.projects.router import router as projects_router
from rostra.projects.service import hand_over_projects, member_project_ids
from rostra.ratelimit.router import router as ratelimit_router
from rostra.ratelimit.router import usage_router
from rostra.system.router import router as system_router
from rostra.users.router import router as users_router
from rostra.users.service import add_deletion_guard

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
)

# Domains above users that hold a user's rows decide what becomes of them when the user goes.
USER_DELETION_GUARDS = (hand_over_projects, hand_over_data_sets)


def _check_admitted() -> None:
    """Every domain route is counted against the rate limits: its route class admits it."""
    for router in DOMAIN_ROUTERS:
        for route in router.routes:
            if isinstance(route, APIRoute) and not isinstance(route, AdmittedRoute):
                raise TypeError(f"{route.path} is not an AdmittedRoute: its router needs the class")


def _include_api(app: FastAPI, prefix: str, *, documented: bool) -> None:
    """Every domain router straight under ``prefix``: FastAPI walks included routers level by
    level on each request, so one flat level keeps route matching cheap."""
    for router in DOMAIN_ROUTERS:
        app.include_router(router, prefix=prefix, include_in_schema=documented)
    # Plain routers, not counted against the rate limits: the service endpoints and GET /usage.
    app.include_router(system_router, prefix=prefix, include_in_schema=documented)
    app.include_router(usage_router, prefix=prefix, include_in_schema=documented)


def mount_routes(app: FastAPI) -> None:
    _check_admitted()
    for guard in USER_DELETION_GUARDS:
        add_deletion_guard(guard)
    app.include_router(system_router)
    _include_api(app, API_PREFIX, documented=True)
    _include_api(app, SHORT_PREFIX, documented=False)
    # The deprecated mirror (seed 004's envelope): rostra.legacy wraps what these answer.
    for prefix in (API_PREFIX, SHORT_PREFIX):
        for router in DOMAIN_ROUTERS:
            app.include_router(router, prefix=prefix + LEGACY_SEGMENT, include_in_schema=False)
