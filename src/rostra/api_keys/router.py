from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request
from sqlalchemy import select
from starlette.responses import Response

from rostra.api_keys import service
from rostra.api_keys.models import ApiKey
from rostra.api_keys.schemas import ApiKeyCreate, ApiKeyCreated, ApiKeyOut
from rostra.core.deps import CursorCodecDep, SessionDep, list_params, require_scope
from rostra.core.http import resource_response, resource_url
from rostra.core.listing import Filter, ListParams, ListSpec, Page, paginate, whole_number
from rostra.core.routing import domain_router
from rostra.core.schemas import IdPath
from rostra.core.security import Principal
from rostra.users.service import get_user

router = domain_router(tags=["api keys"])

Reader = Annotated[Principal, Depends(require_scope("read", "api_keys"))]
Writer = Annotated[Principal, Depends(require_scope("write", "api_keys"))]

KEY_LIST = ListSpec(
    id_column=ApiKey.id,
    sort_columns={"created_at": ApiKey.created_at, "id": ApiKey.id, "name": ApiKey.name},
    # Admins only: for anyone else the list stays their own keys, so another user's are empty.
    filters={
        "user_id": Filter(apply=lambda user_id: ApiKey.user_id == user_id, parse=whole_number)
    },
    search_columns=(ApiKey.name,),
    created_column=ApiKey.created_at,
)


@router.post("/api-keys", status_code=201, response_model=ApiKeyCreated, summary="Create a key")
async def create_key(
    request: Request, data: ApiKeyCreate, session: SessionDep, principal: Writer
) -> Response:
    user = await get_user(session, principal.user_id)
    key, secret = await service.create_key(session, user=user, data=data, actor=principal)
    body = ApiKeyCreated(**service.to_out(key).model_dump(), secret=secret)
    return resource_response(
        request,
        body,
        status_code=201,
        headers={"Location": resource_url(request, "get_key", key_id=key.id)},
    )


@router.get("/api-keys", response_model=Page[ApiKeyOut], summary="List your keys")
async def list_keys(
    request: Request,
    session: SessionDep,
    codec: CursorCodecDep,
    principal: Reader,
    params: Annotated[ListParams, Depends(list_params(KEY_LIST))],
) -> Response:
    query = select(ApiKey)
    if not principal.is_admin or "user_id" not in request.query_params:
        query = query.where(ApiKey.user_id == principal.user_id)
    return await paginate(session, request, query, KEY_LIST, params, codec, service.to_out)


@router.get("/api-keys/{key_id}", response_model=ApiKeyOut, summary="Get a key")
async def get_key(
    request: Request, key_id: IdPath, session: SessionDep, principal: Reader
) -> Response:
    key = await service.get_key(session, key_id=key_id, actor=principal)
    return resource_response(request, service.to_out(key))


@router.delete("/api-keys/{key_id}", status_code=204, summary="Revoke a key")
async def revoke_key(key_id: IdPath, session: SessionDep, principal: Writer) -> Response:
    key = await service.get_key(session, key_id=key_id, actor=principal)
    await service.revoke_key(session, key=key)
    return Response(status_code=204)
