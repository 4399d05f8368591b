"""CPU per webhook POST for httpx and aiohttp: why the sender uses aiohttp.

One command (see bench/README.md)::

    .venv/bin/python bench/webhook_clients.py

Starts bench/webhook_receiver.py on one core and, on the other, sends the same signed POST
(a 500-byte body, the delivery headers) N times with each client at a fixed concurrency over
kept-alive connections, after a warm-up. Reports the client process's CPU time per request
(user + system, from ``getrusage``; steadier than requests per second on a busy machine) and
the requests per second it reached. Each client runs in a process of its own, twice, in turn.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from foundation import BENCH_DIR, VENV_BIN, clean_environment, free_port, pinned, serving

BODY = b'{"id":"evt_x","event":"project.created","data":{"name":"' + b"x" * 440 + b'"}}'
HEADERS = {
    "content-type": "application/json",
    "webhook-id": "msg_bench",
    "webhook-timestamp": "1700000000",
    "webhook-signature": "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=",
}
WARMUP = 300


def cpu_seconds() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


async def with_httpx(url: str, count: int, concurrency: int) -> tuple[float, float]:
    import httpx

    limits = httpx.Limits(max_connections=concurrency)
    async with httpx.AsyncClient(limits=limits, trust_env=False) as client:

        async def post() -> None:
            answer = await client.post(url, content=BODY, headers=HEADERS)
            assert answer.status_code == 204

        return await _measure(post, count, concurrency)


async def with_aiohttp(url: str, count: int, concurrency: int) -> tuple[float, float]:
    import aiohttp

    connector = aiohttp.TCPConnector(limit=concurrency)
    async with aiohttp.ClientSession(connector=connector) as session:

        async def post() -> None:
            async with session.post(url, data=BODY, headers=HEADERS) as answer:
                await answer.read()
                assert answer.status == 204

        return await _measure(post, count, concurrency)


async def _measure(post: object, count: int, concurrency: int) -> tuple[float, float]:
    gate = asyncio.Semaphore(concurrency)

    async def one() -> None:
        async with gate:
            await post()  # type: ignore[operator]

    await asyncio.gather(*(one() for _ in range(WARMUP)))
    cpu, wall = cpu_seconds(), time.perf_counter()
    await asyncio.gather(*(one() for _ in range(count)))
    return cpu_seconds() - cpu, time.perf_counter() - wall


def client_main(name: str, url: str, count: int, concurrency: int) -> None:
    run = with_httpx if name == "httpx" else with_aiohttp
    cpu, wall = asyncio.run(run(url, count, concurrency))
    print(
        json.dumps({"cpu_ms_per_request": cpu * 1000 / count, "requests_per_second": count / wall})
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=3000)
    parser.add_argument("--concurrency", type=int, default=50)
    parser.add_argument("--client", choices=["httpx", "aiohttp"], help=argparse.SUPPRESS)
    parser.add_argument("--url", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if not 100 <= args.requests <= 100_000 or not 1 <= args.concurrency <= 500:
        parser.error("keep it bounded: --requests 100..100000, --concurrency 1..500")
    if args.client:
        client_main(args.client, args.url, args.requests, args.concurrency)
        return
    port = free_port()
    receiver = [
        str(VENV_BIN / "python"),
        str(BENCH_DIR / "webhook_receiver.py"),
        "--port",
        str(port),
    ]
    url = f"http://127.0.0.1:{port}/hook"
    with (
        tempfile.TemporaryDirectory() as tmp,
        serving(
            receiver, env=clean_environment(), cwd=Path(tmp), ready_url=url[:-4] + "stats", cpu=1
        ),
    ):
        for name in ["httpx", "aiohttp"] * 2:
            command = [sys.executable, __file__, "--client", name, "--url", url]
            command += ["--requests", str(args.requests), "--concurrency", str(args.concurrency)]
            done = subprocess.run(pinned(0, command), capture_output=True, text=True, check=True)
            figures = json.loads(done.stdout)
            print(
                f"{name:<8} {figures['cpu_ms_per_request']:.3f} ms CPU per request, "
                f"{figures['requests_per_second']:.0f} requests/s"
            )


if __name__ == "__main__":
    main()
