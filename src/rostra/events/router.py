"""``GET /events`` and ``GET /events/types``.

Which projects a caller belongs to is the projects domain's business, which sits above this
one; ``api.py`` hands that query in when it builds this router.
"""

from __future__ import annotations

from typing import Annotated

import orjson
from fastapi import APIRouter, Depends, Request
from sqlalchemy import select
from starlette.responses import Response

from rostra.core.deps import CursorCodecDep, SessionDep, list_params, require_scope
from rostra.core.errors import Invalid
from rostra.core.listing import Filter, ListParams, ListSpec, Page, paginate, whole_number
from rostra.core.routing import domain_router
from rostra.core.security import Principal
from rostra.events import service
from rostra.events.catalog import EVENT_TYPES
from rostra.events.models import Event
from rostra.events.schemas import EventOut, EventTypeOut

Reader = Annotated[Principal, Depends(require_scope("read", "events"))]


def _known_type(value: str) -> str:
    if value not in EVENT_TYPES:
        raise ValueError("Unknown event type; GET /events/types lists them")
    return value


EVENT_LIST = ListSpec(
    id_column=Event.id,
    sort_columns={"created_at": Event.created_at, "id": Event.id},
    filters={
        "type": Filter(apply=lambda kind: Event.type == kind, parse=_known_type),
        "project_id": Filter(
            apply=lambda project_id: Event.project_id == project_id, parse=whole_number
        ),
    },
    created_column=Event.created_at,
)


def build_router(member_projects: service.MemberProjects) -> APIRouter:
    router = domain_router(tags=["events"])

    @router.get("/events", response_model=Page[EventOut], summary="Recent events you may see")
    async def list_events(
        request: Request,
        session: SessionDep,
        codec: CursorCodecDep,
        principal: Reader,
        params: Annotated[ListParams, Depends(list_params(EVENT_LIST))],
    ) -> Response:
        query = select(Event).where(service.visible_to(principal, member_projects))
        return await paginate(session, request, query, EVENT_LIST, params, codec, service.to_out)

    @router.get(
        "/events/types", response_model=Page[EventTypeOut], summary="Every event type there is"
    )
    async def list_event_types(request: Request, _: Reader) -> Response:
        # A short fixed catalogue: one page holds it all, so it takes no paging parameters.
        for name in request.query_params:
            raise Invalid.field(name, "Unknown query parameter")
        data = [{"type": name, "description": text} for name, text in EVENT_TYPES.items()]
        pagination = {
            "limit": len(data),
            "offset": 0,
            "total": len(data),
            "has_more": False,
            "next_cursor": None,
        }
        return Response(
            orjson.dumps({"data": data, "pagination": pagination}),
            headers={"Link": f'<{request.url}>; rel="first"'},
            media_type="application/json",
        )

    return router
