"""Prometheus instruments, one registry per app so that several apps (tests) never collide.

The request middleware counts requests and latency. Domains count their own events through the
app's instance (``request.app.state.metrics``): the rate limiter its refusals, the webhook
sender its deliveries. A gauge that needs the database (the webhook queue) is read when
/metrics or /status is asked, through a probe the owning domain sets.
"""

from __future__ import annotations

from bisect import bisect_left
from collections.abc import Awaitable, Callable, Iterator
from itertools import accumulate

import structlog
from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from prometheus_client.core import CounterMetricFamily, HistogramMetricFamily, Metric
from prometheus_client.registry import Collector
from prometheus_client.utils import floatToGoString

log = structlog.get_logger(__name__)

QueueDepthProbe = Callable[[], Awaitable[int]]
LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10)


class RequestMetrics(Collector):
    """Requests by method, route template and status, and their latency by route, kept as
    plain numbers and turned into Prometheus families only when scraped.

    It is written to on every request, from the event loop alone: a labelled ``Counter`` and
    ``Histogram`` would cost a label lookup and a lock per call, about a twentieth of a
    cached request.
    """

    def __init__(self) -> None:
        self._counts: dict[tuple[str, str, int], int] = {}
        # route -> observations per bucket (the last one past every bound), then their sum
        self._latency: dict[str, list[float]] = {}

    def observe(self, method: str, route: str, status: int, seconds: float) -> None:
        key = (method, route, status)
        self._counts[key] = self._counts.get(key, 0) + 1
        series = self._latency.get(route)
        if series is None:
            series = self._latency[route] = [0] * (len(LATENCY_BUCKETS) + 2)
        series[bisect_left(LATENCY_BUCKETS, seconds)] += 1
        series[-1] += seconds

    def collect(self) -> Iterator[Metric]:
        requests = CounterMetricFamily(
            "rostra_http_requests",
            "HTTP requests by method, route template and status code",
            labels=["method", "route", "status"],
        )
        for (method, route, status), count in self._counts.items():
            requests.add_metric([method, route, str(status)], count)
        yield requests
        latency = HistogramMetricFamily(
            "rostra_http_request_duration_seconds",
            "HTTP request latency by route template",
            labels=["route"],
        )
        bounds = [*map(floatToGoString, LATENCY_BUCKETS), "+Inf"]
        for route, series in self._latency.items():
            cumulative = accumulate(series[:-1])
            latency.add_metric(
                [route], list(zip(bounds, cumulative, strict=True)), sum_value=series[-1]
            )
        yield latency


class Metrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        self.requests = RequestMetrics()
        self.registry.register(self.requests)
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
