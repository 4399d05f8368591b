"""Reading the resource tables back, to check what a request changed (or did not)."""

from __future__ import annotations

from typing import Any

import httpx
from fastapi import FastAPI
from sqlalchemy import Table, select

from rostra.components.models import Component
from rostra.datasets.models import DataSet
from rostra.deployments.models import Deployment
from rostra.events.models import Event
from rostra.projects.models import Project, ProjectMember
from rostra.users.models import User

RESOURCE_TABLES: tuple[Any, ...] = (
    User.__table__,
    Project.__table__,
    ProjectMember.__table__,
    Component.__table__,
    Deployment.__table__,
    DataSet.__table__,
    Event.__table__,
)


async def snapshot(app: FastAPI) -> dict[str, list[tuple[Any, ...]]]:
    """Every row of every resource table (and the event log), in primary-key order."""
    tables: dict[str, list[tuple[Any, ...]]] = {}
    async with app.state.db.session_scope() as session:
        for table in RESOURCE_TABLES:
            assert isinstance(table, Table)
            rows = await session.execute(select(table).order_by(*table.primary_key.columns))
            tables[table.name] = [tuple(row) for row in rows.all()]
    return tables


async def stored_events(app: FastAPI, event_type: str | None = None) -> list[Event]:
    async with app.state.db.session_scope() as session:
        query = select(Event).order_by(Event.id)
        if event_type is not None:
            query = query.where(Event.type == event_type)
        return list((await session.scalars(query)).all())


def error_code(response: httpx.Response) -> str:
    code: str = response.json()["error"]["code"]
    return code
