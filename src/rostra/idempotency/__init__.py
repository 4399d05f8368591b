"""Idempotency-Key on POST and PATCH (contract section 9), for every route without per-route code.

``middleware`` is the pure-ASGI layer that claims a key, runs the request once and replays the
stored answer; ``store`` keeps the records in the database, so they hold across processes.
"""
