"""``rostra users``: accounts from the command line."""

from __future__ import annotations

import typer
from pydantic import ValidationError

from rostra.cli.common import fail, load_settings_for_command, run_with_database
from rostra.core.db import Database
from rostra.core.security import OPERATOR
from rostra.lib.passwords import BoundedPasswordHasher
from rostra.users import service
from rostra.users.schemas import UserCreate

app = typer.Typer(help="Manage users.", no_args_is_help=True)


@app.command("create")
def create(
    username: str = typer.Option(..., help="Unique user name."),
    email: str = typer.Option(..., help="Unique email address."),
    password: str = typer.Option(
        ..., prompt=True, hide_input=True, confirmation_prompt=True, help="Password (8+ chars)."
    ),
    admin: bool = typer.Option(False, "--admin", help="Make the user an administrator."),
) -> None:
    """Create a user; prints its id."""
    settings = load_settings_for_command()
    try:
        data = UserCreate(
            username=username, email=email, password=password, role="admin" if admin else None
        )
    except ValidationError as exc:
        first = exc.errors()[0]
        fail(f"{first['loc'][0]}: {first['msg'].removeprefix('Value error, ')}")

    async def work(db: Database) -> int:
        hasher = BoundedPasswordHasher(concurrency=1, queue=0)
        async with db.session_scope() as session:
            user = await service.create_user(session, data=data, hasher=hasher, actor=OPERATOR)
            return user.id

    user_id = run_with_database(settings, work)
    typer.echo(str(user_id))
