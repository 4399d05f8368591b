"""Idempotency records in the database: claim a key, keep the answer, find it again.

Records are shared by every process on the database. A key is claimed with an insert that
does nothing on a clash (one winner however many requests race), and the claim is committed at
once, so a concurrent request with the same key sees it and is told the key is in use.

Neither the client's key nor the answer is stored as such: a record is found by an HMAC of the
account and the key under the server secret, and the answer body is sealed (AES-256-GCM) with a
second key derived the same way. Some answers carry a secret shown once (a new API key's), which
the contract keeps only as a hash; with this, a copy of the database alone yields no such secret.
"""

from __future__ import annotations

import hashlib
import hmac
import os
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from sqlalchemy import Delete, Row, delete, select, update
from sqlalchemy.dialects import postgresql, sqlite

from rostra.core.db import Database, utcnow
from rostra.idempotency.errors import IdempotencyKeyInUse, IdempotencyKeyReused
from rostra.idempotency.models import IdempotencyKey

KEY_LIFETIME = timedelta(hours=24)
"""A key answers with its stored result this long after its first use; then it is forgotten."""
ABANDONED_AFTER = timedelta(minutes=5)
"""A claim with no answer this old belongs to a process that died mid-request: it may be taken."""
SWEEP_EVERY = timedelta(minutes=1)
"""How often a process deletes the expired records of other keys (lookups ignore them anyway)."""
_KEYS = IdempotencyKey.__table__
_NONCE_BYTES = 12
_CLAIM_ATTEMPTS = 3


@dataclass(frozen=True, slots=True)
class KeyRef:
    """A client's key as this account's: where its record is, and what seals its answer."""

    lookup: str
    sealing_key: bytes


@dataclass(frozen=True, slots=True)
class StoredAnswer:
    status: int
    headers: list[tuple[str, str]]
    body: bytes


@dataclass(frozen=True, slots=True)
class Claim:
    """This request owns the key until it stores its answer or releases the claim."""

    record_id: int
    ref: KeyRef


class IdempotencyStore:
    """Core statements, each transaction on a connection of its own outside any ORM session: a
    claim is a few short statements, and a Session's set-up costs more than they do."""

    def __init__(self, database: Database, secret: str) -> None:
        self._db = database
        self._secret = hashlib.sha256(b"rostra-idempotency:" + secret.encode()).digest()
        dialect = database.engine.dialect.name
        self._insert = postgresql.insert if dialect == "postgresql" else sqlite.insert
        self._swept_at: datetime | None = None

    def key_ref(self, *, account: str, key: str) -> KeyRef:
        def derive(purpose: bytes) -> bytes:
            message = b"\0".join((purpose, account.encode(), key.encode()))
            return hmac.new(self._secret, message, hashlib.sha256).digest()

        return KeyRef(lookup=derive(b"lookup").hex(), sealing_key=derive(b"seal"))

    async def claim(self, ref: KeyRef, *, fingerprint: str) -> Claim | StoredAnswer:
        """Claim the key for this request, or give the answer already stored for it.

        Raises ``IdempotencyKeyReused`` when the key was used for another request and
        ``IdempotencyKeyInUse`` while the request that claimed it is still running.

        A key already known is decided by a read alone, so a request that only learns the key
        is in use never waits for a write (SQLite lets one transaction write at a time, and the
        request holding the key may be that one). Reading and writing happen in separate
        transactions for the same reason: SQLite cannot turn a reader into a writer once
        another writer has committed.
        """
        for _ in range(_CLAIM_ATTEMPTS):
            now = utcnow()
            async with self._db.engine.begin() as connection:
                found = await connection.execute(select(_KEYS).where(_KEYS.c.lookup == ref.lookup))
                record = found.first()
            outcome: Claim | StoredAnswer | None
            if record is None:
                outcome = await self._insert_claim(ref, fingerprint, now)
            elif record.created_at < now - KEY_LIFETIME:
                await self._forget_expired(now)  # this key's record, and every other expired one
                outcome = await self._insert_claim(ref, fingerprint, now)
            else:
                outcome = await self._decide(record, ref, fingerprint, now)
            if outcome is not None:
                return outcome
            # Another request claimed, released or took over the key meanwhile: look again.
        raise IdempotencyKeyInUse()

    async def _insert_claim(self, ref: KeyRef, fingerprint: str, now: datetime) -> Claim | None:
        async with self._db.engine.begin() as connection:
            if self._swept_at is None or now - self._swept_at >= SWEEP_EVERY:
                # Expired keys are forgotten lazily: here, at most once a SWEEP_EVERY per process
                # (and at once when a new claim meets its key's expired record).
                self._swept_at = now
                await connection.execute(_expired(now))
            record_id = await connection.scalar(
                self._insert(IdempotencyKey)
                .values(lookup=ref.lookup, fingerprint=fingerprint, created_at=now)
                .on_conflict_do_nothing(index_elements=[IdempotencyKey.lookup])
                .returning(IdempotencyKey.id)
            )
        return None if record_id is None else Claim(record_id, ref)

    async def _forget_expired(self, now: datetime) -> None:
        async with self._db.engine.begin() as connection:
            await connection.execute(_expired(now))
        self._swept_at = now

    async def _decide(
        self, record: Row[Any], ref: KeyRef, fingerprint: str, now: datetime
    ) -> Claim | StoredAnswer | None:
        if not hmac.compare_digest(record.fingerprint, fingerprint):
            raise IdempotencyKeyReused()
        if record.response_status is not None:
            assert record.response_body is not None
            return StoredAnswer(
                status=record.response_status,
                headers=[(name, value) for name, value in record.response_headers or ()],
                body=_unseal(ref, record.response_body),
            )
        if record.created_at >= now - ABANDONED_AFTER:
            raise IdempotencyKeyInUse()
        async with self._db.engine.begin() as connection:
            result = await connection.execute(
                update(IdempotencyKey)
                .where(
                    IdempotencyKey.id == record.id,
                    IdempotencyKey.response_status.is_(None),
                    IdempotencyKey.created_at == record.created_at,
                )
                .values(created_at=now)
            )
        return Claim(record.id, ref) if getattr(result, "rowcount", 0) == 1 else None

    async def store(self, claim: Claim, answer: StoredAnswer) -> None:
        async with self._db.engine.begin() as connection:
            await connection.execute(
                update(IdempotencyKey)
                .where(IdempotencyKey.id == claim.record_id)
                .values(
                    response_status=answer.status,
                    response_headers=[list(pair) for pair in answer.headers],
                    response_body=_seal(claim.ref, answer.body),
                )
            )

    async def release(self, claim: Claim) -> None:
        """Give the key up unanswered: the request changed nothing, so a retry runs it anew."""
        async with self._db.engine.begin() as connection:
            await connection.execute(
                delete(IdempotencyKey).where(
                    IdempotencyKey.id == claim.record_id,
                    IdempotencyKey.response_status.is_(None),
                )
            )


def _expired(now: datetime) -> Delete:
    return delete(IdempotencyKey).where(IdempotencyKey.created_at < now - KEY_LIFETIME)


def _seal(ref: KeyRef, body: bytes) -> bytes:
    nonce = os.urandom(_NONCE_BYTES)
    return nonce + AESGCM(ref.sealing_key).encrypt(nonce, body, ref.lookup.encode())


def _unseal(ref: KeyRef, sealed: bytes) -> bytes:
    nonce, ciphertext = sealed[:_NONCE_BYTES], sealed[_NONCE_BYTES:]
    return AESGCM(ref.sealing_key).decrypt(nonce, ciphertext, ref.lookup.encode())
