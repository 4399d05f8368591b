"""Idempotency-Key on POST and PATCH (contract section 9), shown on the users and API-key routes,
and on ``POST /projects``, which keeps its answer in the transaction that makes the project.

The mechanism knows no route: every POST and PATCH gets it. Side effects are read back from the
database: a replay must not have run the route again.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from datetime import timedelta
from typing import Any

import httpx
import pytest
from fastapi import FastAPI, Request
from sqlalchemy import func, select, update
from starlette.responses import Response

from rostra.api_keys import router as api_keys_router
from rostra.api_keys.models import ApiKey
from rostra.app import create_app
from rostra.auth.models import AuthSession
from rostra.core.config import Settings
from rostra.core.db import utcnow
from rostra.core.http import resource_response
from rostra.events.models import Event
from rostra.idempotency.models import IdempotencyKey
from rostra.idempotency.store import Claim, IdempotencyStore, StoredAnswer
from rostra.lib.passwords import PasswordHasherBusy
from rostra.projects import service as projects
from rostra.projects.models import Project
from rostra.users.models import User
from tests.factories import PASSWORD, Account, make_account, make_user


async def count_users(app: FastAPI, email: str) -> int:
    async with app.state.db.session_scope() as session:
        query = select(func.count()).select_from(User).where(User.email == email)
        return int(await session.scalar(query) or 0)


async def count_keys(app: FastAPI, user_id: int) -> int:
    async with app.state.db.session_scope() as session:
        query = select(func.count()).select_from(ApiKey).where(ApiKey.user_id == user_id)
        return int(await session.scalar(query) or 0)


async def count_projects(app: FastAPI, name: str) -> int:
    async with app.state.db.session_scope() as session:
        query = select(func.count()).select_from(Project).where(Project.name == name)
        return int(await session.scalar(query) or 0)


async def idempotency_rows(app: FastAPI) -> list[IdempotencyKey]:
    async with app.state.db.session_scope() as session:
        return list((await session.scalars(select(IdempotencyKey))).all())


async def age_records(app: FastAPI, by: timedelta, *, unanswered: bool = False) -> None:
    """Move every record's first use back in time (and, to fake a claim, forget its answer)."""
    forget: dict[str, Any] = (
        {"response_status": None, "response_headers": None, "response_body": None}
        if unanswered
        else {}
    )
    async with app.state.db.session_scope() as session:
        for record in (await session.scalars(select(IdempotencyKey))).all():
            await session.execute(
                update(IdempotencyKey)
                .where(IdempotencyKey.id == record.id)
                .values(created_at=record.created_at - by, **forget)
            )


def keyed(account: Account, key: str, **extra: str) -> dict[str, str]:
    return {**account.headers, "Idempotency-Key": key, **extra}


async def test_the_same_key_and_body_replays_the_stored_answer(
    app: FastAPI, client: httpx.AsyncClient
) -> None:
    admin = await make_account(app, role="admin")
    body = {"email": "ada@example.com", "name": "Ada", "role": "member"}
    first = await client.post("/api/v1/users", json=body, headers=keyed(admin, "create-ada"))
    assert first.status_code == 201
    assert "Idempotent-Replayed" not in first.headers

    # The same JSON with its keys in another order and other spacing is the same body.
    same_body = b'{ "role": "member",  "name": "Ada", "email": "ada@example.com" }'
    again = await client.post(
        "/api/v1/users",
        content=same_body,
        headers=keyed(admin, "create-ada", **{"Content-Type": "application/json"}),
    )
    assert again.status_code == 201
    assert again.headers["Idempotent-Replayed"] == "true"
    assert again.content == first.content
    for header in ("Location", "ETag", "Content-Type"):
        assert again.headers[header] == first.headers[header]
    assert again.headers["X-Request-ID"] != first.headers["X-Request-ID"]
    # A replay is counted like any request and says so.
    assert "X-RateLimit-Limit" in again.headers
    assert await count_users(app, "ada@example.com") == 1


