"""``create_app(settings)``: the one place where the server is assembled."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from functools import partial
from pathlib import Path
from typing import Any

import fastapi_offline
from fastapi import FastAPI, Request
from fastapi.openapi.docs import get_swagger_ui_html
from fastapi.openapi.utils import get_openapi
from redis.asyncio import BlockingConnectionPool, Redis
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff
from starlette.responses import HTMLResponse, Response
from starlette.routing import BaseRoute
from starlette.staticfiles import StaticFiles

import rostra
from rostra.api import API_PREFIX, SHORT_PREFIX, documented_routes, mount_routes
from rostra.auth.authenticator import CredentialAuthenticator
from rostra.core.config import Settings, get_settings
from rostra.core.db import Database
from rostra.core.errors import ServiceUnavailable, error_response, install_error_handlers
from rostra.core.listing import CursorCodec
from rostra.core.logging import configure_logging
from rostra.core.metrics import Metrics
from rostra.core.middleware import RequestContextMiddleware
from rostra.core.routing import ADMISSION_STATE
from rostra.idempotency.middleware import IdempotencyMiddleware
from rostra.idempotency.store import IdempotencyStore
from rostra.legacy.envelope import LegacyEnvelopeMiddleware
from rostra.lib.passwords import BoundedPasswordHasher, PasswordHasherBusy
from rostra.ratelimit.deps import rate_limit_admission
from rostra.ratelimit.limiter import RateLimiter
from rostra.system.health import HealthChecker
from rostra.webhooks.jobs import queue_depth
from rostra.worker import BackgroundJobs

REDIS_POOL_WAIT_SECONDS = 2.0
DOCS_STATIC = Path(fastapi_offline.__file__).parent / "static"

DESCRIPTION = """Rostra's platform API. Authenticate with `Authorization: Bearer <credential>`:
an API key (`sk_live_...`, `test_sk_...`) or a login access token from `POST /api/v1/auth/login`.
Every route under `/api/v1` also answers under `/v1`."""


def create_app(settings: Settings | None = None) -> FastAPI:
    settings = settings or get_settings()
    configure_logging(settings.log_level)
    db = Database(settings)
    redis = _redis_client(settings.redis_url, settings) if settings.redis_url else None

    metrics = Metrics()
    metrics.webhook_queue_depth_probe = partial(queue_depth, db)

    @asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        # The embedded worker lives with the server process (``rostra serve``); an app driven
        # without its lifespan (the tests' ASGI client) sends no webhooks unless a test asks.
        jobs = BackgroundJobs(db, settings, metrics) if settings.webhooks_worker_enabled else None
        if jobs is not None:
            jobs.start()
        yield
        if jobs is not None:
            await jobs.close()
        await db.dispose()
        if redis is not None:
            await redis.aclose()

    app = FastAPI(
        title="Rostra API",
        version=rostra.__version__,
        description=DESCRIPTION,
        docs_url=None,
        redoc_url=None,
        openapi_url="/openapi.json",
        # A body sent without Content-Type is read as JSON, as curl users and seed clients expect.
        strict_content_type=False,
        # Our metrics are Prometheus; FastAPI's OpenTelemetry checks would run on every request.
        telemetry={"tracing": False, "metrics": False, "logs": False},
        lifespan=lifespan,
    )
    app.state.settings = settings
    app.state.db = db
    app.state.redis = redis
    app.state.metrics = metrics
    app.state.started_at = time.monotonic()
    app.state.cursor_codec = CursorCodec(settings.signing_key())
    app.state.authenticator = CredentialAuthenticator(db, settings)
    app.state.password_hasher = BoundedPasswordHasher(
        concurrency=settings.password_hash_concurrency, queue=settings.password_hash_queue
    )
    app.state.rate_limiter = RateLimiter.from_settings(settings, db, redis, metrics)
    admit = rate_limit_admission(app.state.rate_limiter)
    setattr(app.state, ADMISSION_STATE, admit)
    app.state.health = HealthChecker(
        {"database": db.ping, "redis": redis.ping if redis is not None else None},
        settings.health_cache_seconds,
    )

    install_error_handlers(app)

    async def on_hasher_busy(request: Request, _: Exception) -> Response:
        busy = ServiceUnavailable("Too many sign-ins at once; retry in a moment")
        busy.headers["Retry-After"] = "1"
        return error_response(request, busy)

    app.add_exception_handler(PasswordHasherBusy, on_hasher_busy)
    _mount_docs(app)
    mount_routes(app)
    app.openapi = lambda: _openapi(app, documented_routes())  # type: ignore[method-assign]
    app.add_middleware(
        IdempotencyMiddleware,
        store=IdempotencyStore(db, settings.signing_key()),
        admit=admit,
    )
    app.add_middleware(
        RequestContextMiddleware, metrics=metrics, max_body_bytes=settings.max_body_bytes
    )
    app.add_middleware(LegacyEnvelopeMiddleware, canonical_prefixes=(API_PREFIX, SHORT_PREFIX))
    return app


def _redis_client(url: str, settings: Settings) -> Redis:
    """One pool per app; a burst of requests waits for a free connection rather than failing.

    A Redis that is down fails fast (short connect timeout, one immediate retry). Callers bound
    their own calls (the rate limiter, the health check) with ``asyncio.timeout``, so the
    socket timeout is off, explicitly: since redis-py 8 it defaults to 5 s, which costs a timer
    on every reply read and a task for every command written (``asyncio.wait_for`` on Python
    3.11): 7 % of the event loop's time under load with the Redis limiter.
    """
    pool = BlockingConnectionPool.from_url(
        url,
        max_connections=settings.redis_max_connections,
        timeout=REDIS_POOL_WAIT_SECONDS,
        socket_connect_timeout=settings.redis_timeout_seconds,
        socket_timeout=None,
        retry=Retry(NoBackoff(), retries=1),
    )
    return Redis.from_pool(pool)


def _mount_docs(app: FastAPI) -> None:
    """Swagger UI from files shipped in the package: /docs works with no network."""
    app.mount("/docs/static", StaticFiles(directory=DOCS_STATIC), name="docs-static")

    @app.get("/docs", include_in_schema=False)
    async def docs() -> HTMLResponse:
        return get_swagger_ui_html(
            openapi_url="/openapi.json",
            title="Rostra API",
            swagger_js_url="/docs/static/swagger-ui-bundle.js",
            swagger_css_url="/docs/static/swagger-ui.css",
            swagger_favicon_url="/docs/static/favicon.png",
            # Swagger UI would otherwise send the document to validator.swagger.io.
            swagger_ui_parameters={"validatorUrl": None},
        )


def _openapi(app: FastAPI, routes: list[BaseRoute]) -> dict[str, Any]:
    if app.openapi_schema is None:
        schema = get_openapi(
            title=app.title,
            version=app.version,
            description=app.description,
            routes=routes,
        )
        schema.setdefault("components", {})["securitySchemes"] = {
            "bearer": {"type": "http", "scheme": "bearer"}
        }
        schema["security"] = [{"bearer": []}]
        app.openapi_schema = schema
    return app.openapi_schema
