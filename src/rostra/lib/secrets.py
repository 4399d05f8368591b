"""Random credentials and the fast hash they are looked up by.

Credentials we generate carry 32 random bytes, so a single SHA-256 is a safe lookup key: there
is nothing to brute-force, and a slow hash per request would only cost throughput.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets

_ALPHABET = b"0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
_USABLE = 4 * len(_ALPHABET)
"""Random bytes below this (248) map evenly onto the alphabet, four values to a character;
the rest are dropped, so every character is equally likely."""
_TO_ALPHABET = bytes(_ALPHABET[value % len(_ALPHABET)] for value in range(256))
_DROPPED = bytes(range(_USABLE, 256))


def random_token(length: int = 43) -> str:
    """Base62 text with ``length * log2(62)`` bits of entropy (43 chars is ~256 bits)."""
    token = b""
    while len(token) < length:
        random = secrets.token_bytes(length + 8)
        token += random.translate(_TO_ALPHABET, _DROPPED)
    return token[:length].decode()


def fast_hash(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


def keyed_hash(key: str, message: str) -> str:
    return hmac.new(key.encode(), message.encode(), hashlib.sha256).hexdigest()


def constant_time_equal(a: str, b: str) -> bool:
    return hmac.compare_digest(a.encode(), b.encode())
