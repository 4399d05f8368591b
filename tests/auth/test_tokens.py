"""Access tokens are HS256 JWTs checked against a fixed algorithm list: every forgery is a 401."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import time
from collections.abc import Callable
from typing import Any

import httpx
import jwt
import pytest
from fastapi import FastAPI

from rostra.auth.tokens import encode_access_token
from rostra.core.config import Settings
from rostra.users import service as users
from tests.auth.helpers import assert_unauthenticated, bearer, login, session_id_of, whoami
from tests.factories import make_user

# What a server using RS256 would publish; the classic swap signs HS256 with it as the secret.
PUBLIC_KEY_PEM = """-----BEGIN PUBLIC KEY-----
MIIBIjANBgkqhkiG9w0BAQEFAAOCAQ8AMIIBCgKCAQEAu1SU1LfVLPHCozMxH2Mo
4lgOEePzNm0tRgeLezV6ffAt0gunVTLw7onLRnrq0/IzW7yWR7QkrmBL7jTKEn5u
+qKhbwKfBstIs+bMY2Zkp18gnTxKLxoS2tFczGkPLPgizskuemMghRniWaoLcyeh
kd3qqGElvW/VDL5AaWTg0nLVkjRo9z+40RQzuVaE8AkAFmxZzow3x+VJYKdjykkJ
0iT9wCS0DRTXu269V264Vf/3jvredZiKRkgwlL9xNAwxXFg0x/XFw005UWVRIkdg
cKWTjpBP2dPwVZ4WWC+9aGVd+Gyn1o0CLelf4rEjGoXbAAEgAqeGUxrcIlbjXfbc
mwIDAQAB
-----END PUBLIC KEY-----
"""


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _assemble(
    header: dict[str, Any], claims: dict[str, Any], sign: Callable[[bytes], bytes]
) -> str:
    signing_input = _b64(json.dumps(header).encode()) + "." + _b64(json.dumps(claims).encode())
    return signing_input + "." + _b64(sign(signing_input.encode()))


def _hmac_sha256(key: str) -> Callable[[bytes], bytes]:
    return lambda message: hmac.new(key.encode(), message, hashlib.sha256).digest()


def _claims(user_id: int, session_id: int, **changes: Any) -> dict[str, Any]:
    now = int(time.time())
    claims: dict[str, Any] = {
        "iss": "rostra",
        "typ": "access",
        "sub": str(user_id),
        "sid": session_id,
        "iat": now,
        "exp": now + 600,
        "jti": "forged",
    }
    claims.update(changes)
    return {k: v for k, v in claims.items() if v is not None}


def _forgeries(key: str, user_id: int, session_id: int) -> dict[str, str]:
    claims = _claims(user_id, session_id)
    hs256 = {"alg": "HS256", "typ": "JWT"}
    return {
        "alg-none": _assemble({"alg": "none", "typ": "JWT"}, claims, lambda _: b""),
        "alg-None": _assemble({"alg": "None", "typ": "JWT"}, claims, lambda _: b""),
        "hs256-other-key": jwt.encode(claims, "another-key-" + "x" * 40, algorithm="HS256"),
        "rs256-header": _assemble({"alg": "RS256", "typ": "JWT"}, claims, lambda _: b"\x01" * 256),
        "hs256-signed-with-public-key": _assemble(hs256, claims, _hmac_sha256(PUBLIC_KEY_PEM)),
        "hs512-right-key": jwt.encode(claims, key, algorithm="HS512"),
        "expired": encode_access_token(
            key,
            user_id=user_id,
            session_id=session_id,
            issued_at=int(time.time()) - 3600,
            ttl_seconds=900,
            token_id="old",
        ),
        "refresh-typ": jwt.encode(_claims(user_id, session_id, typ="refresh"), key),
        "other-issuer": jwt.encode(_claims(user_id, session_id, iss="someone-else"), key),
        "no-session-claim": jwt.encode(_claims(user_id, session_id, sid=None), key),
        "no-expiry": jwt.encode(_claims(user_id, session_id, exp=None), key),
        "non-numeric-subject": jwt.encode(_claims(user_id, session_id, sub="admin"), key),
        "subject-of-another-user": jwt.encode(_claims(user_id + 1000, session_id), key),
        "unknown-session": jwt.encode(_claims(user_id, session_id + 1000), key),
        "three-dots-garbage": "not.a.jwt",
    }


FORGERY_NAMES = list(_forgeries("names-only-" * 8, 1, 1))


@pytest.mark.filterwarnings("ignore::jwt.warnings.InsecureKeyLengthWarning")  # HS512, 46-byte key
@pytest.mark.parametrize("forgery", FORGERY_NAMES)
async def test_forged_or_broken_access_tokens_are_401(
    app: FastAPI, client: httpx.AsyncClient, settings: Settings, forgery: str
) -> None:
    user = await make_user(app)
    pair = await login(client, user)
    key = settings.signing_key()
    session_id = session_id_of(key, pair["access_token"])
    token = _forgeries(key, user.id, session_id)[forgery]

    for prefix in ("/api/v1", "/v1"):
        assert_unauthenticated(await client.get(f"{prefix}/user", headers=bearer(token)))


async def test_a_token_made_the_same_way_with_the_real_key_works(
    app: FastAPI, client: httpx.AsyncClient, settings: Settings
) -> None:
    """The control for the forgeries above: they fail for what they change, not by accident."""
    user = await make_user(app)
    pair = await login(client, user)
    key = settings.signing_key()
    session_id = session_id_of(key, pair["access_token"])
    hs256 = {"alg": "HS256", "typ": "JWT"}
    token = _assemble(hs256, _claims(user.id, session_id), _hmac_sha256(key))
    assert await whoami(client, token) == 200


async def test_a_tampered_payload_is_401(
    app: FastAPI, client: httpx.AsyncClient, settings: Settings
) -> None:
    user = await make_user(app)
    victim = await make_user(app)
    pair = await login(client, user)
    header, payload, signature = pair["access_token"].split(".")
    claims = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
    claims["sub"] = str(victim.id)
    tampered = f"{header}.{_b64(json.dumps(claims).encode())}.{signature}"
    assert_unauthenticated(await client.get("/api/v1/user", headers=bearer(tampered)))
    # A flipped signature byte is refused as well.
    flipped = signature[:-2] + ("A" if signature[-2] != "A" else "B") + signature[-1]
    broken = f"{header}.{payload}.{flipped}"
    assert_unauthenticated(await client.get("/api/v1/user", headers=bearer(broken)))
    assert await whoami(client, pair["access_token"]) == 200


async def test_a_refresh_token_is_not_an_access_token(
    app: FastAPI, client: httpx.AsyncClient
) -> None:
    user = await make_user(app)
    pair = await login(client, user)
    assert_unauthenticated(await client.get("/api/v1/user", headers=bearer(pair["refresh_token"])))
    # Nor is an access token a refresh token.
    response = await client.post(
        "/api/v1/auth/refresh", json={"refresh_token": pair["access_token"][:200]}
    )
    assert_unauthenticated(response)


async def test_a_token_of_a_deleted_user_is_401(app: FastAPI, client: httpx.AsyncClient) -> None:
    user = await make_user(app)
    pair = await login(client, user)
    assert await whoami(client, pair["access_token"]) == 200  # now cached as verified
    async with app.state.db.session_scope() as session:
        await users.delete_user(session, user=await users.get_user(session, user.id))

    assert_unauthenticated(await client.get("/api/v1/user", headers=bearer(pair["access_token"])))
    assert_unauthenticated(
        await client.post("/api/v1/auth/refresh", json={"refresh_token": pair["refresh_token"]})
    )


@pytest.mark.parametrize(
    "authorization",
    ["Bearer", "Bearer ", "Basic dXNlcjpwYXNz", "Token abc.def.ghi"],
    ids=["empty", "blank", "basic", "other-scheme"],
)
async def test_malformed_authorization_headers_are_401(
    client: httpx.AsyncClient, authorization: str
) -> None:
    response = await client.get("/api/v1/user", headers={"Authorization": authorization})
    assert_unauthenticated(response)
