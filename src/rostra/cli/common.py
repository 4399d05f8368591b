"""What every command shares: settings that fail in one line, and one-line errors.

A command's stdout carries only its answer (a secret, an id, a table); everything else, errors
included, goes to stderr as ``rostra: <what went wrong>`` with a non-zero exit, never a trace.
"""

from __future__ import annotations

import asyncio
import sys
from collections.abc import Callable, Coroutine
from typing import Any, NoReturn, TypeVar

import typer
from pydantic import ValidationError
from sqlalchemy.exc import SQLAlchemyError

from rostra.core.config import Settings, setting_env_name
from rostra.core.db import Database
from rostra.core.errors import RostraError
from rostra.core.logging import configure_logging

T = TypeVar("T")


def fail(message: str, code: int = 1) -> NoReturn:
    typer.echo(f"rostra: {one_line(message)}", err=True)
    raise typer.Exit(code)


def one_line(text: str) -> str:
    """The first line of a (driver's) message, which is the one that says what happened."""
    return text.strip().splitlines()[0] if text.strip() else text


def load_settings() -> Settings:
    try:
        return Settings()
    except ValidationError as exc:
        first = exc.errors()[0]
        name = setting_env_name(str(first["loc"][0])) if first["loc"] else "settings"
        fail(f"invalid setting {name}: {first['msg'].removeprefix('Value error, ')}", 2)


def load_settings_for_command() -> Settings:
    """Settings for a management command, whose own log lines go to stderr."""
    settings = load_settings()
    configure_logging("warning", stream=sys.stderr)
    return settings


def database_failure(exc: BaseException) -> str | None:
    """A one-line account of a database that cannot be reached or used, else None."""
    if isinstance(exc, OSError):
        return f"cannot reach the database: {exc.strerror or exc}"
    if isinstance(exc, SQLAlchemyError):
        reason = one_line(str(getattr(exc, "orig", None) or exc))
        if "no such table" in reason or ("relation" in reason and "does not exist" in reason):
            return f"the database is not migrated ({reason}): run `rostra migrate`"
        return f"database error: {reason}"
    return None


def run_with_database(settings: Settings, work: Callable[[Database], Coroutine[Any, Any, T]]) -> T:
    """Run ``work`` against the database, turning API and database errors into one line."""

    # What the app registers too: without it, events a command writes would reach no webhook.
    # Imported here, so that `--help` and argument errors need not import every domain.
    from rostra.api import install_domain_hooks

    install_domain_hooks()

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
    except (OSError, SQLAlchemyError) as exc:
        fail(database_failure(exc) or str(exc))
