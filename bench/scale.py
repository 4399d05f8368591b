"""Scale: list latency over 1,000,000 projects on PostgreSQL and SQLite (issue 3).

One command runs it all (see bench/README.md)::

    .venv/bin/python bench/scale.py                  # both databases, 1,000,000 projects
    .venv/bin/python bench/scale.py --rows 100000 --databases sqlite

Per database: a fresh database (PostgreSQL: one created for the run and dropped after it;
SQLite: a temporary file) migrated and given a user and an API key through the CLI, then
bulk-loaded (COPY on PostgreSQL, executemany in one transaction on SQLite) with ``--rows``
projects, nearly all of them the benchmark user's (they hold the owner role in each), the rest
other users' with every visibility, so the visibility clause has real work to do. A real
``rostra serve`` pinned to one core then answers, one request at a time over a kept-alive
connection, in interleaved rounds:

- ``first_offset``: ``GET /projects?limit=20`` (offset mode, which counts ``total``),
- ``first_cursor``: ``GET /projects?limit=20&cursor=`` (cursor mode's first page),
- ``deep_cursor``: the cursor page at depth ``rows / 2``; the cursor is minted with the
  server's own ``CursorCodec`` and secret at the keyset position of the row before it,
- ``deep_offset``: ``GET /projects?limit=20&offset=<rows / 2>``,
- ``user``: ``GET /api/v1/user``, the same request path without a list (the floor).

The script checks that the deep cursor page and the deep offset page hold the same rows, then
reports medians and the target ratio ``deep_cursor / first_cursor`` (at most 1.5).
"""

from __future__ import annotations

import argparse
import asyncio
import http.client
import json
import os
import secrets
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import asyncpg
import orjson
from foundation import (
    BENCH_USERNAME,
    REPO,
    RESULTS_DIR,
    free_port,
    prepare_rostra,
    rostra_command,
    serving,
)

from rostra.core.listing import CursorCodec

DEEP_CURSOR_TARGET = 1.5
"""The deep cursor page may take at most this many times the first cursor page's median."""
PAGE = 20
OTHER_OWNERS = 9
EPOCH = datetime(2024, 1, 1, tzinfo=UTC)
SETTINGS_JSON = '{"auto_deploy": false, "notifications": true}'
LOAD_BATCH = 50_000
DEFAULT_POSTGRES = "postgresql://postgres@127.0.0.1:5432/postgres"


@dataclass(frozen=True)
class Options:
    rows: int
    databases: tuple[str, ...]
    rounds: int
    offset_rounds: int
    postgres_url: str
    server_cpu: int


@dataclass
class Latencies:
    path: str
    samples_ms: list[float] = field(default_factory=list)

    def summary(self) -> dict[str, Any]:
        ordered = sorted(self.samples_ms)
        return {
            "path": self.path,
            "requests": len(ordered),
            "median_ms": round(statistics.median(ordered), 3),
            "min_ms": round(ordered[0], 3),
            "max_ms": round(ordered[-1], 3),
        }


# --- the rows ----------------------------------------------------------------------------


@dataclass(frozen=True)
class ProjectRow:
    id: int
    name: str
    description: str | None
    visibility: str
    status: str
    owner_id: int
    created_at: datetime


