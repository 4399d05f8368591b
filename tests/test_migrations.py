"""The Alembic migrations build, on both databases, exactly the schema the models describe."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import asyncpg
import pytest
from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import Index, inspect
from sqlalchemy.engine import Connection

from rostra.core.config import Settings
from rostra.core.db import make_engine
from rostra.migrations.runner import alembic_config, upgrade
from rostra.models import metadata
from tests.conftest import POSTGRES_URL

# Alembic cannot compare an expression index (SQLite cannot even reflect one), so it is left out
# of the comparison; the migration creates it by hand.
EXPRESSION_INDEXES = {"uq_users_username_lower"}
pytestmark = [
    pytest.mark.filterwarnings("ignore:.*expression-based index:UserWarning"),
    pytest.mark.filterwarnings("ignore:.*expression-based index:sqlalchemy.exc.SAWarning"),
]


def _admin_dsn() -> str:
    assert POSTGRES_URL is not None
    return POSTGRES_URL.replace("postgresql+asyncpg://", "postgresql://")


@pytest.fixture
async def empty_database_url(
    backend: str, request: pytest.FixtureRequest, tmp_path: Path
) -> AsyncIterator[str]:
    """A database with no tables at all (not the migrated template the other tests clone)."""
    if backend == "sqlite":
        yield f"sqlite+aiosqlite:///{tmp_path / 'empty.db'}"
        return
    request.getfixturevalue("postgres_template")  # PostgreSQL is up, or skip / fail as CI says
    assert POSTGRES_URL is not None
    name = f"rostra_m_{uuid.uuid4().hex[:12]}"
    connection = await asyncpg.connect(_admin_dsn())
    try:
        await connection.execute(f'CREATE DATABASE "{name}"')
    finally:
        await connection.close()
    yield POSTGRES_URL.rsplit("/", 1)[0] + "/" + name
    connection = await asyncpg.connect(_admin_dsn())
    try:
        await connection.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    finally:
        await connection.close()


def _is_expression_index(difference: Any) -> bool:
    return (
        isinstance(difference, tuple)
        and difference[0] in ("add_index", "remove_index")
        and isinstance(difference[1], Index)
        and difference[1].name in EXPRESSION_INDEXES
    )


def _differences(connection: Connection) -> list[Any]:
    context = MigrationContext.configure(connection, opts={"compare_type": True})
    return [d for d in compare_metadata(context, metadata) if not _is_expression_index(d)]


def _table_names(connection: Connection) -> set[str]:
    return set(inspect(connection).get_table_names()) - {"alembic_version"}


async def _inspect(database_url: str) -> tuple[list[Any], set[str]]:
    engine = make_engine(Settings(_env_file=None, database_url=database_url))  # type: ignore[call-arg]
    try:
        async with engine.connect() as connection:
            differences = await connection.run_sync(_differences)
            tables = await connection.run_sync(_table_names)
    finally:
        await engine.dispose()
    return differences, tables


def _downgrade_to_base(database_url: str) -> None:
    # Alembic's env runs its own event loop: off this test's loop, in a helper thread.
    with ThreadPoolExecutor(max_workers=1) as pool:
        pool.submit(command.downgrade, alembic_config(database_url), "base").result()


async def test_migrations_build_the_schema_of_the_models(empty_database_url: str) -> None:
    upgrade(empty_database_url)
    differences, tables = await _inspect(empty_database_url)
    assert differences == []
    assert tables == set(metadata.tables)


async def test_migrations_go_down_and_up_again(empty_database_url: str) -> None:
    upgrade(empty_database_url)
    _downgrade_to_base(empty_database_url)
    _, tables = await _inspect(empty_database_url)
    assert tables == set()
    upgrade(empty_database_url)
    differences, tables = await _inspect(empty_database_url)
    assert differences == []
    assert tables == set(metadata.tables)


async def test_migrating_twice_changes_nothing(empty_database_url: str) -> None:
    upgrade(empty_database_url)
    upgrade(empty_database_url)
    differences, _ = await _inspect(empty_database_url)
    assert differences == []
