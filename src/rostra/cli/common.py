"""What every command shares: settings that fail in one line, and one-line errors."""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Coroutine
from typing import Any, NoReturn, TypeVar

import typer
from pydantic import ValidationError

from rostra.core.config import Settings, setting_env_name
from rostra.core.db import Database
from rostra.core.errors import RostraError

T = TypeVar("T")


def fail(message: str, code: int = 1) -> NoReturn:
    typer.echo(f"rostra: {message}", err=True)
    raise typer.Exit(code)


def load_settings() -> Settings:
    try:
        return Settings()
    except ValidationError as exc:
        first = exc.errors()[0]
        name = setting_env_name(str(first["loc"][0])) if first["loc"] else "settings"
        fail(f"invalid setting {name}: {first['msg'].removeprefix('Value error, ')}", 2)


def run_with_database(settings: Settings, work: Callable[[Database], Coroutine[Any, Any, T]]) -> T:
    """Run ``work`` against the database, turning API errors into one line and exit 1."""

    async def runner() -> T:
        db = Database(settings)
        try:
            return await work(db)
        finally:
            await db.dispose()

    try:
        return asyncio.run(runner())
    except RostraError as exc:
        details = "; ".join(f"{d.get('field')}: {d.get('message')}" for d in exc.details or [])
        fail(exc.message + (f" ({details})" if details else ""))
    except OSError as exc:
        fail(f"cannot reach the database: {exc}")
