"""The rate-limit fields of a response, from a decision (contract section 7).

``X-RateLimit-*`` describe one window, the one nearest to refusing: of the windows that can
refuse, the one with the fewest requests left (on a tie, the one that resets later). A window
that admits overage never refuses, so professional callers see their burst window there; every
window is in the IETF ``RateLimit-Policy`` and ``RateLimit`` fields (draft-ietf-httpapi-
ratelimit-headers) and in GET /usage. A caller with no limit at all gets no fields.

This runs on every counted response, so it is written for speed: one pass, raw ASGI pairs.
"""

from __future__ import annotations

from rostra.lib.ratelimit.policy import Decision, Policy

RawHeaders = list[tuple[bytes, bytes]]


def rate_limit_headers(policy: Policy, decision: Decision) -> RawHeaders:
    if policy.policy_field is None:
        return []
    now = decision.now_ms
    items = []
    # Blocking windows first (False sorts before True), then fewest left, then latest reset.
    nearest: tuple[bool, int, int, int] | None = None  # (rank..., limit)
    for state in decision.states:
        window = state.window
        if window.limit is None:
            continue
        left = max(0, window.limit - state.used)
        wait = max(0, -((now - state.resets_at_ms) // 1000))
        items.append(f'"{window.name}";r={left};t={wait}')
        candidate = (not window.blocks, left, -state.resets_at_ms, window.limit)
        if nearest is None or candidate < nearest:
            nearest = candidate
    assert nearest is not None  # the policy limits something, so some window has a limit
    _, left, minus_reset, limit = nearest
    return [
        (b"x-ratelimit-limit", str(limit).encode()),
        (b"x-ratelimit-remaining", str(left).encode()),
        (b"x-ratelimit-reset", str(-(minus_reset // 1000)).encode()),
        (b"ratelimit-policy", policy.policy_field),
        (b"ratelimit", ", ".join(items).encode()),
    ]
