"""The rate limiter's cost per request, in-process: the app driven directly, no sockets, no wrk.

    .venv/bin/python bench/ratelimit_inprocess.py                 # off against memory, 21 rounds
    .venv/bin/python bench/ratelimit_inprocess.py --redis redis://127.0.0.1:6379/0
    .venv/bin/python bench/ratelimit_inprocess.py --profile memory   # cProfile of one app
    .venv/bin/python bench/ratelimit_inprocess.py --server        # through uvicorn's HTTP protocol

A steadier guide than bench/ratelimit.py while changing the limiter: the apps (limiter off, the
memory store, optionally Redis) live in one process on one SQLite file with one user and key
made through the CLI, and are called with a fake scope, receive and send, 32 requests at a time
as wrk's connections would be, on uvloop. With ``--server`` the requests go through what
``rostra serve`` runs instead: uvicorn's httptools protocol, fed the request's bytes by a fake
socket of each of the 32 connections, so the server's parsing and its handling of each response
field count too (the rate-limit fields are five of them).

Each round runs every app in turn (a different one first each round) and reads
``time.process_time`` per request; a round's cost of the limiter is the difference from the
limiter-off app in that round, and the figures are the medians over the rounds. The access log
is written to /dev/null at level info, as a served app writes it.
"""

from __future__ import annotations

import argparse
import asyncio
import cProfile
import gc
import os
import pstats
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import uvicorn
import uvloop
from foundation import UNREACHABLE_PLAN_LIMITS, prepare_rostra
from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol
from uvicorn.server import ServerState

from rostra.app import create_app
from rostra.core.config import Settings
from rostra.core.logging import configure_logging

CONCURRENCY = 32
PATH = "/api/v1/user"


def build_app(env: dict[str, str], **overrides: Any) -> Any:
    settings = Settings(  # type: ignore[call-arg]
        _env_file=None,
        database_url=env["ROSTRA_DATABASE_URL"],
        secret_key=env["ROSTRA_SECRET_KEY"],
        rate_limit_plans=UNREACHABLE_PLAN_LIMITS,
        webhooks_worker_enabled=False,
        **overrides,
    )
    return create_app(settings)


class Driver:
    """Calls one app as uvicorn would, with the same request every time."""

    def __init__(self, app: Any, api_key: str) -> None:
        self.app = app
        self.headers = [
            (b"host", b"127.0.0.1:8000"),
            (b"authorization", f"Bearer {api_key}".encode()),
        ]
        self.check_fields = True
        self.fields_seen = False

    async def request(self) -> None:
        scope = {
            "type": "http",
            "asgi": {"version": "3.0", "spec_version": "2.3"},
            "http_version": "1.1",
            "server": ("127.0.0.1", 8000),
            "client": ("127.0.0.1", 40000),
            "scheme": "http",
            "method": "GET",
            "root_path": "",
            "path": PATH,
            "raw_path": PATH.encode(),
            "query_string": b"",
            "headers": self.headers,
            "state": {},
        }

        async def receive() -> dict[str, Any]:
            return {"type": "http.request", "body": b"", "more_body": False}

        async def send(message: dict[str, Any]) -> None:
            if message["type"] == "http.response.start":
                if message["status"] != 200:
                    raise RuntimeError(f"{PATH} answered {message['status']}")
                if self.check_fields:
                    self.check_fields = False
                    self.fields_seen = any(name == b"ratelimit" for name, _ in message["headers"])

        await self.app(scope, receive, send)

    async def batches(self, count: int) -> float:
        """CPU seconds per request over ``count`` batches of CONCURRENCY requests."""
        started = time.process_time()
        for _ in range(count):
            await self.batch()
        return (time.process_time() - started) / (count * CONCURRENCY)

    async def batch(self) -> None:
        await asyncio.gather(*(self.request() for _ in range(CONCURRENCY)))


class _Socket(asyncio.Transport):
    """What uvicorn's protocol needs of a connection's transport; what it writes is looked at,
    then dropped."""

    def __init__(self) -> None:
        super().__init__()
        self.head = b""

    def write(self, data: bytes | bytearray | memoryview) -> None:
        if not self.head:
            self.head = bytes(data)

    def get_extra_info(self, name: str, default: Any = None) -> Any:
        return {"sockname": ("127.0.0.1", 8000), "peername": ("127.0.0.1", 40000)}.get(
            name, default
        )

    def is_closing(self) -> bool:
        return False

    def pause_reading(self) -> None:
        pass

    def resume_reading(self) -> None:
        pass

    def close(self) -> None:
        pass


class ServerDriver(Driver):
    """Calls one app through uvicorn's httptools protocol, as ``rostra serve`` runs it (the same
    settings), over CONCURRENCY kept-alive connections, one request on each at a time."""

    def __init__(self, app: Any, api_key: str) -> None:
        super().__init__(app, api_key)
        self.config = uvicorn.Config(
            app, access_log=False, log_config=None, server_header=False, proxy_headers=False
        )
        self.config.load()
        self.connections: list[tuple[HttpToolsProtocol, _Socket]] = []
        self.request_bytes = b"".join(
            [f"GET {PATH} HTTP/1.1\r\n".encode()]
            + [name + b": " + value + b"\r\n" for name, value in self.headers]
            + [b"\r\n"]
        )

    def _connect(self) -> None:
        """The connections, made on the loop that will run them (the protocol takes the
        running loop)."""
        state = ServerState()
        for _ in range(CONCURRENCY):
            protocol = HttpToolsProtocol(config=self.config, server_state=state, app_state={})
            socket = _Socket()
            protocol.connection_made(socket)
            self.connections.append((protocol, socket))

    async def batch(self) -> None:
        if not self.connections:
            self._connect()
        for protocol, socket in self.connections:
            socket.head = b""
            protocol.data_received(self.request_bytes)
        for protocol, socket in self.connections:
            await asyncio.gather(*protocol.tasks)
            if not socket.head.startswith(b"HTTP/1.1 200 "):
                raise RuntimeError(f"{PATH} answered {socket.head[:40]!r}")
        if self.check_fields:
            self.check_fields = False
            self.fields_seen = b"\r\nratelimit: " in self.connections[0][1].head


