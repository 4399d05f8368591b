"""Rate limits through the API, on both stores (memory and Redis) and both databases."""

from __future__ import annotations

import httpx
import pytest
from fastapi import FastAPI

from tests.factories import make_account, make_key
from tests.ratelimit.conftest import client_at
from tests.ratelimit.helpers import (
    FREE_POLICY,
    PLANS,
    USAGE,
    USER,
    assert_reset_within,
    limit_fields,
    metric,
    ratelimit_items,
    remaining,
)
from tests.users.helpers import error_of, login_headers


@pytest.fixture(params=["memory", "redis"])
def store_kind(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture
def settings_overrides(
    store_kind: str, key_prefix: str, request: pytest.FixtureRequest
) -> dict[str, object]:
    values: dict[str, object] = {"rate_limit_plans": PLANS, "rate_limit_key_prefix": key_prefix}
    if store_kind == "redis":
        values["redis_url"] = request.getfixturevalue("redis_url")
    return values


async def test_a_counted_response_carries_every_field(
    app: FastAPI, client: httpx.AsyncClient
) -> None:
    account = await make_account(app)
    response = await client.get(USER, headers=account.headers)
    assert response.status_code == 200
    # Of hour (8) and minute (5), the minute is nearer to running out.
    assert limit_fields(response)[:2] == (5, 4)
    assert_reset_within(response, 60)
    assert response.headers["RateLimit-Policy"] == FREE_POLICY
    items = ratelimit_items(response)
    assert items["hour"][0] == 7
    assert 3590 <= items["hour"][1] <= 3600
    assert items["minute"][0] == 4
    assert 50 <= items["minute"][1] <= 60
    second = await client.get(USER, headers=account.headers)
    assert limit_fields(second)[:2] == (5, 3)


async def test_a_spent_burst_answers_429_with_retry_after(
    app: FastAPI, client: httpx.AsyncClient
) -> None:
    account = await make_account(app)
    answers = [await client.get(USER, headers=account.headers) for _ in range(6)]
    assert [a.status_code for a in answers] == [200] * 5 + [429]
    refused = answers[-1]
    error = error_of(refused)
    assert error["code"] == "RATE_LIMIT_EXCEEDED"
    retry_after = int(refused.headers["Retry-After"])
    assert 1 <= retry_after <= 60
    assert error["retry_after"] == retry_after
    assert limit_fields(refused)[:2] == (5, 0)
    assert_reset_within(refused, 60)
    assert metric(app, "rostra_rate_limit_refusals_total", plan="free") == 1
    # Refused requests are not counted: the hour still has 8 - 5 left.
    assert ratelimit_items(refused)["hour"][0] == 3
    usage = (await client.get(USAGE, headers=account.headers)).json()
    assert [w["used"] for w in usage["windows"]] == [5, 5]


async def test_every_credential_of_an_account_shares_its_limits(
    app: FastAPI, client: httpx.AsyncClient
) -> None:
    account = await make_account(app)
    second_key = {"Authorization": f"Bearer {await make_key(app, account.user)}"}
    token = await login_headers(client, account.user)
    credentials = [account.headers, second_key, token, account.headers, second_key]
    answers = [await client.get(USER, headers=headers) for headers in credentials]
    assert [remaining(a) for a in answers] == [4, 3, 2, 1, 0]
    for headers in (account.headers, second_key, token):
        assert (await client.get(USER, headers=headers)).status_code == 429
    other = await make_account(app)
    assert (await client.get(USER, headers=other.headers)).status_code == 200


async def test_both_prefixes_count_against_one_window(
    app: FastAPI, client: httpx.AsyncClient
) -> None:
    account = await make_account(app)
    assert remaining(await client.get(USER, headers=account.headers)) == 4
    assert remaining(await client.get("/v1/user", headers=account.headers)) == 3


async def test_anonymous_callers_are_counted_by_address(app: FastAPI) -> None:
    async with client_at(app, "127.0.0.2") as first, client_at(app, "127.0.0.3") as second:
        answers = [await first.get(USER) for _ in range(5)]
        # No credential: 401, but counted against the address all the same.
        assert [a.status_code for a in answers] == [401] * 4 + [429]
        assert [remaining(a) for a in answers[:4]] == [3, 2, 1, 0]
        other = await second.get(USER)
        assert other.status_code == 401
        assert remaining(other) == 3
        usage = (await second.get(USAGE)).json()
    assert usage["plan"] == "anonymous"
    assert usage["client_ip"] == "127.0.0.3"
    assert usage["user_id"] is None
    assert [w["used"] for w in usage["windows"]] == [1, 1]


async def test_a_bad_credential_is_counted_against_its_address(app: FastAPI) -> None:
    async with client_at(app, "127.0.0.4") as guesser:
        bad = {"Authorization": "Bearer sk_live_not-a-real-key"}
        answers = [await guesser.get(USER, headers=bad) for _ in range(5)]
    assert [a.status_code for a in answers] == [401] * 4 + [429]
    assert error_of(answers[-1])["code"] == "RATE_LIMIT_EXCEEDED"


async def test_forwarded_for_is_ignored_from_an_untrusted_peer(app: FastAPI) -> None:
    async with client_at(app, "127.0.0.2") as spoofer:
        for n in range(4):
            await spoofer.get(USER, headers={"X-Forwarded-For": f"198.51.100.{n}"})
        refused = await spoofer.get(USER, headers={"X-Forwarded-For": "198.51.100.99"})
    assert refused.status_code == 429


async def test_health_and_usage_are_never_counted(app: FastAPI, client: httpx.AsyncClient) -> None:
    account = await make_account(app)
    for path in ("/health", "/api/v1/health", "/v1/health", USAGE, "/v1/usage"):
        for _ in range(6):
            response = await client.get(path, headers=account.headers)
            assert response.status_code == 200, (path, response.text)
    usage = await client.get(USAGE, headers=account.headers)
    assert [w["used"] for w in usage.json()["windows"]] == [0, 0]
    # /usage shows the fields it reads, uncounted.
    assert limit_fields(usage)[:2] == (5, 5)
    assert remaining(await client.get(USER, headers=account.headers)) == 4


async def test_a_304_costs_nothing(app: FastAPI, client: httpx.AsyncClient) -> None:
    account = await make_account(app)
    first = await client.get(USER, headers=account.headers)
    conditional = {**account.headers, "If-None-Match": first.headers["ETag"]}
    for _ in range(6):
        unchanged = await client.get(USER, headers=conditional)
        assert unchanged.status_code == 304
        assert limit_fields(unchanged)[:2] == (5, 4)
        assert ratelimit_items(unchanged)["hour"][0] == 7
    answers = [await client.get(USER, headers=account.headers) for _ in range(5)]
    assert [a.status_code for a in answers] == [200] * 4 + [429]


async def test_error_responses_carry_the_fields(app: FastAPI, client: httpx.AsyncClient) -> None:
    account = await make_account(app)
    missing = await client.get("/api/v1/users/987654", headers=account.headers)
    assert missing.status_code == 404
    assert limit_fields(missing)[:2] == (5, 4)
    invalid = await client.patch(USER, headers=account.headers, json={"nonsense": 1})
    assert invalid.status_code == 400
    assert limit_fields(invalid)[:2] == (5, 3)


async def test_professional_goes_over_the_hour_and_the_overage_is_counted(
    app: FastAPI, client: httpx.AsyncClient
) -> None:
    account = await make_account(app, plan="professional")
    answers = [await client.get(USER, headers=account.headers) for _ in range(5)]
    assert [a.status_code for a in answers] == [200] * 5
    # The hour admits overage, so the minute burst is the window that can refuse.
    assert limit_fields(answers[-1])[:2] == (50, 45)
    assert ratelimit_items(answers[-1])["hour"][0] == 0
    usage = (await client.get(USAGE, headers=account.headers)).json()
    hour, minute = usage["windows"]
    assert (hour["limit"], hour["used"], hour["remaining"], hour["overage"]) == (3, 5, 0, 2)
    assert hour["over_limit"] == "overage"
    assert (minute["used"], minute["over_limit"], minute["overage"]) == (5, "refused", 0)
    assert usage["overage"]["allowed"] is True
    assert usage["overage"]["requests"] == 2
    assert metric(app, "rostra_rate_limit_overage_total", plan="professional") == 2


async def test_usage_describes_the_caller(app: FastAPI, client: httpx.AsyncClient) -> None:
    account = await make_account(app)
    await client.get(USER, headers=account.headers)
    response = await client.get(USAGE, headers=account.headers)
    assert response.status_code == 200
    body = response.json()
    assert body["plan"] == "free"
    assert body["limits_from"] == "plan"
    assert body["user_id"] == account.id
    assert body["client_ip"] is None
    assert body["livemode"] is True
    hour, minute = body["windows"]
    assert (hour["name"], hour["seconds"]) == ("hour", 3600)
    assert (hour["limit"], hour["used"], hour["remaining"]) == (8, 1, 7)
    assert (minute["limit"], minute["used"], minute["remaining"]) == (5, 1, 4)
    assert minute["reset"] == int(response.headers["X-RateLimit-Reset"])
    assert minute["resets_at"].endswith("Z")
    assert body["overage"] == {"allowed": False, "period": body["overage"]["period"], "requests": 0}


async def test_usage_needs_a_credential_that_may_read_usage(
    app: FastAPI, client: httpx.AsyncClient
) -> None:
    account = await make_account(app, scopes=["projects:read"])
    refused = await client.get(USAGE, headers=account.headers)
    assert refused.status_code == 403
    usage_key = await make_key(app, account.user, scopes=["usage:read"])
    allowed = await client.get(USAGE, headers={"Authorization": f"Bearer {usage_key}"})
    assert allowed.status_code == 200


async def test_a_plan_set_by_an_admin_applies_at_once(
    app: FastAPI, client: httpx.AsyncClient
) -> None:
    admin = await make_account(app, role="admin")
    account = await make_account(app)
    assert limit_fields(await client.get(USER, headers=account.headers))[0] == 5
    changed = await client.patch(
        f"/api/v1/users/{account.id}", headers=admin.headers, json={"plan": "starter"}
    )
    assert changed.status_code == 200, changed.text
    after = await client.get(USER, headers=account.headers)
    assert limit_fields(after)[:2] == (7, 5)
    assert after.headers["RateLimit-Policy"] == '"hour";q=20;w=3600, "minute";q=7;w=60'
