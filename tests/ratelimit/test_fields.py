"""The rate-limit fields of a decision, against the contract's rule written out plainly."""

from __future__ import annotations

import random

import pytest

from rostra.lib.ratelimit import Decision, Policy, Window, rate_limit_headers

NOW_MS = 1_800_000_000_123


def expected_fields(policy: Policy, decision: Decision) -> list[tuple[bytes, bytes]]:
    """Section 7 as written: of the limited windows that can refuse (else of all the limited
    ones), the one with the fewest requests left, on a tie the one that resets later, on a
    tie again the first; every limited window in RateLimit-Policy and RateLimit."""
    limited = [
        (window, used, ends)
        for window, used, ends in zip(
            decision.windows, decision.used, decision.resets_at_ms, strict=True
        )
        if window.limit is not None
    ]
    if not limited:
        return []

    def left(window: Window, used: int) -> int:
        assert window.limit is not None
        return max(0, window.limit - used)

    def seconds(ends: int) -> int:
        return max(0, -(-(ends - decision.now_ms) // 1000))

    candidates = [entry for entry in limited if entry[0].blocks] or limited
    fewest = min(left(w, used) for w, used, _ in candidates)
    fewest_left = [entry for entry in candidates if left(entry[0], entry[1]) == fewest]
    latest = max(ends for _, _, ends in fewest_left)
    window, used, ends = next(entry for entry in fewest_left if entry[2] == latest)
    policy_field = ", ".join(f'"{w.name}";q={w.limit};w={w.seconds}' for w, _, _ in limited)
    rate_limit = ", ".join(f'"{w.name}";r={left(w, u)};t={seconds(e)}' for w, u, e in limited)
    return [
        (b"x-ratelimit-limit", str(window.limit).encode()),
        (b"x-ratelimit-remaining", str(left(window, used)).encode()),
        (b"x-ratelimit-reset", str(-(-ends // 1000)).encode()),
        (b"ratelimit-policy", policy_field.encode()),
        (b"ratelimit", rate_limit.encode()),
    ]


def policies() -> list[Policy]:
    """Every shape: the plans' two limited windows (blocking or not), one of them unlimited,
    one window, three."""
    shapes = []
    for hour in (None, 5, 10):
        for minute in (None, 3, 10):
            for hour_blocks in (True, False):
                for minute_blocks in (True, False):
                    windows = (
                        Window("hour", 3600, hour, blocks=hour_blocks),
                        Window("minute", 60, minute, blocks=minute_blocks),
                    )
                    shapes.append(Policy("plan", windows))
    shapes.append(Policy("one", (Window("minute", 60, 4),)))
    shapes.append(
        Policy(
            "three",
            (
                Window("day", 86_400, 20, blocks=False),
                Window("hour", 3600, 8),
                Window("minute", 60, 8),
            ),
        )
    )
    return shapes


def decisions(policy: Policy, rng: random.Random) -> list[Decision]:
    """Counts below, at and over each limit; windows that end now, soon, or in the past."""
    found = []
    for _ in range(60):
        used = tuple(rng.choice((0, 1, 3, 4, 5, 9, 10, 12)) for _ in policy.windows)
        # Few distinct ends, so that ties on what is left are often ties on the reset too.
        ends = tuple(
            NOW_MS + rng.choice((-1500, 0, 1, 999, 1000, 40_000, 3_540_000)) for _ in policy.windows
        )
        found.append(Decision(True, policy.windows, used, ends, NOW_MS, 0))
    return found


@pytest.mark.parametrize("policy", policies(), ids=lambda p: repr(p.windows))
def test_fields_follow_the_contracts_rule(policy: Policy) -> None:
    rng = random.Random(7)
    for decision in decisions(policy, rng):
        assert rate_limit_headers(policy, decision) == expected_fields(policy, decision)


def test_the_plans_fields_read_as_the_contract_shows_them() -> None:
    policy = Policy("free", (Window("hour", 3600, 1000), Window("minute", 60, 100)))
    decision = Decision(True, policy.windows, (2, 2), (NOW_MS + 3_540_000, NOW_MS + 40_000), NOW_MS)
    assert dict(rate_limit_headers(policy, decision)) == {
        b"x-ratelimit-limit": b"100",
        b"x-ratelimit-remaining": b"98",
        b"x-ratelimit-reset": str((NOW_MS + 40_000 + 999) // 1000).encode(),
        b"ratelimit-policy": b'"hour";q=1000;w=3600, "minute";q=100;w=60',
        b"ratelimit": b'"hour";r=998;t=3540, "minute";r=98;t=40',
    }


def test_a_policy_without_limits_has_no_fields() -> None:
    policy = Policy("unlimited", (Window("hour", 3600, None), Window("minute", 60, None)))
    decision = Decision(True, policy.windows, (1, 1), (NOW_MS + 1000, NOW_MS + 1000), NOW_MS)
    assert rate_limit_headers(policy, decision) == []
