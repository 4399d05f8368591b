"""Which lists keep their page statements built: the project list, whose query is built once
per caller, reuses its statement; a list read through a session builds its query on every
request, so its statements are not kept (they would only fill the cache)."""

from __future__ import annotations

import httpx
from fastapi import FastAPI

from rostra.core.listing import _count_of, _page_query
from tests.factories import make_account, make_project


async def test_only_built_once_lists_keep_their_statements(
    app: FastAPI, client: httpx.AsyncClient
) -> None:
    admin = await make_account(app, role="admin")
    await make_project(app, admin.user)

    for path in ("/api/v1/users", "/api/v1/api-keys", "/api/v1/webhooks"):
        before = (_page_query.cache_info().currsize, _count_of.cache_info().currsize)
        for _ in range(3):
            assert (await client.get(path, headers=admin.headers)).status_code == 200
        after = (_page_query.cache_info().currsize, _count_of.cache_info().currsize)
        assert after == before, path

    for _ in range(2):
        assert (await client.get("/api/v1/projects", headers=admin.headers)).status_code == 200
    hits = _page_query.cache_info().hits
    assert (await client.get("/api/v1/projects", headers=admin.headers)).status_code == 200
    assert _page_query.cache_info().hits == hits + 1
    filtered = await client.get("/api/v1/projects?status=active", headers=admin.headers)
    assert filtered.status_code == 200
    assert _page_query.cache_info().hits == hits + 1
