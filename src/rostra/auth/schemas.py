from __future__ import annotations

from typing import Annotated, Literal

from pydantic import BaseModel, Field, StringConstraints, ValidationInfo, field_validator

from rostra.core.schemas import InputModel, ResourceModel, Timestamp
from rostra.users.schemas import Password, UserCreate

LoginName = Annotated[str, StringConstraints(min_length=1, max_length=254)]
# Never stripped: a password's spaces are part of it.
LoginPassword = Annotated[
    str, StringConstraints(min_length=1, max_length=1024, strip_whitespace=False)
]
RefreshTokenText = Annotated[str, StringConstraints(min_length=1, max_length=200)]


class LoginRequest(InputModel):
    """``username`` or ``email`` names the account (a username field holding an email works too,
    as OAuth-style forms send it)."""

    # email comes first so that the check on username can see it (fields validate in order).
    email: LoginName | None = None
    username: LoginName | None = Field(default=None, validate_default=True)
    password: LoginPassword

    @field_validator("username")
    @classmethod
    def _username_or_email(cls, username: str | None, info: ValidationInfo) -> str | None:
        # An email that failed its own validation is absent from info.data: one error is enough.
        if username is None and "email" in info.data and info.data["email"] is None:
            raise ValueError("Send a username or an email")
        return username

    @property
    def login(self) -> str:
        return self.username or self.email or ""


class RefreshRequest(InputModel):
    refresh_token: RefreshTokenText


class LogoutRequest(InputModel):
    refresh_token: RefreshTokenText | None = None


class RegisterRequest(UserCreate):
    """Public sign-up: a user body whose password is required; role and plan are refused."""

    password: Password


class TokenPair(BaseModel):
    access_token: str
    token_type: Literal["bearer"] = "bearer"
    expires_in: int = Field(description="Seconds until the access token expires")
    refresh_token: str


class SessionOut(ResourceModel):
    id: int
    device: str | None = Field(description="The User-Agent that signed in")
    ip: str | None
    created_at: Timestamp
    last_used_at: Timestamp = Field(description="When the session last signed in or refreshed")
    current: bool = Field(description="Whether this is the session of the calling access token")
