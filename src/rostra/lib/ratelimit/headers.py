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

from rostra.lib.ratelimit.policy import Decision, Policy, Window

RawHeaders = list[tuple[bytes, bytes]]


def rate_limit_headers(policy: Policy, decision: Decision) -> RawHeaders:
    policy_pair = policy.policy_pair
    if policy_pair is None:
        return []
    now = decision.now_ms
    values: list[int] = []  # (remaining, seconds) of each limited window, for the RateLimit field
    nearest: Window | None = None
    left, resets_at = 0, 0
    for window, used, ends in zip(
        decision.windows, decision.used, decision.resets_at_ms, strict=True
    ):
        window_limit = window.limit
        if window_limit is None:
            continue
        window_left = window_limit - used if used < window_limit else 0
        wait = (ends - now + 999) // 1000  # whole seconds, rounded up
        values.append(window_left)
        values.append(wait if wait > 0 else 0)
        # Nearest: a blocking window before one that does not, then fewest left, then the
        # latest reset.
        if (
            nearest is None
            or (window.blocks and not nearest.blocks)
            or (
                window.blocks == nearest.blocks
                and (window_left < left or (window_left == left and ends > resets_at))
            )
        ):
            nearest, left, resets_at = window, window_left, ends
    assert nearest is not None  # a policy with a policy field has a limited window
    return [
        nearest.limit_pair,
        (b"x-ratelimit-remaining", b"%d" % left),
        (b"x-ratelimit-reset", b"%d" % ((resets_at + 999) // 1000)),
        policy_pair,
        (b"ratelimit", policy.rate_limit_field % tuple(values)),
    ]
