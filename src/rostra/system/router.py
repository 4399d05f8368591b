"""Service endpoints: /health, /status, /metrics (contract section 10)."""

from __future__ import annotations

import time

import orjson
from fastapi import APIRouter, Request
from prometheus_client import CONTENT_TYPE_LATEST
from starlette.responses import Response

import rostra
from rostra.core.deps import SettingsDep, bearer_credential, get_optional_principal
from rostra.core.errors import (
    AuthenticationRequired,
    Forbidden,
    ServiceUnavailable,
    error_body,
    request_id_of,
)
from rostra.core.metrics import Metrics
from rostra.core.middleware import API_VERSION
from rostra.core.routing import LeanRoute
from rostra.lib.secrets import constant_time_equal
from rostra.system.health import HealthChecker

router = APIRouter(tags=["service"], route_class=LeanRoute)


@router.get("/health", summary="Health of the server and its backing stores")
async def health(request: Request) -> Response:
    checker: HealthChecker = request.app.state.health
    report = await checker.report()
    if report.healthy:
        body = {"status": "ok", "checks": report.checks}
        return Response(orjson.dumps(body), media_type="application/json")
    failing = [name for name, value in report.checks.items() if value == "error"]
    error = ServiceUnavailable(f"Unavailable: {', '.join(failing)}")
    body = {"status": "unavailable", "checks": report.checks}
    body.update(error_body(error, request_id_of(request)))
    return Response(orjson.dumps(body), status_code=503, media_type="application/json")


@router.get("/status", summary="Version, uptime, environment and webhook queue depth")
async def status(request: Request, settings: SettingsDep) -> Response:
    metrics: Metrics = request.app.state.metrics
    body = {
        "version": rostra.__version__,
        "api_version": API_VERSION,
        "environment": settings.environment,
        "uptime_seconds": round(time.monotonic() - request.app.state.started_at, 3),
        "database": "sqlite" if settings.is_sqlite else "postgresql",
        "rate_limit_store": "redis" if settings.redis_url else "memory",
        "webhook_queue_depth": await metrics.read_webhook_queue_depth(),
    }
    return Response(orjson.dumps(body), media_type="application/json")


@router.get("/metrics", summary="Prometheus metrics (admins or the metrics token)")
async def metrics(request: Request, settings: SettingsDep) -> Response:
    if not settings.metrics_public:
        credential = bearer_credential(request)
        token = settings.metrics_token
        if credential is None:
            raise AuthenticationRequired()
        if token is None or not constant_time_equal(credential, token.get_secret_value()):
            principal = await get_optional_principal(request)
            if principal is None or not principal.is_admin:
                raise Forbidden("Metrics are for administrators and the metrics token")
    metrics: Metrics = request.app.state.metrics
    await metrics.read_webhook_queue_depth()
    return Response(metrics.exposition(), media_type=CONTENT_TYPE_LATEST)
