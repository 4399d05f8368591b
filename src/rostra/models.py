"""Every domain's tables, imported so that the metadata (and Alembic) sees all of them."""

from rostra.api_keys.models import ApiKey
from rostra.auth.models import AuthSession, RefreshToken
from rostra.components.models import Component
from rostra.core.db import Base
from rostra.datasets.models import DataSet
from rostra.deployments.models import Deployment
from rostra.events.models import Event
from rostra.idempotency.models import IdempotencyKey
from rostra.projects.models import Project, ProjectMember
from rostra.ratelimit.models import RateLimitOverride
from rostra.users.models import User
from rostra.webhooks.models import WebhookAttempt, WebhookDelivery, WebhookEndpoint

metadata = Base.metadata

__all__ = [
    "ApiKey",
    "AuthSession",
    "Base",
    "Component",
    "DataSet",
    "Deployment",
    "Event",
    "IdempotencyKey",
    "Project",
    "ProjectMember",
    "RateLimitOverride",
    "RefreshToken",
    "User",
    "WebhookAttempt",
    "WebhookDelivery",
    "WebhookEndpoint",
    "metadata",
]
