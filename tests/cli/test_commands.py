"""Section 11: ``rostra migrate``, ``users create`` and ``keys create|list|revoke``."""

from __future__ import annotations

from pathlib import Path

import httpx
import orjson
import pytest
from fastapi import FastAPI
from sqlalchemy import select

from rostra.api_keys.models import ApiKey
from rostra.users.models import User
from tests.cli.helpers import (
    assert_one_line_failure,
    closed_port,
    rostra_env,
    run_many,
    run_rostra,
)
from tests.factories import make_user
from tests.webhooks.endpoints import make_endpoint, stored_deliveries

PASSWORD = "a long enough password"


@pytest.fixture
def settings_overrides() -> dict[str, object]:
    # The in-process app must see the CLI's revocation on the very next request.
    return {"auth_cache_seconds": 0}


async def _user(app: FastAPI, username: str) -> User | None:
    async with app.state.db.session_scope() as session:
        return (await session.scalars(select(User).where(User.username == username))).first()


async def _keys(app: FastAPI) -> list[ApiKey]:
    async with app.state.db.session_scope() as session:
        return list((await session.scalars(select(ApiKey).order_by(ApiKey.id))).all())


async def test_users_and_keys_from_the_command_line(
    app: FastAPI, client: httpx.AsyncClient, database_url: str, tmp_path: Path
) -> None:
    env = rostra_env(database_url)

    migrate = run_rostra(["migrate"], env, tmp_path)
    assert migrate.returncode == 0, migrate
    assert migrate.stdout == ""

    create = ["users", "create", "--password", PASSWORD]
    root = run_rostra(
        [*create, "--admin", "--username", "root", "--email", "root@example.com"], env, tmp_path
    )
    assert root.returncode == 0, root
    stored_root = await _user(app, "root")
    assert stored_root is not None
    assert root.stdout == f"{stored_root.id}\n"
    assert stored_root.role == "admin"

    alice, duplicate, bad_email = run_many(
        [
            [*create, "--username", "alice", "--email", "alice@example.com"],
            [*create, "--username", "ROOT", "--email", "other@example.com"],
            [*create, "--username", "bob", "--email", "not-an-email"],
        ],
        env,
        tmp_path,
    )
    assert alice.returncode == 0, alice
    stored_alice = await _user(app, "alice")
    assert stored_alice is not None
    assert stored_alice.role == "member"
    assert_one_line_failure(duplicate, "already")
    assert_one_line_failure(bad_email, "email")
    assert await _user(app, "bob") is None

    key = ["keys", "create", "--user"]
    scoped, test_key, unknown_user, bad_scope = run_many(
        [
            [*key, "alice", "--scope", "read", "--scope", "projects:write", "--name", "ci"],
            [*key, "root@example.com", "--test", "--scope", "read,write"],
            [*key, "nobody"],
            [*key, "alice", "--scope", "root-access"],
        ],
        env,
        tmp_path,
    )
    for created in (scoped, test_key):
        assert created.returncode == 0, created
        assert created.stderr == "", created
        assert len(created.stdout.splitlines()) == 1, "only the secret on stdout"
    secret = scoped.stdout.strip()
    assert secret.startswith("sk_live_")
    assert test_key.stdout.strip().startswith("test_sk_")
    assert_one_line_failure(unknown_user, "nobody")
    assert_one_line_failure(bad_scope, "--scope", "root-access")

    keys = {key.user_id: key for key in await _keys(app)}
    assert len(keys) == 2
    alice_key, root_key = keys[stored_alice.id], keys[stored_root.id]
    assert (sorted(alice_key.scopes), alice_key.livemode, alice_key.name) == (
        ["projects:write", "read"],
        True,
        "ci",
    )
    assert (sorted(root_key.scopes), root_key.livemode) == (["read", "write"], False)

    headers = {"Authorization": f"Bearer {secret}"}
    me = await client.get("/api/v1/user", headers=headers)
    assert me.status_code == 200, me.text
    assert me.json()["username"] == "alice"

    listing = run_rostra(["keys", "list"], env, tmp_path)
    assert listing.returncode == 0, listing
    rows = listing.stdout.splitlines()
    assert rows[0].split("\t")[:3] == ["ID", "PREFIX", "USER"]
    assert len(rows) == 3
    alice_row = next(row.split("\t") for row in rows if row.startswith(f"{alice_key.id}\t"))
    assert alice_row[1].startswith(alice_key.prefix)
    assert alice_row[2] == "alice"
    assert alice_row[-1] == "active"
    assert secret not in listing.stdout
    assert test_key.stdout.strip() not in listing.stdout

    revoked, missing = run_many(
        [["keys", "revoke", str(alice_key.id)], ["keys", "revoke", "987654"]], env, tmp_path
    )
    assert revoked.returncode == 0, revoked
    assert revoked.stdout == ""
    assert_one_line_failure(missing, "987654")

    refused = await client.get("/api/v1/user", headers=headers)
    assert refused.status_code == 401
    assert refused.json()["error"]["code"] == "AUTHENTICATION_REQUIRED"
    only_alice = run_rostra(["keys", "list", "--user", "alice"], env, tmp_path)
    assert len(only_alice.stdout.splitlines()) == 2
    assert only_alice.stdout.splitlines()[1].endswith("revoked")


def test_an_unreachable_database_is_one_line(tmp_path: Path) -> None:
    env = rostra_env(f"postgresql+asyncpg://postgres@127.0.0.1:{closed_port()}/rostra")
    runs = run_many(
        [
            ["migrate"],
            [
                "users",
                "create",
                "--username",
                "ann",
                "--email",
                "ann@example.com",
                "--password",
                PASSWORD,
            ],
            ["keys", "list"],
            ["keys", "create", "--user", "ann"],
        ],
        env,
        tmp_path,
    )
    for run in runs:
        assert_one_line_failure(run, "cannot reach the database")


def test_an_unmigrated_database_says_to_migrate(tmp_path: Path) -> None:
    env = rostra_env(f"sqlite+aiosqlite:///{tmp_path}/empty.db")
    (run,) = run_many([["keys", "list"]], env, tmp_path)
    assert_one_line_failure(run, "rostra migrate")


async def test_a_user_made_with_the_command_line_reaches_webhooks(
    app: FastAPI, database_url: str, tmp_path: Path
) -> None:
    """The CLI registers the domains' hooks as the app does: its events fan out to webhooks."""
    admin = await make_user(app, role="admin")
    endpoint = await make_endpoint(app, admin, events=["user.created"])

    made = run_rostra(
        ["users", "create", "--username", "carol", "--email", "carol@example.com",
         "--password", PASSWORD],
        rostra_env(database_url),
        tmp_path,
    )  # fmt: skip
    assert made.returncode == 0, made

    deliveries = await stored_deliveries(app)
    assert [(d.endpoint_id, d.event_type) for d in deliveries] == [(endpoint.id, "user.created")]
    assert orjson.loads(deliveries[0].payload)["data"]["username"] == "carol"
