"""Project reads serve each project rendered once per revision (``rendered_projects``): every
write gives the project a new revision, so no change, made by whichever process, is ever
shown stale, in a list or alone."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy import delete, select, update

from rostra.app import create_app
from rostra.core.config import Settings
from rostra.core.http import etag_of
from rostra.projects import service
from rostra.projects.models import Project
from tests.factories import make_account, make_project


async def listed(client: httpx.AsyncClient, headers: dict[str, str], query: str = "") -> list:
    answer = await client.get(f"/api/v1/projects?limit=100{query}", headers=headers)
    assert answer.status_code == 200
    return answer.json()["data"]


async def revision_of(app: FastAPI, project_id: int) -> int:
    async with app.state.db.session_scope() as session:
        revision = await session.scalar(select(Project.revision).where(Project.id == project_id))
    assert revision is not None
    return revision


async def test_every_write_lists_the_project_as_it_now_is(
    app: FastAPI, client: httpx.AsyncClient
) -> None:
    account = await make_account(app)
    project = await make_project(app, account.user, description="first")
    url = f"/api/v1/projects/{project.id}"
    assert [p["description"] for p in await listed(client, account.headers)] == ["first"]
    revisions = {await revision_of(app, project.id)}

    changes = [
        ("patch", {"description": "patched"}),
        ("patch", {"settings": {"auto_deploy": True}}),
        ("put", {"name": "replaced", "description": "put", "visibility": "internal"}),
    ]
    for method, body in changes:
        changed = await client.request(method, url, json=body, headers=account.headers)
        assert changed.status_code == 200
        [shown] = await listed(client, account.headers)
        assert shown == changed.json()
        alone = await client.get(url, headers=account.headers)
        assert alone.content == changed.content
        assert alone.headers["ETag"] == changed.headers["ETag"] == etag_of(changed.content)
        revisions.add(await revision_of(app, project.id))
    # A statement's UPDATE, not the ORM's unit of work, bumps it too.
    async with app.state.db.session_scope() as session:
        await session.execute(
            update(Project).where(Project.id == project.id).values(description="by statement")
        )
    [shown] = await listed(client, account.headers, "&cursor=")
    assert shown["description"] == "by statement"
    assert (await client.get(url, headers=account.headers)).json() == shown
    revisions.add(await revision_of(app, project.id))
    assert len(revisions) == 5
    assert 0 not in revisions


async def test_a_change_made_by_another_process_is_listed(
    app: FastAPI, client: httpx.AsyncClient, settings: Settings
) -> None:
    account = await make_account(app)
    project = await make_project(app, account.user, description="before")
    assert [p["description"] for p in await listed(client, account.headers)] == ["before"]

    other_process = create_app(settings)
    try:
        transport = httpx.ASGITransport(app=other_process)
        async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as other:
            changed = await other.patch(
                f"/api/v1/projects/{project.id}",
                json={"description": "after"},
                headers=account.headers,
            )
            assert changed.status_code == 200
    finally:
        await other_process.state.db.dispose()
    assert [p["description"] for p in await listed(client, account.headers)] == ["after"]
    alone = await client.get(f"/api/v1/projects/{project.id}", headers=account.headers)
    assert alone.content == changed.content


async def test_a_new_project_under_a_deleted_ones_id_is_listed_as_itself(
    app: FastAPI, client: httpx.AsyncClient, settings: Settings
) -> None:
    """SQLite gives a new row the id of a deleted last row: its revision tells them apart."""
    account = await make_account(app)
    first = await make_project(app, account.user, name="gone")
    assert [p["name"] for p in await listed(client, account.headers)] == ["gone"]
    alone = await client.get(f"/api/v1/projects/{first.id}", headers=account.headers)
    assert alone.json()["name"] == "gone"
    assert (await client.delete(f"/api/v1/projects/{first.id}", headers=account.headers)).is_success
    second = await make_project(app, account.user, name="new")
    if settings.is_sqlite:
        assert second.id == first.id
    assert [p["name"] for p in await listed(client, account.headers)] == ["new"]
    assert [p["id"] for p in await listed(client, account.headers)] == [second.id]
    alone = await client.get(f"/api/v1/projects/{second.id}", headers=account.headers)
    assert alone.json()["name"] == "new"


async def test_a_page_shows_its_rows_as_they_are_when_rendered(app: FastAPI) -> None:
    """Rows changed after the page's keys were read are rendered as they now are; a row
    deleted in between is left out."""
    account = await make_account(app)
    kept = await make_project(app, account.user, description="old")
    gone = await make_project(app, account.user)
    page = [(kept.id, await revision_of(app, kept.id)), (gone.id, await revision_of(app, gone.id))]
    async with app.state.db.session_scope() as session:
        await session.execute(
            update(Project).where(Project.id == kept.id).values(description="new")
        )
        await session.execute(delete(Project).where(Project.id == gone.id))

    items = await service.rendered_projects(app.state.db, page, livemode=True)
    assert [(item.id, item.json.count(b'"description":"new"')) for item in items] == [(kept.id, 1)]
    # Kept under the revision it was rendered at: the next page that lists it finds it.
    now = [(kept.id, await revision_of(app, kept.id))]
    assert (await service.rendered_projects(app.state.db, now, livemode=True))[0] is items[0]


async def test_a_page_ends_where_its_keys_were_read_though_its_last_row_moves_before_rendering(
    app: FastAPI, client: httpx.AsyncClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The next cursor marks the last row's place as the page's keys found it. Taken from the
    row as rendered, after another writer moved it to the end of the sort, it would point past
    every row in between, and the next page would skip them."""
    account = await make_account(app)
    made = [await make_project(app, account.user, name=f"p{i}") for i in range(4)]
    render = service.rendered_projects
    moved: list[int] = []

    async def move_last_then_render(db: Any, keys: Any, *, livemode: bool) -> Any:
        if not moved:  # the first page only: its last row is renamed to sort after all
            moved.append(keys[-1][0])
            async with app.state.db.session_scope() as session:
                await session.execute(
                    update(Project).where(Project.id == keys[-1][0]).values(name="zz moved")
                )
        return await render(db, keys, livemode=livemode)

    monkeypatch.setattr(service, "rendered_projects", move_last_then_render)
    query = "/api/v1/projects?limit=2&sort=name&order=asc"
    first = (await client.get(query, headers=account.headers)).json()
    assert [p["name"] for p in first["data"]] == ["p0", "zz moved"]
    cursor = first["pagination"]["next_cursor"]
    second = (await client.get(f"{query}&cursor={cursor}", headers=account.headers)).json()
    assert [p["name"] for p in second["data"]] == ["p2", "p3"]
    assert moved == [made[1].id]


