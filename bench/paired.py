"""Paired servers: Rostra served two or more ways side by side, one endpoint, which is cheaper.

    .venv/bin/python bench/paired.py create --variant main --variant other PYTHONPATH=/tmp/other/src
    .venv/bin/python bench/paired.py user --variant on --variant off ROSTRA_RATE_LIMIT_ENABLED=false
    .venv/bin/python bench/paired.py create --variant main --syscalls   # what it asks the kernel

On these machines a server's speed drifts by a third from one minute to the next, so two trees
or two settings are compared only in one run: every variant is up at once, on one database,
pinned to the same core, and the measured runs go round the variants in turn. A variant is a
name and the environment it adds (a ``ROSTRA_*`` setting, or ``PYTHONPATH`` naming another
checkout's ``src``, whose code then serves). Reported per variant: median req/s, and the server's
user and system CPU per request (from ``/proc``, so a change that moves work into or out of the
kernel shows as such), each against the first variant. ``--syscalls`` runs each variant once
more under ``strace -c`` (everything slows several times, so only the counts per request mean
anything) and prints the system calls it makes per request: how a create's savepoint journal
going to a temporary file was found (bench/README.md, "Resource throughput").

The database is resources.py's (10,000 projects of the caller's) and the endpoints are its and
foundation.py's ``GET /api/v1/user``; creates are deleted after every run, as resources.py does.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from contextlib import ExitStack
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from foundation import (
    REPO,
    WRK_REPORT_SCRIPT,
    Options,
    ensure_wrk,
    fetch,
    free_port,
    prepare_rostra,
    rostra_command,
    serving,
    write_result,
)
from resources import (
    CREATE_SCRIPT,
    CURSOR_DEPTH,
    PROJECTS,
    Endpoint,
    forget_created,
    run_wrk_with,
)
from scale import load_sqlite

ENDPOINTS = ("user", "get_one", "list_total", "cursor_page", "create")
SYSCALLS_SHOWN = 12
STRACE_ATTACH_SECONDS = 0.5
"""Given to strace to attach before the traced run starts, so that run is counted whole."""
SYSCALLS_SHOWN_FROM = 0.05
"""Calls per request below which a system call is left out (connection set-up and the like)."""


@dataclass
class Variant:
    name: str
    env: dict[str, str]
    pid: int = 0
    endpoint: Endpoint | None = None
    runs: list[tuple[float, float, float]] = field(default_factory=list)
    """(req/s, user us per request, system us per request) of each measured run."""


def cpu_split(pid: int) -> tuple[float, float]:
    """User and system CPU seconds the process has used so far."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    ticks = os.sysconf("SC_CLK_TCK")
    return int(fields[11]) / ticks, int(fields[12]) / ticks


def endpoint_of(name: str, base: str, auth: dict[str, str], script: Path) -> Endpoint:
    projects = f"{base}/api/v1/projects"
    if name == "user":
        return Endpoint(name, f"{base}/api/v1/user")
    if name == "get_one":
        return Endpoint(name, f"{projects}/{PROJECTS // 2}")
    if name == "list_total":
        return Endpoint(name, f"{projects}?limit=20")
    if name == "cursor_page":
        deep = json.loads(fetch(f"{projects}?limit=20&offset={CURSOR_DEPTH}", auth))
        return Endpoint(name, f"{projects}?limit=20&cursor={deep['pagination']['next_cursor']}")
    return Endpoint(name, projects, script)


def syscalls_per_request(strace_output: Path, requests: int) -> list[tuple[str, float]]:
    """The most frequent system calls of an ``strace -c`` summary, per request."""
    counted: list[tuple[str, float]] = []
    for line in strace_output.read_text().splitlines():
        parts = line.split()
        if len(parts) < 5 or not parts[0].replace(".", "").isdigit() or parts[-1] == "total":
            continue
        per_request = int(parts[3]) / max(requests, 1)
        if per_request >= SYSCALLS_SHOWN_FROM:
            counted.append((parts[-1], per_request))
    counted.sort(key=lambda item: -item[1])
    return counted[:SYSCALLS_SHOWN]