async def test_a_patch_is_replayed_not_applied_again(
    app: FastAPI, client: httpx.AsyncClient
) -> None:
    member = await make_account(app)
    path = f"/api/v1/users/{member.id}"
    first = await client.patch(path, json={"name": "First"}, headers=keyed(member, "rename-1"))
    assert first.status_code == 200
    assert first.json()["name"] == "First"
    other = await client.patch(path, json={"name": "Second"}, headers=member.headers)
    assert other.status_code == 200

    replayed = await client.patch(path, json={"name": "First"}, headers=keyed(member, "rename-1"))
    assert replayed.status_code == 200
    assert replayed.headers["Idempotent-Replayed"] == "true"
    assert replayed.json()["name"] == "First"
    current = await client.get(path, headers=member.headers)
    assert current.json()["name"] == "Second"


async def test_the_same_key_with_another_body_is_refused(
    app: FastAPI, client: httpx.AsyncClient
) -> None:
    admin = await make_account(app, role="admin")
    first = await client.post(
        "/api/v1/users", json={"email": "one@example.com"}, headers=keyed(admin, "k-1")
    )
    assert first.status_code == 201

    reused = await client.post(
        "/api/v1/users", json={"email": "two@example.com"}, headers=keyed(admin, "k-1")
    )
    assert reused.status_code == 422
    assert reused.json()["error"]["code"] == "IDEMPOTENCY_KEY_REUSED"
    assert await count_users(app, "two@example.com") == 0


async def test_the_same_key_on_another_path_or_method_is_refused(
    app: FastAPI, client: httpx.AsyncClient
) -> None:
    admin = await make_account(app, role="admin")
    created = await client.post(
        "/api/v1/api-keys", json={"name": "ci"}, headers=keyed(admin, "shared")
    )
    assert created.status_code == 201
    keys_before = await count_keys(app, admin.id)

    other_path = await client.post(
        "/api/v1/users", json={"name": "ci"}, headers=keyed(admin, "shared")
    )
    assert other_path.status_code == 422
    assert other_path.json()["error"]["code"] == "IDEMPOTENCY_KEY_REUSED"
    other_method = await client.patch(
        f"/api/v1/users/{admin.id}", json={"name": "ci"}, headers=keyed(admin, "shared")
    )
    assert other_method.status_code == 422
    other_query = await client.post(
        "/api/v1/api-keys?x=1", json={"name": "ci"}, headers=keyed(admin, "shared")
    )
    assert other_query.status_code == 422

    me = await client.get("/api/v1/user", headers=admin.headers)
    assert me.json()["name"] is None
    assert await count_keys(app, admin.id) == keys_before


async def test_keys_belong_to_the_account_whatever_its_credential(
    app: FastAPI, client: httpx.AsyncClient
) -> None:
    alice = await make_account(app)
    bob = await make_account(app)
    for account in (alice, bob):
        answer = await client.post(
            "/api/v1/api-keys", json={"name": "deploy"}, headers=keyed(account, "same-key")
        )
        assert answer.status_code == 201
        assert "Idempotent-Replayed" not in answer.headers
        assert answer.json()["user_id"] == account.id

    # Alice signed in with her password is the same account as her API key.
    login = await client.post(
        "/api/v1/auth/login", json={"username": alice.user.username, "password": PASSWORD}
    )
    token = login.json()["access_token"]
    by_token = await client.post(
        "/api/v1/api-keys",
        json={"name": "deploy"},
        headers={"Authorization": f"Bearer {token}", "Idempotency-Key": "same-key"},
    )
    assert by_token.status_code == 201
    assert by_token.headers["Idempotent-Replayed"] == "true"
    assert await count_keys(app, alice.id) == 2  # the factory's key and one "deploy"
    assert await count_keys(app, bob.id) == 2


class GatedHasher:
    """A password hasher that holds every hash until the test opens the gate."""

    def __init__(self, inner: Any) -> None:
        self.inner = inner
        self.entered = asyncio.Event()
        self.gate = asyncio.Event()

    async def hash(self, password: str) -> str:
        self.entered.set()
        await self.gate.wait()
        result: str = await self.inner.hash(password)
        return result


