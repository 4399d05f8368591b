"""Where a real ``rostra serve`` spends its time on one endpoint under wrk load (py-spy).

    .venv/bin/pip install py-spy   # a tool for this script only, not a project dependency
    .venv/bin/python bench/profile_rostra.py [--path /api/v1/user] [--seconds 10]

Serves Rostra as foundation.py does (same CLI set-up, same pinning, the API key sent), loads
it with wrk and samples it with ``py-spy record``. Only the event-loop thread does request
work, so the percentages are of that thread's samples; the other threads (aiosqlite's
connection workers) are listed apart. Prints the top functions by self and by cumulative
time inside rostra/fastapi/starlette/pydantic/uvicorn, the top self time over all code and
self time per package; writes the collapsed stacks and the summary under bench/results/.
"""

from __future__ import annotations

import argparse
import json
import re
import shutil
import subprocess
import sys
import tempfile
import time
from collections import Counter
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from foundation import (
    REPO,
    RESULTS_DIR,
    VENV_BIN,
    Options,
    WrkRun,
    ensure_wrk,
    fetch,
    free_port,
    parse_wrk_output,
    pinned,
    prepare_rostra,
    rostra_command,
    run_wrk,
    serving,
    wrk_command,
)

FOCUS_PACKAGES = frozenset({"rostra", "fastapi", "starlette", "pydantic", "uvicorn"})
TOP = 25
# py-spy frames read "function (path/to/module.py:line)".
FRAME = re.compile(r"^(?P<function>.*) \((?P<path>[^()]*?)(?::\d+)?\)$")
# Frames from here inward are the event loop's callbacks: requests, not start-up code.
EVENT_LOOP_FRAME = "Runner.run (asyncio/runners.py"
SAMPLING_MARGIN_SECONDS = 2


@dataclass(frozen=True)
class Frame:
    function: str
    module: str

    @property
    def package(self) -> str:
        return self.module.split(".", 1)[0]

    @property
    def label(self) -> str:
        return f"{self.module}:{self.function}"


def module_of(path: str) -> str:
    """The dotted module of a py-spy source path (site-packages and src are relative)."""
    module = path.removesuffix(".py").removesuffix("/__init__").replace("/", ".")
    return module.removeprefix("<frozen ").removesuffix(">")


def parse_frame(text: str) -> Frame:
    match = FRAME.match(text)
    if match is None:
        return Frame(function=text, module="?")
    return Frame(function=match["function"], module=module_of(match["path"]))


@dataclass
class Profile:
    loop_samples: int = 0
    self_time: Counter[Frame] = field(default_factory=Counter)
    cumulative: Counter[Frame] = field(default_factory=Counter)
    package_self: Counter[str] = field(default_factory=Counter)
    other_threads: Counter[Frame] = field(default_factory=Counter)


def analyse(collapsed: str) -> Profile:
    """Self time goes to a stack's innermost frame; cumulative time to each frame on it once."""
    profile = Profile()
    for line in collapsed.splitlines():
        stack_text, _, count_text = line.rpartition(" ")
        if not stack_text or not count_text.isdigit():
            continue
        count = int(count_text)
        parts = stack_text.split(";")
        loop_at = next((i for i, p in enumerate(parts) if p.startswith(EVENT_LOOP_FRAME)), None)
        if loop_at is None:
            profile.other_threads[parse_frame(parts[-1])] += count
            continue
        frames = [parse_frame(part) for part in parts[loop_at:]]
        profile.loop_samples += count
        profile.self_time[frames[-1]] += count
        profile.package_self[frames[-1].package] += count
        for frame in set(frames):
            profile.cumulative[frame] += count
    return profile


def ranked(
    counter: Counter[Frame], total: int, *, focus: bool, limit: int = TOP
) -> list[dict[str, Any]]:
    rows = [
        {"function": frame.label, "samples": count, "percent": round(100 * count / total, 1)}
        for frame, count in counter.most_common()
        if not focus or frame.package in FOCUS_PACKAGES
    ]
    return rows[:limit]


def print_rows(title: str, rows: list[dict[str, Any]]) -> None:
    print(f"\n{title}")
    for row in rows:
        print(f"  {row['percent']:>5}%  {row['function']}")


