"""The app's admission check (``core.routing``): the rate-limit count of every domain route.

It runs before the route's own dependencies and asks for the principal itself, so a request
with a bad credential is still counted, against its client address (guessing keys is limited
too), before the route's own dependency answers it 401. The fields are added when the response
starts (``Counted.add_fields``), whatever the response is.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request

from rostra.core.deps import get_optional_principal
from rostra.core.errors import AuthenticationRequired
from rostra.core.middleware import RESPONSE_START_HOOK
from rostra.core.routing import Admission
from rostra.ratelimit.limiter import Counted, RateLimiter


def get_rate_limiter(request: Request) -> RateLimiter:
    limiter: RateLimiter = request.app.state.rate_limiter
    return limiter


RateLimiterDep = Annotated[RateLimiter, Depends(get_rate_limiter)]


def show_rate_limit(request: Request, counted: Counted) -> None:
    request.scope["state"][RESPONSE_START_HOOK] = counted.add_fields


async def admit_uncounted(request: Request) -> None:
    """The admission of an app whose limiter is off."""


def rate_limit_admission(limiter: RateLimiter) -> Admission:
    """The admission check counting requests with ``limiter``: one closure per app, so the
    request path does not look the limiter up in the app's state."""
    if not limiter.enabled:
        return admit_uncounted

    async def count_request(request: Request) -> None:
        """Count this request against the caller's limits; 429 when they are spent."""
        try:
            principal = await get_optional_principal(request)
        except AuthenticationRequired:
            # Counted against the client address; the 401 is left to the route's own principal
            # dependency, so the routes that need no credential (sign-in, refresh, logout with
            # a refresh token) still answer a client that sends along its expired access token.
            principal = None
        scope = request.scope
        # The memory store counts without a coroutine on the way (nearly every request).
        counted = limiter.count_now(scope, principal)
        if counted is None:
            counted = await limiter.count(scope, principal)
            if counted is None:
                return
        scope["state"][RESPONSE_START_HOOK] = counted.add_fields
        if not counted.decision.allowed:
            raise limiter.refusal(counted)

    return count_request
