"""The dependency every counted router carries, and the hook that writes the rate-limit fields.

It runs before the route's own dependencies and asks for the principal itself, so a request
with a bad credential is still counted, against its client address (guessing keys is limited
too), before the route's own dependency answers it 401. The fields are added when the response
starts, whatever the response is (a 404, a 429, a 500); a 304 is refunded there first, so it
costs nothing.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request
from starlette.types import Message

from rostra.core.deps import get_optional_principal
from rostra.core.errors import AuthenticationRequired
from rostra.core.middleware import RESPONSE_START_HOOK
from rostra.lib.ratelimit import rate_limit_headers
from rostra.ratelimit.limiter import Counted, RateLimiter


def get_rate_limiter(request: Request) -> RateLimiter:
    limiter: RateLimiter = request.app.state.rate_limiter
    return limiter


RateLimiterDep = Annotated[RateLimiter, Depends(get_rate_limiter)]


class RateLimitFields:
    """The response-start hook of a counted request: adds the fields to the list of headers
    the request-context middleware hands it (a list of its own)."""

    __slots__ = ("counted", "limiter", "refund_not_modified")

    def __init__(
        self, limiter: RateLimiter, counted: Counted, *, refund_not_modified: bool
    ) -> None:
        self.limiter = limiter
        self.counted = counted
        self.refund_not_modified = refund_not_modified

    async def __call__(self, message: Message) -> None:
        decision = self.counted.decision
        if self.refund_not_modified and message["status"] == 304 and decision.allowed:
            decision = await self.limiter.refund(self.counted)
        message["headers"].extend(rate_limit_headers(self.counted.policy, decision))


def show_rate_limit(
    request: Request, limiter: RateLimiter, counted: Counted, *, refund_not_modified: bool
) -> None:
    request.scope["state"][RESPONSE_START_HOOK] = RateLimitFields(
        limiter, counted, refund_not_modified=refund_not_modified
    )


async def count_request(request: Request) -> None:
    """Count this request against the caller's limits; 429 when they are spent."""
    limiter: RateLimiter = request.app.state.rate_limiter
    if not limiter.enabled:
        return
    try:
        principal = await get_optional_principal(request)
    except AuthenticationRequired:
        # Counted against the client address; the 401 is left to the route's own principal
        # dependency, so the routes that need no credential (sign-in, refresh, logout with a
        # refresh token) still answer a client that sends along its expired access token.
        principal = None
    counted = await limiter.count(request.scope, principal)
    if counted is None:
        return
    show_rate_limit(request, limiter, counted, refund_not_modified=True)
    if not counted.decision.allowed:
        raise limiter.refusal(counted)
