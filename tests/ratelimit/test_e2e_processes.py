"""Four real ``rostra serve`` processes on one Redis and one database: exactly the burst is
admitted, however the requests are spread over the processes."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.conftest import TEST_SECRET
from tests.ratelimit.conftest import free_port

PROCESSES = 4
REQUESTS = 1_000
FREE_BURST = 100  # the contract's default: free accounts, 100 per minute
ROSTRA = Path(sys.executable).with_name("rostra")

pytestmark = pytest.mark.e2e


def run_cli(env: dict[str, str], *args: str) -> str:
    result = subprocess.run(
        [str(ROSTRA), *args], env=env, capture_output=True, text=True, timeout=120
    )
    assert result.returncode == 0, result.stderr
    return result.stdout.strip()


@pytest.fixture
def server_env(tmp_path: Path, redis_url: str, key_prefix: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("ROSTRA_")}
    env.update(
        ROSTRA_DATABASE_URL=f"sqlite+aiosqlite:///{tmp_path}/rostra.db",
        ROSTRA_SECRET_KEY=TEST_SECRET,
        ROSTRA_REDIS_URL=redis_url,
        ROSTRA_RATE_LIMIT_KEY_PREFIX=key_prefix,
        # A request the store could not count shows up as a 503, never as an extra admission.
        ROSTRA_RATE_LIMIT_FAIL_CLOSED="true",
        # The machine running the tests may be busy: give Redis room to answer.
        ROSTRA_REDIS_TIMEOUT_SECONDS="5",
        ROSTRA_LOG_LEVEL="warning",
    )
    return env


@pytest.fixture
def servers(server_env: dict[str, str], tmp_path: Path) -> Iterator[list[str]]:
    run_cli(server_env, "migrate")
    ports = [free_port() for _ in range(PROCESSES)]
    processes = [
        subprocess.Popen(
            [str(ROSTRA), "serve", "--port", str(port)],
            env=server_env,
            stdout=subprocess.DEVNULL,
            stderr=(tmp_path / f"serve-{port}.log").open("w"),
        )
        for port in ports
    ]
    try:
        urls = [f"http://127.0.0.1:{port}" for port in ports]
        _wait_until_healthy(urls, processes)
        yield urls
    finally:
        for process in processes:
            process.terminate()
        for process in processes:
            try:
                process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait(timeout=20)


def _wait_until_healthy(urls: list[str], processes: list[subprocess.Popen[bytes]]) -> None:
    deadline = time.monotonic() + 60
    pending = set(urls)
    while pending and time.monotonic() < deadline:
        for process in processes:
            assert process.poll() is None, "a rostra serve process exited"
        for url in list(pending):
            try:
                if httpx.get(f"{url}/health", timeout=2).status_code == 200:
                    pending.discard(url)
            except httpx.HTTPError:
                pass
        time.sleep(0.2)
    assert not pending, f"not healthy: {pending}"


async def test_four_processes_admit_exactly_the_burst(
    servers: list[str], server_env: dict[str, str]
) -> None:
    run_cli(
        server_env,
        "users", "create", "--username", "burst", "--email", "burst@example.com",
        "--password", "correct horse battery",
    )  # fmt: skip
    key = run_cli(server_env, "keys", "create", "--user", "burst")
    headers = {"Authorization": f"Bearer {key}"}
    limits = httpx.Limits(max_connections=REQUESTS)
    timeout = httpx.Timeout(120)
    async with httpx.AsyncClient(limits=limits, timeout=timeout) as http:
        # Every process has seen the key once, so the burst below is not a cache-miss race.
        for url in servers:
            assert (await http.get(f"{url}/api/v1/usage", headers=headers)).status_code == 200
        answers = await asyncio.gather(
            *(
                http.get(f"{servers[n % PROCESSES]}/api/v1/user", headers=headers)
                for n in range(REQUESTS)
            )
        )
        usage = (await http.get(f"{servers[0]}/api/v1/usage", headers=headers)).json()
    statuses = Counter(answer.status_code for answer in answers)
    assert statuses == {200: FREE_BURST, 429: REQUESTS - FREE_BURST}
    admitted_by = Counter(
        str(a.url).rsplit(":", 1)[1].split("/")[0] for a in answers if a.status_code == 200
    )
    assert len(admitted_by) > 1  # the processes really shared the work
    assert [w["used"] for w in usage["windows"]] == [FREE_BURST, FREE_BURST]
