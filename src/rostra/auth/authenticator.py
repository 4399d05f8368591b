"""Bearer credential -> principal, with verified credentials cached in memory.

The hot path (an API key or access token seen in the last few seconds) costs one hash and one
dictionary lookup. A miss reads the key or session and its user in one query. Revoking a key,
ending a session or changing a user drops that user's entries when the change commits.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import select

from rostra.api_keys import service as api_keys
from rostra.auth.models import AuthSession
from rostra.auth.tokens import InvalidToken, decode_access_token
from rostra.core.config import Settings
from rostra.core.db import Database
from rostra.core.errors import AuthenticationRequired
from rostra.core.security import Principal
from rostra.lib.secrets import fast_hash
from rostra.users.models import User


@dataclass(slots=True)
class CachedCredential:
    principal: Principal
    expires_at: float | None
    last_used_written: float


def _epoch(moment: datetime | None) -> float | None:
    return moment.timestamp() if moment is not None else None


class CredentialAuthenticator:
    def __init__(self, db: Database, settings: Settings) -> None:
        self.db = db
        self.settings = settings
        self.cache = db.caches.credentials

    async def authenticate(self, credential: str) -> Principal:
        if api_keys.is_api_key(credential):
            return await self._api_key(credential)
        if credential.count(".") == 2:
            return await self._access_token(credential)
        raise AuthenticationRequired("This credential is not valid")

    async def _api_key(self, secret: str) -> Principal:
        cache_key = "key:" + fast_hash(secret)
        entry: CachedCredential = await self.cache.get_or_load(
            cache_key, lambda: self._load_api_key(secret)
        )
        now = time.time()
        if entry.expires_at is not None and entry.expires_at <= now:
            self.cache.forget(cache_key)
            raise AuthenticationRequired("This API key has expired")
        resolution = self.settings.api_key_last_used_resolution_seconds
        if time.monotonic() - entry.last_used_written >= resolution:
            entry.last_used_written = time.monotonic()
            async with self.db.session_scope() as session:
                await api_keys.touch(session, key_id=int(entry.principal.credential_id))
        return entry.principal

    async def _load_api_key(self, secret: str) -> tuple[CachedCredential, int]:
        async with self.db.session_scope() as session:
            found = await api_keys.find_by_secret(session, secret)
        if found is None:
            raise AuthenticationRequired("This API key is not valid")
        key, user = found
        if key.revoked_at is not None:
            raise AuthenticationRequired("This API key has been revoked")
        last_used = _epoch(key.last_used_at)
        entry = CachedCredential(
            principal=self._principal(
                user, "api_key", str(key.id), frozenset(key.scopes), key.livemode
            ),
            expires_at=_epoch(key.expires_at),
            # monotonic time at which last_used_at was last written, as far as we know
            last_used_written=(
                time.monotonic() - (time.time() - last_used) if last_used is not None else -1e18
            ),
        )
        return entry, user.id

    async def _access_token(self, token: str) -> Principal:
        try:
            claims = decode_access_token(self.settings.signing_key(), token)
        except InvalidToken:
            raise AuthenticationRequired("This access token is not valid or has expired") from None
        cache_key = f"session:{claims.session_id}"
        entry: CachedCredential = await self.cache.get_or_load(
            cache_key, lambda: self._load_session(claims.session_id, claims.user_id)
        )
        return entry.principal

    async def _load_session(self, session_id: int, user_id: int) -> tuple[CachedCredential, int]:
        async with self.db.session_scope() as session:
            row = (
                await session.execute(
                    select(AuthSession, User)
                    .join(User, User.id == AuthSession.user_id)
                    .where(AuthSession.id == session_id)
                )
            ).first()
        if row is None or row[0].revoked_at is not None or row[1].id != user_id:
            raise AuthenticationRequired("This session has ended; sign in again")
        auth_session, user = row[0], row[1]
        entry = CachedCredential(
            principal=self._principal(user, "session", str(auth_session.id), None, True),
            expires_at=None,
            last_used_written=time.monotonic(),
        )
        return entry, user.id

    @staticmethod
    def _principal(
        user: User, kind: str, credential_id: str, scopes: frozenset[str] | None, livemode: bool
    ) -> Principal:
        return Principal(
            user_id=user.id,
            username=user.username,
            role=user.role,
            plan=user.plan,
            credential=kind,  # type: ignore[arg-type]
            credential_id=credential_id,
            scopes=scopes,
            livemode=livemode,
        )
