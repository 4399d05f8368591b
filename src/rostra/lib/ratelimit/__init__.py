"""Rate limiting without a framework: policies, the plan table, the stores, the fields.

``limits`` (the usual library) counts one limit per call: ``hit`` on the hour and then on the
minute would spend the hour on a request the minute refuses, and ``test`` then ``hit`` races
between processes. It has no notion of admitting a request over a limit while counting the
overage, nor of giving back exactly the count a request added (a 304 costs nothing). So the
two-window check-and-count is our own, written once per store: in Python for the memory store,
in one Lua script for Redis, and the same tests run against both.
"""

from rostra.lib.ratelimit.client_ip import client_address, client_key, parse_networks
from rostra.lib.ratelimit.headers import rate_limit_headers
from rostra.lib.ratelimit.memory import MemoryStore
from rostra.lib.ratelimit.plans import (
    ANONYMOUS,
    DEFAULT_PLANS,
    PlanLimits,
    default_plan_table,
    parse_plan_table,
)
from rostra.lib.ratelimit.policy import Decision, Policy, Usage, Window, WindowState
from rostra.lib.ratelimit.redis_store import RedisStore
from rostra.lib.ratelimit.store import RateLimitStore, StoreUnavailable

__all__ = [
    "ANONYMOUS",
    "DEFAULT_PLANS",
    "Decision",
    "MemoryStore",
    "PlanLimits",
    "Policy",
    "RateLimitStore",
    "RedisStore",
    "StoreUnavailable",
    "Usage",
    "Window",
    "WindowState",
    "client_address",
    "client_key",
    "default_plan_table",
    "parse_networks",
    "parse_plan_table",
    "rate_limit_headers",
]
