"""Prometheus instruments, one registry per app so that several apps (tests) never collide.

The request middleware counts requests and latency. Domains count their own events through the
app's instance (``request.app.state.metrics``): the rate limiter its refusals, the webhook
sender its deliveries. A gauge that needs the database (the webhook queue) is read when
/metrics or /status is asked, through a probe the owning domain sets.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable

import structlog
from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest

log = structlog.get_logger(__name__)

QueueDepthProbe = Callable[[], Awaitable[int]]


class Metrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        self.requests = Counter(
            "rostra_http_requests",
            "HTTP requests by method, route template and status code",
            ["method", "route", "status"],
            registry=self.registry,
        )
        self.latency = Histogram(
            "rostra_http_request_duration_seconds",
            "HTTP request latency by route template",
            ["route"],
            buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10),
            registry=self.registry,
        )
        self.rate_limit_refusals = Counter(
            "rostra_rate_limit_refusals",
            "Requests refused with 429 by the rate limiter, by plan",
            ["plan"],
            registry=self.registry,
        )
        self.webhook_deliveries = Counter(
            "rostra_webhook_deliveries",
            "Webhook delivery attempts by outcome: success, retry (failed, tried again later), "
            "failed (failed, out of attempts)",
            ["outcome"],
            registry=self.registry,
        )
        self.webhook_delivery_duration = Histogram(
            "rostra_webhook_delivery_duration_seconds",
            "Duration of webhook delivery attempts, until the receiver's answer or the error",
            buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30),
            registry=self.registry,
        )
        self.webhook_queue_depth = Gauge(
            "rostra_webhook_queue_depth",
            "Webhook deliveries waiting to be sent",
            registry=self.registry,
        )
        self.webhook_queue_depth_probe: QueueDepthProbe | None = None
        """Set by the webhooks domain; None until it is, and /status then reports null."""

    async def read_webhook_queue_depth(self) -> int | None:
        """Ask the probe (when there is one) and keep the answer in the gauge; None when the
        database cannot say (/status and /metrics still answer while it is away)."""
        if self.webhook_queue_depth_probe is None:
            return None
        try:
            depth = await self.webhook_queue_depth_probe()
        except Exception as exc:
            log.warning("webhook_queue_depth_unavailable", error=repr(exc))
            return None
        self.webhook_queue_depth.set(depth)
        return depth

    def exposition(self) -> bytes:
        return generate_latest(self.registry)