def project_rows(rows: int, bench_user: int, others: list[int]) -> Iterator[ProjectRow]:
    """Projects 1..rows, one second apart (whole seconds, as the API shows them). With
    ``others``, one in 20 belongs to one of them, with a private, internal or public visibility
    in turn; of the benchmark user's own, one in 10 is internal and one in 50 public. The
    benchmark user sees all of them except the other users' private ones."""
    for number in range(1, rows + 1):
        if others and number % 20 == 0:
            owner = others[number // 20 % len(others)]
            visibility = ("private", "internal", "public")[number // 20 % 3]
        else:
            owner = bench_user
            visibility = (
                "public" if number % 50 == 1 else "internal" if number % 10 == 3 else "private"
            )
        yield ProjectRow(
            id=number,
            name=f"project-{number:07d}",
            description=None if number % 4 else f"Project number {number}",
            visibility=visibility,
            status="archived" if number % 25 == 7 else "active",
            owner_id=owner,
            created_at=EPOCH + timedelta(seconds=number),
        )


def batches(rows: Iterator[ProjectRow], size: int) -> Iterator[list[ProjectRow]]:
    batch: list[ProjectRow] = []
    for row in rows:
        batch.append(row)
        if len(batch) == size:
            yield batch
            batch = []
    if batch:
        yield batch


def progress(loaded: int, total: int, started: float) -> None:
    rate = loaded / max(time.monotonic() - started, 1e-9)
    print(f"    {loaded:>9,} / {total:,} projects  ({rate:,.0f} rows/s)", flush=True)


# --- SQLite ------------------------------------------------------------------------------


def sqlite_time(moment: datetime) -> str:
    """SQLAlchemy's SQLite DATETIME text for a UTC time."""
    return moment.strftime("%Y-%m-%d %H:%M:%S.%f")


def load_sqlite(path: Path, rows: int, *, other_owners: int = OTHER_OWNERS) -> None:
    connection = sqlite3.connect(path)
    try:
        connection.execute("PRAGMA synchronous=OFF")
        bench_user, others = add_other_owners_sqlite(connection, other_owners)
        started = time.monotonic()
        loaded = 0
        with connection:
            for batch in batches(project_rows(rows, bench_user, others), LOAD_BATCH):
                connection.executemany(
                    "INSERT INTO projects (id, name, description, visibility, status, settings,"
                    " owner_id, created_at, updated_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
                    [
                        (
                            r.id,
                            r.name,
                            r.description,
                            r.visibility,
                            r.status,
                            SETTINGS_JSON,
                            r.owner_id,
                            sqlite_time(r.created_at),
                            sqlite_time(r.created_at),
                        )
                        for r in batch
                    ],
                )
                connection.executemany(
                    "INSERT INTO project_members (project_id, user_id, role, created_at,"
                    " updated_at) VALUES (?, ?, 'owner', ?, ?)",
                    [
                        (r.id, r.owner_id, sqlite_time(r.created_at), sqlite_time(r.created_at))
                        for r in batch
                    ],
                )
                loaded += len(batch)
                if loaded % (LOAD_BATCH * 4) == 0 or loaded == rows:
                    progress(loaded, rows, started)
    finally:
        connection.close()


def add_other_owners_sqlite(connection: sqlite3.Connection, count: int) -> tuple[int, list[int]]:
    now = sqlite_time(datetime.now(UTC))
    with connection:
        for n in range(count):
            connection.execute(
                "INSERT INTO users (username, email, role, plan, created_at, updated_at)"
                " VALUES (?, ?, 'member', 'free', ?, ?)",
                (f"other{n}", f"other{n}@example.com", now, now),
            )
    (bench_user,) = connection.execute(
        "SELECT id FROM users WHERE username = ?", (BENCH_USERNAME,)
    ).fetchone()
    others = [
        row[0] for row in connection.execute("SELECT id FROM users WHERE id != ?", (bench_user,))
    ]
    return bench_user, others


# --- PostgreSQL --------------------------------------------------------------------------


async def load_postgres(dsn: str, rows: int) -> None:
    connection = await asyncpg.connect(dsn)
    try:
        now = datetime.now(UTC)
        for n in range(OTHER_OWNERS):
            await connection.execute(
                "INSERT INTO users (username, email, role, plan, created_at, updated_at)"
                " VALUES ($1, $2, 'member', 'free', $3, $3)",
                f"other{n}",
                f"other{n}@example.com",
                now,
            )
        bench_user = await connection.fetchval(
            "SELECT id FROM users WHERE username = $1", BENCH_USERNAME
        )
        others = [
            r["id"]
            for r in await connection.fetch("SELECT id FROM users WHERE id != $1", bench_user)
        ]
        started = time.monotonic()
        loaded = 0
        async with connection.transaction():
            for batch in batches(project_rows(rows, bench_user, others), LOAD_BATCH):
                await connection.copy_records_to_table(
                    "projects",
                    columns=[
                        "id",
                        "name",
                        "description",
                        "visibility",
                        "status",
                        "settings",
                        "owner_id",
                        "created_at",
                        "updated_at",
                    ],
                    records=[
                        (
                            r.id,
                            r.name,
                            r.description,
                            r.visibility,
                            r.status,
                            SETTINGS_JSON,
                            r.owner_id,
                            r.created_at,
                            r.created_at,
                        )
                        for r in batch
                    ],
                )
                await connection.copy_records_to_table(
                    "project_members",
                    columns=["project_id", "user_id", "role", "created_at", "updated_at"],
                    records=[
                        (r.id, r.owner_id, "owner", r.created_at, r.created_at) for r in batch
                    ],
                )
                loaded += len(batch)
                if loaded % (LOAD_BATCH * 4) == 0 or loaded == rows:
                    progress(loaded, rows, started)
            # COPY with explicit ids leaves the sequence behind; a later insert must not clash.
            await connection.execute(
                "SELECT setval(pg_get_serial_sequence('projects', 'id'), $1)", rows
            )
        print("    VACUUM ANALYZE (what autovacuum does after a bulk load)", flush=True)
        await connection.execute("VACUUM ANALYZE projects")
        await connection.execute("VACUUM ANALYZE project_members")
    finally:
        await connection.close()


async def admin_sql(dsn: str, sql: str) -> None:
    connection = await asyncpg.connect(dsn)
    try:
        await connection.execute(sql)
    finally:
        await connection.close()


def with_database(dsn: str, name: str) -> str:
    return dsn.rsplit("/", 1)[0] + "/" + name


# --- Rostra ------------------------------------------------------------------------------


class Client:
    """One kept-alive HTTP/1.1 connection; requests one at a time, timed end to end."""

    def __init__(self, port: int, api_key: str) -> None:
        self._connection = http.client.HTTPConnection("127.0.0.1", port, timeout=120)
        self._headers = {"Authorization": f"Bearer {api_key}"}

    def get(self, path: str) -> tuple[float, Any]:
        started = time.perf_counter()
        self._connection.request("GET", path, headers=self._headers)
        response = self._connection.getresponse()
        body = response.read()
        elapsed_ms = (time.perf_counter() - started) * 1000
        if response.status != 200:
            sys.exit(f"bench: GET {path} answered {response.status}: {body[:500]!r}")
        return elapsed_ms, orjson.loads(body)

    def close(self) -> None:
        self._connection.close()


def measure(options: Options, client: Client, secret: str) -> dict[str, Latencies]:
    depth = options.rows // 2
    base = f"/api/v1/projects?limit={PAGE}"
    # The row just before the deep page, as the server orders the caller's visible projects.
    _, before = client.get(f"/api/v1/projects?limit=1&offset={depth - 1}")
    anchor = before["data"][0]
    cursor = CursorCodec(secret).encode(
        "created_at", "desc", datetime.fromisoformat(anchor["created_at"]), anchor["id"]
    )
    paths = {
        "user": "/api/v1/user",  # the floor: the same request path without a list
        "first_offset": base,
        "first_cursor": f"{base}&cursor=",
        "deep_cursor": f"{base}&cursor={cursor}",
        "deep_offset": f"{base}&offset={depth}",
    }
    _, by_cursor = client.get(paths["deep_cursor"])
    _, by_offset = client.get(paths["deep_offset"])
    if [p["id"] for p in by_cursor["data"]] != [p["id"] for p in by_offset["data"]]:
        sys.exit("bench: the deep cursor page and the deep offset page hold different rows")
    if len(by_cursor["data"]) != PAGE:
        sys.exit(f"bench: the deep page has {len(by_cursor['data'])} rows, not {PAGE}")
    results = {name: Latencies(path) for name, path in paths.items()}
    for name, path in paths.items():  # warm-up: caches, prepared statements
        for _ in range(3 if name != "deep_offset" else 1):
            client.get(path)
    started = time.monotonic()
    for round_number in range(1, options.rounds + 1):
        for name, path in paths.items():
            if name == "deep_offset" and round_number > options.offset_rounds:
                continue
            elapsed, _ = client.get(path)
            results[name].samples_ms.append(elapsed)
        if round_number % 10 == 0 or round_number == options.rounds:
            medians = "  ".join(
                f"{n} {statistics.median(r.samples_ms):.2f} ms" for n, r in results.items()
            )
            print(
                f"    round {round_number}: {medians}  ({time.monotonic() - started:.0f} s)",
                flush=True,
            )
    return results


def run_database(kind: str, options: Options) -> dict[str, Any]:
    with tempfile.TemporaryDirectory(prefix=f"rostra-scale-{kind}-") as tmp:
        workdir = Path(tmp)
        database_name = f"rostra_scale_{secrets.token_hex(4)}"
        if kind == "postgres":
            asyncio.run(admin_sql(options.postgres_url, f'CREATE DATABASE "{database_name}"'))
            dsn = with_database(options.postgres_url, database_name)
            url = dsn.replace("postgresql://", "postgresql+asyncpg://", 1)
        else:
            url = f"sqlite+aiosqlite:///{workdir / 'rostra.db'}"
        try:
            print(f"{kind}: migrate, user and key through the CLI", flush=True)
            prepared = prepare_rostra(workdir, url)
            print(f"{kind}: loading {options.rows:,} projects", flush=True)
            load_started = time.monotonic()
            if kind == "postgres":
                asyncio.run(load_postgres(dsn, options.rows))
            else:
                load_sqlite(workdir / "rostra.db", options.rows)
            load_seconds = time.monotonic() - load_started
            port = free_port()
            with serving(
                rostra_command(port),
                env=prepared.env,
                cwd=workdir,
                ready_url=f"http://127.0.0.1:{port}/health",
                cpu=options.server_cpu,
            ):
                client = Client(port, prepared.api_key)
                try:
                    print(f"{kind}: measuring ({options.rounds} rounds)", flush=True)
                    latencies = measure(options, client, prepared.secret_key)
                finally:
                    client.close()
        finally:
            if kind == "postgres":
                asyncio.run(
                    admin_sql(
                        options.postgres_url,
                        f'DROP DATABASE IF EXISTS "{database_name}" WITH (FORCE)',
                    )
                )
    first = statistics.median(latencies["first_cursor"].samples_ms)
    deep = statistics.median(latencies["deep_cursor"].samples_ms)
    return {
        "load_seconds": round(load_seconds, 1),
        "latency": {name: value.summary() for name, value in latencies.items()},
        "deep_cursor/first_cursor": {
            "value": round(deep / first, 3),
            "target_at_most": DEEP_CURSOR_TARGET,
            "met": deep / first <= DEEP_CURSOR_TARGET,
        },
    }


def print_table(result: dict[str, Any]) -> None:
    print()
    print(f"{'database':<10}{'page':<14}{'median ms':>11}{'min ms':>9}{'max ms':>9}{'n':>5}")
    for kind, figures in result["databases"].items():
        for name, summary in figures["latency"].items():
            print(
                f"{kind:<10}{name:<14}{summary['median_ms']:>11.2f}{summary['min_ms']:>9.2f}"
                f"{summary['max_ms']:>9.2f}{summary['requests']:>5}"
            )
        ratio = figures["deep_cursor/first_cursor"]
        verdict = "met" if ratio["met"] else "NOT met"
        print(
            f"{kind:<10}deep_cursor / first_cursor = {ratio['value']:.2f}"
            f"  (target <= {DEEP_CURSOR_TARGET}: {verdict})"
        )
    print(
        f"\nload average before {result['load_average_before']},"
        f" after {result['load_average_after']}"
    )


def parse_options(argv: list[str] | None = None) -> Options:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--rows", type=int, default=1_000_000, help="Projects to load (1,000..2,000,000)."
    )
    parser.add_argument("--databases", default="postgres,sqlite", help="postgres, sqlite or both.")
    parser.add_argument("--rounds", type=int, default=50, help="Measured requests per page kind.")
    parser.add_argument(
        "--offset-rounds", type=int, default=10, help="Measured deep offset requests (slow ones)."
    )
    parser.add_argument(
        "--postgres-url", default=DEFAULT_POSTGRES, help="Server to create the scratch database on."
    )
    parser.add_argument("--server-cpu", type=int, default=0, help="Core the server runs on.")
    args = parser.parse_args(argv)
    databases = tuple(part.strip() for part in args.databases.split(",") if part.strip())
    if not databases or not set(databases) <= {"postgres", "sqlite"}:
        parser.error("--databases: postgres, sqlite or postgres,sqlite")
    if not 1_000 <= args.rows <= 2_000_000:
        parser.error("--rows must be 1,000..2,000,000")
    if not 1 <= args.rounds <= 500 or not 1 <= args.offset_rounds <= args.rounds:
        parser.error("keep it bounded: --rounds 1..500, --offset-rounds 1..--rounds")
    return Options(
        rows=args.rows,
        databases=databases,
        rounds=args.rounds,
        offset_rounds=args.offset_rounds,
        postgres_url=args.postgres_url,
        server_cpu=args.server_cpu,
    )


def main() -> None:
    options = parse_options()
    load_before = [round(load, 2) for load in os.getloadavg()]
    started = datetime.now(UTC)
    databases = {kind: run_database(kind, options) for kind in options.databases}
    commit = subprocess.run(
        ["git", "-C", str(REPO), "rev-parse", "--short", "HEAD"],
        capture_output=True,
        text=True,
        check=False,
    )
    result = {
        "benchmark": "scale",
        "started_at": started.strftime("%Y-%m-%dT%H:%M:%SZ"),
        "rows": options.rows,
        "page": PAGE,
        "depth": options.rows // 2,
        "rounds": options.rounds,
        "offset_rounds": options.offset_rounds,
        "databases": databases,
        "commit": commit.stdout.strip() or None,
        "load_average_before": load_before,
        "load_average_after": [round(load, 2) for load in os.getloadavg()],
    }
    RESULTS_DIR.mkdir(exist_ok=True)
    path = RESULTS_DIR / f"scale-{started.strftime('%Y%m%dT%H%M%SZ')}.json"
    path.write_text(json.dumps(result, indent=2) + "\n")
    print_table(result)
    print(f"written to {path.relative_to(REPO)}")


if __name__ == "__main__":
    main()