async def test_a_time_sorted_page_s_next_cursor_holds_its_last_row_s_time(
    app: FastAPI, client: httpx.AsyncClient
) -> None:
    """The keys' read gives the sort column as the database stores it; the cursor holds it as
    the column's type reads it (a time, as cursors always have), not SQLite's text."""
    account = await make_account(app)
    for _ in range(3):
        await make_project(app, account.user)
    for sort in ("created_at", "updated_at"):
        page = await client.get(f"/api/v1/projects?limit=2&sort=-{sort}", headers=account.headers)
        body = page.json()
        last = body["data"][-1]
        codec = app.state.cursor_codec
        value, last_id = codec.decode(body["pagination"]["next_cursor"], sort, "desc")
        assert isinstance(value, datetime)
        # The API shows whole seconds; the cursor keeps the stored microseconds.
        shown = datetime.fromisoformat(last[sort].replace("Z", "+00:00"))
        assert value.replace(microsecond=0) == shown
        assert last_id == last["id"]


async def test_test_mode_and_live_mode_renderings_are_kept_apart(
    app: FastAPI, client: httpx.AsyncClient
) -> None:
    account = await make_account(app)
    project = await make_project(app, account.user)
    row = [(project.id, await revision_of(app, project.id))]
    live = await service.rendered_projects(app.state.db, row, livemode=True)
    test = await service.rendered_projects(app.state.db, row, livemode=False)
    assert b'"livemode":true' in live[0].json
    assert b'"livemode":false' in test[0].json
    # Each is rendered once, then served from memory.
    assert (await service.rendered_projects(app.state.db, row, livemode=True))[0] is live[0]
    assert (await service.rendered_projects(app.state.db, row, livemode=False))[0] is test[0]
