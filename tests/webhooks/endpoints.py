"""Webhook endpoints made through the service, and the delivery rows read back."""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI
from sqlalchemy import select

from rostra.core.security import OPERATOR
from rostra.users.models import User
from rostra.webhooks import service
from rostra.webhooks.models import WebhookDelivery, WebhookEndpoint
from rostra.webhooks.schemas import WebhookCreate

PUBLIC_URL = "https://93.184.215.14/hooks"
"""A public address literal: passes the SSRF guard with no DNS and is never called here."""


async def make_endpoint(app: FastAPI, owner: User, **fields: Any) -> WebhookEndpoint:
    data = WebhookCreate(
        url=fields.pop("url", PUBLIC_URL),
        events=fields.pop("events", ["*"]),
        owner_id=owner.id,
        **fields,
    )
    async with app.state.db.session_scope() as session:
        return await service.create_endpoint(session, data=data, actor=OPERATOR, allow_private=True)


async def stored_deliveries(app: FastAPI) -> list[WebhookDelivery]:
    async with app.state.db.session_scope() as session:
        query = select(WebhookDelivery).order_by(WebhookDelivery.id)
        return list((await session.scalars(query)).all())


async def stored_endpoint(app: FastAPI, endpoint_id: int) -> WebhookEndpoint | None:
    async with app.state.db.session_scope() as session:
        return await session.get(WebhookEndpoint, endpoint_id)
