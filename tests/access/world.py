"""One user's resources, and every route that takes their ids, for the access tests."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from fastapi import FastAPI

from tests.factories import (
    Account,
    make_account,
    make_component,
    make_data_set,
    make_deployment,
    make_project,
)


@dataclass(frozen=True)
class Route:
    method: str
    path: str
    body: dict[str, Any] | None = None

    @property
    def writes(self) -> bool:
        return self.method != "GET"

    def url(self, ids: dict[str, int]) -> str:
        return "/api/v1" + self.path.format(**ids)

    def __str__(self) -> str:
        return f"{self.method} {self.path}"


PROJECT_ROUTES = (
    Route("GET", "/projects/{project}"),
    Route("PUT", "/projects/{project}", {"name": "taken over"}),
    Route("PATCH", "/projects/{project}", {"name": "taken over"}),
    Route("DELETE", "/projects/{project}"),
    Route("GET", "/projects/{project}/members"),
    Route("POST", "/projects/{project}/members", {"user_id": 0, "role": "owner"}),
    Route("GET", "/projects/{project}/members/{owner}"),
    Route("PATCH", "/projects/{project}/members/{owner}", {"role": "viewer"}),
    Route("DELETE", "/projects/{project}/members/{owner}"),
    Route("GET", "/projects/{project}/components"),
    Route("POST", "/projects/{project}/components", {"name": "implant"}),
    Route("GET", "/projects/{project}/deployments"),
    Route("POST", "/projects/{project}/deployments", {"environment": "prod", "ref": "evil"}),
    Route("GET", "/components/{component}"),
    Route("PUT", "/components/{component}", {"name": "renamed"}),
    Route("PATCH", "/components/{component}", {"name": "renamed"}),
    Route("DELETE", "/components/{component}"),
    Route("GET", "/deployments/{deployment}"),
    Route("PATCH", "/deployments/{deployment}", {"status": "cancelled"}),
    Route("GET", "/data/{data}"),
    Route("PUT", "/data/{data}", {"name": "mine now", "values": []}),
    Route("PATCH", "/data/{data}", {"values": []}),
    Route("DELETE", "/data/{data}"),
)
"""Every route that takes the id of a project or of something in it."""

PERSONAL_DATA_ROUTES = tuple(route for route in PROJECT_ROUTES if "{data}" in route.path)

CREATE_ROUTES = (
    Route("POST", "/projects", {"name": "new"}),
    Route("POST", "/components", {"name": "new", "project_id": 0}),
    Route("POST", "/data", {"name": "new", "values": [1]}),
)


@dataclass(frozen=True)
class World:
    owner: Account
    ids: dict[str, int]
    personal_data: int


async def make_world(app: FastAPI, visibility: str) -> World:
    """An owner's project (of the given visibility) with a component, a deployment and a data
    set in it, and a personal data set of theirs."""
    owner = await make_account(app)
    project = await make_project(app, owner.user, visibility=visibility)
    component = await make_component(app, project, name="api")
    deployment = await make_deployment(app, project, component_id=component.id)
    data_set = await make_data_set(app, owner.user, project)
    personal = await make_data_set(app, owner.user)
    ids = {
        "project": project.id,
        "component": component.id,
        "deployment": deployment.id,
        "data": data_set.id,
        "owner": owner.id,
    }
    return World(owner=owner, ids=ids, personal_data=personal.id)


def body_for(route: Route, caller_id: int, world: World) -> dict[str, Any] | None:
    """The route's body, naming the caller or the world's project where a body names one."""
    if route.body is None:
        return None
    body = dict(route.body)
    if "user_id" in body:
        body["user_id"] = caller_id
    if "project_id" in body:
        body["project_id"] = world.ids["project"]
    return body
