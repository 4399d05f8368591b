from __future__ import annotations

from typing import Annotated, Any

from fastapi import Depends, Request
from starlette.responses import Response

from rostra.auth import service
from rostra.auth.models import AuthSession
from rostra.auth.schemas import (
    LoginRequest,
    LogoutRequest,
    RefreshRequest,
    RegisterRequest,
    SessionOut,
    TokenPair,
)
from rostra.core.bodies import openapi_json_or_form, read_json_or_form
from rostra.core.config import Settings
from rostra.core.deps import (
    CursorCodecDep,
    DatabaseDep,
    PasswordHasherDep,
    SessionDep,
    SettingsDep,
    get_optional_principal,
    list_params,
    require_scope,
)
from rostra.core.errors import AuthenticationRequired, Forbidden, Invalid
from rostra.core.http import resource_response, resource_url
from rostra.core.listing import ListParams, ListSpec, Page, paginate
from rostra.core.routing import domain_router
from rostra.core.schemas import IdPath
from rostra.core.security import Principal
from rostra.events.catalog import USER_REGISTERED
from rostra.lib.ratelimit.client_ip import client_address, parse_networks
from rostra.users import service as users
from rostra.users.schemas import UserOut

router = domain_router(prefix="/auth", tags=["auth"])

NO_STORE = {"Cache-Control": "no-store"}

SessionReader = Annotated[Principal, Depends(require_scope("read", "sessions"))]
SessionWriter = Annotated[Principal, Depends(require_scope("write", "sessions"))]

SESSION_LIST = ListSpec(
    id_column=AuthSession.id,
    sort_columns={"last_used_at": AuthSession.last_used_at, "created_at": AuthSession.created_at},
    default_sort="last_used_at",
)


def _client_ip(request: Request, settings: Settings) -> str | None:
    """The client's address as the rate limiter sees it: X-Forwarded-For only from trusted
    proxies, so a client cannot write its own address into its session."""
    peer = request.client.host if request.client else None
    trusted = parse_networks(settings.trusted_proxies)
    address = client_address(peer, request.headers.getlist("x-forwarded-for"), trusted)
    return str(address) if address is not None else peer


def _token_response(pair: TokenPair) -> Response:
    return Response(pair.model_dump_json(), headers=NO_STORE, media_type="application/json")


@router.post(
    "/login",
    response_model=TokenPair,
    summary="Sign in with a username or email and a password (JSON or form)",
    openapi_extra=openapi_json_or_form(LoginRequest),
)
async def login(
    request: Request, session: SessionDep, hasher: PasswordHasherDep, settings: SettingsDep
) -> Response:
    data = await read_json_or_form(request, LoginRequest)
    pair = await service.login(
        session,
        login=data.login,
        password=data.password,
        hasher=hasher,
        settings=settings,
        device=request.headers.get("user-agent"),
        ip=_client_ip(request, settings),
    )
    return _token_response(pair)


@router.post(
    "/refresh",
    response_model=TokenPair,
    summary="Trade a refresh token for a new pair (the old one dies)",
    openapi_extra=openapi_json_or_form(RefreshRequest),
)
async def refresh(request: Request, db: DatabaseDep, settings: SettingsDep) -> Response:
    data = await read_json_or_form(request, RefreshRequest)
    # Not SessionDep: ending a session on reuse must commit even though the answer is a 401.
    async with db.session_scope() as session:
        outcome = await service.refresh(session, presented=data.refresh_token, settings=settings)
    if isinstance(outcome, service.ReuseDetected):
        raise AuthenticationRequired(
            "This refresh token was already used; the session has been ended for safety"
        )
    return _token_response(outcome)


def _optional_body(extra: dict[str, Any]) -> dict[str, Any]:
    return {"requestBody": {**extra["requestBody"], "required": False}}


@router.post(
    "/logout",
    status_code=204,
    summary="End a session: the one of the refresh token sent, else the caller's",
    openapi_extra=_optional_body(openapi_json_or_form(LogoutRequest)),
)
async def logout(request: Request, session: SessionDep) -> Response:
    data = await read_json_or_form(request, LogoutRequest)
    if data.refresh_token:
        # Holding the refresh token is proof enough, so a client whose access token has already
        # expired can still sign out; the Authorization header is not consulted.
        auth_session = await service.session_of_refresh_token(session, data.refresh_token)
        if auth_session is None:
            raise AuthenticationRequired("This refresh token is not valid")
    else:
        principal = await get_optional_principal(request)
        if principal is None:
            raise AuthenticationRequired()
        if principal.credential != "session":
            raise Invalid.field("refresh_token", "Send the refresh token of the session to end")
        auth_session = await service.get_session(
            session, session_id=int(principal.credential_id), user_id=principal.user_id
        )
    await service.end_session(session, auth_session=auth_session)
    return Response(status_code=204)


@router.get("/sessions", response_model=Page[SessionOut], summary="Your signed-in sessions")
async def list_sessions(
    request: Request,
    session: SessionDep,
    codec: CursorCodecDep,
    principal: SessionReader,
    settings: SettingsDep,
    params: Annotated[ListParams, Depends(list_params(SESSION_LIST))],
) -> Response:
    current = principal.credential_id if principal.credential == "session" else None
    query = service.active_sessions(user_id=principal.user_id, settings=settings)
    return await paginate(
        session,
        request,
        query,
        SESSION_LIST,
        params,
        codec,
        lambda row: SessionOut(
            id=row.id,
            device=row.device,
            ip=row.ip,
            created_at=row.created_at,
            last_used_at=row.last_used_at,
            current=str(row.id) == current,
        ),
    )


@router.delete("/sessions/{session_id}", status_code=204, summary="End one of your sessions")
async def end_session(
    session_id: IdPath, session: SessionDep, principal: SessionWriter
) -> Response:
    auth_session = await service.get_session(
        session, session_id=session_id, user_id=principal.user_id
    )
    await service.end_session(session, auth_session=auth_session)
    return Response(status_code=204)


def registration_open(settings: SettingsDep) -> Settings:
    """A dependency, so a closed server refuses before it looks at the body."""
    if not settings.registration_open:
        raise Forbidden("Registration is closed on this server")
    return settings


@router.post(
    "/register",
    status_code=201,
    response_model=UserOut,
    summary="Sign up as a member (role and plan are set by administrators only)",
    dependencies=[Depends(registration_open)],
)
async def register(
    request: Request, data: RegisterRequest, session: SessionDep, hasher: PasswordHasherDep
) -> Response:
    user = await users.create_user(
        session, data=data, hasher=hasher, actor=None, event_type=USER_REGISTERED
    )
    return resource_response(
        request,
        users.to_out(user, viewer=None).model_copy(update={"email": user.email}),
        status_code=201,
        headers={"Location": resource_url(request, "get_user", user_id=user.id)},
    )
