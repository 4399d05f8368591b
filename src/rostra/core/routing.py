"""The route classes: the app's admission check on every domain route, and a direct path for
the routes that take nothing but the request.

Admission is the rate-limit count (``rostra.ratelimit.deps.rate_limit_admission``, installed by
``create_app`` as ``app.state.admit``). It used to be a router-level FastAPI dependency; as part
of the route's handler it costs one call instead of a node of dependency resolution on every
request, and it still runs before the route's own dependencies, so a request with a bad
credential is counted (against its client address) before its 401.

An endpoint declared as ``async def endpoint(request: Request) -> Response`` has nothing for
FastAPI to resolve, validate or serialize, yet FastAPI's handler still walks its dependency
machinery, opens two exit stacks and wraps its own exception handling around it: about a sixth
of a cached ``GET /user``. ``LeanRoute`` calls such an endpoint directly. Its exceptions reach
the same handlers, one layer out (Starlette's ``ExceptionMiddleware``), and OpenAPI still
documents the route from its declaration. It holds for the route objects as built, which
``rostra.api`` mounts as they are; ``include_router`` would rebuild their apps through FastAPI.
"""

from __future__ import annotations

import inspect
from collections.abc import Awaitable, Callable, Coroutine
from enum import Enum
from typing import Any

from fastapi import Request
from fastapi.dependencies.models import Dependant
from fastapi.routing import APIRoute, APIRouter
from starlette.responses import Response
from starlette.types import ASGIApp, Receive, Scope, Send

Admission = Callable[[Request], Awaitable[None]]
"""Raises a ``RostraError`` (a 429, a 503) to answer instead of the route."""

ADMISSION_STATE = "admit"
"""Name of the app-state attribute holding the app's ``Admission``."""

Endpoint = Callable[[Request], Coroutine[Any, Any, Response]]


def takes_only_the_request(route: APIRoute) -> bool:
    """Whether FastAPI's handler would do nothing for ``route`` but pass it the request: no
    parameters or dependencies besides ``request``, no body limit of its own, and a coroutine
    declared to return a ready ``Response``."""
    dependant: Dependant = route.dependant
    others = (
        dependant.path_params,
        dependant.query_params,
        dependant.header_params,
        dependant.cookie_params,
        dependant.body_params,
        dependant.dependencies,
    )
    returns = inspect.signature(route.endpoint, eval_str=True).return_annotation
    return (
        dependant.request_param_name is not None
        and not any(others)
        and dependant.response_param_name is None
        and dependant.background_tasks_param_name is None
        and dependant.security_scopes_param_name is None
        and route.max_body_size is None
        and inspect.iscoroutinefunction(route.endpoint)
        and inspect.isclass(returns)
        and issubclass(returns, Response)
    )


def direct_app(endpoint: Endpoint) -> ASGIApp:
    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        response = await endpoint(Request(scope, receive, send))
        await response(scope, receive, send)

    return app


class LeanRoute(APIRoute):
    """A route that bypasses FastAPI's handler when its endpoint takes only the request.

    ``wrap_handler`` is the one place a subclass adds to what answers the request: it wraps
    FastAPI's handler and the directly called endpoint alike.
    """

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        if takes_only_the_request(self):
            self.app = direct_app(self.wrap_handler(self.endpoint))

    def get_route_handler(self) -> Endpoint:
        return self.wrap_handler(super().get_route_handler())

    def wrap_handler(self, handler: Endpoint) -> Endpoint:
        return handler


class AdmittedRoute(LeanRoute):
    def wrap_handler(self, handler: Endpoint) -> Endpoint:
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
