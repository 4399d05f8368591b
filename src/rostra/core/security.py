"""Who is calling and what their credential allows: the principal every route receives.

Domains decide *whether* a user may touch a resource (ownership, roles); this module decides
what the *credential* allows on top of that (key scopes, section 3 of the contract).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal, Protocol

Action = Literal["read", "write", "admin"]
CredentialKind = Literal["api_key", "session", "oauth", "operator"]

RESOURCES = frozenset(
    {
        "users",
        "api_keys",
        "sessions",
        "projects",
        "components",
        "deployments",
        "data",
        "webhooks",
        "events",
        "oauth_apps",
        "usage",
    }
)
BROAD_SCOPES = ("read", "write", "admin")


def is_known_scope(scope: str) -> bool:
    if scope in BROAD_SCOPES:
        return True
    resource, _, action = scope.partition(":")
    return resource in RESOURCES and action in ("read", "write")


def scope_allows(scopes: frozenset[str] | None, action: Action, resource: str) -> bool:
    """``None`` is a credential with all its user's rights (a login token)."""
    if scopes is None or "admin" in scopes:
        return True
    if action == "admin":
        return False
    if "write" in scopes or f"{resource}:write" in scopes:
        return True
    return action == "read" and ("read" in scopes or f"{resource}:read" in scopes)


def scopes_within(requested: frozenset[str], held: frozenset[str] | None) -> bool:
    """Whether every requested scope is allowed by the held ones (no escalation by new keys)."""
    if held is None or "admin" in held:
        return True
    for scope in requested:
        if scope in BROAD_SCOPES:
            if not scope_allows(held, scope, "*"):  # type: ignore[arg-type]
                return False
            continue
        resource, _, action = scope.partition(":")
        if not scope_allows(held, action, resource):  # type: ignore[arg-type]
            return False
    return True


@dataclass(frozen=True, slots=True)
class Principal:
    user_id: int
    username: str
    role: str
    plan: str
    credential: CredentialKind
    credential_id: str
    scopes: frozenset[str] | None = None
    livemode: bool = True

    def allows(self, action: Action, resource: str) -> bool:
        return scope_allows(self.scopes, action, resource)

    @property
    def is_admin(self) -> bool:
        """An admin user acting through a credential that carries admin rights."""
        return self.role == "admin" and scope_allows(self.scopes, "admin", "*")


OPERATOR = Principal(
    user_id=0,
    username="operator",
    role="admin",
    plan="enterprise",
    credential="operator",
    credential_id="cli",
)
"""Whoever runs the ``rostra`` CLI on the server: acts with administrator rights."""


class Authenticator(Protocol):
    """Turns a bearer credential into a principal, or raises AuthenticationRequired."""

    async def authenticate(self, credential: str) -> Principal: ...