async def test_a_key_whose_request_still_runs_is_in_use(
    app: FastAPI, client: httpx.AsyncClient
) -> None:
    admin = await make_account(app, role="admin")
    hasher = GatedHasher(app.state.password_hasher)
    app.state.password_hasher = hasher
    body = {"email": "slow@example.com", "password": "a long enough password"}

    first = asyncio.create_task(
        client.post("/api/v1/users", json=body, headers=keyed(admin, "slow"))
    )
    await asyncio.wait_for(hasher.entered.wait(), timeout=10)
    while_running = await client.post("/api/v1/users", json=body, headers=keyed(admin, "slow"))
    assert while_running.status_code == 409
    assert while_running.json()["error"]["code"] == "IDEMPOTENCY_KEY_IN_USE"
    assert await count_users(app, "slow@example.com") == 0

    hasher.gate.set()
    done = await first
    assert done.status_code == 201
    after = await client.post("/api/v1/users", json=body, headers=keyed(admin, "slow"))
    assert after.status_code == 201
    assert after.headers["Idempotent-Replayed"] == "true"
    assert await count_users(app, "slow@example.com") == 1


@pytest.mark.parametrize(
    ("path", "body"),
    [("/api/v1/users", {"email": "crowd@example.com"}), ("/api/v1/api-keys", {"name": "crowd"})],
)
async def test_twenty_concurrent_identical_requests_make_one_resource(
    app: FastAPI, client: httpx.AsyncClient, path: str, body: dict[str, str]
) -> None:
    admin = await make_account(app, role="admin")
    keys_before = await count_keys(app, admin.id)
    answers = await asyncio.gather(
        *(client.post(path, json=body, headers=keyed(admin, "crowd")) for _ in range(20))
    )

    executed = [
        a for a in answers if a.status_code == 201 and "Idempotent-Replayed" not in a.headers
    ]
    assert len(executed) == 1
    for answer in answers:
        if answer.status_code == 201:
            assert answer.json()["id"] == executed[0].json()["id"]
        else:
            assert answer.status_code == 409
            assert answer.json()["error"]["code"] == "IDEMPOTENCY_KEY_IN_USE"
    if path == "/api/v1/users":
        assert await count_users(app, "crowd@example.com") == 1
    else:
        assert await count_keys(app, admin.id) == keys_before + 1
    assert len(await idempotency_rows(app)) == 1


async def test_client_errors_are_kept_and_replayed(app: FastAPI, client: httpx.AsyncClient) -> None:
    admin = await make_account(app, role="admin")
    taken = await make_user(app, email="taken@example.com")
    conflict = await client.post(
        "/api/v1/users", json={"email": "taken@example.com"}, headers=keyed(admin, "dup")
    )
    assert conflict.status_code == 409
    assert conflict.json()["error"]["code"] == "RESOURCE_CONFLICT"

    gone = await client.delete(f"/api/v1/users/{taken.id}", headers=admin.headers)
    assert gone.status_code == 204
    # The key keeps its first answer, though the request would now succeed.
    replayed = await client.post(
        "/api/v1/users", json={"email": "taken@example.com"}, headers=keyed(admin, "dup")
    )
    assert replayed.status_code == 409
    assert replayed.headers["Idempotent-Replayed"] == "true"
    assert replayed.content == conflict.content
    assert await count_users(app, "taken@example.com") == 0


class BusyOnceHasher:
    """A hasher that is too busy the first time (the app answers 503), then works."""

    def __init__(self, inner: Any) -> None:
        self.inner = inner
        self.refused = False

    async def hash(self, password: str) -> str:
        if not self.refused:
            self.refused = True
            raise PasswordHasherBusy
        result: str = await self.inner.hash(password)
        return result


async def test_a_server_error_releases_the_key(app: FastAPI, client: httpx.AsyncClient) -> None:
    admin = await make_account(app, role="admin")
    app.state.password_hasher = BusyOnceHasher(app.state.password_hasher)
    body = {"email": "retry@example.com", "password": "a long enough password"}

    busy = await client.post("/api/v1/users", json=body, headers=keyed(admin, "retry"))
    assert busy.status_code == 503
    assert await count_users(app, "retry@example.com") == 0
    assert await idempotency_rows(app) == []

    retried = await client.post("/api/v1/users", json=body, headers=keyed(admin, "retry"))
    assert retried.status_code == 201
    assert "Idempotent-Replayed" not in retried.headers
    assert await count_users(app, "retry@example.com") == 1