def benchmark(args: argparse.Namespace) -> dict[str, Any]:
    wrk = ensure_wrk()
    options = Options(
        duration=args.duration,
        warmup=args.warmup,
        runs=args.runs,
        connections=args.connections,
        server_cpu=args.server_cpu,
        client_cpu=args.client_cpu,
    )
    variants = [
        Variant(name, {key: value for key, _, value in (pair.partition("=") for pair in env)})
        for name, *env in args.variant
    ]
    load_before = [round(load, 2) for load in os.getloadavg()]
    syscalls: dict[str, list[tuple[str, float]]] = {}
    with tempfile.TemporaryDirectory(prefix="rostra-bench-paired-") as tmp, ExitStack() as stack:
        workdir = Path(tmp)
        rostra = prepare_rostra(workdir)
        database = workdir / "rostra.db"
        if args.endpoint != "user":
            load_sqlite(database, PROJECTS, other_owners=0)
        auth = {"Authorization": f"Bearer {rostra.api_key}"}
        script = workdir / "create.lua"
        script.write_text(CREATE_SCRIPT + WRK_REPORT_SCRIPT.read_text())

        def run(variant: Variant, seconds: int) -> tuple[float, float, float, int]:
            assert variant.endpoint is not None
            user_before, system_before = cpu_split(variant.pid)
            measured = run_wrk_with(
                wrk, variant.endpoint, seconds=seconds, options=options, headers=auth
            )
            user_after, system_after = cpu_split(variant.pid)
            if args.endpoint == "create":
                forget_created(database)
            if measured.failed_requests:
                sys.exit(f"bench: {variant.name} failed {measured.failed_requests} requests")
            per_request = 1e6 / max(measured.requests, 1)
            return (
                measured.requests_per_second,
                (user_after - user_before) * per_request,
                (system_after - system_before) * per_request,
                measured.requests,
            )

        for variant in variants:
            port = free_port()
            base = f"http://127.0.0.1:{port}"
            server = stack.enter_context(
                serving(
                    rostra_command(port),
                    env={**rostra.env, **variant.env},
                    cwd=workdir,
                    ready_url=f"{base}/health",
                    cpu=options.server_cpu,
                )
            )
            variant.pid = server.pid
            variant.endpoint = endpoint_of(args.endpoint, base, auth, script)
        for variant in variants:
            run(variant, options.warmup)
        for round_number in range(1, options.runs + 1):
            # A different variant first each round, so none always follows another.
            shift = (round_number - 1) % len(variants)
            for variant in variants[shift:] + variants[:shift]:
                rps, user_us, system_us, _ = run(variant, options.duration)
                variant.runs.append((rps, user_us, system_us))
                print(
                    f"  round {round_number} {variant.name:<12}{rps:9.1f} req/s"
                    f"  user {user_us:7.1f} us  system {system_us:6.1f} us",
                    flush=True,
                )
        if args.syscalls:
            for variant in variants:
                output = workdir / f"strace-{variant.name}.txt"
                strace = subprocess.Popen(
                    ["strace", "-c", "-f", "-p", str(variant.pid), "-o", str(output)],
                    stderr=subprocess.DEVNULL,
                )
                time.sleep(STRACE_ATTACH_SECONDS)
                _, _, _, requests = run(variant, options.duration)
                strace.send_signal(signal.SIGINT)
                strace.wait()
                syscalls[variant.name] = syscalls_per_request(output, requests)
    return report(variants, syscalls, args, load_before)


