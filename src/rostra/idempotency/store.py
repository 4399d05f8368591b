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
from sqlalchemy import bindparam, delete, select, update
from sqlalchemy.dialects import postgresql, sqlite

from rostra.core.db import Database, utcnow
from rostra.core.writes import Writes
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


_FIND = select(_KEYS).where(_KEYS.c.lookup == bindparam("lookup"))
_TAKE_OVER = (
    update(IdempotencyKey)
    .where(
        _KEYS.c.id == bindparam("record_id"),
        _KEYS.c.response_status.is_(None),
        _KEYS.c.created_at == bindparam("claimed_at"),
    )
    .values(created_at=bindparam("now"))
)
_STORE = (
    update(IdempotencyKey)
    .where(_KEYS.c.id == bindparam("record_id"))
    .values(
        response_status=bindparam("status"),
        response_headers=bindparam("headers"),
        response_body=bindparam("body"),
    )
)
_RELEASE = delete(IdempotencyKey).where(
    _KEYS.c.id == bindparam("record_id"), _KEYS.c.response_status.is_(None)
)
_FORGET_EXPIRED = delete(IdempotencyKey).where(_KEYS.c.created_at < bindparam("expired_before"))


class IdempotencyStore:
    """Statements built once, each run in a transaction of its own outside any session
    (``Database.read`` and ``Database.write``): a claim is a read and a short write, and a
    session's set-up, or even the async engine's, costs several times what they do."""

    def __init__(self, database: Database, secret: str) -> None:
        self._db = database
        self._secret = hashlib.sha256(b"rostra-idempotency:" + secret.encode()).digest()
        dialect = database.engine.dialect.name
        insert = postgresql.insert if dialect == "postgresql" else sqlite.insert
        self._insert_claim_statement = (
            insert(IdempotencyKey)
            .values(
                lookup=bindparam("lookup"),
                fingerprint=bindparam("fingerprint"),
                created_at=bindparam("now"),
            )
            .on_conflict_do_nothing(index_elements=[_KEYS.c.lookup])
            .returning(_KEYS.c.id)
        )
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
            found = await self._db.read(_FIND, {"lookup": ref.lookup}, prepared=True)
            record = found[0] if found else None
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
        if self._swept_at is None or now - self._swept_at >= SWEEP_EVERY:
            # Expired keys are forgotten lazily: here, at most once a SWEEP_EVERY per process
            # (and at once when a new claim meets its key's expired record).
            await self._forget_expired(now)
        written = await self._db.write(
            self._insert_claim_statement,
            {"lookup": ref.lookup, "fingerprint": fingerprint, "now": now},
        )
        return Claim(written.rows[0].id, ref) if written.rows else None

    async def _forget_expired(self, now: datetime) -> None:
        await self._db.write(_FORGET_EXPIRED, {"expired_before": now - KEY_LIFETIME})
        self._swept_at = now

    async def _decide(
        self, record: Any, ref: KeyRef, fingerprint: str, now: datetime
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
        written = await self._db.write(
            _TAKE_OVER, {"record_id": record.id, "claimed_at": record.created_at, "now": now}
        )
        return Claim(record.id, ref) if written.rowcount == 1 else None

    async def store(self, claim: Claim, answer: StoredAnswer) -> None:
        """Keep the answer in a transaction of its own, once the request has made its change."""
        await self._db.write(_STORE, _answer_params(claim, answer))

    async def store_in(self, writes: Writes, claim: Claim, answer: StoredAnswer) -> None:
        """Keep the answer in ``writes``, the transaction making the request's change: both
        commit, or neither."""
        await writes.run(_STORE, _answer_params(claim, answer))

    async def release(self, claim: Claim) -> None:
        """Give the key up unanswered: the request changed nothing, so a retry runs it anew."""
        await self._db.write(_RELEASE, {"record_id": claim.record_id})


def _answer_params(claim: Claim, answer: StoredAnswer) -> dict[str, Any]:
    return {
        "record_id": claim.record_id,
        "status": answer.status,
        "headers": [list(pair) for pair in answer.headers],
        "body": _seal(claim.ref, answer.body),
    }


def _seal(ref: KeyRef, body: bytes) -> bytes:
    nonce = os.urandom(_NONCE_BYTES)
    return nonce + AESGCM(ref.sealing_key).encrypt(nonce, body, ref.lookup.encode())


def _unseal(ref: KeyRef, sealed: bytes) -> bytes:
    nonce, ciphertext = sealed[:_NONCE_BYTES], sealed[_NONCE_BYTES:]
    return AESGCM(ref.sealing_key).decrypt(nonce, ciphertext, ref.lookup.encode())
