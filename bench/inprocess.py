"""The CPU cost of one request with no HTTP server: the ASGI app driven directly.

Steadier than wrk on a busy machine, for comparing two trees while working on a route::

    .venv/bin/python bench/inprocess.py >/dev/null   # cursor page, counted page, get-one, create
    .venv/bin/python bench/inprocess.py --profile cursor   # cProfile of one kind, top functions
    PYTHONPATH=/tmp/other/src .venv/bin/python bench/inprocess.py   # another tree's code

The database is prepared as bench/resources.py prepares it (foundation.py's ``prepare_rostra``,
then 10,000 projects of the caller's with scale.py's loader), once, and kept in ``--workdir``.
Each request is a fake ASGI scope sent through ``create_app``'s whole stack on uvloop, one at a
time; reported (on stderr: the access log goes to stdout) is ``time.process_time`` per request
(median of ``--rounds``). ``--dump`` writes each kind's answer (status, headers without the
per-request ones, body) for a byte comparison. ``create`` posts as resources.py does (a new name
and ``Idempotency-Key`` each); what it made is deleted at the end, as resources.py does.
"""

from __future__ import annotations

import argparse
import cProfile
import json
import os
import pstats
import statistics
import sys
import time
from pathlib import Path
from typing import Any

import uvloop
from foundation import prepare_rostra
from resources import forget_created
from scale import load_sqlite

PROJECTS = 10_000
CURSOR_DEPTH = 5_000
VARYING_HEADERS = {b"x-request-id", b"x-ratelimit-reset", b"ratelimit", b"ratelimit-policy"}


def prepared_workdir(workdir: Path) -> dict[str, Any]:
    """The database and credentials, made on the first run and kept."""
    state_file = workdir / "state.json"
    if state_file.exists():
        state: dict[str, Any] = json.loads(state_file.read_text())
        return state
    workdir.mkdir(parents=True, exist_ok=True)
    rostra = prepare_rostra(workdir)
    load_sqlite(workdir / "rostra.db", PROJECTS, other_owners=0)
    state = {"env": rostra.env, "api_key": rostra.api_key}
    state_file.write_text(json.dumps(state))
    return state


class Driver:
    def __init__(self, app: Any, api_key: str) -> None:
        self.app = app
        self.auth = f"Bearer {api_key}".encode()
        self.created = 0

    async def get(self, target: str) -> tuple[int, list[tuple[bytes, bytes]], bytes]:
        return await self.request("GET", target)

    async def create(self, target: str) -> tuple[int, list[tuple[bytes, bytes]], bytes]:
        """``POST target`` as resources.py's create sends it: a new name and Idempotency-Key."""
        self.created += 1
        key = f"{os.getpid()}-{time.time_ns()}-{self.created}"
        body = json.dumps({"name": f"bench {key}"}).encode()
        return await self.request(
            "POST",
            target,
            body=body,
            headers=[
                (b"content-type", b"application/json"),
                (b"content-length", str(len(body)).encode()),
                (b"idempotency-key", key.encode()),
            ],
        )

    async def request(
        self,
        method: str,
        target: str,
        *,
        body: bytes = b"",
        headers: list[tuple[bytes, bytes]] | None = None,
    ) -> tuple[int, list[tuple[bytes, bytes]], bytes]:
        path, _, query = target.partition("?")
        scope = {
            "type": "http",
            "asgi": {"version": "3.0", "spec_version": "2.3"},
            "http_version": "1.1",
            "method": method,
            "scheme": "http",
            "path": path,
            "raw_path": path.encode(),
            "query_string": query.encode(),
            "root_path": "",
            "headers": [
                (b"host", b"127.0.0.1:8000"),
                (b"authorization", self.auth),
                (b"accept", b"*/*"),
                *(headers or ()),
            ],
            "client": ("127.0.0.1", 50000),
            "server": ("127.0.0.1", 8000),
            "state": {},
        }
        sent: list[dict[str, Any]] = []

        async def receive() -> dict[str, Any]:
            return {"type": "http.request", "body": body, "more_body": False}

        async def send(message: dict[str, Any]) -> None:
            sent.append(message)

        await self.app(scope, receive, send)
        start = sent[0]
        body = b"".join(m.get("body", b"") for m in sent[1:])
        return start["status"], list(start["headers"]), body


async def run(args: argparse.Namespace) -> None:
    state = prepared_workdir(args.workdir)
    os.environ.update(state["env"])
    os.chdir(args.workdir)
    from rostra.app import create_app
    from rostra.core.config import Settings
    from rostra.migrations.runner import upgrade

    settings = Settings()
    upgrade(settings.database_url)  # as `rostra serve` does: a kept database may be behind
    app = create_app(settings)
    driver = Driver(app, state["api_key"])
    status, _, body = await driver.get(f"/api/v1/projects?limit=20&offset={CURSOR_DEPTH}")
    assert status == 200, body
    cursor = json.loads(body)["pagination"]["next_cursor"]
    kinds = {
        "cursor": f"/api/v1/projects?limit=20&cursor={cursor}",
        "total": "/api/v1/projects?limit=20",
        "get_one": f"/api/v1/projects/{PROJECTS // 2}",
        "create": "/api/v1/projects",
    }
    if args.only:
        kinds = {name: kinds[name] for name in args.only}
    try:
        await measure(driver, kinds, args)
    finally:
        if "create" in kinds:
            forget_created(args.workdir / "rostra.db")


async def measure(driver: Driver, kinds: dict[str, str], args: argparse.Namespace) -> None:
    def call(name: str) -> Any:
        return driver.create if name == "create" else driver.get

    for name, target in kinds.items():
        for _ in range(200):
            status, _, body = await call(name)(target)
            assert status in (200, 201), body

    if args.dump is not None:
        answers = {}
        for name, target in kinds.items():
            status, headers, body = await call(name)(target)
            kept = [
                [k.decode(), v.decode()] for k, v in headers if k.lower() not in VARYING_HEADERS
            ]
            answers[name] = {"status": status, "headers": kept, "body": body.decode()}
        args.dump.write_text(json.dumps(answers, indent=1))

    if args.profile:
        target, send = kinds[args.profile], call(args.profile)
        profiler = cProfile.Profile()
        profiler.enable()
        for _ in range(args.requests):
            await send(target)
        profiler.disable()
        stats = pstats.Stats(profiler, stream=sys.stderr).strip_dirs()
        stats.sort_stats("tottime").print_stats(args.top)
        stats.sort_stats("cumulative").print_stats(args.top)
        return

    results: dict[str, list[float]] = {name: [] for name in kinds}
    for _ in range(args.rounds):
        for name, target in kinds.items():
            send = call(name)
            started = time.process_time()
            for _ in range(args.requests):
                await send(target)
            results[name].append((time.process_time() - started) / args.requests * 1e6)
    for name, values in results.items():
        print(
            f"{name:<8} median {statistics.median(values):7.1f} us/req"
            f"  min {min(values):7.1f}  max {max(values):7.1f}",
            file=sys.stderr,
            flush=True,
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--workdir", type=Path, default=Path("/tmp/rostra-inprocess"))
    parser.add_argument("--rounds", type=int, default=7)
    parser.add_argument("--requests", type=int, default=1000)
    kinds = ("cursor", "total", "get_one", "create")
    parser.add_argument("--only", nargs="*", choices=kinds)
    parser.add_argument("--profile", choices=kinds)
    parser.add_argument("--dump", type=Path)
    parser.add_argument("--top", type=int, default=40, help="functions shown by --profile")
    args = parser.parse_args()
    uvloop.run(run(args))


if __name__ == "__main__":
    main()
