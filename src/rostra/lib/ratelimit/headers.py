"""The rate-limit fields of a response, from a decision (contract section 7).

``X-RateLimit-*`` describe one window, the one nearest to refusing: of the windows that can
refuse, the one with the fewest requests left (on a tie, the one that resets later). A window
that admits overage never refuses, so professional callers see their burst window there; every
window is in the IETF ``RateLimit-Policy`` and ``RateLimit`` fields (draft-ietf-httpapi-
ratelimit-headers) and in GET /usage. A caller with no limit at all gets no fields.

This runs on every counted response, so it is written for speed: each policy renders what
depends on it alone once (``PolicyFields``, built with the policy), and a response fills in
its decision's numbers. Every policy of the plan table is an hourly and a per-minute window;
when both are limited, as they nearly always are, the fields are rendered without a loop.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # policy builds its PolicyFields from here, so no import back at run time
    from rostra.lib.ratelimit.policy import Decision, Policy, Window

RawHeaders = list[tuple[bytes, bytes]]

_REMAINING = b"x-ratelimit-remaining"
_RESET = b"x-ratelimit-reset"
_RATE_LIMIT = b"ratelimit"


class PolicyFields:
    """The fields of one policy, rendered once but for a decision's numbers.

    ``limited`` holds, per window that has a limit, in order: its position in the policy, its
    limit, its ``X-RateLimit-Limit`` field and whether it may be the nearest window (a window
    that does not block may be only when no limited window blocks).
    """

    __slots__ = ("limited", "policy_pair", "rate_limit")

    def __init__(self, windows: Sequence[Window]) -> None:
        limited = [(i, w, w.limit) for i, w in enumerate(windows) if w.limit is not None]
        if not limited:
            raise ValueError("a policy without a limited window has no fields")
        any_blocks = any(w.blocks for _, w, _ in limited)
        self.limited = tuple(
            (i, limit, (b"x-ratelimit-limit", b"%d" % limit), w.blocks or not any_blocks)
            for i, w, limit in limited
        )
        self.policy_pair = (
            b"ratelimit-policy",
            ", ".join(f'"{w.name}";q={limit};w={w.seconds}' for _, w, limit in limited).encode(),
        )
        items = [f'"{w.name.replace("%", "%%")}";r=%d;t=%d' for _, w, _ in limited]
        self.rate_limit = ", ".join(items).encode()
        """The ``RateLimit`` field, to be filled with (remaining, seconds) of each limited
        window, in order."""

    @staticmethod
    def of(windows: Sequence[Window]) -> PolicyFields | None:
        """The fields of a policy of ``windows``; None when none of them is limited."""
        if not any(w.limit is not None for w in windows):
            return None
        if len(windows) == 2 and all(w.limit is not None for w in windows):
            return _TwoLimitedWindows(windows)
        return PolicyFields(windows)

    def render(self, decision: Decision) -> RawHeaders:
        now = decision.now_ms
        used, resets_at = decision.used, decision.resets_at_ms
        values: list[int] = []  # (remaining, seconds) of each limited window
        nearest: tuple[bytes, bytes] | None = None
        left, ends = 0, 0
        for i, limit, limit_pair, candidate in self.limited:
            window_used, window_ends = used[i], resets_at[i]
            window_left = limit - window_used if window_used < limit else 0
            wait = (window_ends - now + 999) // 1000  # whole seconds, rounded up
            values.append(window_left)
            values.append(wait if wait > 0 else 0)
            if candidate and (
                nearest is None
                or window_left < left
                or (window_left == left and window_ends > ends)
            ):
                nearest, left, ends = limit_pair, window_left, window_ends
        assert nearest is not None  # every policy with fields has a candidate
        return [
            nearest,
            (_REMAINING, b"%d" % left),
            (_RESET, b"%d" % ((ends + 999) // 1000)),
            self.policy_pair,
            (_RATE_LIMIT, self.rate_limit % tuple(values)),
        ]


class _TwoLimitedWindows(PolicyFields):
    """Two windows, both limited (every plan's policy but an unlimited one): ``render``
    without a loop. The nearest window is fixed when only one of them may be it."""

    __slots__ = ("limit_0", "limit_1", "limit_pair_0", "limit_pair_1", "nearest")

    def __init__(self, windows: Sequence[Window]) -> None:
        super().__init__(windows)
        first, second = self.limited
        _, self.limit_0, self.limit_pair_0, may_0 = first
        _, self.limit_1, self.limit_pair_1, may_1 = second
        self.nearest = None if may_0 == may_1 else (0 if may_0 else 1)
        """The position of the nearest window when only one may be it; None: the closer."""

    def render(self, decision: Decision) -> RawHeaders:
        now = decision.now_ms
        used_0, used_1 = decision.used
        ends_0, ends_1 = decision.resets_at_ms
        limit_0, limit_1 = self.limit_0, self.limit_1
        left_0 = limit_0 - used_0 if used_0 < limit_0 else 0
        left_1 = limit_1 - used_1 if used_1 < limit_1 else 0
        wait_0 = (ends_0 - now + 999) // 1000
        wait_1 = (ends_1 - now + 999) // 1000
        nearest = self.nearest
        if nearest is None:
            nearest = 1 if left_1 < left_0 or (left_1 == left_0 and ends_1 > ends_0) else 0
        if nearest:
            limit_pair, left, ends = self.limit_pair_1, left_1, ends_1
        else:
            limit_pair, left, ends = self.limit_pair_0, left_0, ends_0
        return [
            limit_pair,
            (_REMAINING, b"%d" % left),
            (_RESET, b"%d" % ((ends + 999) // 1000)),
            self.policy_pair,
            (
                _RATE_LIMIT,
                self.rate_limit
                % (left_0, wait_0 if wait_0 > 0 else 0, left_1, wait_1 if wait_1 > 0 else 0),
            ),
        ]


def rate_limit_headers(policy: Policy, decision: Decision) -> RawHeaders:
    fields = policy.fields
    return [] if fields is None else fields.render(decision)
