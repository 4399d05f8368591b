"""Every event type the server writes, with what it means (``GET /events/types``).

The contract (section 8) names the types webhooks deliver. A few more are written so that every
create, update, delete and state move leaves a row: a deployment's creation and cancellation,
and changes to a project's members.
"""

from __future__ import annotations

from typing import Final

USER_CREATED: Final = "user.created"
USER_REGISTERED: Final = "user.registered"
USER_UPDATED: Final = "user.updated"
USER_DELETED: Final = "user.deleted"
PROJECT_CREATED: Final = "project.created"
PROJECT_UPDATED: Final = "project.updated"
PROJECT_DELETED: Final = "project.deleted"
MEMBER_ADDED: Final = "project.member_added"
MEMBER_UPDATED: Final = "project.member_updated"
MEMBER_REMOVED: Final = "project.member_removed"
COMPONENT_CREATED: Final = "component.created"
COMPONENT_UPDATED: Final = "component.updated"
COMPONENT_DELETED: Final = "component.deleted"
DEPLOYMENT_CREATED: Final = "deployment.created"
DEPLOYMENT_STARTED: Final = "deployment.started"
DEPLOYMENT_COMPLETED: Final = "deployment.completed"
DEPLOYMENT_FAILED: Final = "deployment.failed"
DEPLOYMENT_CANCELLED: Final = "deployment.cancelled"
DATA_CREATED: Final = "data.created"
DATA_UPDATED: Final = "data.updated"
DATA_DELETED: Final = "data.deleted"
PING: Final = "ping"

EVENT_TYPES: Final[dict[str, str]] = {
    USER_CREATED: "A user was created by an administrator or with the CLI",
    USER_REGISTERED: "Someone signed up with POST /auth/register",
    USER_UPDATED: "A user's account or profile changed",
    USER_DELETED: "A user was deleted",
    PROJECT_CREATED: "A project was created",
    PROJECT_UPDATED: "A project changed (including a change of owner)",
    PROJECT_DELETED: "A project was deleted",
    MEMBER_ADDED: "A user was added to a project",
    MEMBER_UPDATED: "A project member's role changed",
    MEMBER_REMOVED: "A user was removed from a project",
    COMPONENT_CREATED: "A component was added to a project",
    COMPONENT_UPDATED: "A component changed",
    COMPONENT_DELETED: "A component was deleted",
    DEPLOYMENT_CREATED: "A deployment was requested (status pending)",
    DEPLOYMENT_STARTED: "A deployment moved to started",
    DEPLOYMENT_COMPLETED: "A deployment completed",
    DEPLOYMENT_FAILED: "A deployment failed",
    DEPLOYMENT_CANCELLED: "A deployment was cancelled",
    DATA_CREATED: "A data set was created",
    DATA_UPDATED: "A data set changed",
    DATA_DELETED: "A data set was deleted",
    PING: "A test delivery sent to a webhook on request",
}
