"""Access tokens: short-lived HS256 JWTs, decoded with a fixed algorithm list.

Only HS256 is accepted, so ``alg: none`` and algorithm swaps (an RS256 public key used as an
HMAC secret) fail before any claim is read.
"""

from __future__ import annotations

from dataclasses import dataclass

import jwt

ALGORITHM = "HS256"
ISSUER = "rostra"
ACCESS = "access"


@dataclass(frozen=True, slots=True)
class AccessClaims:
    user_id: int
    session_id: int
    issued_at: int
    expires_at: int


class InvalidToken(Exception):
    pass


def encode_access_token(
    key: str, *, user_id: int, session_id: int, issued_at: int, ttl_seconds: int, token_id: str
) -> str:
    claims = {
        "iss": ISSUER,
        "typ": ACCESS,
        "sub": str(user_id),
        "sid": session_id,
        "iat": issued_at,
        "exp": issued_at + ttl_seconds,
        "jti": token_id,
    }
    return jwt.encode(claims, key, algorithm=ALGORITHM)


def decode_access_token(key: str, token: str) -> AccessClaims:
    try:
        claims = jwt.decode(
            token,
            key,
            algorithms=[ALGORITHM],
            issuer=ISSUER,
            options={"require": ["exp", "iat", "sub", "sid", "typ", "iss"]},
        )
        if claims["typ"] != ACCESS:
            raise InvalidToken("not an access token")
        return AccessClaims(
            user_id=int(claims["sub"]),
            session_id=int(claims["sid"]),
            issued_at=int(claims["iat"]),
            expires_at=int(claims["exp"]),
        )
    except (jwt.PyJWTError, ValueError, TypeError, KeyError) as exc:
        raise InvalidToken(str(exc)) from exc
