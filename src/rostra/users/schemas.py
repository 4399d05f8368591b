from __future__ import annotations

import re
import zoneinfo
from functools import lru_cache
from typing import Annotated, Literal

import langcodes
from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    EmailStr,
    Field,
    StringConstraints,
    field_validator,
)

from rostra.core.schemas import InputModel, ResourceModel, Timestamp

USERNAME_PATTERN = r"^[A-Za-z0-9](?:[A-Za-z0-9_.\-]{0,62}[A-Za-z0-9_])?$"

Role = Literal["admin", "member"]
Plan = Literal["free", "starter", "professional", "enterprise"]
Username = Annotated[str, StringConstraints(pattern=USERNAME_PATTERN, max_length=64)]
Password = Annotated[str, StringConstraints(min_length=8, max_length=1024, strip_whitespace=False)]


@lru_cache(maxsize=1)
def _time_zones() -> frozenset[str]:
    return frozenset(zoneinfo.available_timezones())


def _iana_time_zone(value: str) -> str:
    if value not in _time_zones():
        raise ValueError("Must be an IANA time zone name such as 'Europe/Paris' or 'UTC'")
    return value


def _language_code(value: str) -> str:
    if not re.fullmatch(r"[A-Za-z]{2,3}(?:[-_][A-Za-z0-9]{2,8})*", value) or not (
        langcodes.tag_is_valid(value.replace("_", "-"))
    ):
        raise ValueError("Must be a language code such as 'en', 'es' or 'pt-BR'")
    return langcodes.standardize_tag(value.replace("_", "-"))


TimeZone = Annotated[str, AfterValidator(_iana_time_zone)]
LanguageCode = Annotated[str, AfterValidator(_language_code)]


class ProfileIn(InputModel):
    first_name: Annotated[str, StringConstraints(max_length=100)] | None = None
    last_name: Annotated[str, StringConstraints(max_length=100)] | None = None
    timezone: TimeZone | None = None
    language: LanguageCode | None = None


class Profile(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    first_name: str | None = None
    last_name: str | None = None
    timezone: str | None = None
    language: str | None = None


class UserCreate(InputModel):
    """``POST /users`` and ``POST /auth/register``; username is made from the email if absent."""

    username: Username | None = None
    email: EmailStr
    name: Annotated[str, StringConstraints(max_length=200)] | None = None
    password: Password | None = None
    role: Role | None = None
    plan: Plan | None = None
    profile: ProfileIn | None = None


def _not_null(value: object) -> object:
    if value is None:
        raise ValueError("Cannot be null")
    return value


class UserUpdate(InputModel):
    """``PATCH``: only the fields sent change; ``profile`` merges key by key."""

    username: Username | None = None
    email: EmailStr | None = None
    name: Annotated[str, StringConstraints(max_length=200)] | None = None
    password: Password | None = None
    role: Role | None = None
    plan: Plan | None = None
    profile: ProfileIn | None = None

    # Left out means "unchanged"; null would mean "none", which a user cannot have for these.
    _required_not_null = field_validator("username", "email", "role", "plan", "password")(_not_null)


class UserReplace(InputModel):
    """``PUT``: every writable field; name and profile fields left out go back to empty.

    ``role`` and ``plan`` left out stay as they are (a member cannot send them otherwise than
    unchanged), and ``password``, which no answer shows, changes only when sent.
    """

    username: Username
    email: EmailStr
    name: Annotated[str, StringConstraints(max_length=200)] | None = None
    password: Password | None = None
    role: Role | None = None
    plan: Plan | None = None
    profile: ProfileIn = Field(default_factory=ProfileIn)

    _required_not_null = field_validator("role", "plan", "password")(_not_null)


class UserOut(ResourceModel):
    id: int
    username: str
    email: str | None = Field(description="Shown only to the user themself and to admins")
    name: str | None
    role: str
    plan: str
    created_at: Timestamp
    updated_at: Timestamp
    last_login: Timestamp | None
    profile: Profile
