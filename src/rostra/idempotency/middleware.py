"""The Idempotency-Key layer: one pure-ASGI middleware in front of every route.

A middleware rather than a dependency, because a dependency never sees the answer a route gives,
and the answer is what must be kept. Keys are per account, so the layer needs the caller: it
resolves the principal with the same function the routes' dependency uses, which leaves it in
``request.state``, where the route finds it again (one authentication per request).

Choices (docs/api.md, "Idempotency"):
- Only POST and PATCH look at the header; any other method passes straight through, as does a
  request without the header (a GET pays one comparison).
- Keys are per account: the user, live or sandbox, whichever of their credentials is used.
  Anonymous requests (sign-up, sign-in, token refresh) are not deduplicated and their header is
  ignored: they have no account to keep keys for, an IP address is shared by strangers behind
  NAT, and each of them is already safe to retry (a second sign-up is a 409, a second sign-in
  another session).
- The same key with the same method, path, query and JSON body (compared as JSON, so key order
  and spacing do not matter) within 24 hours answers the stored status, body and the headers
  that describe them, with ``Idempotent-Replayed: true``. Anything else under the same key is a
  422; while the first request runs, a 409.
- What is kept: every answer below 500, except those a plain retry may change without the
  request changing: 401, 408, 412 (the retry carries a fresh If-Match), 425 and 429. A 5xx, or
  a crash, releases the key instead, so the retry runs again; unlike Stripe, which keeps 500s,
  nothing here is half done after a 5xx, because the request's transaction rolled back.
- Where the answer is kept: in the transaction that makes the request's change, so that a
  process dying between two commits cannot leave the change made and the key unanswered (its
  retry would make the change again). A route whose writes go through the request session and
  whose answer is a ``resource_response`` needs nothing for it: the session's last statement
  keeps that answer (``core.deps.REQUEST_COMMIT_HOOK``). A route writing in a transaction of its
  own calls ``keep_answer`` last in it (``POST /projects``). Any other answer is kept in a
  transaction of its own once the route has answered, just after the change's.
"""

from __future__ import annotations

import hashlib
from collections.abc import Awaitable, Callable
from typing import Any

import orjson
import structlog
from sqlalchemy.exc import SQLAlchemyError
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.requests import Request
from starlette.responses import Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from rostra.core.deps import REQUEST_COMMIT_HOOK, get_optional_principal
from rostra.core.errors import Invalid, PayloadTooLarge, RostraError, error_response
from rostra.core.http import ROUTE_ANSWER
from rostra.core.security import Principal
from rostra.core.writes import Writes
from rostra.idempotency.store import Claim, IdempotencyStore, StoredAnswer

IDEMPOTENT_METHODS = frozenset({"POST", "PATCH"})
MAX_KEY_LENGTH = 255
KEPT_HEADERS = frozenset({"content-type", "location", "etag", "link", "cache-control"})
"""The headers that describe an answer, kept and replayed with it (not per-request ones such as
X-Request-ID or rate-limit counters)."""
RETRYABLE_STATUSES = frozenset({401, 408, 412, 425, 429})
_HELD_CLAIM = "idempotency_claim"
"""Key in ``scope["state"]`` of the request's (store, claim) while its route runs."""
_ANSWER_KEPT = "idempotency_answer_kept"
"""Key in ``scope["state"]`` of the answer the route kept in its own transaction."""

log = structlog.get_logger(__name__)


Admission = Callable[[Request], Awaitable[None]]
"""What the routes' own dependencies would have checked before answering (the rate-limit count,
which adds its headers); it raises a ``RostraError`` (a 429) to answer instead."""


class IdempotencyMiddleware:
    def __init__(self, app: ASGIApp, store: IdempotencyStore, admit: Admission) -> None:
        self.app = app
        self.store = store
        self.admit = admit

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["method"] not in IDEMPOTENT_METHODS:
            await self.app(scope, receive, send)
            return
        raw_key = _idempotency_key_header(scope)
        if raw_key is None:
            await self.app(scope, receive, send)
            return
        request = Request(scope, receive)
        principal = await _caller(request)
        if principal is None:
            await self.app(scope, receive, send)
            return
        try:
            key = _valid_key(raw_key)
            body = await _read_body(receive)
            if body is None:
                return  # the client went away before sending its body
            ref = self.store.key_ref(account=_account(principal), key=key)
            outcome = await self.store.claim(ref, fingerprint=_fingerprint(scope, body))
        except RostraError as error:
            await self._answer_here(request, send, error)
            return
        if isinstance(outcome, StoredAnswer):
            await self._answer_here(request, send, outcome)
            return
        await self._run_once(outcome, scope, _receive_again(body, receive), send)

    async def _answer_here(
        self, request: Request, send: Send, answer: StoredAnswer | RostraError
    ) -> None:
        """Answer without the route (a replay or a refusal), counted as the route would be."""
        try:
            await self.admit(request)
        except RostraError as refusal:
            answer = refusal
        if isinstance(answer, RostraError):
            await error_response(request, answer)(request.scope, request.receive, send)
        else:
            await _replay(send, answer)

    async def _run_once(self, claim: Claim, scope: Scope, receive: Receive, send: Send) -> None:
        """Run the request holding the claim; keep its answer before the client sees it, so a
        retry that follows the answer always finds it."""
        status: int | None = None
        raw_headers: list[tuple[bytes, bytes]] = []
        chunks: list[bytes] = []

        async def capture(message: Message) -> None:
            nonlocal status, raw_headers
            if message["type"] == "http.response.start":
                status = message["status"]
                raw_headers = list(message.get("headers", ()))
            elif message["type"] == "http.response.body":
                chunks.append(message.get("body", b""))

        state = scope.setdefault("state", {})
        state[_HELD_CLAIM] = (self.store, claim)

        async def keep_route_answer(writes: Writes) -> None:
            answer = state.get(ROUTE_ANSWER)
            if isinstance(answer, Response):
                await _keep(writes, state, answer)

        state[REQUEST_COMMIT_HOOK] = keep_route_answer
        try:
            await self.app(scope, receive, capture)
        except Exception:
            await self.store.release(claim)
            raise
        if status is None:
            await self.store.release(claim)
            return
        body = b"".join(chunks)
        if not _keepable(status):
            # An answer the route kept in a transaction that committed stays: release deletes
            # only a claim without one.
            await self.store.release(claim)
        elif not _same_answer(state.get(_ANSWER_KEPT), status, body):
            # Kept nowhere yet (or, from a route that answered otherwise than it kept, kept
            # wrong): the answer the client gets is the one kept.
            answer = StoredAnswer(status, _kept_headers(raw_headers), body)
            try:
                await self.store.store(claim, answer)
            except (SQLAlchemyError, OSError):
                # The change is made and committed; the client gets its answer. The claim stays
                # unanswered, so retries are told "in use" until it counts as abandoned.
                log.exception("idempotency_answer_not_stored", status=status)
        await send({"type": "http.response.start", "status": status, "headers": raw_headers})
        await send({"type": "http.response.body", "body": body})


