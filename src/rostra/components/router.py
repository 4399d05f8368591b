from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request
from starlette.responses import Response

from rostra.components import service
from rostra.components.models import Component
from rostra.components.schemas import (
    ComponentCreate,
    ComponentOut,
    ComponentReplace,
    ComponentType,
    ComponentUpdate,
    Lifecycle,
)
from rostra.core.deps import (
    CursorCodecDep,
    SessionDep,
    list_params,
    optional_scope,
    require_scope,
)
from rostra.core.errors import Invalid
from rostra.core.http import check_if_match, etag_of, resource_body, resource_response, resource_url
from rostra.core.listing import Filter, ListParams, ListSpec, Page, one_of, paginate, whole_number
from rostra.core.routing import domain_router
from rostra.core.schemas import IdPath
from rostra.core.security import Principal
from rostra.projects import service as projects
from rostra.projects.service import ProjectAccess

router = domain_router(tags=["components"])

Reader = Annotated[Principal | None, Depends(optional_scope("read", "components"))]
Writer = Annotated[Principal, Depends(require_scope("write", "components"))]

COMPONENT_FILTERS = {
    "type": Filter(apply=lambda kind: Component.type == kind, parse=one_of(*ComponentType)),
    "lifecycle": Filter(apply=lambda stage: Component.lifecycle == stage, parse=one_of(*Lifecycle)),
    "owner_id": Filter(apply=lambda owner_id: Component.owner_id == owner_id, parse=whole_number),
}
SORTS = {
    "created_at": Component.created_at,
    "updated_at": Component.updated_at,
    "name": Component.name,
    "id": Component.id,
}
COMPONENT_LIST = ListSpec(
    id_column=Component.id,
    sort_columns=SORTS,
    filters={
        **COMPONENT_FILTERS,
        "project_id": Filter(
            apply=lambda project_id: Component.project_id == project_id, parse=whole_number
        ),
    },
    search_columns=(Component.name, Component.description),
    created_column=Component.created_at,
)
PROJECT_COMPONENT_LIST = ListSpec(
    id_column=Component.id,
    sort_columns=SORTS,
    filters=COMPONENT_FILTERS,
    search_columns=(Component.name, Component.description),
    created_column=Component.created_at,
)


def _respond(
    request: Request, component: Component, principal: Principal | None, status_code: int = 200
) -> Response:
    headers = None
    if status_code == 201:
        headers = {"Location": resource_url(request, "get_component", component_id=component.id)}
    body = service.to_out(component, livemode=projects.livemode_of(principal))
    return resource_response(request, body, status_code=status_code, headers=headers)


def _check_etag(request: Request, component: Component, principal: Principal) -> None:
    check_if_match(
        request, etag_of(resource_body(service.to_out(component, livemode=principal.livemode)))
    )


async def _list(
    request: Request,
    session: SessionDep,
    codec: CursorCodecDep,
    principal: Principal | None,
    params: ListParams,
    spec: ListSpec,
    access: ProjectAccess | None = None,
) -> Response:
    query = projects.rows_in_visible_projects(Component, Component.project_id, principal)
    if access is not None:
        query = query.where(Component.project_id == access.project.id)
    livemode = projects.livemode_of(principal)
    return await paginate(
        session,
        request,
        query,
        spec,
        params,
        codec,
        lambda component: service.to_out(component, livemode=livemode),
    )


async def _create(
    request: Request,
    session: SessionDep,
    access: ProjectAccess,
    data: ComponentCreate,
    principal: Principal,
) -> Response:
    access.require_change()
    component = await service.create_component(session, access=access, data=data, actor=principal)
    return _respond(request, component, principal, status_code=201)


@router.get(
    "/components", response_model=Page[ComponentOut], summary="List the components you may see"
)
async def list_components(
    request: Request,
    session: SessionDep,
    codec: CursorCodecDep,
    principal: Reader,
    params: Annotated[ListParams, Depends(list_params(COMPONENT_LIST))],
) -> Response:
    return await _list(request, session, codec, principal, params, COMPONENT_LIST)


@router.post(
    "/components", status_code=201, response_model=ComponentOut, summary="Create a component"
)
async def create_component(
    request: Request, data: ComponentCreate, session: SessionDep, principal: Writer
) -> Response:
    if data.project_id is None:
        raise Invalid.field("project_id", "This field is required")
    access = await projects.get_project(session, data.project_id, principal, field="project_id")
    return await _create(request, session, access, data, principal)


@router.get(
    "/projects/{project_id}/components",
    response_model=Page[ComponentOut],
    summary="List a project's components",
)
async def list_project_components(
    request: Request,
    project_id: IdPath,
    session: SessionDep,
    codec: CursorCodecDep,
    principal: Reader,
    params: Annotated[ListParams, Depends(list_params(PROJECT_COMPONENT_LIST))],
) -> Response:
    access = await projects.get_project(session, project_id, principal)
    return await _list(request, session, codec, principal, params, PROJECT_COMPONENT_LIST, access)


@router.post(
    "/projects/{project_id}/components",
    status_code=201,
    response_model=ComponentOut,
    summary="Add a component to a project",
)
async def create_project_component(
    request: Request,
    project_id: IdPath,
    data: ComponentCreate,
    session: SessionDep,
    principal: Writer,
) -> Response:
    access = await projects.get_project(session, project_id, principal)
    return await _create(request, session, access, data, principal)


@router.get("/components/{component_id}", response_model=ComponentOut, summary="Get a component")
async def get_component(
    request: Request, component_id: IdPath, session: SessionDep, principal: Reader
) -> Response:
    component, _ = await service.get_component(session, component_id, principal)
    return _respond(request, component, principal)


@router.put(
    "/components/{component_id}", response_model=ComponentOut, summary="Replace a component"
)
async def replace_component(
    request: Request,
    component_id: IdPath,
    data: ComponentReplace,
    session: SessionDep,
    principal: Writer,
) -> Response:
    component, access = await service.get_component(
        session, component_id, principal, for_change=True
    )
    access.require_change()
    _check_etag(request, component, principal)
    component = await service.replace_component(
        session, component=component, project=access.project, data=data, actor=principal
    )
    return _respond(request, component, principal)


@router.patch(
    "/components/{component_id}", response_model=ComponentOut, summary="Change a component"
)
async def update_component(
    request: Request,
    component_id: IdPath,
    data: ComponentUpdate,
    session: SessionDep,
    principal: Writer,
) -> Response:
    component, access = await service.get_component(
        session, component_id, principal, for_change=True
    )
    access.require_change()
    _check_etag(request, component, principal)
    component = await service.update_component(
        session, component=component, project=access.project, data=data, actor=principal
    )
    return _respond(request, component, principal)


@router.delete("/components/{component_id}", status_code=204, summary="Delete a component")
async def delete_component(
    request: Request, component_id: IdPath, session: SessionDep, principal: Writer
) -> Response:
    component, access = await service.get_component(
        session, component_id, principal, for_change=True
    )
    access.require_change()
    _check_etag(request, component, principal)
    await service.delete_component(
        session, component=component, project=access.project, actor=principal
    )
    return Response(status_code=204)
