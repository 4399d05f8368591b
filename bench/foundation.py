"""Foundation throughput: Rostra's GET /health and GET /api/v1/user against a bare FastAPI ceiling.

One command runs it all (see bench/README.md)::

    .venv/bin/python bench/foundation.py

It installs wrk when missing, then serves, one at a time on 127.0.0.1, (a) a real
``rostra serve`` on a fresh SQLite file with a user and an API key made through the CLI and
(b) bench/ceiling.py, a bare FastAPI app answering the same JSON. The server is pinned to one
core and wrk to the other; each endpoint gets a warm-up run and then N measured runs. The
medians, the two ratios against their targets and every raw run are written as JSON under
bench/results/ and printed as a table.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import secrets
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import Iterator, Mapping
from contextlib import ExitStack, contextmanager
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from importlib import metadata
from importlib.util import find_spec
from pathlib import Path
from typing import Any

BENCH_DIR = Path(__file__).resolve().parent
REPO = BENCH_DIR.parent
VENV_BIN = REPO / ".venv" / "bin"
RESULTS_DIR = BENCH_DIR / "results"
WRK_REPORT_SCRIPT = BENCH_DIR / "wrk_report.lua"
WRK_JSON_MARKER = "WRK_JSON "

BENCH_USERNAME = "bench"
BENCH_EMAIL = "bench@example.com"
READY_TIMEOUT_SECONDS = 60.0

# Rate limiting stays on, since counting is part of what every request costs, but the bench
# user's plan ("free", the default) is raised out of reach: a refusal would measure the 429 path.
UNREACHABLE_PLAN_LIMITS = json.dumps({"free": {"per_hour": 10**12, "per_minute": 10**12}})

USER_RATIO_TARGET = 0.6
HEALTH_RATIO_TARGET = 0.8
BUSY_LOAD_AVERAGE = 0.5
"""A 1-minute load average above this before the start means something else is running."""


@dataclass(frozen=True)
class Options:
    duration: int
    warmup: int
    runs: int
    connections: int
    server_cpu: int
    client_cpu: int


@dataclass(frozen=True)
class WrkRun:
    requests: int
    duration_s: float
    requests_per_second: float
    p50_ms: float
    p90_ms: float
    p99_ms: float
    max_ms: float
    errors: dict[str, int]

    @property
    def failed_requests(self) -> int:
        """Non-2xx/3xx answers, refused connections, timeouts and broken sockets."""
        return sum(self.errors.values())


@dataclass
class Measurement:
    name: str
    url: str
    runs: list[WrkRun] = field(default_factory=list)

    @property
    def requests_per_second(self) -> float:
        return statistics.median(run.requests_per_second for run in self.runs)

    @property
    def p50_ms(self) -> float:
        return statistics.median(run.p50_ms for run in self.runs)

    @property
    def p99_ms(self) -> float:
        return statistics.median(run.p99_ms for run in self.runs)

    @property
    def failed_requests(self) -> int:
        return sum(run.failed_requests for run in self.runs)

    @property
    def failures_by_kind(self) -> dict[str, int]:
        """wrk's error counts summed over the runs: status (non-2xx/3xx), timeout (none in 2 s),
        connect, read, write."""
        kinds = {kind for run in self.runs for kind in run.errors}
        totals = {kind: sum(run.errors.get(kind, 0) for run in self.runs) for kind in kinds}
        return {kind: count for kind, count in sorted(totals.items()) if count}

    def summary(self) -> dict[str, Any]:
        return {
            "url": self.url,
            "median_requests_per_second": round(self.requests_per_second, 1),
            "median_p50_ms": round(self.p50_ms, 3),
            "median_p99_ms": round(self.p99_ms, 3),
            "failed_requests": self.failed_requests,
            "failures_by_kind": self.failures_by_kind,
            "runs": [asdict(run) for run in self.runs],
        }


# --- tools -------------------------------------------------------------------------------


def ensure_wrk() -> str:
    """The wrk binary, installed from Debian's packages when missing."""
    found = shutil.which("wrk")
    if found:
        return found
    print("wrk is missing: installing it with apt-get", file=sys.stderr)
    install = ["apt-get", "install", "-y", "-q", "wrk"]
    if subprocess.run(install, check=False, stdout=subprocess.DEVNULL).returncode != 0:
        # A fresh machine has no package lists yet.
        subprocess.run(["apt-get", "update", "-q"], check=True, stdout=subprocess.DEVNULL)
        subprocess.run(install, check=True, stdout=subprocess.DEVNULL)
    found = shutil.which("wrk")
    if not found:
        sys.exit("bench: wrk is still missing after apt-get install")
    return found


