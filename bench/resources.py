"""Resource throughput: projects on one ``rostra serve`` beside the bare FastAPI ceiling (issue 3).

One command runs it all (see bench/README.md)::

    .venv/bin/python bench/resources.py

A ``rostra serve`` on a fresh SQLite file (user and API key made through the CLI, as in
foundation.py) holding 10,000 projects of the caller's (bulk-loaded as bench/scale.py does), and
bench/ceiling.py answering ``GET /user``, both up for the whole run, each pinned to the same core
and wrk to the other. After a warm-up of each, the measured runs go round the five in turn (so a
machine that gets busier part-way slows all alike):

- ``get_one``: ``GET /projects/{id}``,
- ``list_total``: ``GET /projects?limit=20`` (offset mode, with ``total``),
- ``cursor_page``: ``GET /projects?limit=20&cursor=<a position 5,000 rows deep>``,
- ``create``: ``POST /projects`` with a fresh ``Idempotency-Key`` per request (a wrk Lua
  script); each writes its event row and its idempotency record. After every create run the
  rows it made are deleted again, so every list run counts 10,000 projects,
- ``ceiling_user``: the ceiling's ``GET /user``.

Reported: median req/s per endpoint, each Rostra endpoint as a fraction of the ceiling against
its target, and the server's CPU time per request (steadier on a busy machine).
"""

from __future__ import annotations

import json
import os
import sqlite3
import statistics
import subprocess
import sys
import tempfile
from contextlib import ExitStack
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from foundation import (
    REPO,
    WRK_REPORT_SCRIPT,
    Measurement,
    Options,
    WrkRun,
    ceiling_command,
    check_same_body,
    clean_environment,
    ensure_wrk,
    environment,
    fetch,
    free_port,
    parse_options,
    parse_wrk_output,
    pinned,
    prepare_rostra,
    rostra_command,
    serving,
    write_result,
    wrk_command,
)
from scale import load_sqlite

from ratelimit import cpu_seconds

PROJECTS = 10_000
TARGETS = {"get_one": 0.5, "list_total": 0.23, "cursor_page": 0.32, "create": 0.25}
"""The least each endpoint's req/s may be, as a fraction of the ceiling's GET /user."""
CURSOR_DEPTH = 5_000

CREATE_SCRIPT = """
-- POST /projects with a new Idempotency-Key and name per request.
local counter = 0
local prefix = string.format("%x%x", os.time(), math.random(1, 2^30))
request = function()
  counter = counter + 1
  local key = prefix .. "-" .. counter
  wrk.headers["Idempotency-Key"] = key
  wrk.headers["Content-Type"] = "application/json"
  return wrk.format("POST", nil, nil, '{"name":"bench ' .. key .. '"}')
end
"""


@dataclass(frozen=True)
class Endpoint:
    name: str
    url: str
    script: Path | None = None


def run_wrk_with(
    wrk: str,
    endpoint: Endpoint,
    *,
    seconds: int,
    options: Options,
    headers: dict[str, str],
) -> WrkRun:
    command = wrk_command(
        wrk, endpoint.url, seconds=seconds, connections=options.connections, headers=headers
    )
    if endpoint.script is not None:
        command[command.index(str(WRK_REPORT_SCRIPT))] = str(endpoint.script)
    done = subprocess.run(
        pinned(options.client_cpu, command), capture_output=True, text=True, check=False
    )
    if done.returncode != 0:
        sys.exit(f"bench: wrk failed ({done.returncode}):\n{done.stderr.strip()}")
    return parse_wrk_output(done.stdout)


def forget_created(database: Path) -> None:
    """Back to the loaded projects: the create runs' rows, events and idempotency records go."""
    connection = sqlite3.connect(database, timeout=30)
    try:
        with connection:
            connection.execute("DELETE FROM project_members WHERE project_id > ?", (PROJECTS,))
            connection.execute("DELETE FROM projects WHERE id > ?", (PROJECTS,))
            connection.execute("DELETE FROM events")
            connection.execute("DELETE FROM idempotency_keys")
    finally:
        connection.close()