def record(path: str, seconds: int, rate: int, raw_path: Path, extra_env: dict[str, str]) -> WrkRun:
    """Serve Rostra (with ``extra_env`` on top of the bench set-up), load ``path`` with wrk,
    sample the server; wrk's figures meanwhile."""
    py_spy = shutil.which("py-spy", path=str(VENV_BIN)) or shutil.which("py-spy")
    if py_spy is None:
        sys.exit("bench: py-spy is missing: .venv/bin/pip install py-spy")
    wrk = ensure_wrk()
    options = Options(
        duration=seconds, warmup=3, runs=1, connections=32, server_cpu=0, client_cpu=1
    )
    with tempfile.TemporaryDirectory(prefix="rostra-profile-") as tmp:
        workdir = Path(tmp)
        rostra = prepare_rostra(workdir)
        auth = {"Authorization": f"Bearer {rostra.api_key}"}
        port = free_port()
        url = f"http://127.0.0.1:{port}{path}"
        with serving(
            rostra_command(port),
            env={**rostra.env, **extra_env},
            cwd=workdir,
            ready_url=f"http://127.0.0.1:{port}/health",
            cpu=options.server_cpu,
        ) as server:
            fetch(url, auth)
            run_wrk(wrk, url, seconds=options.warmup, options=options, headers=auth)
            # wrk outlasts the sampling on both sides, so every sample is taken under load.
            load_seconds = seconds + 2 * SAMPLING_MARGIN_SECONDS
            load = subprocess.Popen(
                pinned(
                    options.client_cpu,
                    wrk_command(wrk, url, seconds=load_seconds, connections=32, headers=auth),
                ),
                stdout=subprocess.PIPE,
                text=True,
            )
            time.sleep(SAMPLING_MARGIN_SECONDS)
            sampler = [py_spy, "record", "--pid", str(server.pid), "--function"]
            sampler += [f"--duration={seconds}", f"--rate={rate}", "--format=raw"]
            sampler += ["--output", str(raw_path)]
            subprocess.run(
                pinned(options.client_cpu, sampler), check=True, stdout=subprocess.DEVNULL
            )
            output, _ = load.communicate()
    return parse_wrk_output(output)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--path", default="/api/v1/user", help="The endpoint to load.")
    parser.add_argument("--seconds", type=int, default=10, help="Seconds of sampling (1..60).")
    parser.add_argument("--rate", type=int, default=200, help="Samples per second.")
    parser.add_argument(
        "--env",
        action="append",
        default=[],
        metavar="NAME=VALUE",
        help="A server setting, e.g. ROSTRA_REDIS_URL=redis://127.0.0.1:6379/0 (repeatable).",
    )
    args = parser.parse_args()
    extra_env = dict(item.partition("=")[::2] for item in args.env)
    if not 1 <= args.seconds <= 60:
        parser.error("--seconds must be 1..60")

    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
    RESULTS_DIR.mkdir(exist_ok=True)
    raw_path = RESULTS_DIR / f"profile-{stamp}.collapsed.txt"
    load = record(args.path, args.seconds, args.rate, raw_path, extra_env)
    profile = analyse(raw_path.read_text())
    total = max(profile.loop_samples, 1)
    self_focus = ranked(profile.self_time, total, focus=True)
    cumulative_focus = ranked(profile.cumulative, total, focus=True)
    self_all = ranked(profile.self_time, total, focus=False)
    other_threads = ranked(profile.other_threads, total, focus=False, limit=5)
    by_package = {
        package: round(100 * count / total, 1)
        for package, count in profile.package_self.most_common()
    }
    summary = {
        "path": args.path,
        "profiled_at": stamp,
        "seconds": args.seconds,
        "rate_hz": args.rate,
        "event_loop_samples": profile.loop_samples,
        "requests_per_second_while_sampled": load.requests_per_second,
        "failed_requests_while_sampled": load.failed_requests,
        "self_by_package": by_package,
        "self_all": self_all,
        "self_focus": self_focus,
        "cumulative_focus": cumulative_focus,
        "other_threads_self": other_threads,
    }
    summary_path = RESULTS_DIR / f"profile-{stamp}.json"
    summary_path.write_text(json.dumps(summary, indent=2) + "\n")

    print(f"GET {args.path}: {load.requests_per_second} req/s while sampled")
    if load.failed_requests:
        print(f"WARNING: {load.failed_requests} requests failed (non-2xx/3xx or socket errors)")
    print(f"{profile.loop_samples} event-loop samples at {args.rate} Hz; % of those")
    print("\nself time by package")
    for package, percent in by_package.items():
        print(f"  {percent:>5}%  {package}")
    print_rows("self time, all code", self_all)
    print_rows("self time, rostra/fastapi/starlette/pydantic/uvicorn", self_focus)
    print_rows("cumulative time, rostra/fastapi/starlette/pydantic/uvicorn", cumulative_focus)
    print_rows("other threads (samples relative to the event loop's)", other_threads)
    print(f"\nwritten to {summary_path.relative_to(REPO)} and {raw_path.relative_to(REPO)}")


if __name__ == "__main__":
    main()
