from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request
from starlette.responses import Response

from rostra.core.deps import CursorCodecDep, SessionDep, SettingsDep, list_params, require_scope
from rostra.core.http import check_if_match, etag_of, resource_body, resource_response, resource_url
from rostra.core.listing import Filter, ListParams, ListSpec, Page, one_of, paginate, whole_number
from rostra.core.routing import domain_router
from rostra.core.schemas import IdPath
from rostra.core.security import Principal
from rostra.webhooks import service
from rostra.webhooks.models import FAILED, PENDING, SUCCEEDED, WebhookDelivery, WebhookEndpoint
from rostra.webhooks.schemas import (
    DeliveryDetail,
    DeliveryOut,
    WebhookCreate,
    WebhookOut,
    WebhookUpdate,
    WebhookWithSecret,
)

router = domain_router(tags=["webhooks"])

Reader = Annotated[Principal, Depends(require_scope("read", "webhooks"))]
Writer = Annotated[Principal, Depends(require_scope("write", "webhooks"))]


def _true_or_false(text: str) -> bool:
    if text not in ("true", "false"):
        raise ValueError("Must be true or false")
    return text == "true"


WEBHOOK_LIST = ListSpec(
    id_column=WebhookEndpoint.id,
    sort_columns={
        "created_at": WebhookEndpoint.created_at,
        "updated_at": WebhookEndpoint.updated_at,
        "id": WebhookEndpoint.id,
    },
    filters={
        "active": Filter(
            apply=lambda active: WebhookEndpoint.active == active, parse=_true_or_false
        ),
        "project_id": Filter(
            apply=lambda project_id: WebhookEndpoint.project_id == project_id, parse=whole_number
        ),
        "owner_id": Filter(
            apply=lambda owner_id: WebhookEndpoint.owner_id == owner_id, parse=whole_number
        ),
    },
    search_columns=(WebhookEndpoint.url, WebhookEndpoint.description),
    created_column=WebhookEndpoint.created_at,
)

DELIVERY_LIST = ListSpec(
    id_column=WebhookDelivery.id,
    sort_columns={"created_at": WebhookDelivery.created_at, "id": WebhookDelivery.id},
    filters={
        "status": Filter(
            apply=lambda status: WebhookDelivery.status == status,
            parse=one_of(PENDING, SUCCEEDED, FAILED),
        ),
        "event_type": Filter(apply=lambda kind: WebhookDelivery.event_type == kind),
    },
    created_column=WebhookDelivery.created_at,
)


def _respond(request: Request, endpoint: WebhookEndpoint) -> Response:
    return resource_response(request, service.to_out(endpoint))


def _respond_with_secret(
    request: Request, endpoint: WebhookEndpoint, *, status_code: int = 200
) -> Response:
    headers = None
    if status_code == 201:
        headers = {"Location": resource_url(request, "get_webhook", webhook_id=endpoint.id)}
    body = service.with_secret(endpoint)
    return resource_response(request, body, status_code=status_code, headers=headers)


async def _changeable(
    request: Request, session: SessionDep, webhook_id: int, principal: Principal
) -> WebhookEndpoint:
    """The caller's endpoint, locked, if If-Match (when sent) still matches it."""
    endpoint = await service.get_endpoint(session, webhook_id, principal, for_change=True)
    check_if_match(request, etag_of(resource_body(service.to_out(endpoint))))
    return endpoint


def _accepted_delivery(request: Request, endpoint: WebhookEndpoint, delivery_id: int) -> str:
    return resource_url(
        request, "get_webhook_delivery", webhook_id=endpoint.id, delivery_id=delivery_id
    )


@router.get("/webhooks", response_model=Page[WebhookOut], summary="List your webhooks")
async def list_webhooks(
    request: Request,
    session: SessionDep,
    codec: CursorCodecDep,
    principal: Reader,
    params: Annotated[ListParams, Depends(list_params(WEBHOOK_LIST))],
) -> Response:
    query = service.visible_query(principal)
    return await paginate(session, request, query, WEBHOOK_LIST, params, codec, service.to_out)


@router.post(
    "/webhooks",
    status_code=201,
    response_model=WebhookWithSecret,
    summary="Register a webhook (its secret is shown only in this answer)",
)
async def create_webhook(
    request: Request,
    data: WebhookCreate,
    session: SessionDep,
    settings: SettingsDep,
    principal: Writer,
) -> Response:
    endpoint = await service.create_endpoint(
        session, data=data, actor=principal, allow_private=settings.webhooks_allow_private
    )
    return _respond_with_secret(request, endpoint, status_code=201)


