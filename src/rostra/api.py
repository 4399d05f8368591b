"""The one list of routers: every domain's router is one line here.

Every /api/v1 route also answers under /v1 (seed 001's clients call ``/v1/users``) and at the
root (seed 003's call ``/auth/login`` and ``/webhooks``).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from fastapi import APIRouter, FastAPI
from fastapi.routing import APIRoute
from starlette.datastructures import URLPath
from starlette.routing import BaseRoute, NoMatchFound

from rostra.api_keys.router import router as api_keys_router
from rostra.auth.router import router as auth_router
from rostra.components.router import router as components_router
from rostra.core.routing import AdmittedRoute, RouterMount, SegmentRouter
from rostra.datasets.router import router as datasets_router
from rostra.datasets.service import hand_over_data_sets
from rostra.deployments.router import router as deployments_router
from rostra.events.router import build_router as build_events_router
from rostra.events.service import add_subscriber
from rostra.legacy.envelope import LEGACY_SEGMENT
from rostra.projects.router import router as projects_router
from rostra.projects.service import hand_over_projects, member_project_ids
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


def _check_admitted() -> None:
    """Every domain route is counted against the rate limits: its route class admits it."""
    for router in DOMAIN_ROUTERS:
        for route in router.routes:
            if isinstance(route, APIRoute) and not isinstance(route, AdmittedRoute):
                raise TypeError(f"{route.path} is not an AdmittedRoute: its router needs the class")


def _flat_router(routers: Sequence[APIRouter]) -> SegmentRouter:
    """The routes of ``routers`` in one flat list, matched by first segment.

    Flat, not ``include_router``: since FastAPI 0.137 an included router stays a node that is
    walked on every request (twice: to match, then to handle), which cost about a tenth of a
    cached ``GET /user``. A flat list is matched with one regular expression per route, and
    ``SegmentRouter`` tries only the routes of the request's first segment.
    """
    return SegmentRouter([route for router in routers for route in router.routes])


def documented_routes() -> list[BaseRoute]:
    """The routes as the OpenAPI document shows them: the service endpoints at the root and
    everything under /api/v1 (the /v1 and legacy addresses are aliases, left out)."""
    documented = APIRouter()
    documented.include_router(system_router)
    for router in (*DOMAIN_ROUTERS, system_router, usage_router):
        documented.include_router(router, prefix=API_PREFIX)
    return documented.routes


class _AliasMount(RouterMount):
    """The API under another prefix. It answers requests but builds no URLs: ``url_for`` (a
    ``Location`` header) names the canonical /api/v1 address whichever one the client used."""

    def url_path_for(self, name: str, /, **path_params: Any) -> URLPath:
        raise NoMatchFound(name, path_params)


def install_domain_hooks() -> None:
    """Register what lower domains call back into: the deletion guards and event subscribers.
    Anything that changes data without the app (a CLI command) calls this first."""
    for guard in USER_DELETION_GUARDS:
        add_deletion_guard(guard)
    for subscriber in EVENT_SUBSCRIBERS:
        add_subscriber(subscriber)


def mount_routes(app: FastAPI) -> None:
    """The one API router under each of its prefixes, the service endpoints at the root, and
    the API at the root itself last of all.

    A ``Mount`` keeps the requested path and sets ``root_path``, so a route answers at every
    prefix as itself: pagination links keep the address the client used, while ``url_for``
    (``Location``) names the canonical one. The legacy prefixes come first: ``/api/v1`` would
    otherwise take them.
    """
    _check_admitted()
    install_domain_hooks()
    # The deprecated mirror of the resource routes: rostra.legacy wraps what these answer.
    legacy = _flat_router(DOMAIN_ROUTERS)
    api = _flat_router((*DOMAIN_ROUTERS, system_router, usage_router))
    # First in the app's list, ahead of the routes FastAPI itself added (/openapi.json): the
    # API is what nearly every request asks for.
    app.router.routes[:0] = [
        _AliasMount(API_PREFIX + LEGACY_SEGMENT, app=legacy),
        _AliasMount(SHORT_PREFIX + LEGACY_SEGMENT, app=legacy),
        RouterMount(API_PREFIX, app=api),
        _AliasMount(SHORT_PREFIX, app=api),
        *system_router.routes,
    ]
    # Last of all, after /docs and /openapi.json: the API at the root too, where seed 003's
    # clients call it (``POST https://host/auth/login``, ``POST https://host/webhooks``).
    app.router.routes.append(_AliasMount("", app=api))
