"""The one list of routers: every domain's router is one line here.

Every /api/v1 route also answers under /v1 (seed 001's clients call ``/v1/users``); the
service endpoints also answer at the root.
"""

from __future__ import annotations

from fastapi import APIRouter, FastAPI

from rostra.api_keys.router import router as api_keys_router
from rostra.auth.router import router as auth_router
from rostra.system.router import router as system_router
from rostra.users.router import router as users_router

API_PREFIX = "/api/v1"
SHORT_PREFIX = "/v1"

DOMAIN_ROUTERS = (
    users_router,
    api_keys_router,
    auth_router,
)


def build_api_router() -> APIRouter:
    api = APIRouter()
    for router in DOMAIN_ROUTERS:
        api.include_router(router)
    api.include_router(system_router)
    return api


def mount_routes(app: FastAPI) -> None:
    app.include_router(system_router)
    api = build_api_router()
    app.include_router(api, prefix=API_PREFIX)
    app.include_router(api, prefix=SHORT_PREFIX, include_in_schema=False)