async def test_a_failed_precondition_is_not_kept(app: FastAPI, client: httpx.AsyncClient) -> None:
    member = await make_account(app)
    path = f"/api/v1/users/{member.id}"
    stale = await client.patch(
        path, json={"name": "New"}, headers=keyed(member, "edit", **{"If-Match": '"stale"'})
    )
    assert stale.status_code == 412
    assert (await client.get(path, headers=member.headers)).json()["name"] is None

    etag = (await client.get(path, headers=member.headers)).headers["ETag"]
    fresh = await client.patch(
        path, json={"name": "New"}, headers=keyed(member, "edit", **{"If-Match": etag})
    )
    assert fresh.status_code == 200
    assert "Idempotent-Replayed" not in fresh.headers
    assert (await client.get(path, headers=member.headers)).json()["name"] == "New"


async def test_a_key_expires_after_24_hours(app: FastAPI, client: httpx.AsyncClient) -> None:
    member = await make_account(app)
    first = await client.post(
        "/api/v1/api-keys", json={"name": "nightly"}, headers=keyed(member, "nightly")
    )
    assert first.status_code == 201
    other = await client.post(
        "/api/v1/api-keys", json={"name": "other"}, headers=keyed(member, "other")
    )
    assert other.status_code == 201
    await age_records(app, timedelta(hours=23, minutes=59))
    replayed = await client.post(
        "/api/v1/api-keys", json={"name": "nightly"}, headers=keyed(member, "nightly")
    )
    assert replayed.headers["Idempotent-Replayed"] == "true"
    keys_before = await count_keys(app, member.id)

    await age_records(app, timedelta(minutes=2))
    again = await client.post(
        "/api/v1/api-keys", json={"name": "nightly"}, headers=keyed(member, "nightly")
    )
    assert again.status_code == 201
    assert "Idempotent-Replayed" not in again.headers
    assert again.json()["id"] != first.json()["id"]
    assert await count_keys(app, member.id) == keys_before + 1
    # The expired record of "other" went too, lazily, with this insert.
    rows = await idempotency_rows(app)
    assert len(rows) == 1
    assert rows[0].created_at > utcnow() - timedelta(minutes=1)


async def test_a_claim_abandoned_by_a_dead_process_is_taken_over(
    app: FastAPI, client: httpx.AsyncClient
) -> None:
    member = await make_account(app)
    first = await client.post(
        "/api/v1/api-keys", json={"name": "crash"}, headers=keyed(member, "crash")
    )
    assert first.status_code == 201
    keys_before = await count_keys(app, member.id)

    # A fresh claim with no answer: its request is still running somewhere.
    await age_records(app, timedelta(seconds=0), unanswered=True)
    in_use = await client.post(
        "/api/v1/api-keys", json={"name": "crash"}, headers=keyed(member, "crash")
    )
    assert in_use.status_code == 409
    assert in_use.json()["error"]["code"] == "IDEMPOTENCY_KEY_IN_USE"

    # The same claim ten minutes later: the process that made it died.
    await age_records(app, timedelta(minutes=10), unanswered=True)
    taken_over = await client.post(
        "/api/v1/api-keys", json={"name": "crash"}, headers=keyed(member, "crash")
    )
    assert taken_over.status_code == 201
    assert "Idempotent-Replayed" not in taken_over.headers
    assert await count_keys(app, member.id) == keys_before + 1


async def test_records_hold_across_processes(
    app: FastAPI, client: httpx.AsyncClient, settings: Settings
) -> None:
    admin = await make_account(app, role="admin")
    first = await client.post(
        "/api/v1/users", json={"email": "shared@example.com"}, headers=keyed(admin, "multi")
    )
    assert first.status_code == 201

    other_process = create_app(settings)
    transport = httpx.ASGITransport(app=other_process)
    try:
        async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as other:
            replayed = await other.post(
                "/api/v1/users",
                json={"email": "shared@example.com"},
                headers=keyed(admin, "multi"),
            )
    finally:
        await other_process.state.db.dispose()
    assert replayed.status_code == 201
    assert replayed.headers["Idempotent-Replayed"] == "true"
    assert replayed.content == first.content
    assert await count_users(app, "shared@example.com") == 1