async def keep_answer(writes: Writes, request: Request, response: Response) -> None:
    """Keep ``response`` as the answer to the request's Idempotency-Key in ``writes``, the
    transaction that makes the request's change: both commit, or neither. Nothing when the
    request holds no key, or when the answer is not one that is kept.

    For a route that writes in a transaction of its own (``Database.transaction``); the request
    session's transaction keeps a ``resource_response`` by itself. Call it last in the
    transaction, with the response the route then returns (another answer given instead is
    kept in its place afterwards). A transaction that fails to commit must end the request in
    an error (a 5xx), which releases the key as usual."""
    await _keep(writes, request.scope.get("state", {}), response)


async def _keep(writes: Writes, state: dict[str, Any], response: Response) -> None:
    held: tuple[IdempotencyStore, Claim] | None = state.get(_HELD_CLAIM)
    if held is None or not _keepable(response.status_code):
        return
    store, claim = held
    answer = StoredAnswer(
        response.status_code, _kept_headers(response.raw_headers), bytes(response.body)
    )
    await store.store_in(writes, claim, answer)
    state[_ANSWER_KEPT] = answer


def _keepable(status: int) -> bool:
    return status < 500 and status not in RETRYABLE_STATUSES


def _same_answer(kept: StoredAnswer | None, status: int, body: bytes) -> bool:
    return kept is not None and kept.status == status and kept.body == body


async def _read_body(receive: Receive) -> bytes | None:
    """The whole body (the framework's size limit counts it as it comes), or None when the
    client went away first."""
    chunks: list[bytes] = []
    while True:
        try:
            message = await receive()
        except StarletteHTTPException as exc:
            if exc.status_code == PayloadTooLarge.status_code:
                raise PayloadTooLarge() from None
            raise
        if message["type"] == "http.disconnect":
            return None
        chunks.append(message.get("body", b""))
        if not message.get("more_body", False):
            return b"".join(chunks)


async def _caller(request: Request) -> Principal | None:
    try:
        return await get_optional_principal(request)
    except RostraError:
        return None  # a bad credential: the route refuses it with its usual answer


def _idempotency_key_header(scope: Scope) -> str | None:
    for name, value in scope["headers"]:
        if name == b"idempotency-key":
            return str(value.decode("latin-1"))
    return None


def _valid_key(raw: str) -> str:
    key = raw.strip()
    if not 1 <= len(key) <= MAX_KEY_LENGTH or not key.isascii() or not key.isprintable():
        raise Invalid.field(
            "Idempotency-Key", f"Must be 1 to {MAX_KEY_LENGTH} printable ASCII characters"
        )
    return key


def _account(principal: Principal) -> str:
    return f"{principal.user_id}:{'live' if principal.livemode else 'test'}"


def _fingerprint(scope: Scope, body: bytes) -> str:
    """What makes two requests "the same": method, path, query and body (as JSON when it is)."""
    digest = hashlib.sha256()
    method, path = scope["method"].encode(), scope["path"].encode()
    for part in (method, path, scope["query_string"], _canonical_body(body)):
        digest.update(len(part).to_bytes(8, "big"))
        digest.update(part)
    return digest.hexdigest()


def _canonical_body(body: bytes) -> bytes:
    if not body:
        return body
    try:
        return orjson.dumps(orjson.loads(body), option=orjson.OPT_SORT_KEYS)
    except orjson.JSONDecodeError:
        return body


def _receive_again(body: bytes, receive: Receive) -> Receive:
    """A ``receive`` that hands the already-read body to the app, then the client's events."""
    delivered = False

    async def replay() -> Message:
        nonlocal delivered
        if delivered:
            return await receive()
        delivered = True
        return {"type": "http.request", "body": body, "more_body": False}

    return replay


def _kept_headers(raw_headers: list[tuple[bytes, bytes]]) -> list[tuple[str, str]]:
    return [
        (name.decode("latin-1"), value.decode("latin-1"))
        for name, value in raw_headers
        if name.decode("latin-1").lower() in KEPT_HEADERS
    ]


async def _replay(send: Send, answer: StoredAnswer) -> None:
    headers = [(name.encode("latin-1"), value.encode("latin-1")) for name, value in answer.headers]
    headers.append((b"content-length", str(len(answer.body)).encode()))
    headers.append((b"idempotent-replayed", b"true"))
    await send({"type": "http.response.start", "status": answer.status, "headers": headers})
    await send({"type": "http.response.body", "body": answer.body})
