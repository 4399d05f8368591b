"""The plan table: each plan's hourly quota, per-minute burst and overage rule.

The shipped defaults are the contract's (section 7). An operator replaces the table with JSON
(``ROSTRA_RATE_LIMIT_PLANS``); a plan left out keeps its default, and so does a field left out
of a plan, while ``null`` means unlimited.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, fields, replace
from types import MappingProxyType

from rostra.lib.ratelimit.policy import Policy, Window

HOUR_SECONDS = 3600
MINUTE_SECONDS = 60
ANONYMOUS = "anonymous"


@dataclass(frozen=True, slots=True)
class PlanLimits:
    per_hour: int | None
    """Requests per hour; None is unlimited."""
    per_minute: int | None
    """Requests per minute (the burst); None is unlimited."""
    overage: bool = False
    """Admit requests over the hourly quota and count them as overage instead of refusing."""

    def policy(self, name: str) -> Policy:
        return Policy(
            name,
            (
                Window("hour", HOUR_SECONDS, self.per_hour, blocks=not self.overage),
                Window("minute", MINUTE_SECONDS, self.per_minute),
            ),
        )


DEFAULT_PLANS: Mapping[str, PlanLimits] = MappingProxyType(
    {
        ANONYMOUS: PlanLimits(per_hour=100, per_minute=10),
        "free": PlanLimits(per_hour=1_000, per_minute=100),
        "starter": PlanLimits(per_hour=5_000, per_minute=200),
        "professional": PlanLimits(per_hour=10_000, per_minute=500, overage=True),
        "enterprise": PlanLimits(per_hour=100_000, per_minute=2_000),
    }
)

_FIELDS = tuple(f.name for f in fields(PlanLimits))


def default_plan_table() -> dict[str, PlanLimits]:
    return dict(DEFAULT_PLANS)


def parse_plan_table(raw: object) -> dict[str, PlanLimits]:
    """The complete table from JSON text (or its decoded mapping), merged over the defaults.

    Raises ValueError with a message fit for one line of start-up output.
    """
    if isinstance(raw, str):
        try:
            raw = json.loads(raw)
        except json.JSONDecodeError as exc:
            raise ValueError(f"not valid JSON ({exc})") from None
    if not isinstance(raw, Mapping):
        raise ValueError('must be a JSON object such as {"free": {"per_hour": 1000}}')
    table = default_plan_table()
    for name, entry in raw.items():
        if name not in DEFAULT_PLANS:
            known = ", ".join(DEFAULT_PLANS)
            raise ValueError(f"unknown plan {name!r} (the plans are {known})")
        table[name] = entry if isinstance(entry, PlanLimits) else _merge(name, entry)
    return table


def _merge(name: str, entry: object) -> PlanLimits:
    if not isinstance(entry, Mapping):
        raise ValueError(f"plan {name!r} must be an object with per_hour, per_minute, overage")
    unknown = set(entry) - set(_FIELDS)
    if unknown:
        raise ValueError(f"plan {name!r} has unknown field(s) {', '.join(sorted(unknown))}")
    for field_name in ("per_hour", "per_minute"):
        value = entry.get(field_name)
        # type() rather than isinstance(): JSON true is not a number of requests.
        if value is not None and (type(value) is not int or value < 0):
            raise ValueError(f"{name}.{field_name} must be a whole number >= 0, or null")
    if type(entry.get("overage", False)) is not bool:
        raise ValueError(f"{name}.overage must be true or false")
    return replace(DEFAULT_PLANS[name], **dict(entry))
