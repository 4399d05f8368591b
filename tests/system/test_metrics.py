"""Section 10: /metrics in Prometheus text, for admins, the metrics token, or everyone."""

from __future__ import annotations

import httpx
import pytest
from fastapi import FastAPI
from prometheus_client.parser import text_string_to_metric_families

from tests.factories import make_account, make_key

METRICS_TOKEN = "scrape-token-0123456789abcdef"


def samples(text: str, name: str) -> dict[tuple[tuple[str, str], ...], float]:
    """The values of one sample name, keyed by their sorted labels."""
    return {
        tuple(sorted(sample.labels.items())): sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
        if sample.name == name
    }


def _error_code(response: httpx.Response) -> str:
    code: str = response.json()["error"]["code"]
    return code


async def test_metrics_need_a_credential(client: httpx.AsyncClient) -> None:
    for path in ("/metrics", "/api/v1/metrics"):
        response = await client.get(path)
        assert response.status_code == 401
        assert _error_code(response) == "AUTHENTICATION_REQUIRED"
        assert response.headers["WWW-Authenticate"].startswith("Bearer")
    response = await client.get("/metrics", headers={"Authorization": "Bearer sk_live_forged"})
    assert response.status_code == 401


async def test_metrics_are_refused_to_members_and_narrow_admin_keys(
    app: FastAPI, client: httpx.AsyncClient
) -> None:
    member = await make_account(app)
    admin = await make_account(app, role="admin")
    read_only = await make_key(app, admin.user, scopes=["read"])
    for headers in (member.headers, {"Authorization": f"Bearer {read_only}"}):
        response = await client.get("/metrics", headers=headers)
        assert response.status_code == 403
        assert _error_code(response) == "INSUFFICIENT_PERMISSIONS"


async def test_admins_read_metrics_counted_by_route_template_and_status(
    app: FastAPI, client: httpx.AsyncClient
) -> None:
    admin = await make_account(app, role="admin")
    await client.get("/api/v1/users/5")
    await client.get("/api/v1/users/6")
    await client.get("/v1/users/7")
    await client.get("/api/v1/users/8", headers=admin.headers)
    await client.get("/no/such/route")
    await client.get("/health")

    response = await client.get("/metrics", headers=admin.headers)
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/plain; version=")
    counts = samples(response.text, "rostra_http_requests_total")

    def count(route: str, status: str) -> float:
        return counts.get((("method", "GET"), ("route", route), ("status", status)), 0)

    assert count("/api/v1/users/{user_id}", "401") == 2
    assert count("/v1/users/{user_id}", "401") == 1
    assert count("/api/v1/users/{user_id}", "404") == 1
    assert count("unmatched", "404") == 1
    assert count("/health", "200") == 1
    # Raw paths never become series.
    assert not [labels for labels in counts if ("route", "/api/v1/users/5") in labels]

    latency = samples(response.text, "rostra_http_request_duration_seconds_count")
    assert latency[(("route", "/api/v1/users/{user_id}"),)] == 3
    for declared in (
        "rostra_rate_limit_refusals_total counter",
        "rostra_webhook_deliveries_total counter",
        "rostra_webhook_queue_depth gauge",
    ):
        assert f"# TYPE {declared}" in response.text


class TestMetricsToken:
    @pytest.fixture
    def settings_overrides(self) -> dict[str, object]:
        return {"metrics_token": METRICS_TOKEN}

    async def test_the_metrics_token_reads_metrics(
        self, app: FastAPI, client: httpx.AsyncClient
    ) -> None:
        response = await client.get(
            "/metrics", headers={"Authorization": f"Bearer {METRICS_TOKEN}"}
        )
        assert response.status_code == 200
        assert "rostra_http_requests_total" in response.text
        wrong = await client.get(
            "/metrics", headers={"Authorization": f"Bearer {METRICS_TOKEN[:-1]}x"}
        )
        assert wrong.status_code == 401
        member = await make_account(app)
        assert (await client.get("/metrics", headers=member.headers)).status_code == 403
        admin = await make_account(app, role="admin")
        assert (await client.get("/metrics", headers=admin.headers)).status_code == 200


class TestPublicMetrics:
    @pytest.fixture
    def settings_overrides(self) -> dict[str, object]:
        return {"metrics_public": True}

    async def test_anyone_reads_public_metrics(self, client: httpx.AsyncClient) -> None:
        for path in ("/metrics", "/api/v1/metrics", "/v1/metrics"):
            response = await client.get(path)
            assert response.status_code == 200
            assert "rostra_http_requests_total" in response.text
