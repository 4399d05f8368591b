"""``rostra keys``: API keys from the command line."""

from __future__ import annotations

from datetime import datetime

import typer
from pydantic import ValidationError
from sqlalchemy import select

from rostra.api_keys import service
from rostra.api_keys.models import ApiKey
from rostra.api_keys.schemas import ApiKeyCreate
from rostra.cli.common import fail, load_settings_for_command, run_with_database
from rostra.core.db import Database, utcnow
from rostra.core.errors import NotFound
from rostra.core.security import OPERATOR
from rostra.users.models import User
from rostra.users.service import find_by_login

app = typer.Typer(help="Manage API keys.", no_args_is_help=True)


@app.command("create")
def create(
    user: str = typer.Option(..., "--user", help="Username or email of the key's owner."),
    test: bool = typer.Option(False, "--test", help="A test key (test_sk_...) for the sandbox."),
    scope: list[str] = typer.Option(
        [],
        "--scope",
        help="read, write, admin or resource:read|write; repeat it or separate with commas.",
    ),
    name: str = typer.Option("CLI key", help="A name to recognise the key by."),
) -> None:
    """Create a key and print only its secret (shown once)."""
    settings = load_settings_for_command()
    try:
        scopes = [part.strip() for value in scope for part in value.split(",") if part.strip()]
        data = ApiKeyCreate(name=name, scopes=scopes or None, mode="test" if test else "live")
    except ValidationError as exc:
        fail(f"--scope: {exc.errors()[0]['msg'].removeprefix('Value error, ')}")

    async def work(db: Database) -> str:
        async with db.session_scope() as session:
            owner = await find_by_login(session, user)
            if owner is None:
                raise NotFound(f"no user named {user!r}")
            _, secret = await service.create_key(session, user=owner, data=data, actor=OPERATOR)
            return secret

    typer.echo(run_with_database(settings, work))


@app.command("list")
def list_keys(
    user: str | None = typer.Option(None, "--user", help="Only this user's keys."),
) -> None:
    """List keys (never their secrets)."""
    settings = load_settings_for_command()

    async def work(db: Database) -> list[tuple[ApiKey, str]]:
        async with db.session_scope() as session:
            query = select(ApiKey, User.username).join(User).order_by(ApiKey.id)
            if user is not None:
                owner = await find_by_login(session, user)
                if owner is None:
                    raise NotFound(f"no user named {user!r}")
                query = query.where(ApiKey.user_id == owner.id)
            return [(row[0], row[1]) for row in (await session.execute(query)).all()]

    rows = run_with_database(settings, work)
    now = utcnow()
    typer.echo("ID\tPREFIX\tUSER\tNAME\tSCOPES\tLAST USED\tSTATE")
    for key, username in rows:
        state = _state(key, now)
        last_used = key.last_used_at.isoformat() if key.last_used_at else "never"
        scopes = ",".join(key.scopes)
        typer.echo(
            f"{key.id}\t{key.prefix}...\t{username}\t{key.name}\t{scopes}\t{last_used}\t{state}"
        )


def _state(key: ApiKey, now: datetime) -> str:
    if key.revoked_at is not None:
        return "revoked"
    if key.expires_at is not None and key.expires_at <= now:
        return "expired"
    return "active"


@app.command("revoke")
def revoke(key_id: int = typer.Argument(..., help="The id shown by `rostra keys list`.")) -> None:
    """Revoke a key. New requests see it at once; a running server that verified the key in
    the last ROSTRA_AUTH_CACHE_SECONDS may accept it until that much time has passed."""
    settings = load_settings_for_command()

    async def work(db: Database) -> None:
        async with db.session_scope() as session:
            key = await session.get(ApiKey, key_id)
            if key is None:
                raise NotFound(f"no API key with id {key_id}")
            await service.revoke_key(session, key=key)

    run_with_database(settings, work)
    typer.echo(f"revoked key {key_id}", err=True)
