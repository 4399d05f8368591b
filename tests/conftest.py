"""Fixtures: every test runs on a fresh database, once on SQLite and once on PostgreSQL.

SQLite: a migrated template file is copied per test. PostgreSQL (when
``ROSTRA_TEST_POSTGRES_URL`` is set): a migrated template database is cloned per test with
``CREATE DATABASE ... TEMPLATE`` and dropped afterwards. With ``ROSTRA_TEST_REQUIRE_SERVICES``
set (CI), an unreachable PostgreSQL or Redis fails the run instead of skipping.
"""

from __future__ import annotations

import asyncio
import os
import shutil
import uuid
from collections.abc import AsyncIterator, Coroutine, Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import asyncpg
import httpx
import pytest
import redis
from argon2 import PasswordHasher
from sqlalchemy import event as sa_event

from rostra.app import create_app
from rostra.core.config import Settings
from rostra.core.sqlite_writes import SQLiteTransaction
from rostra.lib.passwords import BoundedPasswordHasher
from rostra.migrations.runner import upgrade

POSTGRES_URL = os.environ.get("ROSTRA_TEST_POSTGRES_URL")
REDIS_URL = os.environ.get("ROSTRA_TEST_REDIS_URL")
REQUIRE_SERVICES = bool(os.environ.get("ROSTRA_TEST_REQUIRE_SERVICES"))
TEST_SECRET = "test-secret-key-that-is-long-enough-0123456789"
BACKENDS = ["sqlite", "postgres"]


def _asyncpg_dsn(url: str, database: str | None = None) -> str:
    dsn = url.replace("postgresql+asyncpg://", "postgresql://")
    if database is not None:
        dsn = dsn.rsplit("/", 1)[0] + "/" + database
    return dsn


def _run_sync(coroutine: Coroutine[Any, Any, None]) -> None:
    """Run a coroutine to completion from sync code, even under a running event loop."""
    with ThreadPoolExecutor(max_workers=1) as pool:
        pool.submit(asyncio.run, coroutine).result()


@pytest.fixture(scope="session")
def sqlite_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("template") / "template.db"
    upgrade(f"sqlite+aiosqlite:///{path}")
    return path


@pytest.fixture(scope="session")
def postgres_template() -> Iterator[str]:
    if not POSTGRES_URL:
        if REQUIRE_SERVICES:
            pytest.fail("ROSTRA_TEST_POSTGRES_URL is not set")
        pytest.skip("ROSTRA_TEST_POSTGRES_URL is not set")
    name = f"rostra_tpl_{os.getpid()}"

    async def admin(sql: str) -> None:
        connection = await asyncpg.connect(_asyncpg_dsn(POSTGRES_URL))
        try:
            await connection.execute(sql)
        finally:
            await connection.close()

    try:
        _run_sync(admin(f'DROP DATABASE IF EXISTS "{name}"'))
        _run_sync(admin(f'CREATE DATABASE "{name}"'))
    except (OSError, asyncpg.PostgresError) as exc:
        if REQUIRE_SERVICES:
            pytest.fail(f"PostgreSQL is unreachable at {POSTGRES_URL}: {exc}")
        pytest.skip(f"PostgreSQL is unreachable: {exc}")
    upgrade(POSTGRES_URL.rsplit("/", 1)[0] + "/" + name)
    yield name
    _run_sync(admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))


@pytest.fixture(scope="session")
def redis_url() -> str:
    """The test Redis, pinged once: skipped when unset or down, failed under REQUIRE_SERVICES."""
    problem = None
    if not REDIS_URL:
        problem = "ROSTRA_TEST_REDIS_URL is not set"
    else:
        client = redis.Redis.from_url(REDIS_URL, socket_connect_timeout=2, socket_timeout=2)
        try:
            client.ping()
        except redis.RedisError as exc:
            problem = f"Redis is unreachable at {REDIS_URL}: {exc}"
        finally:
            client.close()
    if problem is not None:
        if REQUIRE_SERVICES:
            pytest.fail(problem)
        pytest.skip(problem)
    assert REDIS_URL is not None
    return REDIS_URL


@pytest.fixture(scope="session", autouse=True)
def _required_services(request: pytest.FixtureRequest) -> None:
    """In CI every service must be up, even when the selected tests would not ask for it."""
    if REQUIRE_SERVICES:
        request.getfixturevalue("redis_url")
        request.getfixturevalue("postgres_template")


@pytest.fixture(params=BACKENDS)
def backend(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture
async def database_url(
    backend: str, request: pytest.FixtureRequest, tmp_path: Path
) -> AsyncIterator[str]:
    if backend == "sqlite":
        template: Path = request.getfixturevalue("sqlite_template")
        path = tmp_path / "rostra.db"
        shutil.copyfile(template, path)
        yield f"sqlite+aiosqlite:///{path}"
        return
    template_name: str = request.getfixturevalue("postgres_template")
    assert POSTGRES_URL is not None
    name = f"rostra_t_{uuid.uuid4().hex[:12]}"
    connection = await asyncpg.connect(_asyncpg_dsn(POSTGRES_URL))
    try:
        await connection.execute(f'CREATE DATABASE "{name}" TEMPLATE "{template_name}"')
    finally:
        await connection.close()
    yield POSTGRES_URL.rsplit("/", 1)[0] + "/" + name
    connection = await asyncpg.connect(_asyncpg_dsn(POSTGRES_URL))
    try:
        await connection.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    finally:
        await connection.close()


@pytest.fixture
def settings_overrides() -> dict[str, object]:
    """Override in a test module (or parametrize) to change settings for its tests."""
    return {}


@pytest.fixture
def settings(database_url: str, settings_overrides: dict[str, object]) -> Settings:
    values: dict[str, object] = {
        "database_url": database_url,
        "secret_key": TEST_SECRET,
        "environment": "test",
        "log_level": "warning",
        **settings_overrides,
    }
    return Settings(_env_file=None, **values)  # type: ignore[call-arg]


@pytest.fixture
async def app(settings: Settings) -> AsyncIterator[object]:
    application = create_app(settings)
    # Cheap argon2 parameters: the production cost is exercised by the benchmark, not here.
    application.state.password_hasher = BoundedPasswordHasher(
        concurrency=2, queue=64, hasher=PasswordHasher(time_cost=1, memory_cost=1024, parallelism=1)
    )
    yield application
    await application.state.db.dispose()
    if application.state.redis is not None:
        await application.state.redis.aclose()


@pytest.fixture
async def client(app: object) -> AsyncIterator[httpx.AsyncClient]:
    transport = httpx.ASGITransport(app=app)  # type: ignore[arg-type]
    async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as http:
        yield http


class CommitRefused(Exception):
    """What a COMMIT raises while ``failing_commits`` is armed."""


@pytest.fixture
def failing_commits(app: Any, monkeypatch: pytest.MonkeyPatch) -> Iterator[list[bool]]:
    """While the list holds True, every COMMIT of the app's database fails: the engine's, and
    the one a transaction straight on SQLite's driver makes (``core.sqlite_writes``)."""
    armed = [False]

    def refuse(_: object) -> None:
        if armed[0]:
            raise CommitRefused("the database went away at commit")

    commit_on_driver = SQLiteTransaction.commit

    async def refuse_on_driver(transaction: SQLiteTransaction) -> None:
        refuse(transaction)
        await commit_on_driver(transaction)

    monkeypatch.setattr(SQLiteTransaction, "commit", refuse_on_driver)
    engine = app.state.db.engine.sync_engine
    sa_event.listen(engine, "commit", refuse)
    yield armed
    sa_event.remove(engine, "commit", refuse)
