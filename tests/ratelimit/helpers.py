"""Plans small enough to spend in a test, and readers of the rate-limit fields."""

from __future__ import annotations

import re
import time
from typing import Any

import httpx
from fastapi import FastAPI

PLANS: dict[str, Any] = {
    "anonymous": {"per_hour": 6, "per_minute": 4},
    "free": {"per_hour": 8, "per_minute": 5},
    "starter": {"per_hour": 20, "per_minute": 7},
    "professional": {"per_hour": 3, "per_minute": 50},
}
FREE_POLICY = '"hour";q=8;w=3600, "minute";q=5;w=60'
USER = "/api/v1/user"
USAGE = "/api/v1/usage"
FIELD_NAMES = (
    "X-RateLimit-Limit",
    "X-RateLimit-Remaining",
    "X-RateLimit-Reset",
    "RateLimit-Policy",
    "RateLimit",
)
_ITEM = re.compile(r'"(?P<name>[a-z]+)";r=(?P<r>\d+);t=(?P<t>\d+)')


def limit_fields(response: httpx.Response) -> tuple[int, int, int]:
    """(X-RateLimit-Limit, -Remaining, -Reset) of a response."""
    return (
        int(response.headers["X-RateLimit-Limit"]),
        int(response.headers["X-RateLimit-Remaining"]),
        int(response.headers["X-RateLimit-Reset"]),
    )


def remaining(response: httpx.Response) -> int:
    return int(response.headers["X-RateLimit-Remaining"])


def ratelimit_items(response: httpx.Response) -> dict[str, tuple[int, int]]:
    """The IETF ``RateLimit`` field as {policy name: (remaining, seconds to reset)}."""
    value = response.headers["RateLimit"]
    items = {m["name"]: (int(m["r"]), int(m["t"])) for m in _ITEM.finditer(value)}
    assert ", ".join(f'"{n}";r={r};t={t}' for n, (r, t) in items.items()) == value
    return items


def has_no_limit_fields(response: httpx.Response) -> bool:
    return not any(name in response.headers for name in FIELD_NAMES)


def assert_reset_within(response: httpx.Response, seconds: int) -> None:
    reset = int(response.headers["X-RateLimit-Reset"])
    now = time.time()
    assert now - 1 <= reset <= now + seconds + 1


def metric(app: FastAPI, name: str, **labels: str) -> float:
    value = app.state.metrics.registry.get_sample_value(name, labels)
    return float(value or 0.0)
