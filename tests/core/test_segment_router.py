"""``SegmentRouter`` answers as the flat router of the same routes does, under its mount too."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
from fastapi import APIRouter, FastAPI, Request
from fastapi.routing import APIRoute
from starlette.datastructures import URLPath
from starlette.responses import JSONResponse, Response
from starlette.routing import Match, NoMatchFound
from starlette.types import Scope

from rostra.core.errors import install_error_handlers
from rostra.core.routing import RouterMount, SegmentRouter


class CountedRoute(APIRoute):
    """A route that notes every request it is tried against."""

    tried: list[str] = []
    asked_for_urls: list[str] = []

    def matches(self, scope: Scope) -> tuple[Match, Scope]:
        self.tried.append(scope["path"])
        return super().matches(scope)

    def url_path_for(self, name: str, /, **path_params: Any) -> URLPath:
        self.asked_for_urls.append(name)
        return super().url_path_for(name, **path_params)


routes = APIRouter()


@routes.get("/things")
async def list_things(request: Request) -> Response:
    return JSONResponse({"route": "list", "link": str(request.url_for("get_thing", thing_id=3))})


@routes.get("/things/{thing_id}")
async def get_thing(request: Request, thing_id: int) -> Response:
    return JSONResponse({"route": "get", "thing_id": thing_id})


@routes.get("/other/things/{thing_id}")
async def other_thing(request: Request, thing_id: int) -> Response:
    return JSONResponse({"route": "other", "thing_id": thing_id})


async def other_first(request: Request) -> Response:
    return JSONResponse({"route": "other first"})


# First in the list: a router trying its routes in turn would try it for every request.
COUNTED = CountedRoute("/other/first", other_first, methods=["GET"])


@pytest.fixture
async def client() -> AsyncIterator[httpx.AsyncClient]:
    app = FastAPI()
    install_error_handlers(app)
    CountedRoute.tried.clear()
    CountedRoute.asked_for_urls.clear()
    app.router.routes.append(RouterMount("/api", app=SegmentRouter([COUNTED, *routes.routes])))
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://test") as http:
        yield http


async def test_each_segment_reaches_its_routes(client: httpx.AsyncClient) -> None:
    assert (await client.get("/api/things/7")).json() == {"route": "get", "thing_id": 7}
    assert (await client.get("/api/other/things/7")).json() == {"route": "other", "thing_id": 7}
    listed = await client.get("/api/things")
    assert listed.json() == {"route": "list", "link": "http://test/api/things/3"}


async def test_a_request_is_tried_only_against_its_segments_routes(
    client: httpx.AsyncClient,
) -> None:
    await client.get("/api/things/7")
    await client.get("/api/things")
    # Its segment, but not its number of segments: the route cannot match, so is not tried.
    assert (await client.get("/api/other/things/7")).json() == {"route": "other", "thing_id": 7}
    assert CountedRoute.tried == []
    assert (await client.get("/api/other/first")).json() == {"route": "other first"}
    assert CountedRoute.tried == ["/api/other/first"]


async def test_misses_answer_as_a_flat_router_does(client: httpx.AsyncClient) -> None:
    assert (await client.post("/api/things/7")).status_code == 405
    for path in ("/api/nothing", "/api/{x}", "/api/", "/api/things/7/more", "/apithings/7"):
        missing = await client.get(path)
        assert missing.status_code == 404, path
        assert missing.json()["error"]["code"] == "RESOURCE_NOT_FOUND"
    slash = await client.get("/api/things/", follow_redirects=False)
    assert slash.status_code == 307
    assert slash.headers["location"] == "http://test/api/things"


@pytest.mark.parametrize(
    ("path", "refusal"),
    [
        ("/{anything}", "first segment must be literal"),
        # A path is tried only against the routes with as many segments as it has.
        ("/files/{rest:path}", "may span a /"),
    ],
)
def test_a_route_it_could_not_find_by_shape_is_refused(path: str, refusal: str) -> None:
    odd = APIRouter()

    @odd.get(path)
    async def anything(request: Request) -> Response:
        return Response()

    with pytest.raises(ValueError, match=refusal):
        SegmentRouter(list(odd.routes))


async def test_a_url_is_built_by_the_routes_of_its_name_alone(client: httpx.AsyncClient) -> None:
    listed = await client.get("/api/things")
    assert listed.json()["link"] == "http://test/api/things/3"
    assert CountedRoute.asked_for_urls == []  # a mount trying each route would ask it first

    router = SegmentRouter([COUNTED, *routes.routes])
    assert str(router.url_path_for("other_first")) == "/other/first"
    assert CountedRoute.asked_for_urls == ["other_first"]
    with pytest.raises(NoMatchFound):
        router.url_path_for("no_such_route")
    with pytest.raises(NoMatchFound):
        router.url_path_for("get_thing", other_id=3)
