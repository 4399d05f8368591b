"""Every id in a path: one no table can hold is a 400 naming the parameter, never a 500.

The routes are read from the app itself, so a route added later with a plain ``int`` id (which
a 20-digit id overflows in the database driver) fails here.
"""

from __future__ import annotations

import re

import httpx
import pytest
from fastapi import FastAPI
from fastapi.routing import APIRoute

from tests.factories import make_account, make_project
from tests.users.helpers import error_of

API = "/api/v1"
PARAMETER = re.compile(r"{(\w+)}")
UNHOLDABLE_IDS = ("99999999999999999999", "0", "-1")


def id_routes(app: FastAPI) -> list[tuple[str, str, str]]:
    """(method, path template, id parameter) for every API route with an integer path id."""
    found = []
    for route in app.routes:
        mount_path = getattr(route, "path", "")
        if mount_path != API:
            continue
        for inner in route.routes:  # type: ignore[attr-defined]
            if not isinstance(inner, APIRoute):
                continue
            for param in inner.dependant.path_params:
                if param.field_info.annotation is int:
                    for method in sorted(inner.methods):
                        found.append((method, API + inner.path, param.name))
    return found


def test_the_routes_are_found(app: FastAPI) -> None:
    routes = id_routes(app)
    names = {(path, name) for _, path, name in routes}
    assert (f"{API}/projects/{{project_id}}", "project_id") in names
    assert (f"{API}/projects/{{project_id}}/members/{{user_id}}", "user_id") in names
    assert (f"{API}/deployments/{{deployment_id}}", "deployment_id") in names
    assert len(routes) > 30


@pytest.mark.parametrize("bad_id", UNHOLDABLE_IDS)
async def test_an_id_no_table_holds_is_a_400_naming_it(
    app: FastAPI, client: httpx.AsyncClient, bad_id: str
) -> None:
    admin = await make_account(app, role="admin")
    project = await make_project(app, admin.user)
    for method, template, name in id_routes(app):
        path = template
        for param in PARAMETER.findall(template):
            path = path.replace(f"{{{param}}}", bad_id if param == name else str(project.id))
        body = None if method in ("GET", "DELETE") else {}
        response = await client.request(method, path, headers=admin.headers, json=body)
        assert response.status_code == 400, f"{method} {path}: {response.text}"
        fields = {detail["field"] for detail in error_of(response).get("details", [])}
        assert name in fields, f"{method} {path}: {response.text}"
