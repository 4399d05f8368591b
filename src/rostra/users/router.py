from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Query, Request
from sqlalchemy import select
from starlette.responses import Response

from rostra.core.db import Database
from rostra.core.deps import (
    CursorCodecDep,
    PasswordHasherDep,
    SessionDep,
    list_params,
    require_admin,
    require_scope,
)
from rostra.core.http import check_if_match, etag_of, resource_body, resource_response, resource_url
from rostra.core.listing import Filter, ListParams, ListSpec, Page, one_of, paginate
from rostra.core.routing import domain_router
from rostra.core.schemas import MAX_ID, IdPath
from rostra.core.security import Principal
from rostra.users import batch, service
from rostra.users.models import PLANS, ROLES, User
from rostra.users.schemas import UserCreate, UserOut, UserReplace, UserUpdate

router = domain_router(tags=["users"])

read_users = require_scope("read", "users")
Reader = Annotated[Principal, Depends(read_users)]
Writer = Annotated[Principal, Depends(require_scope("write", "users"))]
Admin = Annotated[Principal, Depends(require_admin())]

USER_LIST = ListSpec(
    id_column=User.id,
    sort_columns={
        "created_at": User.created_at,
        "updated_at": User.updated_at,
        "username": User.username,
        "id": User.id,
    },
    filters={
        "role": Filter(apply=lambda role: User.role == role, parse=one_of(*ROLES)),
        "plan": Filter(apply=lambda plan: User.plan == plan, parse=one_of(*PLANS)),
    },
    search_columns=(User.username, User.name),
    created_column=User.created_at,
)


def _etag(user: User, viewer: Principal) -> str:
    return etag_of(resource_body(service.to_out(user, viewer=viewer)))


@router.get("/user", response_model=UserOut, summary="The signed-in user")
async def get_current_user(request: Request) -> Response:
    # The hottest route of all. Its scope check is called rather than declared: a declared
    # dependency costs a node of FastAPI's dependency resolution on every request.
    principal = await read_users(request)
    db: Database = request.app.state.db

    # The caller's own representation, and its ETag, are cached until they change.
    async def load() -> tuple[tuple[bytes, str], int]:
        async with db.session_scope() as session:
            user = await service.get_user(session, principal.user_id)
            body = resource_body(service.to_out(user, viewer=principal))
        return (body, etag_of(body)), principal.user_id

    key = f"self:{principal.user_id}:{principal.livemode}"
    body, etag = await db.caches.user_views.get_or_load(key, load)
    return resource_response(request, body, etag=etag)


@router.patch("/user", response_model=UserOut, summary="Change the signed-in user")
async def update_current_user(
    request: Request,
    data: UserUpdate,
    session: SessionDep,
    hasher: PasswordHasherDep,
    principal: Writer,
) -> Response:
    user = await service.get_user_for_change(session, principal.user_id)
    check_if_match(request, _etag(user, principal))
    user = await service.update_user(session, user=user, data=data, hasher=hasher, actor=principal)
    return resource_response(request, service.to_out(user, viewer=principal))


@router.get("/users", response_model=Page[UserOut], summary="List users")
async def list_users(
    request: Request,
    session: SessionDep,
    codec: CursorCodecDep,
    principal: Reader,
    params: Annotated[ListParams, Depends(list_params(USER_LIST))],
) -> Response:
    return await paginate(
        session,
        request,
        select(User),
        USER_LIST,
        params,
        codec,
        lambda user: service.to_out(user, viewer=principal),
    )


@router.post("/users", status_code=201, response_model=UserOut, summary="Create a user (admins)")
async def create_user(
    request: Request,
    data: UserCreate,
    session: SessionDep,
    hasher: PasswordHasherDep,
    principal: Admin,
    _: Writer,
) -> Response:
    user = await service.create_user(session, data=data, hasher=hasher, actor=principal)
    return resource_response(
        request,
        service.to_out(user, viewer=principal),
        status_code=201,
        headers={"Location": resource_url(request, "get_user", user_id=user.id)},
    )


@router.post(
    "/users/batch",
    response_model=batch.BatchResults,
    summary="Create, change and delete up to 100 users in one request (admins)",
)
async def batch_users(
    data: batch.UserBatch,
    session: SessionDep,
    hasher: PasswordHasherDep,
    principal: Admin,
    _: Writer,
) -> Response:
    results = await batch.run_batch(session, batch=data, hasher=hasher, actor=principal)
    return Response(results.model_dump_json(), media_type="application/json")


@router.get("/users/{user_id}", response_model=UserOut, summary="Get a user")
async def get_user(
    request: Request, user_id: IdPath, session: SessionDep, principal: Reader
) -> Response:
    user = await service.get_user(session, user_id)
    return resource_response(request, service.to_out(user, viewer=principal))


@router.put("/users/{user_id}", response_model=UserOut, summary="Replace a user")
async def replace_user(
    request: Request,
    user_id: IdPath,
    data: UserReplace,
    session: SessionDep,
    hasher: PasswordHasherDep,
    principal: Writer,
) -> Response:
    user = await service.get_user_for_change(session, user_id)
    service.check_may_change(principal, user_id)
    check_if_match(request, _etag(user, principal))
    user = await service.replace_user(session, user=user, data=data, hasher=hasher, actor=principal)
    return resource_response(request, service.to_out(user, viewer=principal))


@router.patch("/users/{user_id}", response_model=UserOut, summary="Change a user")
async def update_user(
    request: Request,
    user_id: IdPath,
    data: UserUpdate,
    session: SessionDep,
    hasher: PasswordHasherDep,
    principal: Writer,
) -> Response:
    user = await service.get_user_for_change(session, user_id)
    service.check_may_change(principal, user_id)
    check_if_match(request, _etag(user, principal))
    user = await service.update_user(session, user=user, data=data, hasher=hasher, actor=principal)
    return resource_response(request, service.to_out(user, viewer=principal))


@router.delete("/users/{user_id}", status_code=204, summary="Delete a user")
async def delete_user(
    request: Request,
    user_id: IdPath,
    session: SessionDep,
    principal: Writer,
    transfer_to: Annotated[
        int | None, Query(ge=1, le=MAX_ID, description="Who takes over the projects this user owns")
    ] = None,
) -> Response:
    user = await service.get_user_for_change(session, user_id)
    service.check_may_change(principal, user_id)
    check_if_match(request, _etag(user, principal))
    await service.delete_user(session, user=user, transfer_to=transfer_to, actor=principal)
    return Response(status_code=204)
