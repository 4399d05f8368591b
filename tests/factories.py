"""Typed factories that create rows through the services, as the API would."""

from __future__ import annotations

import itertools
from dataclasses import dataclass
from typing import Any

from fastapi import FastAPI

from rostra.api_keys import service as api_keys
from rostra.api_keys.schemas import ApiKeyCreate
from rostra.core.security import OPERATOR
from rostra.users import service as users
from rostra.users.models import User
from rostra.users.schemas import UserCreate

_counter = itertools.count(1)
PASSWORD = "correct horse battery"


@dataclass
class Account:
    """A user and a live API key of theirs, ready for Authorization headers."""

    user: User
    key: str

    @property
    def id(self) -> int:
        return self.user.id

    @property
    def headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.key}"}


async def make_user(
    app: FastAPI, *, role: str = "member", plan: str = "free", **fields: Any
) -> User:
    n = next(_counter)
    profile = {
        k: fields.pop(k) for k in ("first_name", "last_name", "timezone", "language") if k in fields
    }
    data = UserCreate(
        username=fields.pop("username", f"user{n}"),
        email=fields.pop("email", f"user{n}@example.com"),
        password=fields.pop("password", PASSWORD),
        role=role,  # type: ignore[arg-type]
        plan=plan,  # type: ignore[arg-type]
        profile=profile or None,
        **fields,
    )
    async with app.state.db.session_scope() as session:
        return await users.create_user(
            session, data=data, hasher=app.state.password_hasher, actor=OPERATOR
        )


async def make_key(
    app: FastAPI, user: User, *, scopes: list[str] | None = None, mode: str = "live", **fields: Any
) -> str:
    data = ApiKeyCreate(scopes=scopes, mode=mode, **fields)  # type: ignore[arg-type]
    async with app.state.db.session_scope() as session:
        _, secret = await api_keys.create_key(session, user=user, data=data, actor=None)
    return secret


async def make_account(
    app: FastAPI, *, role: str = "member", scopes: list[str] | None = None, **fields: Any
) -> Account:
    user = await make_user(app, role=role, **fields)
    return Account(user=user, key=await make_key(app, user, scopes=scopes))