@router.get("/webhooks/{webhook_id}", response_model=WebhookOut, summary="Get a webhook")
async def get_webhook(
    request: Request, webhook_id: IdPath, session: SessionDep, principal: Reader
) -> Response:
    return _respond(request, await service.get_endpoint(session, webhook_id, principal))


@router.patch("/webhooks/{webhook_id}", response_model=WebhookOut, summary="Change a webhook")
async def update_webhook(
    request: Request,
    webhook_id: IdPath,
    data: WebhookUpdate,
    session: SessionDep,
    settings: SettingsDep,
    principal: Writer,
) -> Response:
    if data.url is not None:  # before the row lock: resolving the host may be slow
        await service.check_target(data.url, allow_private=settings.webhooks_allow_private)
    endpoint = await _changeable(request, session, webhook_id, principal)
    endpoint = await service.update_endpoint(session, endpoint=endpoint, data=data, actor=principal)
    return _respond(request, endpoint)


@router.delete("/webhooks/{webhook_id}", status_code=204, summary="Delete a webhook")
async def delete_webhook(
    request: Request, webhook_id: IdPath, session: SessionDep, principal: Writer
) -> Response:
    endpoint = await _changeable(request, session, webhook_id, principal)
    await service.delete_endpoint(session, endpoint=endpoint)
    return Response(status_code=204)


@router.post(
    "/webhooks/{webhook_id}/rotate-secret",
    response_model=WebhookWithSecret,
    summary="Replace the secret (the previous one keeps signing for 24 hours)",
)
async def rotate_webhook_secret(
    request: Request, webhook_id: IdPath, session: SessionDep, principal: Writer
) -> Response:
    endpoint = await _changeable(request, session, webhook_id, principal)
    endpoint = await service.rotate_secret(session, endpoint=endpoint)
    return _respond_with_secret(request, endpoint)


@router.post(
    "/webhooks/{webhook_id}/test",
    status_code=202,
    response_model=DeliveryOut,
    summary="Send a ping to this webhook",
)
async def send_webhook_test(
    request: Request, webhook_id: IdPath, session: SessionDep, principal: Writer
) -> Response:
    endpoint = await service.get_endpoint(session, webhook_id, principal)
    delivery = await service.send_test(session, endpoint=endpoint)
    body = service.delivery_out(delivery, livemode=endpoint.livemode)
    headers = {"Location": _accepted_delivery(request, endpoint, delivery.id)}
    return resource_response(request, body, status_code=202, headers=headers)


@router.get(
    "/webhooks/{webhook_id}/deliveries",
    response_model=Page[DeliveryOut],
    summary="A webhook's deliveries, newest first",
)
async def list_webhook_deliveries(
    request: Request,
    webhook_id: IdPath,
    session: SessionDep,
    codec: CursorCodecDep,
    principal: Reader,
    params: Annotated[ListParams, Depends(list_params(DELIVERY_LIST))],
) -> Response:
    endpoint = await service.get_endpoint(session, webhook_id, principal)
    livemode = endpoint.livemode
    return await paginate(
        session,
        request,
        service.deliveries_query(endpoint.id),
        DELIVERY_LIST,
        params,
        codec,
        lambda delivery: service.delivery_out(delivery, livemode=livemode),
    )


@router.get(
    "/webhooks/{webhook_id}/deliveries/{delivery_id}",
    response_model=DeliveryDetail,
    summary="One delivery, with its body and every attempt",
)
async def get_webhook_delivery(
    request: Request,
    webhook_id: IdPath,
    delivery_id: IdPath,
    session: SessionDep,
    principal: Reader,
) -> Response:
    endpoint = await service.get_endpoint(session, webhook_id, principal)
    delivery = await service.get_delivery(session, endpoint=endpoint, delivery_id=delivery_id)
    attempts = await service.attempts_of(session, delivery.id)
    body = service.delivery_detail(delivery, attempts, livemode=endpoint.livemode)
    return resource_response(request, body)


@router.post(
    "/webhooks/{webhook_id}/deliveries/{delivery_id}/redeliver",
    status_code=202,
    response_model=DeliveryOut,
    summary="Send a delivery again (same webhook-id, same body)",
)
async def redeliver_webhook_delivery(
    request: Request,
    webhook_id: IdPath,
    delivery_id: IdPath,
    session: SessionDep,
    principal: Writer,
) -> Response:
    endpoint = await service.get_endpoint(session, webhook_id, principal)
    delivery = await service.get_delivery(
        session, endpoint=endpoint, delivery_id=delivery_id, for_change=True
    )
    delivery = await service.redeliver(session, delivery=delivery)
    body = service.delivery_out(delivery, livemode=endpoint.livemode)
    headers = {"Location": _accepted_delivery(request, endpoint, delivery.id)}
    return resource_response(request, body, status_code=202, headers=headers)
