"""Every domain route is admitted (counted) by its route class; a plain one stops start-up."""

from __future__ import annotations

import pytest
from fastapi import APIRouter, FastAPI

from rostra import api
from rostra.core.routing import AdmittedRoute


def test_every_domain_route_is_admitted() -> None:
    routes = [route for router in api.DOMAIN_ROUTERS for route in router.routes]
    assert routes
    assert all(isinstance(route, AdmittedRoute) for route in routes)


def test_a_domain_router_without_the_route_class_stops_start_up(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    plain = APIRouter()

    @plain.get("/uncounted")
    async def uncounted() -> None:
        return None

    monkeypatch.setattr(api, "DOMAIN_ROUTERS", (*api.DOMAIN_ROUTERS, plain))
    with pytest.raises(TypeError, match="/uncounted is not an AdmittedRoute"):
        api.mount_routes(FastAPI())
