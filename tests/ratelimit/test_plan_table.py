"""The plan table: the contract's defaults, replaced through ROSTRA_RATE_LIMIT_PLANS."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import httpx
import pytest
from fastapi import FastAPI

from rostra.core.config import Settings
from rostra.lib.ratelimit import DEFAULT_PLANS, PlanLimits, parse_plan_table
from tests.factories import make_account
from tests.ratelimit.helpers import USER, has_no_limit_fields, limit_fields


def test_the_defaults_are_the_contracts() -> None:
    assert dict(DEFAULT_PLANS) == {
        "anonymous": PlanLimits(100, 10),
        "free": PlanLimits(1_000, 100),
        "starter": PlanLimits(5_000, 200),
        "professional": PlanLimits(10_000, 500, overage=True),
        "enterprise": PlanLimits(100_000, 2_000),
    }
    assert Settings(_env_file=None).rate_limit_plans == dict(DEFAULT_PLANS)  # type: ignore[call-arg]


def test_the_table_comes_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(
        "ROSTRA_RATE_LIMIT_PLANS",
        '{"anonymous": {"per_hour": 100, "per_minute": 10}, "free": {"per_hour": 1000,'
        ' "per_minute": 100}, "professional": {"per_hour": 10000, "per_minute": 500,'
        ' "overage": true}, "enterprise": {"per_hour": null, "per_minute": null}}',
    )
    plans = Settings(_env_file=None).rate_limit_plans  # type: ignore[call-arg]
    assert plans["enterprise"] == PlanLimits(None, None)
    # Left out of the table: keeps its default.
    assert plans["starter"] == PlanLimits(5_000, 200)


def test_a_field_left_out_of_a_plan_keeps_its_default() -> None:
    plans = parse_plan_table('{"professional": {"per_hour": 20000}}')
    assert plans["professional"] == PlanLimits(20_000, 500, overage=True)


@pytest.mark.parametrize(
    ("raw", "message"),
    [
        ("{not json", "not valid JSON"),
        ("[1, 2]", "must be a JSON object"),
        ('{"gold": {"per_hour": 1}}', "unknown plan 'gold'"),
        ('{"free": 1000}', "plan 'free' must be an object"),
        ('{"free": {"burst": 5}}', "unknown field(s) burst"),
        ('{"free": {"per_hour": -1}}', "free.per_hour must be a whole number"),
        ('{"free": {"per_minute": true}}', "free.per_minute must be a whole number"),
        ('{"free": {"per_minute": 2.5}}', "free.per_minute must be a whole number"),
        ('{"professional": {"overage": "yes"}}', "professional.overage must be true or false"),
    ],
)
def test_a_bad_table_is_refused(raw: str, message: str) -> None:
    with pytest.raises(ValueError) as caught:
        parse_plan_table(raw)
    assert message in str(caught.value)


def test_bad_json_stops_start_up_with_one_line_naming_the_setting(tmp_path: Path) -> None:
    rostra = Path(sys.executable).with_name("rostra")
    env = {
        **os.environ,
        "ROSTRA_RATE_LIMIT_PLANS": '{"free": {"per_hour": 10,}}',
        "ROSTRA_DATABASE_URL": f"sqlite+aiosqlite:///{tmp_path}/rostra.db",
    }
    result = subprocess.run(
        [str(rostra), "serve", "--port", "1"],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        cwd=tmp_path,
    )
    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("rostra: invalid setting ROSTRA_RATE_LIMIT_PLANS: not valid JSON")
    assert "Traceback" not in result.stderr


@pytest.fixture
def settings_overrides() -> dict[str, object]:
    return {
        "rate_limit_plans": {
            "free": {"per_hour": 1_000_000, "per_minute": 2},
            "enterprise": {"per_hour": None, "per_minute": None},
        }
    }


async def test_the_configured_table_is_what_the_api_enforces(
    app: FastAPI, client: httpx.AsyncClient
) -> None:
    account = await make_account(app)
    answers = [await client.get(USER, headers=account.headers) for _ in range(3)]
    assert [a.status_code for a in answers] == [200, 200, 429]
    assert limit_fields(answers[0])[0] == 2


async def test_an_unlimited_plan_is_never_refused_and_has_no_fields(
    app: FastAPI, client: httpx.AsyncClient
) -> None:
    account = await make_account(app, plan="enterprise")
    answers = [await client.get(USER, headers=account.headers) for _ in range(5)]
    assert all(a.status_code == 200 for a in answers)
    assert all(has_no_limit_fields(a) for a in answers)
    usage = (await client.get("/api/v1/usage", headers=account.headers)).json()
    assert [(w["limit"], w["used"], w["remaining"]) for w in usage["windows"]] == [
        (None, 5, None),
        (None, 5, None),
    ]
