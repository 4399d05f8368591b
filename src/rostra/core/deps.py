"""The dependencies every router declares, as ``Annotated`` aliases declared once.

Dependencies are coroutines even when they do not await: FastAPI runs a plain ``def``
dependency in a worker thread, which would cost a thread hop on every request.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Annotated

from fastapi import Depends, Request
from sqlalchemy.ext.asyncio import AsyncSession

from rostra.core.config import Settings
from rostra.core.db import Database, SessionWrites
from rostra.core.errors import AuthenticationRequired, Forbidden
from rostra.core.listing import CursorCodec, ListParams, ListSpec, parse_list_params
from rostra.core.security import Action, Authenticator, Principal
from rostra.lib.passwords import BoundedPasswordHasher


async def get_settings_from_app(request: Request) -> Settings:
    settings: Settings = request.app.state.settings
    return settings


async def get_database(request: Request) -> Database:
    database: Database = request.app.state.db
    return database


REQUEST_COMMIT_HOOK = "request_commit_hook"
"""Key in ``scope["state"]`` of an ``async (Writes) -> None`` that runs last in the request
session's transaction, once the route has answered without raising: the idempotency layer keeps
the route's answer there, so the change and its answer commit together."""


async def get_session(request: Request) -> AsyncIterator[AsyncSession]:
    """A transaction for the request, committed before the response is sent."""
    database: Database = request.app.state.db
    async with database.session_scope() as session:
        yield session
        hook = request.scope.get("state", {}).get(REQUEST_COMMIT_HOOK)
        if hook is not None:
            await hook(SessionWrites(session))


def bearer_credential(request: Request) -> str | None:
    header = request.headers.get("authorization")
    if header is None:
        return None
    scheme, _, credential = header.partition(" ")
    if scheme.lower() != "bearer" or not credential.strip():
        raise AuthenticationRequired("The Authorization header must be 'Bearer <credential>'")
    return credential.strip()


async def get_optional_principal(request: Request) -> Principal | None:
    """The caller, or None when no credential was sent; a bad credential is still a 401."""
    state = request.scope.setdefault("state", {})
    cached = state.get("principal")
    if isinstance(cached, Principal):
        return cached
    credential = bearer_credential(request)
    if credential is None:
        return None
    authenticator: Authenticator = request.app.state.authenticator
    principal = await authenticator.authenticate(credential)
    state["principal"] = principal
    return principal


async def get_principal(request: Request) -> Principal:
    # Calls get_optional_principal itself rather than depending on it: every level of
    # FastAPI dependency resolution costs on each request, and this runs on nearly all of them.
    principal = await get_optional_principal(request)
    if principal is None:
        raise AuthenticationRequired()
    return principal


SettingsDep = Annotated[Settings, Depends(get_settings_from_app)]
DatabaseDep = Annotated[Database, Depends(get_database)]
SessionDep = Annotated[AsyncSession, Depends(get_session, scope="function")]
OptionalPrincipal = Annotated[Principal | None, Depends(get_optional_principal)]
CurrentPrincipal = Annotated[Principal, Depends(get_principal)]


def require_scope(action: Action, resource: str) -> Callable[..., Awaitable[Principal]]:
    """A dependency: the caller, whose credential must allow ``action`` on ``resource``."""

    async def dependency(request: Request) -> Principal:
        principal = await get_principal(request)
        if not principal.allows(action, resource):
            raise Forbidden(f"This credential lacks the '{resource}:{action}' or '{action}' scope")
        return principal

    return dependency


def optional_scope(action: Action, resource: str) -> Callable[..., Awaitable[Principal | None]]:
    """Like ``require_scope``, but an anonymous caller passes as None (public resources)."""

    async def dependency(request: Request) -> Principal | None:
        principal = await get_optional_principal(request)
        if principal is not None and not principal.allows(action, resource):
            raise Forbidden(f"This credential lacks the '{resource}:{action}' or '{action}' scope")
        return principal

    return dependency


def require_admin() -> Callable[..., Awaitable[Principal]]:
    async def dependency(request: Request) -> Principal:
        principal = await get_principal(request)
        if not principal.is_admin:
            raise Forbidden("Only administrators may do this")
        return principal

    return dependency


async def get_password_hasher(request: Request) -> BoundedPasswordHasher:
    hasher: BoundedPasswordHasher = request.app.state.password_hasher
    return hasher


PasswordHasherDep = Annotated[BoundedPasswordHasher, Depends(get_password_hasher)]


def list_params(spec: ListSpec) -> Callable[[Request], Awaitable[ListParams]]:
    """A dependency: the strictly parsed query string of a list described by ``spec``."""

    async def dependency(request: Request) -> ListParams:
        return parse_list_params(request, spec, request.app.state.cursor_codec)

    return dependency


async def get_cursor_codec(request: Request) -> CursorCodec:
    codec: CursorCodec = request.app.state.cursor_codec
    return codec


CursorCodecDep = Annotated[CursorCodec, Depends(get_cursor_codec)]
