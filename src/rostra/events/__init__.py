"""The event log: one row per change, written in the transaction that made the change."""
