"""``.ci/run`` sets ROSTRA_TEST_REQUIRE_SERVICES: then a service that is down fails the run."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from tests.cli.helpers import closed_port

pytestmark = pytest.mark.e2e

REPOSITORY = Path(__file__).resolve().parents[2]
# A test that needs neither service: only the CI requirement can stop it.
BYSTANDER = "tests/cli/test_settings.py::test_plain_database_urls_get_the_async_drivers"


def _pytest_with(services: dict[str, str]) -> subprocess.CompletedProcess[str]:
    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith("ROSTRA_")},
        "ROSTRA_TEST_REQUIRE_SERVICES": "1",
        **services,
    }
    return subprocess.run(
        [sys.executable, "-m", "pytest", BYSTANDER, "-p", "no:cacheprovider", "--tb=line"],
        cwd=REPOSITORY,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )


def test_an_unreachable_service_fails_the_run_instead_of_skipping(redis_url: str) -> None:
    postgres = os.environ.get("ROSTRA_TEST_POSTGRES_URL")
    if not postgres:
        pytest.skip("ROSTRA_TEST_POSTGRES_URL is not set")
    port = closed_port()
    cases = {
        "Redis is unreachable": {
            "ROSTRA_TEST_POSTGRES_URL": postgres,
            "ROSTRA_TEST_REDIS_URL": f"redis://127.0.0.1:{port}/0",
        },
        "PostgreSQL is unreachable": {
            "ROSTRA_TEST_POSTGRES_URL": f"postgresql+asyncpg://postgres@127.0.0.1:{port}/x",
            "ROSTRA_TEST_REDIS_URL": redis_url,
        },
        "ROSTRA_TEST_REDIS_URL is not set": {"ROSTRA_TEST_POSTGRES_URL": postgres},
    }
    with ThreadPoolExecutor(max_workers=len(cases)) as pool:
        runs = dict(zip(cases, pool.map(_pytest_with, cases.values()), strict=True))
    for reason, run in runs.items():
        output = run.stdout + run.stderr
        assert run.returncode != 0, output
        assert reason in output, output
        assert re.search(r"\b1 error\b", output), output
        assert not re.search(r"\b\d+ (skipped|passed)\b", output), output