def benchmark(options: Options) -> dict[str, Any]:
    wrk = ensure_wrk()
    load_before = [round(load, 2) for load in os.getloadavg()]
    with tempfile.TemporaryDirectory(prefix="rostra-bench-res-") as tmp, ExitStack() as stack:
        workdir = Path(tmp)
        rostra = prepare_rostra(workdir)
        database = workdir / "rostra.db"
        print(f"loading {PROJECTS:,} projects of the caller's")
        load_sqlite(database, PROJECTS, other_owners=0)
        auth = {"Authorization": f"Bearer {rostra.api_key}"}
        create_script = workdir / "create.lua"
        create_script.write_text(CREATE_SCRIPT + WRK_REPORT_SCRIPT.read_text())

        port = free_port()
        base = f"http://127.0.0.1:{port}"
        server = stack.enter_context(
            serving(
                rostra_command(port),
                env=rostra.env,
                cwd=workdir,
                ready_url=f"{base}/health",
                cpu=options.server_cpu,
            )
        )
        user_body = fetch(f"{base}/api/v1/user", auth)
        health_body = fetch(f"{base}/health")
        deep = json.loads(fetch(f"{base}/api/v1/projects?limit=20&offset={CURSOR_DEPTH}", auth))
        cursor = deep["pagination"]["next_cursor"]
        projects = f"{base}/api/v1/projects"
        endpoints = [
            Endpoint("get_one", f"{projects}/{PROJECTS // 2}"),
            Endpoint("list_total", f"{projects}?limit=20"),
            Endpoint("cursor_page", f"{projects}?limit=20&cursor={cursor}"),
            Endpoint("create", projects, create_script),
        ]
        for endpoint in endpoints[:3]:
            fetch(endpoint.url, auth)

        ceiling_port = free_port()
        ceiling_base = f"http://127.0.0.1:{ceiling_port}"
        ceiling = stack.enter_context(
            serving(
                ceiling_command(ceiling_port),
                env=clean_environment(
                    BENCH_USER_JSON=user_body.decode(), BENCH_HEALTH_JSON=health_body.decode()
                ),
                cwd=workdir,
                ready_url=f"{ceiling_base}/health",
                cpu=options.server_cpu,
            )
        )
        check_same_body(fetch(f"{ceiling_base}/user"), user_body, "GET /user")
        endpoints.append(Endpoint("ceiling_user", f"{ceiling_base}/user"))
        pids = {e.name: (ceiling if e.name == "ceiling_user" else server).pid for e in endpoints}

        results = {e.name: Measurement(name=e.name, url=e.url) for e in endpoints}
        cpu_per_request: dict[str, list[float]] = {e.name: [] for e in endpoints}
        for endpoint in endpoints:
            print(f"  {endpoint.name}: warm-up {options.warmup} s")
            run_wrk_with(wrk, endpoint, seconds=options.warmup, options=options, headers=auth)
            if endpoint.name == "create":
                forget_created(database)
        for round_number in range(1, options.runs + 1):
            for endpoint in endpoints:
                cpu_before = cpu_seconds(pids[endpoint.name])
                run = run_wrk_with(
                    wrk, endpoint, seconds=options.duration, options=options, headers=auth
                )
                cpu_us = (cpu_seconds(pids[endpoint.name]) - cpu_before) / run.requests * 1e6
                results[endpoint.name].runs.append(run)
                cpu_per_request[endpoint.name].append(cpu_us)
                print(
                    f"  round {round_number} {endpoint.name:<13}{run.requests_per_second:9.1f}"
                    f" req/s  p50 {run.p50_ms:6.2f} ms  p99 {run.p99_ms:7.2f} ms"
                    f"  server CPU {cpu_us:7.1f} us/req  failed {run.failed_requests}",
                    flush=True,
                )
                if endpoint.name == "create":
                    forget_created(database)
    return report(results, cpu_per_request, options, wrk, load_before)


def report(
    results: dict[str, Measurement],
    cpu_per_request: dict[str, list[float]],
    options: Options,
    wrk: str,
    load_before: list[float],
) -> dict[str, Any]:
    ceiling = results["ceiling_user"].requests_per_second
    cpu = {name: statistics.median(values) for name, values in cpu_per_request.items()}
    ratios = {}
    for name, target in TARGETS.items():
        value = results[name].requests_per_second / ceiling
        ratios[name] = {
            "value": round(value, 3),
            "target_at_least": target,
            "met": value >= target,
            "cpu_ratio": round(cpu["ceiling_user"] / cpu[name], 3),
        }
    return {
        "benchmark": "resources",
        "finished_at": datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "valid": all(m.failed_requests == 0 for m in results.values()),
        "projects": PROJECTS,
        "ratios_to_ceiling_user": ratios,
        "endpoints": {
            name: {**m.summary(), "median_server_cpu_us_per_request": round(cpu[name], 1)}
            for name, m in results.items()
        },
        "method": {**options.__dict__, "wrk_threads": 1, "interleaved_rounds": True},
        "environment": {"load_average_before": load_before, **environment(wrk)},
    }


def print_table(result: dict[str, Any]) -> None:
    print()
    print(f"{'endpoint':<14}{'req/s':>10}{'p50 ms':>9}{'p99 ms':>9}{'CPU us/req':>12}{'failed':>8}")
    for name, summary in result["endpoints"].items():
        print(
            f"{name:<14}{summary['median_requests_per_second']:>10.1f}"
            f"{summary['median_p50_ms']:>9.2f}{summary['median_p99_ms']:>9.2f}"
            f"{summary['median_server_cpu_us_per_request']:>12.1f}"
            f"{summary['failed_requests']:>8}"
        )
    print()
    for name, item in result["ratios_to_ceiling_user"].items():
        verdict = "met" if item["met"] else "NOT met"
        print(
            f"{name:<12} / ceiling_user {item['value']:6.3f}"
            f"  (target >= {item['target_at_least']}: {verdict});"
            f"  by server CPU per request {item['cpu_ratio']:6.3f}"
        )
    load = result["environment"]
    print(
        f"\nload average before {load['load_average_before']}, after {load['load_average_after']}"
    )
    if not result["valid"]:
        print("\nINVALID: some requests failed (see failed_requests); the figures do not count.")


def main() -> None:
    result = benchmark(parse_options(description=__doc__.splitlines()[0]))
    path = write_result("resources", result)
    print_table(result)
    print(f"\nwritten to {path.relative_to(REPO)}")


if __name__ == "__main__":
    main()
