"""Scopes: what a credential allows, and which new keys it may mint."""

from __future__ import annotations

from dataclasses import replace

import pytest

from rostra.core.security import (
    OPERATOR,
    Principal,
    is_known_scope,
    scope_allows,
    scopes_within,
)


@pytest.mark.parametrize(
    ("scope", "known"),
    [
        ("read", True),
        ("write", True),
        ("admin", True),
        ("users:read", True),
        ("projects:write", True),
        ("api_keys:read", True),
        ("users:admin", False),
        ("users", False),
        ("nothing:read", False),
        ("READ", False),
        ("", False),
    ],
)
def test_known_scopes(scope: str, known: bool) -> None:
    assert is_known_scope(scope) is known


@pytest.mark.parametrize(
    ("scopes", "action", "resource", "allowed"),
    [
        (None, "admin", "users", True),
        ({"admin"}, "write", "projects", True),
        ({"read"}, "read", "users", True),
        ({"read"}, "write", "users", False),
        ({"read", "write"}, "admin", "users", False),
        ({"write"}, "read", "users", True),
        ({"users:read"}, "read", "users", True),
        ({"users:read"}, "read", "projects", False),
        ({"users:read"}, "write", "users", False),
        ({"users:write"}, "read", "users", True),
        ({"users:write"}, "write", "api_keys", False),
        (set(), "read", "users", False),
    ],
)
def test_scope_allows(scopes: set[str] | None, action: str, resource: str, allowed: bool) -> None:
    held = frozenset(scopes) if scopes is not None else None
    assert scope_allows(held, action, resource) is allowed  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("requested", "held", "within"),
    [
        ({"admin"}, None, True),
        ({"admin"}, {"admin"}, True),
        ({"admin"}, {"read", "write"}, False),
        ({"read"}, {"write"}, True),
        ({"write"}, {"read"}, False),
        ({"read"}, {"users:read", "projects:read"}, False),
        ({"users:read"}, {"users:write"}, True),
        ({"users:write"}, {"users:read"}, False),
        ({"projects:write", "read"}, {"write"}, True),
        ({"projects:read"}, {"users:read"}, False),
    ],
)
def test_scopes_within(requested: set[str], held: set[str] | None, within: bool) -> None:
    held_scopes = frozenset(held) if held is not None else None
    assert scopes_within(frozenset(requested), held_scopes) is within


def test_admin_needs_the_role_and_a_credential_carrying_admin() -> None:
    admin = Principal(
        user_id=1, username="a", role="admin", plan="free", credential="api_key", credential_id="1"
    )
    assert admin.is_admin  # a login token: no scopes, all the user's rights
    assert replace(admin, scopes=frozenset({"admin"})).is_admin
    assert not replace(admin, scopes=frozenset({"read", "write"})).is_admin
    assert not replace(admin, role="member").is_admin
    assert OPERATOR.is_admin
