"""Rate-limit overhead: authenticated GET /api/v1/user with the limiter off, on memory, on Redis.

One command runs it all (see bench/README.md)::

    .venv/bin/python bench/ratelimit.py

Three ``rostra serve`` processes on one SQLite file, one user and one API key (made through the
CLI), differing only in the limiter: ``ROSTRA_RATE_LIMIT_ENABLED=false``; the default
in-process store; and Redis (a redis-server of the benchmark's own on a free port, so the
figures do not depend on anyone else's keys). All three are pinned to one core, wrk and Redis to
the other. The plan's limits are raised out of reach: every request is counted, none refused.

The effect measured (a few microseconds in a hundred) is smaller than what a shared machine's
throughput drifts by from one minute to the next, so the method is built for that: many short
rounds (15 of 4 s), each measuring all three servers back to back, starting with a different one
each round. A round's overhead is 1 - (req/s with the limiter) / (req/s off) within that round,
and the figure reported is the median of the rounds' overheads. Server CPU per request, from
/proc, is reported beside it the same way.
"""

from __future__ import annotations

import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
import uuid
from contextlib import ExitStack
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from foundation import (
    REPO,
    Measurement,
    Options,
    ensure_wrk,
    environment,
    fetch,
    free_port,
    parse_options,
    pinned,
    prepare_rostra,
    rostra_command,
    run_wrk,
    serving,
    write_result,
)

TARGETS = {"memory": 0.10, "redis": 0.25}
"""Most of the throughput of the limiter-off server each store may cost."""


def start_redis(cpu: int, workdir: Path) -> tuple[subprocess.Popen[bytes], str]:
    binary = shutil.which("redis-server")
    if binary is None:
        sys.exit("bench: redis-server is missing (apt-get install -y redis-server)")
    port = free_port()
    command = [binary, "--port", str(port), "--bind", "127.0.0.1", "--save", ""]
    command += ["--appendonly", "no", "--dir", str(workdir)]
    process = subprocess.Popen(pinned(cpu, command), stdout=subprocess.DEVNULL)
    url = f"redis://127.0.0.1:{port}/0"
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        ping = subprocess.run(
            ["redis-cli", "-p", str(port), "ping"], capture_output=True, text=True, check=False
        )
        if ping.stdout.strip() == "PONG":
            return process, url
        time.sleep(0.1)
    process.kill()
    sys.exit("bench: redis-server did not start")


def check_limiter(name: str, base: str, auth: dict[str, str]) -> None:
    """The limiter is on (or off) as the name says, or the comparison means nothing."""
    request = urllib.request.Request(f"{base}/api/v1/user", headers=auth)
    with urllib.request.urlopen(request, timeout=5) as response:
        counted = response.headers.get("X-RateLimit-Limit") is not None
    if counted != (name != "off"):
        sys.exit(f"bench: the {name} server {'counts' if counted else 'does not count'} requests")


def benchmark(options: Options) -> dict[str, Any]:
    wrk = ensure_wrk()
    with tempfile.TemporaryDirectory(prefix="rostra-bench-rl-") as tmp, ExitStack() as stack:
        workdir = Path(tmp)
        rostra = prepare_rostra(workdir)
        auth = {"Authorization": f"Bearer {rostra.api_key}"}
        redis, redis_url = start_redis(options.client_cpu, workdir)
        stack.callback(redis.wait)
        stack.callback(redis.kill)
        variants = {
            "off": {"ROSTRA_RATE_LIMIT_ENABLED": "false"},
            "memory": {},
            "redis": {
                "ROSTRA_REDIS_URL": redis_url,
                "ROSTRA_RATE_LIMIT_KEY_PREFIX": f"bench-{uuid.uuid4().hex[:8]}:",
            },
        }
        urls: dict[str, str] = {}
        pids: dict[str, int] = {}
        for name, extra in variants.items():
            port = free_port()
            base = f"http://127.0.0.1:{port}"
            pids[name] = stack.enter_context(
                serving(
                    rostra_command(port),
                    env={**rostra.env, **extra},
                    cwd=workdir,
                    ready_url=f"{base}/health",
                    cpu=options.server_cpu,
                )
            ).pid
            fetch(f"{base}/api/v1/user", auth)
            check_limiter(name, base, auth)
            urls[name] = f"{base}/api/v1/user"
        results = {name: Measurement(name=name, url=url) for name, url in urls.items()}
        cpu_per_request: dict[str, list[float]] = {name: [] for name in urls}
        for name, url in urls.items():
            print(f"  {name}: warm-up {options.warmup} s")
            run_wrk(wrk, url, seconds=options.warmup, options=options, headers=auth)
        names = list(urls)
        for round_number in range(1, options.runs + 1):
            # Each round starts one further along, so no server always follows the same one.
            turn = (round_number - 1) % len(names)
            for name in names[turn:] + names[:turn]:
                url = urls[name]
                cpu_before = cpu_seconds(pids[name])
                run = run_wrk(wrk, url, seconds=options.duration, options=options, headers=auth)
                cpu_us = (cpu_seconds(pids[name]) - cpu_before) / run.requests * 1e6
                results[name].runs.append(run)
                cpu_per_request[name].append(cpu_us)
                print(
                    f"  round {round_number} {name:<7}{run.requests_per_second:9.1f} req/s"
                    f"  p50 {run.p50_ms:6.2f} ms  p99 {run.p99_ms:6.2f} ms"
                    f"  server CPU {cpu_us:6.1f} us/req  failed {run.failed_requests}"
                )
    return report(results, cpu_per_request, options, wrk)


