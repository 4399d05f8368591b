"""The sender alone, against a real loopback receiver: outcomes, limits, the guard."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from rostra.lib.webhooks.sender import MAX_RESPONSE_BYTES, WebhookSender
from tests.webhooks.receiver import Receiver, Reply

KEY = [b"0123456789abcdef"]


@pytest.fixture
async def sender() -> AsyncIterator[WebhookSender]:
    sender = WebhookSender(timeout=0.5, allow_private=True, user_agent="Rostra-Webhooks/test")
    yield sender
    await sender.aclose()


async def test_a_2xx_is_a_success_and_connections_are_kept_alive(sender: WebhookSender) -> None:
    async with Receiver(default=Reply(204, body=b"")) as receiver:
        for n in range(3):
            outcome = await sender.send(receiver.url(), message_id=f"m{n}", body=b"{}", keys=KEY)
            assert (outcome.succeeded, outcome.status_code, outcome.error) == (True, 204, None)
        assert len({r.peer_port for r in receiver.requests()}) == 1  # one connection, reused


async def test_a_failing_answer_keeps_its_code_body_excerpt_and_retry_after(
    sender: WebhookSender,
) -> None:
    async with Receiver() as receiver:
        receiver.script(Reply(503, headers={"Retry-After": "30"}, body=b"x" * 1000))
        outcome = await sender.send(receiver.url(), message_id="m", body=b"{}", keys=KEY)
    assert (outcome.succeeded, outcome.status_code, outcome.retry_after) == (False, 503, 30.0)
    assert outcome.error == "HTTP 503: " + "x" * 200


async def test_retry_after_on_a_success_is_ignored(sender: WebhookSender) -> None:
    async with Receiver(default=Reply(200, headers={"Retry-After": "30"})) as receiver:
        outcome = await sender.send(receiver.url(), message_id="m", body=b"{}", keys=KEY)
    assert (outcome.succeeded, outcome.retry_after) == (True, None)


async def test_410_says_gone(sender: WebhookSender) -> None:
    async with Receiver(default=Reply(410)) as receiver:
        outcome = await sender.send(receiver.url(), message_id="m", body=b"{}", keys=KEY)
    assert outcome.gone
    assert not outcome.succeeded


async def test_a_redirect_is_not_followed(sender: WebhookSender) -> None:
    async with Receiver() as receiver:
        receiver.script(Reply(307, headers={"Location": receiver.url("/other")}))
        outcome = await sender.send(receiver.url(), message_id="m", body=b"{}", keys=KEY)
        assert [r.path for r in receiver.requests()] == ["/hook"]
    assert outcome.status_code == 307
    assert outcome.error == f"HTTP 307: redirect to {receiver.url('/other')} not followed"


async def test_the_timeout_covers_the_whole_attempt(sender: WebhookSender) -> None:
    async with Receiver(default=Reply(200, delay=3)) as receiver:
        outcome = await sender.send(receiver.url(), message_id="m", body=b"{}", keys=KEY)
    assert (outcome.status_code, outcome.error) == (None, "timed out after 0.5 s")
    assert 400 <= outcome.duration_ms < 2000


async def test_a_large_answer_is_read_only_so_far(sender: WebhookSender) -> None:
    big = b"y" * (MAX_RESPONSE_BYTES * 4)
    async with Receiver(default=Reply(200, body=big)) as receiver:
        outcome = await sender.send(receiver.url(), message_id="m", body=b"{}", keys=KEY)
    assert outcome.succeeded


async def test_nothing_listening_is_a_connection_error(sender: WebhookSender) -> None:
    outcome = await sender.send("http://127.0.0.1:9/", message_id="m", body=b"{}", keys=KEY)
    assert outcome.status_code is None
    assert outcome.error is not None
    assert outcome.error.startswith("could not connect")


@pytest.mark.parametrize(
    ("url", "reason"),
    [
        ("http://169.254.169.254/latest/meta-data/", "cloud metadata"),
        ("http://[::ffff:169.254.169.254]/", "cloud metadata"),
        ("http://0.0.0.0:8080/", "unspecified"),
        ("ftp://example.com/", "http"),
        ("http://user:pw@127.0.0.1/", "user name"),
    ],
)
async def test_refused_targets_are_never_contacted(
    sender: WebhookSender, url: str, reason: str
) -> None:
    outcome = await sender.send(url, message_id="m", body=b"{}", keys=KEY)
    assert outcome.status_code is None
    assert outcome.error is not None
    assert outcome.error.startswith("refused: ")
    assert reason in outcome.error


async def test_private_targets_are_refused_unless_allowed() -> None:
    strict = WebhookSender(timeout=1, allow_private=False, user_agent="t")
    try:
        async with Receiver() as receiver:
            for host in ("127.0.0.1", "localhost"):
                outcome = await strict.send(
                    receiver.url(host=host), message_id="m", body=b"{}", keys=KEY
                )
                assert outcome.error is not None
                assert outcome.error.startswith("refused: ")
            assert receiver.requests() == []
    finally:
        await strict.aclose()
