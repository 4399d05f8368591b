"""Section 1: /api/v1 and its /v1 mirror, the OpenAPI 3.1 document and offline /docs."""

from __future__ import annotations

import re

import httpx
import pytest
from fastapi import FastAPI
from prometheus_client.parser import text_string_to_metric_families

from tests.factories import make_account


@pytest.fixture
def settings_overrides() -> dict[str, object]:
    # Many anonymous requests in a row; /metrics shows which routes matched.
    return {"rate_limit_enabled": False, "metrics_public": True}


def _concrete(path: str) -> str:
    return re.sub(r"\{[^}]+\}", "1", path)


async def test_every_api_v1_route_answers_under_v1_and_at_the_root(
    client: httpx.AsyncClient,
) -> None:
    document = (await client.get("/openapi.json")).json()
    operations = [
        (method.upper(), path)
        for path, item in document["paths"].items()
        if path.startswith("/api/v1/")
        for method in item
    ]
    assert ("GET", "/api/v1/user") in operations
    for method, path in operations:
        canonical = await client.request(method, _concrete(path))
        mirrored = await client.request(method, _concrete(path.replace("/api/v1/", "/v1/", 1)))
        assert mirrored.status_code == canonical.status_code, (method, path, mirrored.text)
        rooted = await client.request(method, _concrete(path.replace("/api/v1/", "/", 1)))
        assert rooted.status_code == canonical.status_code, (method, path, rooted.text)

    metrics = (await client.get("/metrics")).text
    served = {
        sample.labels["route"]
        for family in text_string_to_metric_families(metrics)
        if family.name == "rostra_http_requests"
        for sample in family.samples
        if sample.name == "rostra_http_requests_total"
    }
    for _, path in operations:
        assert path in served
        assert path.replace("/api/v1/", "/v1/", 1) in served
        assert path.replace("/api/v1/", "/", 1) in served
    assert "unmatched" not in served


async def test_the_v1_mirror_gives_the_same_answers(
    app: FastAPI, client: httpx.AsyncClient
) -> None:
    admin = await make_account(app, role="admin")
    canonical = await client.get("/api/v1/users", headers=admin.headers)
    mirrored = await client.get("/v1/users", headers=admin.headers)
    assert canonical.status_code == mirrored.status_code == 200
    assert mirrored.json() == canonical.json()

    created = await client.post(
        "/v1/users", headers=admin.headers, json={"name": "Seed One", "email": "one@example.com"}
    )
    assert created.status_code == 201, created.text
    user_id = created.json()["id"]
    fetched = await client.get(f"/api/v1/users/{user_id}", headers=admin.headers)
    assert fetched.json()["email"] == "one@example.com"


async def test_service_endpoints_answer_at_root_and_under_the_prefixes(
    client: httpx.AsyncClient,
) -> None:
    for prefix in ("", "/api/v1", "/v1"):
        for path in ("/health", "/status"):
            response = await client.get(prefix + path)
            assert response.status_code == 200, (prefix + path, response.text)


async def test_openapi_document_is_3_1_and_lists_the_canonical_routes(
    client: httpx.AsyncClient,
) -> None:
    response = await client.get("/openapi.json")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("application/json")
    document = response.json()
    assert document["openapi"].startswith("3.1.")
    assert document["info"]["title"] == "Rostra API"
    assert document["components"]["securitySchemes"]["bearer"]["scheme"] == "bearer"
    paths = document["paths"]
    for expected in ("/api/v1/user", "/api/v1/users", "/api/v1/auth/login", "/health"):
        assert expected in paths
    # The /v1 mirror is one API, documented once.
    assert not [path for path in paths if path.startswith("/v1/")]
    assert "/docs" not in paths


async def test_docs_are_served_without_a_cdn(client: httpx.AsyncClient) -> None:
    response = await client.get("/docs")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/html")
    html = response.text
    assert "://" not in html, "the docs page must not load anything from another host"
    assets = re.findall(r'(?:src|href)="([^"]+)"', html)
    assert len(assets) >= 2
    assert "/openapi.json" in html
    for asset in assets:
        assert asset.startswith("/docs/static/"), asset
        fetched = await client.get(asset)
        assert fetched.status_code == 200, asset
        assert len(fetched.content) > 100
    assert any(asset.endswith(".js") for asset in assets)
    assert any(asset.endswith(".css") for asset in assets)
