"""Random credentials and the fast hash they are looked up by.

Credentials we generate carry 32 random bytes, so a single SHA-256 is a safe lookup key: there
is nothing to brute-force, and a slow hash per request would only cost throughput.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets

_ALPHABET = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"


def random_token(length: int = 43) -> str:
    """Base62 text with ``length * log2(62)`` bits of entropy (43 chars is ~256 bits)."""
    return "".join(secrets.choice(_ALPHABET) for _ in range(length))


def fast_hash(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


def keyed_hash(key: str, message: str) -> str:
    return hmac.new(key.encode(), message.encode(), hashlib.sha256).hexdigest()


def constant_time_equal(a: str, b: str) -> bool:
    return hmac.compare_digest(a.encode(), b.encode())