async def round_robin(
    drivers: dict[str, Driver], order: list[str], batches: int
) -> dict[str, float]:
    """CPU seconds per request of each app, their batches taken in turn (one of each, again and
    again), so that a machine getting busier part-way weighs on all alike."""
    spent = dict.fromkeys(order, 0.0)
    clock = time.process_time
    for _ in range(batches):
        for name in order:
            started = clock()
            await drivers[name].batch()
            spent[name] += clock() - started
    return {name: seconds / (batches * CONCURRENCY) for name, seconds in spent.items()}


async def compare(drivers: dict[str, Driver], rounds: int, batches: int) -> None:
    names = list(drivers)
    for driver in drivers.values():  # warm-up: caches loaded, code paths taken
        await driver.batches(20)
    print("fields sent:", {name: d.fields_seen for name, d in drivers.items()})
    gc.collect()
    gc.freeze()
    costs: dict[str, list[float]] = {name: [] for name in names if name != "off"}
    totals: dict[str, list[float]] = {name: [] for name in names}
    for r in range(rounds):
        order = names[r % len(names) :] + names[: r % len(names)]
        got = await round_robin(drivers, order, batches)
        for name in names:
            totals[name].append(got[name] * 1e6)
        for name in costs:
            costs[name].append((got[name] - got["off"]) * 1e6)
        print(f"round {r + 1:2}: " + "  ".join(f"{n} {got[n] * 1e6:6.1f} us" for n in names))
    print()
    for name in names:
        print(f"{name:7} {statistics.median(totals[name]):6.1f} us per request (median)")
    for name, values in costs.items():
        quartiles = statistics.quantiles(values, n=4)
        print(
            f"{name:7} costs {statistics.median(values):5.1f} us "
            f"(quartiles {quartiles[0]:.1f} .. {quartiles[2]:.1f}), "
            f"{statistics.median(values) / statistics.median(totals['off']) * 100:.1f} % of off"
        )


async def warm_then_run(drivers: dict[str, Driver], driver: Driver, batches: int) -> None:
    for each in drivers.values():
        await each.batches(10)
    await driver.batches(batches)


async def profile(driver: Driver, batches: int, top: int) -> None:
    await driver.batches(20)
    profiler = cProfile.Profile()
    profiler.enable()
    await driver.batches(batches)
    profiler.disable()
    stats = pstats.Stats(profiler).strip_dirs()
    stats.sort_stats("tottime").print_stats(top)
    stats.sort_stats("cumulative").print_stats(top)
    if os.environ.get("PROFILE_CALLEES"):
        stats.print_callees(os.environ["PROFILE_CALLEES"])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=21)
    parser.add_argument("--batches", type=int, default=100, help="of 32 requests, per app a round")
    parser.add_argument("--redis", metavar="URL", help="also a Redis-store app on this server")
    parser.add_argument("--profile", choices=["off", "memory", "redis"], help="cProfile one app")
    parser.add_argument("--top", type=int, default=40)
    parser.add_argument(
        "--server", action="store_true", help="through uvicorn's HTTP protocol (a fake socket)"
    )
    parser.add_argument(
        "--count",
        nargs=2,
        metavar=("APP", "BATCHES"),
        help="after the warm-up, only run BATCHES of APP (for an instruction count under "
        "valgrind --tool=cachegrind: runs of 0 and of N batches give the cost per request)",
    )
    options = parser.parse_args()

    with tempfile.TemporaryDirectory(prefix="rostra-rl-inproc-") as tmp:
        instance = prepare_rostra(Path(tmp))
        env = instance.env
        # Under valgrind a request takes fifty times as long: caches that expire with time
        # would reload fifty times as often.
        slow: dict[str, Any] = {}
        if options.count:
            slow = {
                "auth_cache_seconds": 300,
                "rate_limit_overrides_cache_seconds": 300,
                "api_key_last_used_resolution_seconds": 3600,
            }
        apps = {
            "off": build_app(env, rate_limit_enabled=False, **slow),
            "memory": build_app(env, **slow),
        }
        if options.redis:
            apps["redis"] = build_app(
                env,
                redis_url=options.redis,
                rate_limit_key_prefix=f"rostra-bench:{os.getpid()}:",
                **slow,
            )
        # After the apps, which configure logging from their settings (to stdout).
        configure_logging("info", stream=open(os.devnull, "w"))  # noqa: SIM115
        driver = ServerDriver if options.server else Driver
        drivers = {name: driver(app, instance.api_key) for name, app in apps.items()}
        if options.count:
            name, count = options.count[0], int(options.count[1])
            uvloop.run(warm_then_run(drivers, drivers[name], count))
        elif options.profile:
            if options.profile not in drivers:
                sys.exit(f"no {options.profile} app (--redis URL for one)")
            uvloop.run(profile(drivers[options.profile], options.batches, options.top))
        else:
            uvloop.run(compare(drivers, options.rounds, options.batches))


if __name__ == "__main__":
    main()
