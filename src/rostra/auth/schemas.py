from __future__ import annotations

from typing import Annotated, Literal

from pydantic import BaseModel, StringConstraints, model_validator

from rostra.core.schemas import InputModel, ResourceModel, Timestamp


class LoginRequest(InputModel):
    username: Annotated[str, StringConstraints(min_length=1, max_length=254)] | None = None
    email: Annotated[str, StringConstraints(min_length=1, max_length=254)] | None = None
    password: Annotated[str, StringConstraints(min_length=1, max_length=1024)]

    @model_validator(mode="after")
    def _one_login(self) -> LoginRequest:
        if not (self.username or self.email):
            raise ValueError("Send a username or an email")
        return self

    @property
    def login(self) -> str:
        return self.username or self.email or ""


class RefreshRequest(InputModel):
    refresh_token: Annotated[str, StringConstraints(min_length=1, max_length=200)]


class LogoutRequest(InputModel):
    refresh_token: Annotated[str, StringConstraints(min_length=1, max_length=200)] | None = None


class TokenPair(BaseModel):
    access_token: str
    token_type: Literal["bearer"] = "bearer"
    expires_in: int
    refresh_token: str


class SessionOut(ResourceModel):
    id: int
    device: str | None
    ip: str | None
    created_at: Timestamp
    last_used_at: Timestamp
    current: bool
