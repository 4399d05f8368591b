"""Standard Webhooks signing: the spec's published vector, and an independent verifier."""

from __future__ import annotations

import base64
import time

import pytest
from standardwebhooks import Webhook, WebhookVerificationError

from rostra.lib.webhooks.signing import (
    InvalidSecret,
    generate_secret,
    secret_key,
    sign,
    signature_header,
    webhook_headers,
)

# The test vector published with the Standard Webhooks reference libraries.
VECTOR_SECRET = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
VECTOR_ID = "msg_p5jXN8AQM9LWM0D4loKWxJek"
VECTOR_TIMESTAMP = 1614265330
VECTOR_BODY = b'{"test": 2432232314}'
VECTOR_SIGNATURE = "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE="


def test_the_published_test_vector() -> None:
    key = secret_key(VECTOR_SECRET)
    signed = sign(key, message_id=VECTOR_ID, timestamp=VECTOR_TIMESTAMP, body=VECTOR_BODY)
    assert signed == VECTOR_SIGNATURE


def test_a_generated_secret_is_whsec_with_a_24_byte_key() -> None:
    secret = generate_secret()
    assert secret.startswith("whsec_")
    assert len(secret_key(secret)) == 24
    assert secret != generate_secret()


def test_a_raw_secret_of_16_characters_is_its_utf8_bytes() -> None:
    assert secret_key("your_webhook_secret") == b"your_webhook_secret"
    assert secret_key("ключ-достаточной-длины") == "ключ-достаточной-длины".encode()


@pytest.mark.parametrize(
    "secret",
    ["short", "fifteen-chars!!", "whsec_not base64!", "whsec_c2hvcnQ=", "whsec_"],
)
def test_unusable_secrets_are_refused(secret: str) -> None:
    with pytest.raises(InvalidSecret):
        secret_key(secret)


def test_unpadded_whsec_base64_is_accepted() -> None:
    key = b"0123456789abcdefghij"  # 20 bytes: its base64 ends in one "="
    encoded = base64.b64encode(key).decode().rstrip("=")
    assert secret_key("whsec_" + encoded) == key


def headers_for(keys: list[bytes], body: bytes) -> dict[str, str]:
    return webhook_headers(
        keys,
        message_id="msg_abc",
        timestamp=int(time.time()),
        body=body,
        user_agent="Rostra-Webhooks/test",
    )


def test_our_headers_verify_with_the_standardwebhooks_package() -> None:
    secret = generate_secret()
    body = b'{"id":"evt_1","event":"ping","data":{}}'
    headers = headers_for([secret_key(secret)], body)
    assert headers["content-type"] == "application/json"
    assert headers["user-agent"] == "Rostra-Webhooks/test"
    assert Webhook(secret).verify(body, headers) == {"id": "evt_1", "event": "ping", "data": {}}


def test_a_raw_key_verifies_when_given_as_bytes() -> None:
    body = b'{"a":1}'
    headers = headers_for([secret_key("your_webhook_secret")], body)
    assert Webhook(b"your_webhook_secret").verify(body, headers) == {"a": 1}
    with pytest.raises(WebhookVerificationError):
        Webhook(b"another_webhook_secret").verify(body, headers)


def test_during_a_rotation_both_secrets_verify() -> None:
    new, old = generate_secret(), generate_secret()
    body = b'{"a":1}'
    headers = headers_for([secret_key(new), secret_key(old)], body)
    signatures = headers["webhook-signature"].split(" ")
    assert len(signatures) == 2
    assert all(s.startswith("v1,") for s in signatures)
    Webhook(new).verify(body, headers)
    Webhook(old).verify(body, headers)
    with pytest.raises(WebhookVerificationError):
        Webhook(generate_secret()).verify(body, headers)


def test_a_changed_body_or_id_does_not_verify() -> None:
    secret = generate_secret()
    headers = headers_for([secret_key(secret)], b'{"a":1}')
    with pytest.raises(WebhookVerificationError):
        Webhook(secret).verify(b'{"a":2}', headers)
    with pytest.raises(WebhookVerificationError):
        Webhook(secret).verify(b'{"a":1}', {**headers, "webhook-id": "msg_other"})


def test_signing_needs_a_key() -> None:
    with pytest.raises(ValueError):
        signature_header([], message_id="m", timestamp=1, body=b"")
