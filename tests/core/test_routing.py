"""The route classes: which routes take the direct path, and that it answers as FastAPI would."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Annotated, Any

import httpx
import pytest
from fastapi import APIRouter, Depends, FastAPI, Request
from starlette.responses import JSONResponse, Response

from rostra.api import DOMAIN_ROUTERS
from rostra.core.errors import NotFound, install_error_handlers
from rostra.core.routing import (
    ADMISSION_STATE,
    AdmittedRoute,
    LeanRoute,
    takes_only_request_and_path,
)
from rostra.core.schemas import IdPath
from rostra.system.router import router as system_router

router = APIRouter(route_class=AdmittedRoute)


def through_fastapi(request: Request) -> bool:
    """Whether FastAPI's handler served the request (it leaves its exit stack in the scope)."""
    return "fastapi_inner_astack" in request.scope


@router.get("/plain")
async def plain(request: Request) -> Response:
    if request.query_params.get("missing"):
        raise NotFound("No such thing")
    return JSONResponse({"path": request.url.path, "through_fastapi": through_fastapi(request)})


@router.get("/things/{thing_id}/parts/{part_id}")
async def part(request: Request, thing_id: IdPath, part_id: int) -> Response:
    return JSONResponse(
        {"thing_id": thing_id, "part_id": part_id, "through_fastapi": through_fastapi(request)}
    )


@router.get("/typed")
async def typed(request: Request, limit: int = 10) -> Response:
    return JSONResponse({"limit": limit, "through_fastapi": through_fastapi(request)})


def _dependency() -> str:
    return "resolved"


@router.get("/depends")
async def depends(request: Request, value: Annotated[str, Depends(_dependency)]) -> Response:
    return JSONResponse({"value": value})


@router.get("/model")
async def model(request: Request) -> dict[str, Any]:
    return {"model": True}


def _route(path: str) -> AdmittedRoute:
    (route,) = (r for r in router.routes if isinstance(r, AdmittedRoute) and r.path == path)
    return route


@pytest.fixture
async def client() -> AsyncIterator[httpx.AsyncClient]:
    app = FastAPI()
    install_error_handlers(app)
    # Flat, as rostra.api mounts its routes: an included router rebuilds its routes' apps.
    app.router.routes.extend(router.routes)
    admitted: list[str] = []

    async def admit(request: Request) -> None:
        admitted.append(request.url.path)
        if request.headers.get("x-refuse"):
            raise NotFound("Refused at admission")

    setattr(app.state, ADMISSION_STATE, admit)
    app.state.admitted = admitted
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://test") as http:
        http.app = app  # type: ignore[attr-defined]
        yield http


def test_only_request_and_path_endpoints_take_the_direct_path() -> None:
    assert takes_only_request_and_path(_route("/plain"))
    assert takes_only_request_and_path(_route("/things/{thing_id}/parts/{part_id}"))
    assert not takes_only_request_and_path(_route("/typed"))
    assert not takes_only_request_and_path(_route("/depends"))
    assert not takes_only_request_and_path(_route("/model"))


def test_the_hottest_routes_take_the_direct_path() -> None:
    lean = {
        route.path
        for r in (*DOMAIN_ROUTERS, system_router)
        for route in r.routes
        if isinstance(route, LeanRoute) and takes_only_request_and_path(route)
    }
    assert {"/user", "/health", "/projects", "/projects/{project_id}"} <= lean


async def test_direct_route_is_admitted_and_answers(client: httpx.AsyncClient) -> None:
    response = await client.get("/plain")
    assert response.status_code == 200
    assert response.json() == {"path": "/plain", "through_fastapi": False}
    assert client.app.state.admitted == ["/plain"]  # type: ignore[attr-defined]


async def test_direct_route_validates_its_path_parameters(client: httpx.AsyncClient) -> None:
    response = await client.get("/things/7/parts/-3")
    assert response.json() == {"thing_id": 7, "part_id": -3, "through_fastapi": False}
    for path, field in (("/things/0/parts/1", "thing_id"), ("/things/7/parts/x", "part_id")):
        invalid = await client.get(path)
        assert invalid.status_code == 400
        error = invalid.json()["error"]
        assert error["code"] == "VALIDATION_ERROR"
        assert [detail["field"] for detail in error["details"]] == [field]
    huge = await client.get("/things/99999999999999999999/parts/1")
    assert huge.status_code == 400


async def test_direct_route_errors_get_the_envelope(client: httpx.AsyncClient) -> None:
    response = await client.get("/plain", params={"missing": "1"})
    assert response.status_code == 404
    assert response.json()["error"]["code"] == "RESOURCE_NOT_FOUND"
    assert response.json()["error"]["message"] == "No such thing"


async def test_admission_refusal_answers_before_the_endpoint(client: httpx.AsyncClient) -> None:
    response = await client.get("/plain", headers={"X-Refuse": "1"})
    assert response.status_code == 404
    assert response.json()["error"]["message"] == "Refused at admission"


async def test_other_routes_keep_fastapi_validation(client: httpx.AsyncClient) -> None:
    typed = await client.get("/typed", params={"limit": "5"})
    assert typed.json() == {"limit": 5, "through_fastapi": True}
    invalid = await client.get("/typed", params={"limit": "many"})
    assert invalid.status_code == 400
    assert invalid.json()["error"]["code"] == "VALIDATION_ERROR"
    assert (await client.get("/depends")).json() == {"value": "resolved"}
    assert client.app.state.admitted == ["/typed", "/typed", "/depends"]  # type: ignore[attr-defined]
