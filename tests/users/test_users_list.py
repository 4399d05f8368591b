"""GET /users: the three pagination modes, sorting, search, filters and strict parameters."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy import update

from rostra.users.models import User
from tests.factories import Account, make_account, make_user
from tests.users.helpers import PREFIXES, error_fields, error_of


async def _population(app: FastAPI, extra: int = 6) -> tuple[Account, list[int]]:
    """A member and ``extra`` other users: every id, newest first (the default order)."""
    viewer = await make_account(app)
    others = [await make_user(app) for _ in range(extra)]
    return viewer, [user.id for user in reversed(others)] + [viewer.id]


def _links(response: httpx.Response) -> dict[str, str]:
    links = {}
    for part in response.headers["Link"].split(", "):
        url, rel = part.split("; ")
        links[rel.removeprefix('rel="').removesuffix('"')] = url.strip("<>")
    return links


def _ids(response: httpx.Response) -> list[int]:
    assert response.status_code == 200, response.text
    return [row["id"] for row in response.json()["data"]]


@pytest.mark.parametrize("prefix", PREFIXES)
async def test_offset_mode_is_the_default(
    app: FastAPI, client: httpx.AsyncClient, prefix: str
) -> None:
    viewer, ids = await _population(app)
    response = await client.get(f"{prefix}/users", headers=viewer.headers)
    assert _ids(response) == ids
    assert response.json()["pagination"] == {
        "limit": 50,
        "offset": 0,
        "total": 7,
        "has_more": False,
        "next_cursor": None,
    }
    assert set(_links(response)) == {"first", "last"}

    first = await client.get(f"{prefix}/users?limit=3", headers=viewer.headers)
    assert _ids(first) == ids[:3]
    pagination = first.json()["pagination"]
    assert pagination["total"] == 7
    assert pagination["has_more"] is True
    assert isinstance(pagination["next_cursor"], str)
    links = _links(first)
    assert "prev" not in links
    assert links["next"].startswith(f"http://testserver{prefix}/users?")

    second = await client.get(links["next"], headers=viewer.headers)
    assert _ids(second) == ids[3:6]
    assert second.json()["pagination"]["offset"] == 3
    assert _ids(await client.get(_links(second)["prev"], headers=viewer.headers)) == ids[:3]
    last = await client.get(_links(second)["last"], headers=viewer.headers)
    assert _ids(last) == ids[6:]
    assert last.json()["pagination"]["has_more"] is False
    assert "next" not in _links(last)


async def test_page_mode_as_seed_004_shows_it(app: FastAPI, client: httpx.AsyncClient) -> None:
    viewer, ids = await _population(app)
    response = await client.get("/api/v1/users?page=2&per_page=3", headers=viewer.headers)
    assert _ids(response) == ids[3:6]
    pagination = response.json()["pagination"]
    assert {k: pagination[k] for k in ("page", "per_page", "total", "pages", "has_more")} == {
        "page": 2,
        "per_page": 3,
        "total": 7,
        "pages": 3,
        "has_more": True,
    }
    assert set(pagination) == {"page", "per_page", "total", "pages", "has_more", "next_cursor"}
    links = _links(response)
    assert _ids(await client.get(links["prev"], headers=viewer.headers)) == ids[:3]
    assert _ids(await client.get(links["next"], headers=viewer.headers)) == ids[6:]
    assert "page=3" in links["last"]
    default = await client.get("/api/v1/users?page=1", headers=viewer.headers)
    assert default.json()["pagination"]["per_page"] == 20
    beyond = await client.get("/api/v1/users?page=9&per_page=3", headers=viewer.headers)
    assert _ids(beyond) == []
    assert beyond.json()["pagination"]["has_more"] is False


async def test_cursor_mode_walks_every_row_once(app: FastAPI, client: httpx.AsyncClient) -> None:
    viewer, ids = await _population(app)
    seen: list[int] = []
    response = await client.get("/api/v1/users?limit=3&cursor=", headers=viewer.headers)
    while True:
        seen += _ids(response)
        pagination = response.json()["pagination"]
        assert set(pagination) == {"limit", "has_more", "next_cursor"}
        if not pagination["has_more"]:
            assert pagination["next_cursor"] is None
            assert "next" not in _links(response)
            break
        next_url = _links(response)["next"]
        assert f"cursor={pagination['next_cursor']}" in next_url
        response = await client.get(next_url, headers=viewer.headers)
    assert seen == ids
    with_total = await client.get(
        "/api/v1/users?limit=2&cursor=&include_total=true", headers=viewer.headers
    )
    assert with_total.json()["pagination"]["total"] == 7


async def test_offset_page_next_cursor_continues_in_cursor_mode(
    app: FastAPI, client: httpx.AsyncClient
) -> None:
    viewer, ids = await _population(app)
    first = await client.get("/api/v1/users?limit=4&sort=username", headers=viewer.headers)
    cursor = first.json()["pagination"]["next_cursor"]
    rest = await client.get(
        "/api/v1/users",
        params={"limit": 4, "sort": "username", "cursor": cursor},
        headers=viewer.headers,
    )
    usernames = [row["username"] for row in first.json()["data"] + rest.json()["data"]]
    assert usernames == sorted(usernames)
    assert len(set(usernames)) == len(ids)


@pytest.mark.parametrize("order", ["asc", "desc"])
async def test_cursor_walk_while_rows_are_inserted_neither_skips_nor_repeats(
    app: FastAPI, client: httpx.AsyncClient, order: str
) -> None:
    viewer, ids = await _population(app, extra=11)
    inserted: list[int] = []
    seen: list[int] = []
    params: dict[str, Any] = {"limit": 4, "order": order, "cursor": ""}
    while True:
        response = await client.get("/api/v1/users", params=params, headers=viewer.headers)
        seen += _ids(response)
        for _ in range(2):
            inserted.append((await make_user(app)).id)
        cursor = response.json()["pagination"]["next_cursor"]
        if cursor is None:
            break
        params["cursor"] = cursor
    assert len(seen) == len(set(seen)), "a row was repeated"
    assert set(ids) <= set(seen), "a row was skipped"
    if order == "desc":
        # Newer rows land before the cursor: the walk sees exactly the rows it started with.
        assert seen == ids
    else:
        # Newer rows land after it: the walk meets them once, in order, at its end.
        assert seen[: len(ids)] == list(reversed(ids))
        assert set(seen[len(ids) :]) <= set(inserted)


async def test_cursor_walk_survives_rows_deleted_meanwhile(
    app: FastAPI, client: httpx.AsyncClient
) -> None:
    _viewer, ids = await _population(app, extra=8)
    admin = await make_account(app, role="admin")
    first = await client.get("/api/v1/users?limit=3&cursor=", headers=admin.headers)
    page = _ids(first)
    # The last row of the page (the cursor's own position) goes away.
    assert (
        await client.delete(f"/api/v1/users/{page[-1]}", headers=admin.headers)
    ).status_code == 204
    cursor = first.json()["pagination"]["next_cursor"]
    rest = await client.get(
        "/api/v1/users", params={"limit": 50, "cursor": cursor}, headers=admin.headers
    )
    assert _ids(rest) == [admin.id, *ids][3:]


@pytest.mark.parametrize(
    ("query", "key", "reverse"),
    [
        ("sort=username", "username", False),
        ("sort=-username", "username", True),
        ("sort=username&order=desc", "username", True),
        ("sort=id", "id", False),
        ("sort=created_at&order=asc", "id", False),
        ("order=asc", "id", False),
        ("sort=-updated_at", "id", True),
    ],
)
async def test_sorting(
    app: FastAPI, client: httpx.AsyncClient, query: str, key: str, reverse: bool
) -> None:
    viewer = await make_account(app, username="mmm")
    for name in ("zed", "alpha", "Bravo", "charlie"):
        await make_user(app, username=name)
    response = await client.get(f"/api/v1/users?{query}", headers=viewer.headers)
    values = [row[key] for row in response.json()["data"]]
    assert len(values) == 5
    if key == "username":
        # The database's collation decides where capitals go; lower-case names are ordered.
        lowered = [v for v in values if v.islower()]
        assert lowered == sorted(lowered, reverse=reverse)
    else:
        assert values == sorted(values, reverse=reverse)


async def test_search_matches_username_and_name_in_any_case(
    app: FastAPI, client: httpx.AsyncClient
) -> None:
    viewer = await make_account(app)
    alice = await make_user(app, username="alice_w")
    named = await make_user(app, username="bob", name="Dr. ALICE Liddell")
    await make_user(app, username="carol", email="alice@example.com")
    await make_user(app, username="percent", name="100% sure")
    response = await client.get("/api/v1/users?search=Alice", headers=viewer.headers)
    assert sorted(_ids(response)) == sorted([alice.id, named.id])
    assert response.json()["pagination"]["total"] == 2
    # LIKE wildcards in the term are literal characters.
    wildcard = await client.get("/api/v1/users", params={"search": "%"}, headers=viewer.headers)
    assert [row["username"] for row in wildcard.json()["data"]] == ["percent"]
    underscore = await client.get("/api/v1/users?search=e_w", headers=viewer.headers)
    assert _ids(underscore) == [alice.id]


async def test_role_and_plan_filters(app: FastAPI, client: httpx.AsyncClient) -> None:
    viewer = await make_account(app)
    admin = await make_user(app, role="admin")
    pro = await make_user(app, plan="professional")
    response = await client.get("/api/v1/users?role=admin", headers=viewer.headers)
    assert _ids(response) == [admin.id]
    members = await client.get("/api/v1/users?role=member", headers=viewer.headers)
    assert admin.id not in _ids(members)
    assert pro.id in _ids(members)
    assert _ids(await client.get("/api/v1/users?plan=professional", headers=viewer.headers)) == [
        pro.id
    ]
    both = await client.get("/api/v1/users?role=member&plan=free", headers=viewer.headers)
    assert _ids(both) == [viewer.id]


async def test_created_after_and_before_honour_time_zones(
    app: FastAPI, client: httpx.AsyncClient
) -> None:
    viewer = await make_account(app)
    times = {
        "early": datetime(2024, 1, 10, 10, 0, tzinfo=UTC),
        "middle": datetime(2024, 1, 15, 10, 0, tzinfo=UTC),
        "late": datetime(2024, 1, 20, 10, 0, tzinfo=UTC),
    }
    ids = {label: (await make_user(app, username=label)).id for label in times}
    async with app.state.db.session_scope() as session:
        for label, moment in times.items():
            statement = update(User).where(User.id == ids[label]).values(created_at=moment)
            await session.execute(statement)

    async def listed(**params: str) -> set[int]:
        response = await client.get("/api/v1/users", params=params, headers=viewer.headers)
        return set(_ids(response))

    # 11:30+02:00 is 09:30Z, before the middle user's 10:00Z.
    assert await listed(created_after="2024-01-15T11:30:00+02:00") == {
        ids["middle"],
        ids["late"],
        viewer.id,
    }
    # 06:30-04:00 is 10:30Z, after it.
    assert await listed(created_after="2024-01-15T06:30:00-04:00") == {ids["late"], viewer.id}
    assert await listed(created_before="2024-01-15T10:00:00Z") == {ids["early"]}
    assert await listed(
        created_after="2024-01-10T10:00:00Z", created_before="2024-01-20T10:00:00Z"
    ) == {ids["middle"]}
    assert await listed(created_before="2024-01-16") == {ids["early"], ids["middle"]}
    # A "+" left unencoded in a query string arrives as a space: still read as an offset.
    raw = await client.get(
        "/api/v1/users?created_before=2024-01-15T12:30:00+02:00", headers=viewer.headers
    )
    assert set(_ids(raw)) == {ids["early"], ids["middle"]}


async def test_emails_in_lists_only_for_self_and_admins(
    app: FastAPI, client: httpx.AsyncClient
) -> None:
    viewer = await make_account(app)
    admin = await make_account(app, role="admin")
    await make_user(app)
    as_member = await client.get("/api/v1/users", headers=viewer.headers)
    emails = {row["id"]: row["email"] for row in as_member.json()["data"]}
    assert emails.pop(viewer.id) == viewer.user.email
    assert set(emails.values()) == {None}
    assert admin.user.email not in as_member.text
    as_admin = await client.get("/api/v1/users", headers=admin.headers)
    assert None not in {row["email"] for row in as_admin.json()["data"]}


@pytest.mark.parametrize(
    ("query", "field"),
    [
        ("password=x", "password"),
        ("email=a@b.c", "email"),
        ("limit=101", "limit"),
        ("limit=0", "limit"),
        ("limit=ten", "limit"),
        ("offset=-1", "offset"),
        ("per_page=101", "per_page"),
        ("page=0", "page"),
        ("page=1&limit=10", "limit"),
        ("page=1&offset=10", "offset"),
        ("cursor=&offset=3", "offset"),
        ("cursor=&page=2", "page"),
        ("sort=password_hash", "sort"),
        ("sort=email", "sort"),
        ("sort=-nope", "sort"),
        ("order=sideways", "order"),
        ("sort=-username&order=asc", "order"),
        ("role=superuser", "role"),
        ("plan=gold", "plan"),
        ("created_after=yesterday", "created_after"),
        ("created_before=2024-13-45", "created_before"),
        ("include_total=maybe&cursor=", "include_total"),
        ("limit=5&limit=6", "limit"),
        ("cursor=not-a-cursor", "cursor"),
    ],
)
async def test_bad_list_parameters_are_400_naming_the_parameter(
    app: FastAPI, client: httpx.AsyncClient, query: str, field: str
) -> None:
    viewer = await make_account(app)
    response = await client.get(f"/api/v1/users?{query}", headers=viewer.headers)
    assert response.status_code == 400
    assert error_of(response)["code"] == "VALIDATION_ERROR"
    assert error_fields(response) == [field]


async def test_forged_and_mismatched_cursors_are_400(
    app: FastAPI, client: httpx.AsyncClient
) -> None:
    viewer, _ = await _population(app)
    first = await client.get("/api/v1/users?limit=2", headers=viewer.headers)
    cursor = first.json()["pagination"]["next_cursor"]
    tampered = cursor[:-2] + ("AA" if not cursor.endswith("AA") else "BB")
    for params in (
        {"cursor": tampered},
        {"cursor": cursor[:10]},
        {"cursor": cursor, "sort": "username"},
        {"cursor": cursor, "order": "asc"},
    ):
        response = await client.get("/api/v1/users", params=params, headers=viewer.headers)
        assert response.status_code == 400, params
        assert error_fields(response) == ["cursor"]
    good = await client.get("/api/v1/users", params={"cursor": cursor}, headers=viewer.headers)
    assert good.status_code == 200


async def test_list_needs_a_credential_with_read_on_users(
    app: FastAPI, client: httpx.AsyncClient
) -> None:
    assert (await client.get("/api/v1/users")).status_code == 401