def report(
    variants: list[Variant],
    syscalls: dict[str, list[tuple[str, float]]],
    args: argparse.Namespace,
    load_before: list[float],
) -> dict[str, Any]:
    medians = {
        variant.name: [statistics.median(run[i] for run in variant.runs) for i in range(3)]
        for variant in variants
    }
    first = medians[variants[0].name]
    first_runs = variants[0].runs
    return {
        "benchmark": "paired",
        "finished_at": datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "endpoint": args.endpoint,
        "rounds": args.runs,
        "duration_s": args.duration,
        "connections": args.connections,
        "load_average_before": load_before,
        "variants": {
            variant.name: {
                "env": variant.env,
                "median_requests_per_second": medians[variant.name][0],
                "median_user_us_per_request": round(medians[variant.name][1], 1),
                "median_system_us_per_request": round(medians[variant.name][2], 1),
                "requests_per_second_against_first": round(medians[variant.name][0] / first[0], 3),
                "paired_against_first": round(
                    statistics.median(
                        run[0] / base[0] for run, base in zip(variant.runs, first_runs, strict=True)
                    ),
                    3,
                ),
                "runs": variant.runs,
                "syscalls_per_request": syscalls.get(variant.name),
            }
            for variant in variants
        },
    }


def print_table(result: dict[str, Any]) -> None:
    rounds, seconds = result["rounds"], result["duration_s"]
    print(f"\n{result['endpoint']}: medians of {rounds} rounds of {seconds} s")
    print(
        f"{'variant':<12}{'req/s':>10}{'user us':>10}{'system us':>11}{'req/s vs first':>16}"
        f"{'paired':>8}"
    )
    for name, variant in result["variants"].items():
        print(
            f"{name:<12}{variant['median_requests_per_second']:10.1f}"
            f"{variant['median_user_us_per_request']:10.1f}"
            f"{variant['median_system_us_per_request']:11.1f}"
            f"{variant['requests_per_second_against_first']:16.3f}"
            f"{variant['paired_against_first']:8.3f}"
        )
    print(
        "paired: the median over rounds of the variant's req/s over the first's in that round, "
        "steadier than a ratio of medians when the host drifts"
    )
    for name, variant in result["variants"].items():
        if variant["syscalls_per_request"]:
            calls = ", ".join(f"{call} {n:.1f}" for call, n in variant["syscalls_per_request"])
            print(f"\n{name}, system calls per request (strace -c): {calls}")


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("endpoint", choices=ENDPOINTS)
    parser.add_argument(
        "--variant",
        nargs="+",
        action="append",
        required=True,
        metavar=("NAME", "KEY=VALUE"),
        help="A server: its name, then what it adds to the environment (repeat for each).",
    )
    parser.add_argument("--duration", type=int, default=8, help="Seconds per measured run.")
    parser.add_argument("--warmup", type=int, default=3, help="Seconds of each warm-up run.")
    parser.add_argument("--runs", type=int, default=5, help="Measured rounds.")
    parser.add_argument("--connections", type=int, default=32, help="wrk connections.")
    parser.add_argument("--server-cpu", type=int, default=0, help="Core every server runs on.")
    parser.add_argument("--client-cpu", type=int, default=1, help="Core wrk runs on.")
    parser.add_argument("--syscalls", action="store_true", help="One more run each under strace.")
    args = parser.parse_args(argv)
    if not 1 <= args.duration <= 60 or not 1 <= args.warmup <= 30 or not 1 <= args.runs <= 30:
        parser.error("keep it bounded: --duration 1..60, --warmup 1..30, --runs 1..30")
    names = [name for name, *_ in args.variant]
    if len(set(names)) != len(names) or len(names) > 4:
        parser.error("one to four variants, each with a name of its own")
    for _, *env in args.variant:
        if any("=" not in pair for pair in env):
            parser.error("a variant's environment is KEY=VALUE pairs")
    if args.syscalls and shutil.which("strace") is None:
        parser.error("--syscalls needs strace (apt-get install strace)")
    if args.server_cpu == args.client_cpu:
        parser.error("the servers and wrk need two different cores")
    return args


def main() -> None:
    result = benchmark(parse_args())
    path = write_result("paired", result)
    print_table(result)
    print(f"\nwritten to {path.relative_to(REPO)}")


if __name__ == "__main__":
    main()
