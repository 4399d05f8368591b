"""What a caller may spend (``Policy``) and what one counted request found (``Decision``).

A policy is a few fixed windows counted together, for Rostra an hourly quota and a per-minute
burst. A window starts with the caller's first request in it and lasts ``seconds``. A request
is admitted only when every blocking window has room; then every window counts it, and a
window that does not block (professional's hourly quota) may go over its limit, the excess
being the overage. A refused request counts nowhere, so a caller refused by the burst does not
also spend their hourly quota.

Times are integer milliseconds since the Unix epoch, the unit both stores compute in.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from rostra.lib.ratelimit.headers import PolicyFields


@dataclass(frozen=True, slots=True)
class Window:
    name: str
    """The policy name clients see in ``RateLimit-Policy``, ``RateLimit`` and /usage."""
    seconds: int
    limit: int | None
    """None: unlimited (still counted, for usage, but never refuses)."""
    blocks: bool = True
    """False: going over the limit is admitted and counted as overage."""
    refuses_at: int | None = field(init=False, compare=False)
    """The count at which this window refuses; None when it never does."""

    def __post_init__(self) -> None:
        object.__setattr__(self, "refuses_at", self.limit if self.blocks else None)


@dataclass(frozen=True, slots=True)
class Policy:
    name: str
    """The plan's name, or ``override`` for an account with its own limits."""
    windows: tuple[Window, ...]
    fields: PolicyFields | None = field(init=False, compare=False, repr=False)
    """The rate-limit fields of this policy's responses, rendered but for a decision's numbers
    (None: nothing is limited, so there are none)."""

    # What a store counting in Python needs of the windows, worked out once (every request is
    # counted against a policy): (position, number) pairs, in the windows' order.
    refusing: tuple[tuple[int, int], ...] = field(init=False, compare=False, repr=False)
    """Each window that refuses, and the count at which it does."""
    lengths_ms: tuple[tuple[int, int], ...] = field(init=False, compare=False, repr=False)
    """Every window, and its length in milliseconds."""
    overage_limits: tuple[tuple[int, int], ...] = field(init=False, compare=False, repr=False)
    """Each limited window that admits overage, and its limit."""

    def __post_init__(self) -> None:
        windows = self.windows
        refusing = [(i, w.refuses_at) for i, w in enumerate(windows) if w.refuses_at is not None]
        overage = [(i, w.limit) for i, w in enumerate(windows) if w.limit is not None]
        set_field = object.__setattr__
        set_field(self, "fields", PolicyFields.of(windows))
        set_field(self, "refusing", tuple(refusing))
        set_field(self, "lengths_ms", tuple((i, w.seconds * 1000) for i, w in enumerate(windows)))
        set_field(self, "overage_limits", tuple(o for o in overage if not windows[o[0]].blocks))


@dataclass(slots=True)
class WindowState:
    window: Window
    used: int
    """Requests counted in the window (after this one, when it was admitted)."""
    resets_at_ms: int
    """When the window ends; a window not yet started ends ``seconds`` after now."""

    @property
    def remaining(self) -> int | None:
        limit = self.window.limit
        return None if limit is None else max(0, limit - self.used)

    @property
    def overage(self) -> int:
        """Requests admitted over the limit of a window that does not block."""
        limit = self.window.limit
        return 0 if limit is None or self.window.blocks else max(0, self.used - limit)

    @property
    def full(self) -> bool:
        """Whether this window refuses the next request."""
        limit = self.window.refuses_at
        return limit is not None and self.used >= limit


@dataclass(slots=True)
class Decision:
    """What one counted request found, window by window (``windows``, ``used`` and
    ``resets_at_ms`` run in parallel).

    One is made for every request, so it holds plain numbers rather than a ``WindowState`` per
    window; ``states`` makes those when they are wanted (a refusal, /usage, tests).
    """

    allowed: bool
    windows: tuple[Window, ...]
    used: tuple[int, ...]
    """Requests counted in each window (after this one, when it was admitted)."""
    resets_at_ms: tuple[int, ...]
    """When each window ends; a window not yet started ends ``seconds`` after now."""
    now_ms: int
    overage: int = 0
    """1 when this admitted request went over a non-blocking limit, else 0."""

    @property
    def states(self) -> tuple[WindowState, ...]:
        return tuple(map(WindowState, self.windows, self.used, self.resets_at_ms))

    def retry_after(self) -> int:
        """Whole seconds until every window that refused this request has room again."""
        waits = [s.resets_at_ms - self.now_ms for s in self.states if s.full]
        return max(1, -(-max(waits, default=0) // 1000))

    def refunded(self) -> Decision:
        """The same decision as if the request had never been counted."""
        if not self.allowed:
            return self
        used = tuple(max(0, n - 1) for n in self.used)
        return Decision(True, self.windows, used, self.resets_at_ms, self.now_ms)


@dataclass(frozen=True, slots=True)
class Usage:
    """A caller's windows as they stand, read without counting, and their overage so far."""

    states: tuple[WindowState, ...]
    now_ms: int
    period: str
    """The billing period the overage total belongs to: the UTC month, ``YYYY-MM``."""
    period_overage: int

    def decision(self) -> Decision:
        """The windows as a request that was admitted without being counted would see them."""
        states = self.states
        return Decision(
            True,
            tuple(s.window for s in states),
            tuple(s.used for s in states),
            tuple(s.resets_at_ms for s in states),
            self.now_ms,
        )
