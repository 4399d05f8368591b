"""A fast webhook receiver for bench/webhooks.py: answers every POST with 204 at once.

It notes each delivery's ``webhook-id`` and arrival time (``time.time()``) and, for the latency
run, the ``data.name`` of the event's body (the bench client names each resource after the
moment it sent the request). ``GET /stats`` gives the counts, ``GET /arrivals`` every arrival.
Served by uvicorn (uvloop and httptools when installed), on 127.0.0.1 only::

    .venv/bin/python bench/webhook_receiver.py --port 9000
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Awaitable, Callable
from typing import Any

import orjson
import uvicorn

Message = dict[str, Any]

arrivals: list[tuple[str, float, str | None]] = []
"""(webhook-id, arrival time, data.name when asked for) per request."""
keep_names = False


async def app(
    scope: dict[str, Any],
    receive: Callable[[], Awaitable[Message]],
    send: Callable[[Message], Awaitable[None]],
) -> None:
    if scope["type"] != "http":
        return
    body = b""
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            return
        body += message.get("body", b"")
        if not message.get("more_body"):
            break
    if scope["method"] == "POST":
        arrived = time.time()
        webhook_id = next((v.decode() for k, v in scope["headers"] if k == b"webhook-id"), "")
        name = orjson.loads(body)["data"].get("name") if keep_names else None
        arrivals.append((webhook_id, arrived, name))
        await send({"type": "http.response.start", "status": 204, "headers": []})
        await send({"type": "http.response.body", "body": b""})
        return
    if scope["path"] == "/stats":
        answer = {
            "count": len(arrivals),
            "unique": len({webhook_id for webhook_id, _, _ in arrivals}),
            "first": arrivals[0][1] if arrivals else None,
            "last": arrivals[-1][1] if arrivals else None,
        }
    else:
        answer = {"arrivals": arrivals}
    payload = orjson.dumps(answer)
    headers = [(b"content-type", b"application/json")]
    await send({"type": "http.response.start", "status": 200, "headers": headers})
    await send({"type": "http.response.body", "body": payload})


def main() -> None:
    global keep_names
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--names", action="store_true", help="Note data.name of each body.")
    args = parser.parse_args()
    keep_names = args.names
    uvicorn.run(
        app,
        host="127.0.0.1",
        port=args.port,
        log_level="warning",
        access_log=False,
        lifespan="off",
        backlog=4096,
    )


if __name__ == "__main__":
    main()
