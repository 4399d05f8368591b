"""Every domain's tables, imported so that the metadata (and Alembic) sees all of them."""

from rostra.api_keys.models import ApiKey
from rostra.auth.models import AuthSession, RefreshToken
from rostra.core.db import Base
from rostra.users.models import User

metadata = Base.metadata

__all__ = ["ApiKey", "AuthSession", "Base", "RefreshToken", "User", "metadata"]
