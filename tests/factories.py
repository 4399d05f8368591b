"""Typed factories that create rows through the services, as the API would."""

from __future__ import annotations

import itertools
from dataclasses import dataclass
from typing import Any

from fastapi import FastAPI

from rostra.api_keys import service as api_keys
from rostra.api_keys.schemas import ApiKeyCreate
from rostra.components import service as components
from rostra.components.models import Component
from rostra.components.schemas import ComponentCreate
from rostra.core.security import OPERATOR
from rostra.datasets import service as datasets
from rostra.datasets.models import DataSet
from rostra.datasets.schemas import DataSetCreate
from rostra.deployments import service as deployments
from rostra.deployments.models import Deployment
from rostra.deployments.schemas import DeploymentCreate
from rostra.projects import service as projects
from rostra.projects.models import Project
from rostra.projects.schemas import MemberCreate, ProjectCreate
from rostra.projects.service import ProjectAccess
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


async def make_project(app: FastAPI, owner: User, **fields: Any) -> Project:
    """A project owned by ``owner`` (private unless ``visibility`` says otherwise)."""
    name = fields.pop("name", f"project {next(_counter)}")
    data = ProjectCreate(name=name, owner_id=owner.id, **fields)
    created = await projects.create_project(app.state.db, data=data, actor=OPERATOR)
    async with app.state.db.session_scope() as session:
        project = await session.get(Project, created.id)
    assert project is not None
    return project


async def add_member(app: FastAPI, project: Project, user: User, role: str = "viewer") -> None:
    data = MemberCreate(user_id=user.id, role=role)  # type: ignore[arg-type]
    async with app.state.db.session_scope() as session:
        stored = await session.get(Project, project.id)
        assert stored is not None
        await projects.add_member(session, project=stored, data=data, actor=OPERATOR)


async def make_component(app: FastAPI, project: Project, **fields: Any) -> Component:
    data = ComponentCreate(name=fields.pop("name", f"component-{next(_counter)}"), **fields)
    async with app.state.db.session_scope() as session:
        stored = await session.get(Project, project.id)
        assert stored is not None
        return await components.create_component(
            session, access=ProjectAccess(stored, None, admin=True), data=data, actor=OPERATOR
        )


async def make_deployment(app: FastAPI, project: Project, **fields: Any) -> Deployment:
    data = DeploymentCreate(
        environment=fields.pop("environment", "production"),
        ref=fields.pop("ref", "main"),
        **fields,
    )
    async with app.state.db.session_scope() as session:
        stored = await session.get(Project, project.id)
        assert stored is not None
        return await deployments.create_deployment(
            session, access=ProjectAccess(stored, None, admin=True), data=data, actor=OPERATOR
        )


async def make_data_set(
    app: FastAPI, owner: User, project: Project | None = None, **fields: Any
) -> DataSet:
    data = DataSetCreate(
        name=fields.pop("name", f"data set {next(_counter)}"),
        values=fields.pop("values", [1, 2, 3]),
        project_id=project.id if project is not None else None,
        owner_id=owner.id,
        **fields,
    )
    async with app.state.db.session_scope() as session:
        return await datasets.create_data_set(session, data=data, actor=OPERATOR)
