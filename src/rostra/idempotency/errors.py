from __future__ import annotations

from rostra.core.errors import Conflict, RostraError


class IdempotencyKeyInUse(Conflict):
    code = "IDEMPOTENCY_KEY_IN_USE"
    message = "A request with this Idempotency-Key is still running; retry once it has finished"


class IdempotencyKeyReused(RostraError):
    status_code = 422
    code = "IDEMPOTENCY_KEY_REUSED"
    message = (
        "This Idempotency-Key was already used for a different request "
        "(another method, path or body); use a new key"
    )