async def test_stored_answers_reveal_neither_key_nor_secret(
    app: FastAPI, client: httpx.AsyncClient
) -> None:
    member = await make_account(app)
    created = await client.post(
        "/api/v1/api-keys", json={"name": "once"}, headers=keyed(member, "my-secret-key-1")
    )
    secret = created.json()["secret"]
    [row] = await idempotency_rows(app)
    assert row.response_status == 201
    assert row.response_body is not None
    assert secret.encode() not in row.response_body
    assert b"my-secret-key-1" not in row.response_body
    assert "my-secret-key-1" not in row.lookup

    replayed = await client.post(
        "/api/v1/api-keys", json={"name": "once"}, headers=keyed(member, "my-secret-key-1")
    )
    assert replayed.json()["secret"] == secret


async def test_anonymous_requests_are_not_deduplicated(
    app: FastAPI, client: httpx.AsyncClient
) -> None:
    user = await make_user(app)
    body = {"username": user.username, "password": PASSWORD}
    answers = [
        await client.post("/api/v1/auth/login", json=body, headers={"Idempotency-Key": "anon"})
        for _ in range(2)
    ]
    for answer in answers:
        assert answer.status_code == 200
        assert "Idempotent-Replayed" not in answer.headers
    assert answers[0].json()["refresh_token"] != answers[1].json()["refresh_token"]
    async with app.state.db.session_scope() as session:
        query = select(func.count()).select_from(AuthSession).where(AuthSession.user_id == user.id)
        assert await session.scalar(query) == 2
    assert await idempotency_rows(app) == []


async def test_other_methods_and_bad_credentials_ignore_the_key(
    app: FastAPI, client: httpx.AsyncClient
) -> None:
    member = await make_account(app)
    read = await client.get(f"/api/v1/users/{member.id}", headers=keyed(member, "k"))
    assert read.status_code == 200
    replace = await client.put(
        f"/api/v1/users/{member.id}",
        json={"username": member.user.username, "email": member.user.email, "name": "Put"},
        headers=keyed(member, "k"),
    )
    assert replace.status_code == 200
    refused = await client.post(
        "/api/v1/api-keys",
        json={"name": "x"},
        headers={"Authorization": "Bearer sk_live_not_a_real_key", "Idempotency-Key": "k"},
    )
    assert refused.status_code == 401
    assert refused.json()["error"]["code"] == "AUTHENTICATION_REQUIRED"
    assert await idempotency_rows(app) == []


@pytest.mark.parametrize("bad_key", ["x" * 256, "   "])
async def test_a_malformed_key_is_refused(
    app: FastAPI, client: httpx.AsyncClient, bad_key: str
) -> None:
    admin = await make_account(app, role="admin")
    answer = await client.post(
        "/api/v1/users", json={"email": "bad-key@example.com"}, headers=keyed(admin, bad_key)
    )
    assert answer.status_code == 400
    error = answer.json()["error"]
    assert error["code"] == "VALIDATION_ERROR"
    assert error["details"][0]["field"] == "Idempotency-Key"
    assert await count_users(app, "bad-key@example.com") == 0
    assert await idempotency_rows(app) == []


async def test_a_key_of_255_characters_works(app: FastAPI, client: httpx.AsyncClient) -> None:
    member = await make_account(app)
    key = "k" * 255
    for _ in range(2):
        answer = await client.post(
            "/api/v1/api-keys", json={"name": "long"}, headers=keyed(member, key)
        )
        assert answer.status_code == 201
    assert answer.headers["Idempotent-Replayed"] == "true"


async def count_own_keys(app: FastAPI, account: Account) -> int:
    return await count_keys(app, account.id)


async def count_changes(app: FastAPI, _: Account) -> int:
    """Every change to a resource writes one event."""
    async with app.state.db.session_scope() as session:
        return int(await session.scalar(select(func.count()).select_from(Event)) or 0)


