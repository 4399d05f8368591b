from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request
from starlette.responses import Response

from rostra.core.deps import (
    CursorCodecDep,
    SessionDep,
    list_params,
    optional_scope,
    require_scope,
)
from rostra.core.http import check_if_match, etag_of, resource_body, resource_response, resource_url
from rostra.core.listing import Filter, ListParams, ListSpec, Page, paginate, whole_number
from rostra.core.routing import domain_router
from rostra.core.schemas import IdPath
from rostra.core.security import Principal
from rostra.datasets import service
from rostra.datasets.models import DataSet
from rostra.datasets.schemas import DataSetCreate, DataSetOut, DataSetReplace, DataSetUpdate
from rostra.projects.service import livemode_of

router = domain_router(tags=["data sets"])

Reader = Annotated[Principal | None, Depends(optional_scope("read", "data"))]
Writer = Annotated[Principal, Depends(require_scope("write", "data"))]

DATA_SET_LIST = ListSpec(
    id_column=DataSet.id,
    sort_columns={
        "created_at": DataSet.created_at,
        "updated_at": DataSet.updated_at,
        "name": DataSet.name,
        "id": DataSet.id,
    },
    filters={
        "project_id": Filter(
            apply=lambda project_id: DataSet.project_id == project_id, parse=whole_number
        ),
        "owner_id": Filter(apply=lambda owner_id: DataSet.owner_id == owner_id, parse=whole_number),
    },
    search_columns=(DataSet.name,),
    created_column=DataSet.created_at,
)


def _respond(
    request: Request, data_set: DataSet, principal: Principal | None, status_code: int = 200
) -> Response:
    headers = None
    if status_code == 201:
        headers = {"Location": resource_url(request, "get_data_set", data_set_id=data_set.id)}
    body = service.to_out(data_set, livemode=livemode_of(principal))
    return resource_response(request, body, status_code=status_code, headers=headers)


async def _changeable(
    request: Request, session: SessionDep, data_set_id: int, principal: Principal
) -> DataSet:
    """The data set, if the caller may change it and If-Match (when sent) still matches."""
    access = await service.get_data_set(session, data_set_id, principal, for_change=True)
    access.require_change()
    body = resource_body(service.to_out(access.data_set, livemode=principal.livemode))
    check_if_match(request, etag_of(body))
    return access.data_set


@router.get("/data", response_model=Page[DataSetOut], summary="List the data sets you may see")
async def list_data_sets(
    request: Request,
    session: SessionDep,
    codec: CursorCodecDep,
    principal: Reader,
    params: Annotated[ListParams, Depends(list_params(DATA_SET_LIST))],
) -> Response:
    livemode = livemode_of(principal)
    return await paginate(
        session,
        request,
        service.visible_query(principal),
        DATA_SET_LIST,
        params,
        codec,
        lambda data_set: service.to_out(data_set, livemode=livemode),
    )


@router.post("/data", status_code=201, response_model=DataSetOut, summary="Create a data set")
async def create_data_set(
    request: Request, data: DataSetCreate, session: SessionDep, principal: Writer
) -> Response:
    data_set = await service.create_data_set(session, data=data, actor=principal)
    return _respond(request, data_set, principal, status_code=201)


@router.get("/data/{data_set_id}", response_model=DataSetOut, summary="Get a data set")
async def get_data_set(
    request: Request, data_set_id: IdPath, session: SessionDep, principal: Reader
) -> Response:
    access = await service.get_data_set(session, data_set_id, principal)
    return _respond(request, access.data_set, principal)


@router.put("/data/{data_set_id}", response_model=DataSetOut, summary="Replace a data set")
async def replace_data_set(
    request: Request,
    data_set_id: IdPath,
    data: DataSetReplace,
    session: SessionDep,
    principal: Writer,
) -> Response:
    data_set = await _changeable(request, session, data_set_id, principal)
    data_set = await service.replace_data_set(
        session, data_set=data_set, data=data, actor=principal
    )
    return _respond(request, data_set, principal)


@router.patch("/data/{data_set_id}", response_model=DataSetOut, summary="Change a data set")
async def update_data_set(
    request: Request,
    data_set_id: IdPath,
    data: DataSetUpdate,
    session: SessionDep,
    principal: Writer,
) -> Response:
    data_set = await _changeable(request, session, data_set_id, principal)
    data_set = await service.update_data_set(session, data_set=data_set, data=data, actor=principal)
    return _respond(request, data_set, principal)


@router.delete("/data/{data_set_id}", status_code=204, summary="Delete a data set")
async def delete_data_set(
    request: Request, data_set_id: IdPath, session: SessionDep, principal: Writer
) -> Response:
    data_set = await _changeable(request, session, data_set_id, principal)
    await service.delete_data_set(session, data_set=data_set, actor=principal)
    return Response(status_code=204)
