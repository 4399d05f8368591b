"""Section 10: /status tells version, API version, uptime, environment and queue depth."""

from __future__ import annotations

import httpx
from fastapi import FastAPI

import rostra
from rostra.core.metrics import Metrics


async def test_status_describes_the_server(client: httpx.AsyncClient, backend: str) -> None:
    for path in ("/status", "/api/v1/status", "/v1/status"):
        response = await client.get(path)
        assert response.status_code == 200
        body = response.json()
        assert body["version"] == rostra.__version__
        assert body["api_version"] == "v1"
        assert body["environment"] == "test"
        assert isinstance(body["uptime_seconds"], float)
        assert body["uptime_seconds"] >= 0
        assert body["database"] == ("sqlite" if backend == "sqlite" else "postgresql")
        assert body["rate_limit_store"] == "memory"
        depth = body["webhook_queue_depth"]
        assert depth is None or (isinstance(depth, int) and depth >= 0)


async def test_status_and_metrics_report_the_webhook_queue_depth(
    app: FastAPI, client: httpx.AsyncClient
) -> None:
    metrics: Metrics = app.state.metrics
    depths = iter([7, 3])

    async def queue_depth() -> int:
        return next(depths)

    metrics.webhook_queue_depth_probe = queue_depth
    response = await client.get("/status")
    assert response.json()["webhook_queue_depth"] == 7
    assert b"rostra_webhook_queue_depth 7.0" in metrics.exposition()
    response = await client.get("/api/v1/status")
    assert response.json()["webhook_queue_depth"] == 3
