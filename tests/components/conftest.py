from __future__ import annotations

import pytest


@pytest.fixture
def settings_overrides() -> dict[str, object]:
    """Rate limits have their own tests; these make more requests than a free plan allows."""
    return {"rate_limit_enabled": False}
