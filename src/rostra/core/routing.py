"""The route classes: the app's admission check on every domain route, and a direct path for
the routes that take nothing but the request and path ids; and the router that finds a route
by its first path segment.

Admission is the rate-limit count (``rostra.ratelimit.deps.rate_limit_admission``, installed by
``create_app`` as ``app.state.admit``). It used to be a router-level FastAPI dependency; as part
of the route's handler it costs one call instead of a node of dependency resolution on every
request, and it still runs before the route's own dependencies, so a request with a bad
credential is counted (against its client address) before its 401.

An endpoint declared as ``async def endpoint(request: Request) -> Response``, or with path
parameters besides (``project_id: IdPath``), has nothing for FastAPI to resolve or serialize
but its path parameters, yet FastAPI's handler still walks its dependency machinery, opens two
exit stacks and wraps its own exception handling around it: about a sixth of a cached
``GET /user``. ``LeanRoute`` calls such an endpoint directly, after validating its path
parameters with their FastAPI fields (the same errors, raised as the same
``RequestValidationError``). Its exceptions reach the same handlers, one layer out (Starlette's
``ExceptionMiddleware``), and OpenAPI still documents the route from its declaration. It holds
for the route objects as built, which ``rostra.api`` mounts as they are; ``include_router``
would rebuild their apps through FastAPI.
"""

from __future__ import annotations

import inspect
from collections.abc import Awaitable, Callable, Coroutine
from enum import Enum
from typing import Any

from fastapi import Request
from fastapi.dependencies.models import Dependant
from fastapi.exceptions import RequestValidationError
from fastapi.routing import APIRoute, APIRouter
from starlette.datastructures import URLPath
from starlette.responses import Response
from starlette.routing import BaseRoute, Match, Mount, NoMatchFound
from starlette.types import ASGIApp, Receive, Scope, Send

Admission = Callable[[Request], Awaitable[None]]
"""Raises a ``RostraError`` (a 429, a 503) to answer instead of the route."""

ADMISSION_STATE = "admit"
"""Name of the app-state attribute holding the app's ``Admission``."""

Endpoint = Callable[[Request], Coroutine[Any, Any, Response]]
DirectEndpoint = Callable[..., Coroutine[Any, Any, Response]]
"""Called with the request and its validated path parameters as keywords."""


