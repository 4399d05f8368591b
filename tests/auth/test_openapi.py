from __future__ import annotations

import httpx


async def test_openapi_documents_the_auth_routes(client: httpx.AsyncClient) -> None:
    response = await client.get("/openapi.json")
    assert response.status_code == 200
    paths = response.json()["paths"]
    for path, method in [
        ("/api/v1/auth/login", "post"),
        ("/api/v1/auth/refresh", "post"),
        ("/api/v1/auth/logout", "post"),
        ("/api/v1/auth/sessions", "get"),
        ("/api/v1/auth/sessions/{session_id}", "delete"),
        ("/api/v1/auth/register", "post"),
    ]:
        assert method in paths[path], path

    for path in ("/api/v1/auth/login", "/api/v1/auth/refresh"):
        body = paths[path]["post"]["requestBody"]
        assert body["required"] is True
        assert set(body["content"]) == {"application/json", "application/x-www-form-urlencoded"}
    login = paths["/api/v1/auth/login"]["post"]["requestBody"]["content"]["application/json"]
    assert set(login["schema"]["properties"]) == {"username", "email", "password"}
    assert paths["/api/v1/auth/logout"]["post"]["requestBody"]["required"] is False
    register = paths["/api/v1/auth/register"]["post"]["requestBody"]["content"]
    assert register["application/json"]["schema"]["$ref"].endswith("/RegisterRequest")