def cpu_seconds(pid: int) -> float:
    """CPU time (user + system) the process has used so far."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def report(
    results: dict[str, Measurement],
    cpu_per_request: dict[str, list[float]],
    options: Options,
    wrk: str,
) -> dict[str, Any]:
    """Overhead in throughput (the target) and in server CPU per request, each the median of
    the rounds' own figures (a variant against the limiter-off server of the same round)."""
    cpu = {name: statistics.median(values) for name, values in cpu_per_request.items()}
    off_runs, off_cpu = results["off"].runs, cpu_per_request["off"]
    overheads = {}
    for name, target in TARGETS.items():
        per_round = [
            1 - run.requests_per_second / off.requests_per_second
            for run, off in zip(results[name].runs, off_runs, strict=True)
        ]
        cpu_per_round = [
            used / off - 1 for used, off in zip(cpu_per_request[name], off_cpu, strict=True)
        ]
        value = statistics.median(per_round)
        overheads[name] = {
            "value": round(value, 3),
            "target_below": target,
            "met": value < target,
            "rounds": [round(item, 3) for item in per_round],
            "of_median_throughputs": round(
                1 - results[name].requests_per_second / results["off"].requests_per_second, 3
            ),
            "cpu_per_request": round(statistics.median(cpu_per_round), 3),
        }
    return {
        "benchmark": "ratelimit",
        "finished_at": datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "valid": all(m.failed_requests == 0 for m in results.values()),
        "overhead": overheads,
        "variants": {
            name: {**m.summary(), "median_server_cpu_us_per_request": round(cpu[name], 1)}
            for name, m in results.items()
        },
        "method": {
            **options.__dict__,
            "wrk_threads": 1,
            "interleaved_rounds": True,
            "rotated_order": True,
            "overhead": "median over rounds of 1 - variant/off within the round",
        },
        "environment": environment(wrk),
    }


def print_table(result: dict[str, Any]) -> None:
    print()
    print(
        f"{'limiter':<10}{'req/s':>11}{'p50 ms':>10}{'p99 ms':>10}{'CPU us/req':>12}{'failed':>8}"
    )
    for name, summary in result["variants"].items():
        print(
            f"{name:<10}{summary['median_requests_per_second']:>11.1f}"
            f"{summary['median_p50_ms']:>10.2f}{summary['median_p99_ms']:>10.2f}"
            f"{summary['median_server_cpu_us_per_request']:>12.1f}"
            f"{summary['failed_requests']:>8}"
        )
    print()
    for name, item in result["overhead"].items():
        verdict = "met" if item["met"] else "NOT met"
        print(
            f"overhead {name:<8}{item['value'] * 100:6.1f} % req/s (median of rounds)"
            f"  (target < {item['target_below'] * 100:.0f} %: {verdict});"
            f"  {item['cpu_per_request'] * 100:6.1f} % server CPU per request"
        )
    if not result["valid"]:
        print("\nINVALID: some requests failed (see failed_requests); the figures do not count.")


def main() -> None:
    result = benchmark(parse_options(duration=4, runs=15, description=__doc__.splitlines()[0]))
    path = write_result("ratelimit", result)
    print_table(result)
    print(f"\nwritten to {path.relative_to(REPO)}")


if __name__ == "__main__":
    main()
