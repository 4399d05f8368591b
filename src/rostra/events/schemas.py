from __future__ import annotations

from typing import Any

from pydantic import BaseModel, Field

from rostra.core.schemas import ResourceModel, Timestamp


class EventOut(ResourceModel):
    """The contract's event body (section 8): what a webhook receiver gets, too."""

    id: str = Field(description="evt_...: stable across redeliveries")
    event: str
    timestamp: Timestamp
    data: dict[str, Any] = Field(description="The resource as the API returned it")


class EventTypeOut(BaseModel):
    type: str
    description: str
