"""Webhooks: endpoints that subscribe to events, and the deliveries fanned out to them."""
