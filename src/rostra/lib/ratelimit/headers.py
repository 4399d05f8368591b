"""The rate-limit fields of a response, from a decision (contract section 7).

``X-RateLimit-*`` describe one window, the one nearest to refusing: of the windows that can
refuse, the one with the fewest requests left (on a tie, the one that resets later). A window
that admits overage never refuses, so professional callers see their burst window there; every
window is in the IETF ``RateLimit-Policy`` and ``RateLimit`` fields (draft-ietf-httpapi-
ratelimit-headers) and in GET /usage. A caller with no limit at all gets no fields.

This runs on every counted response, so it is written for speed: one pass over the decision's
numbers, bytes formatted into templates each policy renders once, raw ASGI pairs.
"""

from __future__ import annotations

from rostra.lib.ratelimit.policy import Decision, Policy

RawHeaders = list[tuple[bytes, bytes]]


def rate_limit_headers(policy: Policy, decision: Decision) -> RawHeaders:
    policy_field = policy.policy_field
    if policy_field is None:
        return []
    now = decision.now_ms
    values: list[int] = []  # (remaining, seconds) of each limited window, for the RateLimit field
    # Ranked by (does not block, requests left, -reset): blocking windows first (False sorts
    # before True), then fewest left, then latest reset.
    nearest: tuple[bool, int, int] | None = None
    limit, left, resets_at = b"", 0, 0
    for window, used, ends in zip(
        decision.windows, decision.used, decision.resets_at_ms, strict=True
    ):
        window_limit = window.limit
        if window_limit is None:
            continue
        window_left = window_limit - used if used < window_limit else 0
        wait = (ends - now + 999) // 1000  # whole seconds, rounded up
        values += (window_left, wait if wait > 0 else 0)
        rank = (not window.blocks, window_left, -ends)
        if nearest is None or rank < nearest:
            nearest = rank
            limit, left, resets_at = window.limit_field, window_left, ends
    return [
        (b"x-ratelimit-limit", limit),
        (b"x-ratelimit-remaining", b"%d" % left),
        (b"x-ratelimit-reset", b"%d" % ((resets_at + 999) // 1000)),
        (b"ratelimit-policy", policy_field),
        (b"ratelimit", policy.rate_limit_field % tuple(values)),
    ]