def takes_only_request_and_path(route: APIRoute) -> bool:
    """Whether FastAPI's handler would do nothing for ``route`` but validate its path
    parameters and pass them on with the request: no other parameters or dependencies, no body
    limit of its own, and a coroutine declared to return a ready ``Response``."""
    dependant: Dependant = route.dependant
    others = (
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


def with_path_params(route: APIRoute, endpoint: DirectEndpoint) -> Endpoint:
    """``endpoint`` as a function of the request alone: its path parameters validated first,
    each by its FastAPI field, with the location FastAPI gives its errors (a matched route has
    every one of its path parameters, so none is ever missing)."""
    fields = [(field, ("path", field.alias)) for field in route.dependant.path_params]
    if not fields:
        return endpoint

    async def validated(request: Request) -> Response:
        given = request.path_params
        values: dict[str, Any] = {}
        errors: list[Any] = []
        for field, loc in fields:
            value, invalid = field.validate(given[field.alias], values, loc=loc)
            if invalid:
                errors.extend(invalid)
            else:
                values[field.name] = value
        if errors:
            raise RequestValidationError(errors)
        return await endpoint(request, **values)

    return validated


class LeanRoute(APIRoute):
    """A route that bypasses FastAPI's handler when its endpoint takes only the request and
    path parameters.

    ``wrap_handler`` is the one place a subclass adds to what answers the request: it wraps
    FastAPI's handler and the directly called endpoint alike.
    """

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        if takes_only_request_and_path(self):
            self.app = direct_app(self.wrap_handler(with_path_params(self, self.endpoint)))

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


class SegmentRouter(APIRouter):
    """A flat list of routes, matched only against those of the request's shape: its first path
    segment and its number of segments (``/projects/7`` tries ``/projects/{project_id}`` and
    the other two-segment ``/projects`` routes alone).

    A router tries its routes in turn, a regular expression each: with some seventy routes, a
    request for one late in the list spent longer finding its route than a project read takes.
    Every route's path starts with a literal segment and no parameter spans a ``/``, so a path
    can only match the routes of its own shape, which are tried here in their order, as the
    flat list would try them (a route of the right path but not the method is a 405 only when
    none is of both). A path of a shape no route has, or that none of its shape's routes
    matches, goes to the router of all the routes, this router itself, which answers 404 (or
    redirects a trailing slash) as before. ``routes`` is the whole list.

    The routes are called here directly rather than through a router of their own: a nested
    router's call costs more than finding the route.

    Building a URL (``url_for``, a ``Location`` header) likewise asks only the routes of that
    name, not each route in turn; ``RouterMount`` passes the question on to it.
    """

    def __init__(self, routes: list[BaseRoute]) -> None:
        super().__init__()
        self.routes.extend(routes)
        self._by_shape: dict[tuple[str, int], list[BaseRoute]] = {}
        for route in routes:
            path: str = getattr(route, "path", "")
            if "{" in _first_segment(path):
                raise ValueError(f"{path}: a route's first segment must be literal")
            if ":path}" in path:
                raise ValueError(f"{path}: no parameter of a segment router's route may span a /")
            self._by_shape.setdefault(_shape(path), []).append(route)
        self._by_name: dict[str, list[BaseRoute]] = {}
        for route in routes:
            name = getattr(route, "name", None)
            if not isinstance(name, str):
                raise ValueError(f"{route!r}: every route of a segment router has a name")
            self._by_name.setdefault(name, []).append(route)

    def url_path_for(self, name: str, /, **path_params: Any) -> URLPath:
        for route in self._by_name.get(name, ()):
            try:
                return route.url_path_for(name, **path_params)
            except NoMatchFound:
                continue
        raise NoMatchFound(name, path_params)

    async def app(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            path = _route_path(scope)
            partial: tuple[BaseRoute, Scope] | None = None
            for route in self._by_shape.get(_shape(path), ()):
                match, child_scope = route.matches(scope)
                if match is Match.FULL:
                    scope.update(child_scope)
                    await route.handle(scope, receive, send)
                    return
                if match is Match.PARTIAL and partial is None:
                    partial = (route, child_scope)
            if partial is not None:
                route, child_scope = partial
                scope.update(child_scope)
                await route.handle(scope, receive, send)  # 405, with the methods it allows
                return
        await super().app(scope, receive, send)


class RouterMount(Mount):
    """A ``Mount`` of a router that builds its own URLs (a ``SegmentRouter``): ``url_for``
    asks the router, rather than trying each of its routes in turn as ``Mount`` does.

    A request is matched by comparing the start of its path with the mount's (a mount's prefix
    is literal), where ``Mount`` runs a regular expression and takes the path apart: the app's
    router tries its mounts for every request, the API's prefixes first."""

    def __init__(self, path: str, app: SegmentRouter) -> None:
        super().__init__(path, app=app)
        self._router = app
        self._prefix = self.path + "/"

    def matches(self, scope: Scope) -> tuple[Match, Scope]:
        if scope["type"] != "http":
            return super().matches(scope)
        if not _route_path(scope).startswith(self._prefix):
            return Match.NONE, {}
        root_path: str = scope.get("root_path", "")
        return Match.FULL, {
            "path_params": dict(scope.get("path_params", {})),
            "app_root_path": scope.get("app_root_path", root_path),
            "root_path": root_path + self.path,
            "endpoint": self.app,
        }

    def url_path_for(self, name: str, /, **path_params: Any) -> URLPath:
        url = self._router.url_path_for(name, **path_params)
        return URLPath(path=self.path + str(url), protocol=url.protocol)


def _route_path(scope: Scope) -> str:
    """The path below the mounts: a ``Mount`` keeps the whole path and extends ``root_path``."""
    path: str = scope["path"]
    root_path: str = scope.get("root_path", "")
    if root_path and path.startswith(root_path):
        return path[len(root_path) :]
    return path


def _first_segment(path: str) -> str:
    return path[1:].partition("/")[0]


def _shape(path: str) -> tuple[str, int]:
    """A path's first segment and number of segments: the routes a path may match share both."""
    return _first_segment(path), path.count("/")
