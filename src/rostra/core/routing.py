"""The route class of every domain router: the app's admission check runs before the route.

Admission is the rate-limit count (``rostra.ratelimit.deps.count_request``, installed by
``create_app`` as ``app.state.admit``). It used to be a router-level FastAPI dependency; as part
of the route's handler it costs one call instead of a node of dependency resolution on every
request, and it still runs before the route's own dependencies, so a request with a bad
credential is counted (against its client address) before its 401.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Coroutine
from enum import Enum
from typing import Any

from fastapi import Request
from fastapi.routing import APIRoute, APIRouter
from starlette.responses import Response

Admission = Callable[[Request], Awaitable[None]]
"""Raises a ``RostraError`` (a 429, a 503) to answer instead of the route."""

ADMISSION_STATE = "admit"
"""Name of the app-state attribute holding the app's ``Admission``."""


class AdmittedRoute(APIRoute):
    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        handler = super().get_route_handler()

        async def admitted(request: Request) -> Response:
            admit: Admission = getattr(request.app.state, ADMISSION_STATE)
            await admit(request)
            return await handler(request)

        return admitted


def domain_router(*, tags: list[str | Enum], prefix: str = "") -> APIRouter:
    """The router of a domain: its routes are admitted (counted), and a body sent without a
    Content-Type is read as JSON, as curl users and the seeds' clients expect.

    ``rostra.api`` puts the routes in one flat list rather than including the router, so what
    ``include_router`` would otherwise pass down from the app is set here.
    """
    return APIRouter(prefix=prefix, tags=tags, route_class=AdmittedRoute, strict_content_type=False)