def pinned(cpu: int, command: list[str]) -> list[str]:
    """``command`` run on one core only (``taskset`` replaces itself, so the pid stays)."""
    return ["taskset", "-c", str(cpu), *command]


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


def fetch(url: str, headers: Mapping[str, str] | None = None) -> bytes:
    request = urllib.request.Request(url, headers=dict(headers or {}))
    with urllib.request.urlopen(request, timeout=5) as response:
        body: bytes = response.read()
        return body


# --- servers -----------------------------------------------------------------------------


def clean_environment(**extra: str) -> dict[str, str]:
    """The caller's environment without any ROSTRA_* setting, plus ``extra``."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("ROSTRA_")}
    env.update(extra)
    return env


@dataclass(frozen=True)
class RostraInstance:
    env: dict[str, str]
    api_key: str
    secret_key: str


def prepare_rostra(workdir: Path, database_url: str | None = None) -> RostraInstance:
    """A database (a fresh SQLite file in ``workdir`` unless ``database_url`` names one) with
    one user and one live API key, made through the CLI.

    Nothing else of the caller's ROSTRA_* environment or of a ``.env`` file reaches the server
    (it runs in ``workdir``): it runs on the defaults, Redis off.
    """
    secret_key = secrets.token_urlsafe(48)
    env = clean_environment(
        ROSTRA_DATABASE_URL=database_url or f"sqlite+aiosqlite:///{workdir / 'rostra.db'}",
        ROSTRA_SECRET_KEY=secret_key,
        ROSTRA_RATE_LIMIT_PLANS=UNREACHABLE_PLAN_LIMITS,
    )
    rostra = str(VENV_BIN / "rostra")

    def cli(*args: str) -> str:
        done = subprocess.run(
            [rostra, *args], cwd=workdir, env=env, capture_output=True, text=True, check=False
        )
        if done.returncode != 0:
            sys.exit(f"bench: `rostra {' '.join(args[:2])}` failed:\n{done.stderr.strip()}")
        return done.stdout.strip()

    cli("migrate")
    password = secrets.token_urlsafe(16)
    cli(
        "users",
        "create",
        "--username",
        BENCH_USERNAME,
        "--email",
        BENCH_EMAIL,
        "--password",
        password,
    )
    api_key = cli("keys", "create", "--user", BENCH_USERNAME, "--name", "bench")
    return RostraInstance(env=env, api_key=api_key, secret_key=secret_key)


def rostra_command(port: int) -> list[str]:
    return [str(VENV_BIN / "rostra"), "serve", "--port", str(port)]


def ceiling_command(port: int) -> list[str]:
    return [str(VENV_BIN / "python"), str(BENCH_DIR / "ceiling.py"), "--port", str(port)]


@contextmanager
def serving(
    command: list[str], *, env: dict[str, str], cwd: Path, ready_url: str, cpu: int
) -> Iterator[subprocess.Popen[bytes]]:
    """Run a server (stdout to /dev/null, stderr kept for errors) until the block ends."""
    stderr_path = cwd / f"server-{int(time.time() * 1000)}.stderr"
    with stderr_path.open("wb") as stderr:
        process = subprocess.Popen(
            pinned(cpu, command), cwd=cwd, env=env, stdout=subprocess.DEVNULL, stderr=stderr
        )
    try:
        wait_until_ready(process, ready_url, stderr_path)
        yield process
    finally:
        process.terminate()
        try:
            process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def wait_until_ready(process: subprocess.Popen[bytes], url: str, stderr_path: Path) -> None:
    deadline = time.monotonic() + READY_TIMEOUT_SECONDS
    while time.monotonic() < deadline:
        if process.poll() is not None:
            sys.exit(f"bench: the server exited early:\n{stderr_path.read_text()[-2000:]}")
        try:
            fetch(url)
            return
        except (urllib.error.URLError, ConnectionError, TimeoutError):
            time.sleep(0.2)
    process.kill()
    sys.exit(f"bench: the server did not answer {url} within {READY_TIMEOUT_SECONDS:.0f} s")


# --- wrk ---------------------------------------------------------------------------------


def wrk_command(
    wrk: str, url: str, *, seconds: int, connections: int, headers: Mapping[str, str]
) -> list[str]:
    command = [wrk, "-t1", f"-c{connections}", f"-d{seconds}s", "--latency"]
    command += ["-s", str(WRK_REPORT_SCRIPT)]
    for name, value in headers.items():
        command += ["-H", f"{name}: {value}"]
    return [*command, url]


def parse_wrk_output(output: str) -> WrkRun:
    lines = [line for line in output.splitlines() if line.startswith(WRK_JSON_MARKER)]
    if not lines:
        sys.exit(f"bench: wrk printed no report:\n{output[-2000:]}")
    report = json.loads(lines[-1].removeprefix(WRK_JSON_MARKER))
    duration_s = report["duration_us"] / 1e6
    latency = report["latency_us"]
    return WrkRun(
        requests=report["requests"],
        duration_s=round(duration_s, 3),
        requests_per_second=round(report["requests"] / duration_s, 1),
        p50_ms=latency["p50"] / 1000,
        p90_ms=latency["p90"] / 1000,
        p99_ms=latency["p99"] / 1000,
        max_ms=latency["max"] / 1000,
        errors={name: int(count) for name, count in report["errors"].items()},
    )


def run_wrk(
    wrk: str, url: str, *, seconds: int, options: Options, headers: Mapping[str, str]
) -> WrkRun:
    command = wrk_command(
        wrk, url, seconds=seconds, connections=options.connections, headers=headers
    )
    done = subprocess.run(
        pinned(options.client_cpu, command), capture_output=True, text=True, check=False
    )
    if done.returncode != 0:
        sys.exit(f"bench: wrk failed ({done.returncode}):\n{done.stderr.strip()}")
    return parse_wrk_output(done.stdout)


# --- the benchmark -----------------------------------------------------------------------


def benchmark(options: Options) -> dict[str, Any]:
    """Both servers stay up, pinned to the same core; after a warm-up of each endpoint the
    measured runs go round the four endpoints in turn, so a machine that gets busier part-way
    slows Rostra and the ceiling alike instead of whichever happened to run last."""
    wrk = ensure_wrk()
    load_before = os.getloadavg()[0]
    if load_before > BUSY_LOAD_AVERAGE:
        print(f"warning: load average {load_before:.2f}: the machine is busy, figures are noisy")
    with tempfile.TemporaryDirectory(prefix="rostra-bench-") as tmp, ExitStack() as servers:
        workdir = Path(tmp)
        print("Rostra (rostra serve, SQLite, one API key) and the ceiling (bench/ceiling.py)")
        rostra = prepare_rostra(workdir)
        auth = {"Authorization": f"Bearer {rostra.api_key}"}
        port = free_port()
        rostra_base = f"http://127.0.0.1:{port}"
        servers.enter_context(
            serving(
                rostra_command(port),
                env=rostra.env,
                cwd=workdir,
                ready_url=f"{rostra_base}/health",
                cpu=options.server_cpu,
            )
        )
        user_body = fetch(f"{rostra_base}/api/v1/user", auth)
        health_body = fetch(f"{rostra_base}/health")
        port = free_port()
        ceiling_base = f"http://127.0.0.1:{port}"
        env = clean_environment(
            BENCH_USER_JSON=user_body.decode(), BENCH_HEALTH_JSON=health_body.decode()
        )
        servers.enter_context(
            serving(
                ceiling_command(port),
                env=env,
                cwd=workdir,
                ready_url=f"{ceiling_base}/health",
                cpu=options.server_cpu,
            )
        )
        check_same_body(fetch(f"{ceiling_base}/user"), user_body, "GET /user")
        check_same_body(fetch(f"{ceiling_base}/health"), health_body, "GET /health")
        endpoints = {
            "rostra_health": (f"{rostra_base}/health", {}),
            "ceiling_health": (f"{ceiling_base}/health", {}),
            "rostra_user": (f"{rostra_base}/api/v1/user", auth),
            "ceiling_user": (f"{ceiling_base}/user", auth),
        }
        results = measure_in_turn(wrk, endpoints, options)
    return report(results, options, wrk, load_before)


def measure_in_turn(
    wrk: str, endpoints: Mapping[str, tuple[str, Mapping[str, str]]], options: Options
) -> dict[str, Measurement]:
    """A warm-up of each endpoint, then ``options.runs`` rounds that measure each in turn."""
    for name, (url, headers) in endpoints.items():
        print(f"  warm-up {name}: {options.warmup} s")
        run_wrk(wrk, url, seconds=options.warmup, options=options, headers=headers)
    results = {name: Measurement(name=name, url=url) for name, (url, _) in endpoints.items()}
    for round_number in range(1, options.runs + 1):
        for name, (url, headers) in endpoints.items():
            run = run_wrk(wrk, url, seconds=options.duration, options=options, headers=headers)
            results[name].runs.append(run)
            print(
                f"  round {round_number} {name:<15}{run.requests_per_second:9.1f} req/s"
                f"  p50 {run.p50_ms:7.2f} ms  p99 {run.p99_ms:7.2f} ms"
                f"  failed {run.failed_requests}"
            )
    return results


def check_same_body(ceiling: bytes, rostra: bytes, what: str) -> None:
    """The comparison is only fair if both servers send the very same bytes."""
    if ceiling != rostra:
        sys.exit(f"bench: the ceiling's {what} differs from Rostra's:\n{ceiling!r}\n{rostra!r}")


def ratio(numerator: Measurement, denominator: Measurement, target: float) -> dict[str, Any]:
    value = numerator.requests_per_second / denominator.requests_per_second
    return {
        "value": round(value, 3),
        "target": target,
        "met": value >= target,
        "of": f"{numerator.name}/{denominator.name}",
    }


def report(
    results: dict[str, Measurement], options: Options, wrk: str, load_before: float
) -> dict[str, Any]:
    failed = sum(m.failed_requests for m in results.values())
    return {
        "benchmark": "foundation",
        "finished_at": datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "valid": failed == 0,
        "ratios": {
            "rostra_user/ceiling_user": ratio(
                results["rostra_user"], results["ceiling_user"], USER_RATIO_TARGET
            ),
            "rostra_health/bare_health": ratio(
                results["rostra_health"], results["ceiling_health"], HEALTH_RATIO_TARGET
            ),
        },
        "endpoints": {name: m.summary() for name, m in results.items()},
        "method": {**asdict(options), "wrk_threads": 1},
        "environment": {"load_average_before": round(load_before, 2), **environment(wrk)},
    }


def environment(wrk: str) -> dict[str, Any]:
    """What the figures depend on, so runs from different machines can be told apart."""
    wrk_version = subprocess.run([wrk, "-v"], capture_output=True, text=True, check=False)
    commit = subprocess.run(
        ["git", "-C", str(REPO), "rev-parse", "--short", "HEAD"],
        capture_output=True,
        text=True,
        check=False,
    )
    return {
        "commit": commit.stdout.strip() or None,
        "python": platform.python_version(),
        "cpu_count": os.cpu_count(),
        "load_average_after": [round(load, 2) for load in os.getloadavg()],
        "wrk": (wrk_version.stdout or wrk_version.stderr).splitlines()[0].strip(),
        "event_loop": "uvloop" if find_spec("uvloop") else "asyncio",
        "http_parser": "httptools" if find_spec("httptools") else "h11",
        "packages": {
            name: metadata.version(name)
            for name in ("fastapi", "starlette", "pydantic", "uvicorn", "uvloop", "httptools")
            if find_spec(name)
        },
    }


def print_table(result: dict[str, Any]) -> None:
    print()
    print(f"{'endpoint':<16}{'req/s':>11}{'p50 ms':>10}{'p99 ms':>10}{'failed':>8}")
    for name, summary in result["endpoints"].items():
        print(
            f"{name:<16}{summary['median_requests_per_second']:>11.1f}"
            f"{summary['median_p50_ms']:>10.2f}{summary['median_p99_ms']:>10.2f}"
            f"{summary['failed_requests']:>8}"
        )
    print()
    for name, item in result["ratios"].items():
        verdict = "met" if item["met"] else "NOT met"
        print(f"{name:<28}{item['value']:>7.3f}  (target >= {item['target']}: {verdict})")
    if not result["valid"]:
        print("\nINVALID: some requests failed; the figures do not count.")
        for name, summary in result["endpoints"].items():
            if summary["failed_requests"]:
                kinds = ", ".join(f"{k} {n}" for k, n in summary["failures_by_kind"].items())
                print(f"  {name}: {kinds}")


def parse_options(
    argv: list[str] | None = None, *, duration: int = 10, runs: int = 3, description: str = ""
) -> Options:
    """The command line every wrk benchmark takes; ``duration`` and ``runs`` are its defaults."""
    parser = argparse.ArgumentParser(description=description or __doc__.splitlines()[0])
    parser.add_argument("--duration", type=int, default=duration, help="Seconds per measured run.")
    parser.add_argument("--warmup", type=int, default=5, help="Seconds of the warm-up run.")
    parser.add_argument("--runs", type=int, default=runs, help="Measured runs per endpoint.")
    parser.add_argument("--connections", type=int, default=32, help="wrk connections.")
    parser.add_argument("--server-cpu", type=int, default=0, help="Core the server runs on.")
    parser.add_argument("--client-cpu", type=int, default=1, help="Core wrk runs on.")
    args = parser.parse_args(argv)
    if not 1 <= args.duration <= 120 or not 0 < args.warmup <= 60 or not 1 <= args.runs <= 30:
        parser.error("keep it bounded: --duration 1..120, --warmup 1..60, --runs 1..30")
    usable = os.sched_getaffinity(0)
    if args.server_cpu == args.client_cpu or not {args.server_cpu, args.client_cpu} <= usable:
        parser.error(f"the server and wrk need two different cores among {sorted(usable)}")
    return Options(
        duration=args.duration,
        warmup=args.warmup,
        runs=args.runs,
        connections=args.connections,
        server_cpu=args.server_cpu,
        client_cpu=args.client_cpu,
    )


def write_result(name: str, result: dict[str, Any]) -> Path:
    """A benchmark's result as ``bench/results/<name>-<UTC time>.json``."""
    RESULTS_DIR.mkdir(exist_ok=True)
    stamp = result["finished_at"].replace("-", "").replace(":", "")
    path = RESULTS_DIR / f"{name}-{stamp}.json"
    path.write_text(json.dumps(result, indent=2) + "\n")
    return path


def main() -> None:
    result = benchmark(parse_options())
    path = write_result("foundation", result)
    print_table(result)
    print(f"\nwritten to {path.relative_to(REPO)}")


if __name__ == "__main__":
    main()
