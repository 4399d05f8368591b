"""Webhook delivery: deliveries per second from one ``rostra worker``, and commit-to-receipt
latency with the worker embedded in ``rostra serve``, on SQLite and on PostgreSQL.

One command runs it all (see bench/README.md)::

    .venv/bin/python bench/webhooks.py

Throughput: a fresh database (migrated by the CLI) is pre-loaded with N pending deliveries to
20 endpoints of one fast local receiver (bench/webhook_receiver.py), not yet due. A
``rostra worker`` is started and, once it is idle, every delivery is made due in one UPDATE;
the clock runs until the receiver has them all and the database records them all succeeded.
The worker is pinned to one core and the receiver to the other.

Latency: ``rostra serve`` (embedded worker on, as shipped) with one webhook registered over
HTTP; the bench creates projects over HTTP at a steady rate, and each delivery's latency is its
arrival at the receiver minus the moment the bench sent the POST that committed its event.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import platform
import secrets
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from importlib import metadata
from pathlib import Path
from typing import Any

import asyncpg
import httpx
import orjson
from foundation import (
    BENCH_DIR,
    BENCH_EMAIL,
    BENCH_USERNAME,
    REPO,
    UNREACHABLE_PLAN_LIMITS,
    VENV_BIN,
    clean_environment,
    free_port,
    pinned,
    serving,
    write_result,
)
from sqlalchemy import func, insert, select, update

import rostra.models  # noqa: F401  (every table, for the foreign keys)
from rostra.core.config import Settings
from rostra.core.db import Database, utcnow
from rostra.lib.secrets import random_token
from rostra.lib.webhooks.signing import generate_secret
from rostra.users.models import User
from rostra.webhooks.models import PENDING, SUCCEEDED, WebhookDelivery, WebhookEndpoint

THROUGHPUT_TARGET = 1_000.0
"""Deliveries per second, sustained, from one worker process."""
P50_TARGET_MS = 100.0
DRAIN_TIMEOUT_SECONDS = 180.0
CLIENT_TIMEOUT_SECONDS = 30.0
NOT_YET = datetime(2100, 1, 1, tzinfo=UTC)
PRELOAD_CHUNK = 2_000


@dataclass(frozen=True)
class Options:
    backends: list[str]
    deliveries: int
    endpoints: int
    latency_events: int
    latency_rate: float
    postgres_url: str
    worker_cpu: int
    receiver_cpu: int


# --- set-up ------------------------------------------------------------------------------


@contextmanager
def fresh_database(backend: str, options: Options, workdir: Path) -> Iterator[str]:
    if backend == "sqlite":
        yield f"sqlite+aiosqlite:///{workdir / 'rostra.db'}"
        return
    name = f"rostra_bench_{uuid.uuid4().hex[:10]}"
    admin = options.postgres_url.replace("postgresql+asyncpg://", "postgresql://")
    asyncio.run(_pg(admin, f'CREATE DATABASE "{name}"'))
    try:
        yield options.postgres_url.rsplit("/", 1)[0] + "/" + name
    finally:
        asyncio.run(_pg(admin, f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))


async def _pg(dsn: str, sql: str) -> None:
    connection = await asyncpg.connect(dsn)
    try:
        await connection.execute(sql)
    finally:
        await connection.close()


def rostra_env(database_url: str, **extra: str) -> dict[str, str]:
    return clean_environment(
        ROSTRA_DATABASE_URL=database_url,
        ROSTRA_SECRET_KEY=secrets.token_urlsafe(48),
        ROSTRA_RATE_LIMIT_PLANS=UNREACHABLE_PLAN_LIMITS,
        ROSTRA_WEBHOOKS_ALLOW_PRIVATE="true",
        **extra,
    )


def cli(env: dict[str, str], cwd: Path, *args: str) -> str:
    done = subprocess.run(
        [str(VENV_BIN / "rostra"), *args], cwd=cwd, env=env, capture_output=True, text=True
    )
    if done.returncode != 0:
        sys.exit(f"bench: `rostra {' '.join(args[:2])}` failed:\n{done.stderr.strip()}")
    return done.stdout.strip()


def prepare(env: dict[str, str], cwd: Path) -> str:
    """Migrate, make the bench user, and return a live API key of theirs."""
    cli(env, cwd, "migrate")
    password = secrets.token_urlsafe(16)
    cli(
        env,
        cwd,
        "users",
        "create",
        "--username",
        BENCH_USERNAME,
        "--email",
        BENCH_EMAIL,
        "--password",
        password,
    )
    return cli(env, cwd, "keys", "create", "--user", BENCH_USERNAME, "--name", "bench")


def sample_payload(n: int) -> str:
    """A body the size of a real ``project.created`` event."""
    stamp = utcnow().strftime("%Y-%m-%dT%H:%M:%SZ")
    data = {
        "id": n,
        "name": f"project {n}",
        "description": "A project made by the webhook benchmark, about as long as real ones.",
        "owner_id": 1,
        "visibility": "private",
        "status": "active",
        "tags": ["bench", "webhooks"],
        "created_at": stamp,
        "updated_at": stamp,
    }
    body = {
        "id": f"evt_{random_token(24)}",
        "event": "project.created",
        "timestamp": stamp,
        "data": data,
        "livemode": True,
    }
    return orjson.dumps(body).decode()


async def preload(database_url: str, receiver_port: int, options: Options) -> None:
    """The endpoints and N pending deliveries, not due until ``make_due``."""
    db = Database(Settings(_env_file=None, database_url=database_url))  # type: ignore[call-arg]
    try:
        async with db.session_scope() as session:
            owner = (await session.execute(select(User.id))).scalar_one()
            now = utcnow()
            rows = [
                {
                    "owner_id": owner,
                    "url": f"http://127.0.0.1:{receiver_port}/hook/{n}",
                    "description": "",
                    "events": ["*"],
                    "secret": generate_secret(),
                    "active": True,
                    "max_attempts": 8,
                    "livemode": True,
                    "created_at": now,
                    "updated_at": now,
                }
                for n in range(options.endpoints)
            ]
            await session.execute(insert(WebhookEndpoint), rows)
            ids = list((await session.scalars(select(WebhookEndpoint.id))).all())
        for start in range(0, options.deliveries, PRELOAD_CHUNK):
            chunk = range(start, min(start + PRELOAD_CHUNK, options.deliveries))
            async with db.session_scope() as session:
                await session.execute(
                    insert(WebhookDelivery),
                    [
                        {
                            "endpoint_id": ids[n % len(ids)],
                            "event_id": n,
                            "event_type": "project.created",
                            "message_id": f"msg_{random_token(24)}",
                            "payload": sample_payload(n),
                            "status": PENDING,
                            "attempts": 0,
                            "next_attempt_at": NOT_YET,
                            "created_at": utcnow(),
                        }
                        for n in chunk
                    ],
                )
    finally:
        await db.dispose()


async def make_due(database_url: str) -> float:
    db = Database(Settings(_env_file=None, database_url=database_url))  # type: ignore[call-arg]
    try:
        async with db.session_scope() as session:
            await session.execute(update(WebhookDelivery).values(next_attempt_at=utcnow()))
        return time.time()
    finally:
        await db.dispose()


async def succeeded(database_url: str) -> int:
    db = Database(Settings(_env_file=None, database_url=database_url))  # type: ignore[call-arg]
    try:
        query = select(func.count()).where(WebhookDelivery.status == SUCCEEDED)
        async with db.sessions() as session:
            return int((await session.execute(query)).scalar_one())
    finally:
        await db.dispose()


@contextmanager
def receiver(port: int, cpu: int, cwd: Path, *, names: bool) -> Iterator[str]:
    command = [
        str(VENV_BIN / "python"),
        str(BENCH_DIR / "webhook_receiver.py"),
        "--port",
        str(port),
        *(["--names"] if names else []),
    ]
    base = f"http://127.0.0.1:{port}"
    with serving(command, env=clean_environment(), cwd=cwd, ready_url=f"{base}/stats", cpu=cpu):
        yield base


def receiver_stats(base: str) -> dict[str, Any]:
    stats: dict[str, Any] = httpx.get(f"{base}/stats", timeout=10).json()
    return stats


# --- throughput --------------------------------------------------------------------------


def throughput(backend: str, options: Options, workdir: Path) -> dict[str, Any]:
    with fresh_database(backend, options, workdir) as database_url:
        env = rostra_env(database_url)
        prepare(env, workdir)
        port = free_port()
        with receiver(port, options.receiver_cpu, workdir, names=False) as base:
            started = time.monotonic()
            asyncio.run(preload(database_url, port, options))
            print(
                f"  {backend}: {options.deliveries} deliveries pre-loaded in "
                f"{time.monotonic() - started:.1f} s",
                file=sys.stderr,
            )
            log = workdir / f"worker-{backend}.log"
            with log.open("wb") as out:
                worker = subprocess.Popen(
                    pinned(options.worker_cpu, [str(VENV_BIN / "rostra"), "worker"]),
                    cwd=workdir,
                    env=env,
                    stdout=out,
                    stderr=subprocess.STDOUT,
                )
            try:
                _wait_for_line(worker, log, "worker_started")
                t0 = asyncio.run(make_due(database_url))
                done_at = _wait_until_recorded(database_url, options.deliveries, worker, log)
            finally:
                worker.terminate()
                worker.wait(timeout=30)
            stats = receiver_stats(base)
    received_in = stats["last"] - t0
    recorded_in = done_at - t0
    return {
        "deliveries": options.deliveries,
        "endpoints": options.endpoints,
        "received": stats["count"],
        "unique_webhook_ids": stats["unique"],
        "seconds_to_last_receipt": round(received_in, 3),
        "seconds_until_all_recorded": round(recorded_in, 3),
        "deliveries_per_second": round(options.deliveries / received_in, 1),
        "recorded_per_second": round(options.deliveries / recorded_in, 1),
        "target_per_second": THROUGHPUT_TARGET,
        "met": options.deliveries / recorded_in >= THROUGHPUT_TARGET,
    }


def _wait_for_line(process: subprocess.Popen[bytes], log: Path, text: str) -> None:
    deadline = time.monotonic() + 60
    while text not in log.read_text(errors="replace"):
        if process.poll() is not None or time.monotonic() > deadline:
            sys.exit(f"bench: rostra worker did not start:\n{log.read_text()[-2000:]}")
        time.sleep(0.05)


def _wait_until_recorded(
    database_url: str, expected: int, worker: subprocess.Popen[bytes], log: Path
) -> float:
    deadline = time.monotonic() + DRAIN_TIMEOUT_SECONDS
    while True:
        if asyncio.run(succeeded(database_url)) >= expected:
            return time.time()
        if worker.poll() is not None:
            sys.exit(f"bench: rostra worker exited:\n{log.read_text()[-2000:]}")
        if time.monotonic() > deadline:
            sys.exit(f"bench: not drained within {DRAIN_TIMEOUT_SECONDS:.0f} s")
        time.sleep(0.1)


# --- latency -----------------------------------------------------------------------------


def latency(backend: str, options: Options, workdir: Path) -> dict[str, Any]:
    with fresh_database(backend, options, workdir) as database_url:
        env = rostra_env(database_url)
        api_key = prepare(env, workdir)
        headers = {"Authorization": f"Bearer {api_key}"}
        rport, sport = free_port(), free_port()
        server = f"http://127.0.0.1:{sport}"
        command = [str(VENV_BIN / "rostra"), "serve", "--port", str(sport)]
        with (
            receiver(rport, options.receiver_cpu, workdir, names=True) as base,
            serving(
                command, env=env, cwd=workdir, ready_url=f"{server}/health", cpu=options.worker_cpu
            ),
            httpx.Client(
                base_url=server, headers=headers, timeout=CLIENT_TIMEOUT_SECONDS
            ) as client,
        ):
            hook = {"url": f"{base}/hook", "events": ["project.created"]}
            registered = client.post("/api/v1/webhooks", json=hook)
            if registered.status_code != 201:
                sys.exit(f"bench: registering the webhook failed: {registered.text}")
            sent = _steady_creates(client, options)
            arrivals = _wait_for_arrivals(base, len(sent))
    latencies = sorted((arrivals[name] - sent_at) * 1000 for name, (sent_at, _) in sent.items())
    after_answer = sorted(
        (arrivals[name] - answered) * 1000 for name, (_, answered) in sent.items()
    )
    requests = sorted((answered - sent_at) * 1000 for sent_at, answered in sent.values())
    p50 = statistics.median(latencies)
    return {
        "events": len(sent),
        "rate_per_second": options.latency_rate,
        "p50_ms": round(p50, 2),
        "p90_ms": round(_percentile(latencies, 0.90), 2),
        "p99_ms": round(_percentile(latencies, 0.99), 2),
        "max_ms": round(latencies[-1], 2),
        "after_the_answer_p50_ms": round(statistics.median(after_answer), 2),
        "after_the_answer_p99_ms": round(_percentile(after_answer, 0.99), 2),
        "post_p50_ms": round(statistics.median(requests), 2),
        "post_p99_ms": round(_percentile(requests, 0.99), 2),
        "target_p50_ms": P50_TARGET_MS,
        "met": p50 < P50_TARGET_MS,
    }


def _steady_creates(client: httpx.Client, options: Options) -> dict[str, tuple[float, float]]:
    """POST /projects at a steady rate; each name's send time (before the request went out)
    and the time its answer came back (after the commit)."""
    sent: dict[str, tuple[float, float]] = {}
    interval = 1 / options.latency_rate
    start = time.monotonic()
    for n in range(options.latency_events):
        pause = start + n * interval - time.monotonic()
        if pause > 0:
            time.sleep(pause)
        name = f"latency {n}"
        at = time.time()
        try:
            answer = client.post("/api/v1/projects", json={"name": name})
        except httpx.TimeoutException:
            sys.exit(f"bench: creating project {n} took over {CLIENT_TIMEOUT_SECONDS:.0f} s")
        if answer.status_code != 201:
            sys.exit(f"bench: creating a project failed: {answer.status_code} {answer.text}")
        sent[name] = (at, time.time())
    return sent


def _wait_for_arrivals(base: str, expected: int) -> dict[str, float]:
    deadline = time.monotonic() + 60
    while receiver_stats(base)["count"] < expected:
        if time.monotonic() > deadline:
            sys.exit(f"bench: only {receiver_stats(base)['count']} of {expected} arrived")
        time.sleep(0.1)
    arrivals = httpx.get(f"{base}/arrivals", timeout=10).json()["arrivals"]
    return {name: at for _, at, name in arrivals}


def _percentile(ordered: list[float], fraction: float) -> float:
    return ordered[min(len(ordered) - 1, round(fraction * (len(ordered) - 1)))]


# --- the run -----------------------------------------------------------------------------


def benchmark(options: Options) -> dict[str, Any]:
    load_before = os.getloadavg()[0]
    results: dict[str, Any] = {"throughput": {}, "latency": {}}
    for backend in options.backends:
        with tempfile.TemporaryDirectory(prefix=f"rostra-bench-webhooks-{backend}-") as tmp:
            print(f"throughput on {backend} ...", file=sys.stderr)
            results["throughput"][backend] = throughput(backend, options, Path(tmp))
        with tempfile.TemporaryDirectory(prefix=f"rostra-bench-webhooks-{backend}-") as tmp:
            print(f"latency on {backend} ...", file=sys.stderr)
            results["latency"][backend] = latency(backend, options, Path(tmp))
    return {
        "benchmark": "webhooks",
        "finished_at": datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
        **results,
        "method": asdict(options) | {"postgres_url": _without_password(options.postgres_url)},
        "environment": {"load_average_before": round(load_before, 2), **_environment()},
    }


def _environment() -> dict[str, Any]:
    commit = subprocess.run(
        ["git", "-C", str(REPO), "rev-parse", "--short", "HEAD"], capture_output=True, text=True
    )
    return {
        "commit": commit.stdout.strip() or None,
        "python": platform.python_version(),
        "cpu_count": os.cpu_count(),
        "load_average_after": [round(load, 2) for load in os.getloadavg()],
        "packages": {
            name: metadata.version(name)
            for name in ("httpx", "httpcore", "sqlalchemy", "asyncpg", "aiosqlite", "uvicorn")
        },
    }


def _without_password(url: str) -> str:
    scheme, _, rest = url.partition("://")
    credentials, at, host = rest.rpartition("@")
    return f"{scheme}://{credentials.split(':')[0]}{at}{host}" if at else url


def print_table(result: dict[str, Any]) -> None:
    print()
    print(f"{'backend':<10}{'deliveries/s':>14}{'recorded/s':>12}{'p50 ms':>9}{'p99 ms':>9}")
    for backend in result["throughput"]:
        t, lat = result["throughput"][backend], result["latency"][backend]
        print(
            f"{backend:<10}{t['deliveries_per_second']:>14}{t['recorded_per_second']:>12}"
            f"{lat['p50_ms']:>9}{lat['p99_ms']:>9}"
        )
    print(f"targets: {THROUGHPUT_TARGET:.0f} deliveries/s, p50 < {P50_TARGET_MS:.0f} ms")


def parse_options(argv: list[str] | None = None) -> Options:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--backends", default="sqlite,postgres", help="Comma-separated.")
    parser.add_argument("--deliveries", type=int, default=20_000, help="Pre-loaded deliveries.")
    parser.add_argument("--endpoints", type=int, default=20, help="Endpoints they go to.")
    parser.add_argument("--latency-events", type=int, default=300, help="Projects created.")
    parser.add_argument("--latency-rate", type=float, default=20.0, help="Projects per second.")
    parser.add_argument(
        "--postgres-url",
        default=os.environ.get(
            "ROSTRA_BENCH_POSTGRES_URL", "postgresql+asyncpg://postgres@127.0.0.1:5432/postgres"
        ),
        help="A server where the bench may create (and drop) a database of its own.",
    )
    parser.add_argument("--worker-cpu", type=int, default=0, help="Core of the worker/server.")
    parser.add_argument("--receiver-cpu", type=int, default=1, help="Core of the receiver.")
    args = parser.parse_args(argv)
    backends = [b.strip() for b in args.backends.split(",") if b.strip()]
    if not backends or not set(backends) <= {"sqlite", "postgres"}:
        parser.error("--backends is a list of sqlite and postgres")
    if not 100 <= args.deliveries <= 200_000 or not 1 <= args.endpoints <= 1_000:
        parser.error("keep it bounded: --deliveries 100..200000, --endpoints 1..1000")
    if not 10 <= args.latency_events <= 10_000 or not 0 < args.latency_rate <= 500:
        parser.error("keep it bounded: --latency-events 10..10000, --latency-rate up to 500")
    usable = os.sched_getaffinity(0)
    if args.worker_cpu == args.receiver_cpu or not {args.worker_cpu, args.receiver_cpu} <= usable:
        parser.error(f"the worker and the receiver need two different cores of {sorted(usable)}")
    return Options(
        backends=backends,
        deliveries=args.deliveries,
        endpoints=args.endpoints,
        latency_events=args.latency_events,
        latency_rate=args.latency_rate,
        postgres_url=args.postgres_url,
        worker_cpu=args.worker_cpu,
        receiver_cpu=args.receiver_cpu,
    )


def main() -> None:
    result = benchmark(parse_options())
    path = write_result("webhooks", result)
    print_table(result)
    print(f"\nwritten to {path.relative_to(REPO)}")


if __name__ == "__main__":
    main()
