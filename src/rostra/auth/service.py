"""Sign-in sessions: login, refresh-token rotation with reuse detection, logout.

Each login opens a session, a family of refresh tokens. Refreshing rotates: the presented
token dies and a new pair is issued. Presenting a dead token again means it was stolen (or
replayed), so the whole family dies, unless it comes within ``refresh_grace_seconds`` of its
rotation: that is a client racing itself (two tabs), and it gets the same new pair.

The new pair is derived from the presented token with the server key, not stored: the racing
request can recompute it, and the database never holds a usable token.
"""

from __future__ import annotations

import contextlib
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import Select, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from rostra.auth.models import AuthSession, RefreshToken
from rostra.auth.schemas import TokenPair
from rostra.auth.tokens import encode_access_token
from rostra.core.cache import forget_user_after_commit
from rostra.core.config import Settings
from rostra.core.db import utcnow
from rostra.core.errors import AuthenticationRequired, NotFound
from rostra.lib.passwords import BoundedPasswordHasher, PasswordHasherBusy
from rostra.lib.secrets import fast_hash, keyed_hash, random_token
from rostra.users import service as users
from rostra.users.models import User

REFRESH_PREFIX = "rt_"


@dataclass(frozen=True)
class ReuseDetected:
    """A rotated refresh token came back after the grace period; its session was ended."""

    session_id: int


def _successor_of(key: str, presented: str) -> str:
    return REFRESH_PREFIX + keyed_hash(key, "refresh-successor:" + presented)


def _pair(
    settings: Settings, *, user_id: int, token: RefreshToken, plain: str, now: datetime
) -> TokenPair:
    """The pair of ``token``: its access token is derived from the row alone (issued when the row
    was created), so a racing refresh that finds the row recomputes the very same JWT."""
    ttl = settings.access_token_ttl_seconds
    issued_at = int(token.created_at.timestamp())
    access = encode_access_token(
        settings.signing_key(),
        user_id=user_id,
        session_id=token.session_id,
        issued_at=issued_at,
        ttl_seconds=ttl,
        token_id=token.token_hash[:24],
    )
    expires_in = max(0, issued_at + ttl - int(now.timestamp()))
    return TokenPair(access_token=access, expires_in=expires_in, refresh_token=plain)


def _new_refresh(settings: Settings, *, session_id: int, plain: str, now: datetime) -> RefreshToken:
    return RefreshToken(
        session_id=session_id,
        token_hash=fast_hash(plain),
        created_at=now.replace(microsecond=0),
        expires_at=now + timedelta(seconds=settings.refresh_token_ttl_seconds),
    )


async def login(
    session: AsyncSession,
    *,
    login: str,
    password: str,
    hasher: BoundedPasswordHasher,
    settings: Settings,
    device: str | None,
    ip: str | None,
) -> TokenPair:
    user = await users.find_by_login(session, login)
    password_hash = user.password_hash if user is not None else None
    if not await hasher.verify(password_hash, password) or user is None:
        raise AuthenticationRequired("The username, email or password is wrong")
    if user.password_hash is not None and hasher.needs_rehash(user.password_hash):
        # Opportunistic: a busy hasher must not turn a correct password into a refused login.
        with contextlib.suppress(PasswordHasherBusy):
            user.password_hash = await hasher.hash(password)
    await users.record_login(session, user=user)
    return await open_session(session, user=user, settings=settings, device=device, ip=ip)


async def open_session(
    session: AsyncSession, *, user: User, settings: Settings, device: str | None, ip: str | None
) -> TokenPair:
    now = utcnow()
    auth_session = AuthSession(
        user_id=user.id,
        device=(device or "")[:200] or None,
        ip=ip,
        created_at=now,
        last_used_at=now,
    )
    session.add(auth_session)
    await session.flush()
    plain = REFRESH_PREFIX + random_token(43)
    token = _new_refresh(settings, session_id=auth_session.id, plain=plain, now=now)
    session.add(token)
    await session.flush()
    return _pair(settings, user_id=user.id, token=token, plain=plain, now=now)


async def refresh(
    session: AsyncSession, *, presented: str, settings: Settings
) -> TokenPair | ReuseDetected:
    now = utcnow()
    presented_hash = fast_hash(presented)
    # Claim the token with one conditional UPDATE as the transaction's first statement, so two
    # racing refreshes serialise on the row and exactly one of them rotates it.
    claimed = (
        await session.execute(
            update(RefreshToken)
            .where(RefreshToken.token_hash == presented_hash, RefreshToken.rotated_at.is_(None))
            .values(rotated_at=now)
            .returning(RefreshToken.id)
        )
    ).first()
    row = (
        await session.execute(
            select(RefreshToken, AuthSession)
            .join(AuthSession, AuthSession.id == RefreshToken.session_id)
            .where(RefreshToken.token_hash == presented_hash)
        )
    ).first()
    if row is None:
        raise AuthenticationRequired("This refresh token is not valid")
    token, auth_session = row[0], row[1]
    if auth_session.revoked_at is not None or token.expires_at <= now:
        raise AuthenticationRequired("This session has ended; sign in again")
    successor_plain = _successor_of(settings.signing_key(), presented)

    if claimed is not None:
        successor = _new_refresh(
            settings, session_id=auth_session.id, plain=successor_plain, now=now
        )
        session.add(successor)
        auth_session.last_used_at = now
        await session.flush()
        return _pair(
            settings,
            user_id=auth_session.user_id,
            token=successor,
            plain=successor_plain,
            now=now,
        )

    rotated_at = token.rotated_at or now
    if now - rotated_at <= timedelta(seconds=settings.refresh_grace_seconds):
        issued = (
            await session.scalars(
                select(RefreshToken).where(RefreshToken.token_hash == fast_hash(successor_plain))
            )
        ).first()
        if issued is not None:
            return _pair(
                settings,
                user_id=auth_session.user_id,
                token=issued,
                plain=successor_plain,
                now=now,
            )
    await end_session(session, auth_session=auth_session, reason="refresh_token_reused")
    return ReuseDetected(session_id=auth_session.id)


async def end_session(
    session: AsyncSession, *, auth_session: AuthSession, reason: str = "logout"
) -> None:
    if auth_session.revoked_at is None:
        auth_session.revoked_at = utcnow()
        auth_session.revoked_reason = reason
        await session.flush()
    forget_user_after_commit(session, auth_session.user_id)


async def session_of_refresh_token(session: AsyncSession, presented: str) -> AuthSession | None:
    return (
        await session.scalars(
            select(AuthSession)
            .join(RefreshToken, RefreshToken.session_id == AuthSession.id)
            .where(RefreshToken.token_hash == fast_hash(presented))
        )
    ).first()


async def get_session(session: AsyncSession, *, session_id: int, user_id: int) -> AuthSession:
    """One of the user's live sessions; another user's, or an ended one, is not found."""
    auth_session = await session.get(AuthSession, session_id)
    if auth_session is None or auth_session.user_id != user_id or auth_session.revoked_at:
        raise NotFound(f"No session with id {session_id}")
    return auth_session


def active_sessions(*, user_id: int, settings: Settings) -> Select[AuthSession]:
    """The user's sessions that are neither ended nor idle past the refresh-token lifetime."""
    horizon = utcnow() - timedelta(seconds=settings.refresh_token_ttl_seconds)
    return select(AuthSession).where(
        AuthSession.user_id == user_id,
        AuthSession.revoked_at.is_(None),
        AuthSession.last_used_at > horizon,
    )
