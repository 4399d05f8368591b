"""The delivery worker: claims due deliveries, sends them, records how each went.

The lease is what makes a delivery "never lost". A worker claims due rows of active endpoints
in one short transaction (``FOR UPDATE SKIP LOCKED`` on PostgreSQL, so workers on many hosts
never claim the same row; SQLite has one writer at a time), and in it counts the attempt and
pushes ``next_attempt_at`` to the end of a lease longer than any send. It commits, sends, and
records the outcome only if it still holds the lease (the row is pending with the lease end it
set: a redelivery or another worker that took over an expired lease wins). A worker killed
mid-send leaves the row due again at the lease end, and the next one sends it again with the
same ``message_id``: receivers de-duplicate by ``webhook-id``.

Throughput: claims come in batches, ahead of the sends, which run concurrently (bounded
overall and per endpoint); outcomes are written in batches, a few statements per batch.

- ``_claims``: what a claim reads and writes (the lease, handing rows back, the queue depth).
- ``_outcomes``: recording attempts, retries, and the endpoints' health.
- ``_worker``: the loop that ties them together, with its concurrency and shutdown.
"""

from rostra.webhooks.jobs._claims import Claim, queue_depth
from rostra.webhooks.jobs._outcomes import Result
from rostra.webhooks.jobs._worker import DeliveryWorker

__all__ = ["Claim", "DeliveryWorker", "Result", "queue_depth"]
