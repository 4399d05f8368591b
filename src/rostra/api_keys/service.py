"""API keys: ``sk_live_``/``test_sk_`` secrets, stored only as their SHA-256, looked up by it."""

from __future__ import annotations

from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession

from rostra.api_keys.models import ApiKey
from rostra.api_keys.schemas import ApiKeyCreate, ApiKeyOut
from rostra.core.cache import forget_user_after_commit
from rostra.core.db import utcnow
from rostra.core.errors import Forbidden, NotFound
from rostra.core.security import Principal, scopes_within
from rostra.lib.secrets import fast_hash, random_token
from rostra.users.models import User

LIVE_PREFIX = "sk_live_"
TEST_PREFIX = "test_sk_"
SHOWN_PREFIX_LENGTH = 12


def is_api_key(credential: str) -> bool:
    return credential.startswith((LIVE_PREFIX, TEST_PREFIX))


def default_scopes(user: User) -> list[str]:
    return ["admin", "read", "write"] if user.role == "admin" else ["read", "write"]


def to_out(key: ApiKey) -> ApiKeyOut:
    return ApiKeyOut(
        id=key.id,
        user_id=key.user_id,
        name=key.name,
        prefix=key.prefix,
        scopes=key.scopes,
        expires_at=key.expires_at,
        last_used_at=key.last_used_at,
        revoked_at=key.revoked_at,
        created_at=key.created_at,
        livemode=key.livemode,
    )


async def create_key(
    session: AsyncSession, *, user: User, data: ApiKeyCreate, actor: Principal | None
) -> tuple[ApiKey, str]:
    """A new key and its secret (shown once). A credential cannot mint wider rights than its own:
    not more scopes, and a sandbox (test) credential cannot mint a live key."""
    if data.scopes is not None:
        scopes = data.scopes
    elif actor is not None and actor.scopes is not None:
        scopes = sorted(actor.scopes)
    else:
        scopes = default_scopes(user)
    if "admin" in scopes and user.role != "admin":
        raise Forbidden(
            "Only administrators' keys may carry the admin scope",
            details=[{"field": "scopes", "message": "Only administrators may use 'admin'"}],
        )
    if actor is not None and not scopes_within(frozenset(scopes), actor.scopes):
        raise Forbidden(
            "A key cannot be given scopes that the credential creating it lacks",
            details=[{"field": "scopes", "message": "Wider than this credential's own scopes"}],
        )
    if actor is not None and not actor.livemode and data.mode == "live":
        raise Forbidden(
            "A test credential can create only test keys",
            details=[{"field": "mode", "message": "Must be 'test' when using a test key"}],
        )
    secret = (LIVE_PREFIX if data.mode == "live" else TEST_PREFIX) + random_token(40)
    key = ApiKey(
        user_id=user.id,
        name=data.name,
        prefix=secret[:SHOWN_PREFIX_LENGTH],
        secret_hash=fast_hash(secret),
        scopes=sorted(scopes),
        livemode=data.mode == "live",
        expires_at=data.expires_at,
    )
    session.add(key)
    await session.flush()
    return key, secret


async def find_by_secret(session: AsyncSession, secret: str) -> tuple[ApiKey, User] | None:
    row = (
        await session.execute(
            select(ApiKey, User)
            .join(User, User.id == ApiKey.user_id)
            .where(ApiKey.secret_hash == fast_hash(secret))
        )
    ).first()
    return (row[0], row[1]) if row else None


async def touch(session: AsyncSession, *, key_id: int) -> None:
    await session.execute(update(ApiKey).where(ApiKey.id == key_id).values(last_used_at=utcnow()))


async def get_key(session: AsyncSession, *, key_id: int, actor: Principal) -> ApiKey:
    """The key, if it is the caller's own (or the caller is an admin); else 404."""
    key = await session.get(ApiKey, key_id)
    if key is None or (key.user_id != actor.user_id and not actor.is_admin):
        raise NotFound(f"No API key with id {key_id}")
    return key


async def revoke_key(session: AsyncSession, *, key: ApiKey) -> None:
    if key.revoked_at is None:
        key.revoked_at = utcnow()
        await session.flush()
    forget_user_after_commit(session, key.user_id)