@pytest.mark.parametrize(
    ("method", "path", "body", "count"),
    [
        (
            "POST",
            "/api/v1/projects",
            {"name": "once", "settings": {"auto_deploy": True}},
            count_changes,
        ),
        ("POST", "/api/v1/api-keys", {"name": "once"}, count_own_keys),
        ("POST", "/api/v1/users", {"email": "once@example.com", "role": "member"}, count_changes),
        ("PATCH", "/api/v1/users/{me}", {"name": "Once"}, count_changes),
    ],
    ids=["project, own transaction", "api key, session", "user, session", "patch, session"],
)
async def test_an_answer_commits_with_its_change(
    app: FastAPI,
    client: httpx.AsyncClient,
    monkeypatch: pytest.MonkeyPatch,
    method: str,
    path: str,
    body: dict[str, Any],
    count: Callable[[FastAPI, Account], Awaitable[int]],
) -> None:
    """The answer is kept in the transaction that makes the change (the project's own, or the
    request session's): a process that could not keep an answer once the change was made (it
    died there) still leaves one, so the retry replays the change rather than making it again."""

    async def dies_before_storing(self: IdempotencyStore, claim: Claim, _: StoredAnswer) -> None:
        raise OSError("the process died before it could keep the answer")

    monkeypatch.setattr(IdempotencyStore, "store", dies_before_storing)
    admin = await make_account(app, role="admin")
    url = path.format(me=admin.id)
    before = await count(app, admin)

    first = await client.request(method, url, json=body, headers=keyed(admin, "once"))
    assert first.status_code in (200, 201)
    again = await client.request(method, url, json=body, headers=keyed(admin, "once"))
    assert again.status_code == first.status_code
    assert again.headers["Idempotent-Replayed"] == "true"
    assert again.content == first.content
    for header in ("ETag", "Content-Type", "Location"):
        assert again.headers.get(header) == first.headers.get(header)
    assert await count(app, admin) == before + 1


async def test_a_projects_answer_goes_with_its_failed_commit(
    app: FastAPI,
    client: httpx.AsyncClient,
    monkeypatch: pytest.MonkeyPatch,
    failing_commits: list[bool],
) -> None:
    """The project's transaction fails to commit after its answer was written in it: neither
    is kept, the key is released, and the retry makes the project once."""
    insert_project, release = projects.insert_project, IdempotencyStore.release

    async def insert_then_refuse_the_commit(*args: Any, **kwargs: Any) -> Any:
        project = await insert_project(*args, **kwargs)
        failing_commits[0] = True
        return project

    async def release_with_commits_back(self: IdempotencyStore, claim: Claim) -> None:
        failing_commits[0] = False
        await release(self, claim)

    monkeypatch.setattr(projects, "insert_project", insert_then_refuse_the_commit)
    monkeypatch.setattr(IdempotencyStore, "release", release_with_commits_back)
    member = await make_account(app)
    body = {"name": "commit refused"}
    failed = await client.post("/api/v1/projects", json=body, headers=keyed(member, "p2"))
    assert failed.status_code == 500
    assert await count_projects(app, "commit refused") == 0
    assert await idempotency_rows(app) == []

    monkeypatch.setattr(projects, "insert_project", insert_project)
    retried = await client.post("/api/v1/projects", json=body, headers=keyed(member, "p2"))
    assert retried.status_code == 201
    assert "Idempotent-Replayed" not in retried.headers
    assert await count_projects(app, "commit refused") == 1


async def test_the_answer_kept_is_the_answer_given(
    app: FastAPI, client: httpx.AsyncClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A route that kept one answer in its session and then gave another: the one the client
    got is what a retry replays."""

    def answers_otherwise(request: Request, *args: Any, **kwargs: Any) -> Response:
        kept = resource_response(request, *args, **kwargs)  # kept in the request's session
        return Response(b'{"given": true}', kept.status_code, media_type="application/json")

    monkeypatch.setattr(api_keys_router, "resource_response", answers_otherwise)
    member = await make_account(app)
    first = await client.post(
        "/api/v1/api-keys", json={"name": "given"}, headers=keyed(member, "given")
    )
    assert first.content == b'{"given": true}'
    again = await client.post(
        "/api/v1/api-keys", json={"name": "given"}, headers=keyed(member, "given")
    )
    assert again.headers["Idempotent-Replayed"] == "true"
    assert again.content == first.content
