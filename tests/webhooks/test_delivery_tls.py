"""HTTPS delivery: the socket goes to the checked address, TLS verifies the URL's host name."""

from __future__ import annotations

import ssl
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from rostra.lib.webhooks.sender import WebhookSender
from tests.webhooks.receiver import Receiver


@pytest.fixture(scope="module")
def localhost_certificate(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """A self-signed certificate for the name ``localhost`` only (no IP address in it)."""
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "localhost")])
    now = datetime.now(UTC)
    certificate = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - timedelta(minutes=5))
        .not_valid_after(now + timedelta(days=1))
        .add_extension(x509.SubjectAlternativeName([x509.DNSName("localhost")]), critical=False)
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    folder = tmp_path_factory.mktemp("tls")
    cert, key_file = folder / "cert.pem", folder / "key.pem"
    cert.write_bytes(certificate.public_bytes(serialization.Encoding.PEM))
    key_file.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    return cert, key_file


def sender_trusting(cert: Path, *, allow_private: bool) -> WebhookSender:
    return WebhookSender(
        timeout=5,
        allow_private=allow_private,
        user_agent="test",
        verify=ssl.create_default_context(cafile=str(cert)),
    )


async def test_https_to_a_name_verifies_the_certificate_of_that_name(
    localhost_certificate: tuple[Path, Path],
) -> None:
    sender = sender_trusting(localhost_certificate[0], allow_private=True)
    try:
        async with Receiver(tls=localhost_certificate) as receiver:
            outcome = await sender.send(
                receiver.url(host="localhost"), message_id="msg_1", body=b"{}", keys=[b"k" * 16]
            )
            assert (outcome.status_code, outcome.error) == (200, None)
            [request] = receiver.requests()
            assert request.headers["host"] == f"localhost:{receiver.port}"

            # The same server by its address: the certificate names no address, so TLS fails.
            by_address = await sender.send(
                receiver.url(host="127.0.0.1"), message_id="msg_2", body=b"{}", keys=[b"k" * 16]
            )
            assert by_address.status_code is None
            assert by_address.error is not None
            assert "certificate" in by_address.error.lower(), by_address.error
            assert len(receiver.requests()) == 1
    finally:
        await sender.aclose()


async def test_https_to_a_refused_address_never_starts_tls(
    localhost_certificate: tuple[Path, Path],
) -> None:
    sender = sender_trusting(localhost_certificate[0], allow_private=False)
    try:
        async with Receiver(tls=localhost_certificate) as receiver:
            for host in ("localhost", "127.0.0.1", "[::ffff:127.0.0.1]"):
                outcome = await sender.send(
                    receiver.url(host=host), message_id="msg_1", body=b"{}", keys=[b"k" * 16]
                )
                assert outcome.error is not None
                assert outcome.error.startswith("refused: "), outcome.error
            assert receiver.requests() == []
    finally:
        await sender.aclose()
