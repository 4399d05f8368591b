"""Standard Webhooks signatures (https://www.standardwebhooks.com/).

A message is signed as ``v1,<base64 HMAC-SHA256(key, "{id}.{timestamp}.{body}")>``. The key
of a ``whsec_<base64>`` secret is the decoded bytes; a secret a client chose in any other form
is accepted when it has at least 16 characters, and its UTF-8 bytes are the key (as GitHub
does). While a secret is being rotated, both keys sign and the header carries both
signatures, space-separated, the new one first: receivers accept any one that verifies.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import secrets
from collections.abc import Sequence

SECRET_PREFIX = "whsec_"
GENERATED_KEY_BYTES = 24
MIN_SECRET_LENGTH = 16
"""At least this many characters for a client's own secret, and bytes for a whsec_ key."""


class InvalidSecret(ValueError):
    """A secret that cannot sign; the message says why, for the ``secret`` field."""


def generate_secret() -> str:
    """A new ``whsec_`` secret with a random 24-byte key."""
    key = secrets.token_bytes(GENERATED_KEY_BYTES)
    return SECRET_PREFIX + base64.b64encode(key).decode("ascii")


def secret_key(secret: str) -> bytes:
    """The HMAC key of a secret; ``InvalidSecret`` when it is too short or malformed."""
    if secret.startswith(SECRET_PREFIX):
        encoded = secret.removeprefix(SECRET_PREFIX)
        try:
            # Padding is optional, as the reference libraries accept it both ways.
            key = base64.b64decode(encoded + "=" * (-len(encoded) % 4), validate=True)
        except (binascii.Error, ValueError):
            raise InvalidSecret("A whsec_ secret must be base64 after the prefix") from None
        if len(key) < MIN_SECRET_LENGTH:
            raise InvalidSecret(
                f"A whsec_ secret must encode at least {MIN_SECRET_LENGTH} bytes of key"
            )
        return key
    if len(secret) < MIN_SECRET_LENGTH:
        raise InvalidSecret(f"The secret must be at least {MIN_SECRET_LENGTH} characters")
    return secret.encode("utf-8")


def sign(key: bytes, *, message_id: str, timestamp: int, body: bytes) -> str:
    """One ``v1,<base64>`` signature of the message."""
    signed = b"%s.%d.%s" % (message_id.encode("utf-8"), timestamp, body)
    digest = hmac.new(key, signed, hashlib.sha256).digest()
    return "v1," + base64.b64encode(digest).decode("ascii")


def signature_header(keys: Sequence[bytes], *, message_id: str, timestamp: int, body: bytes) -> str:
    """The ``webhook-signature`` value: one signature per key, in the order given."""
    if not keys:
        raise ValueError("at least one key is needed to sign")
    return " ".join(
        sign(key, message_id=message_id, timestamp=timestamp, body=body) for key in keys
    )


def webhook_headers(
    keys: Sequence[bytes], *, message_id: str, timestamp: int, body: bytes, user_agent: str
) -> dict[str, str]:
    """Every header a delivery carries."""
    return {
        "content-type": "application/json",
        "user-agent": user_agent,
        "webhook-id": message_id,
        "webhook-timestamp": str(timestamp),
        "webhook-signature": signature_header(
            keys, message_id=message_id, timestamp=timestamp, body=body
        ),
    }
