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
from rostra.core.listing import Filter, ListParams, ListSpec, Page, one_of, paginate, whole_number
from rostra.core.routing import domain_router
from rostra.core.schemas import IdPath
from rostra.core.security import Principal
from rostra.deployments import service
from rostra.deployments.models import Deployment
from rostra.deployments.schemas import (
    DeploymentCreate,
    DeploymentOut,
    DeploymentStatus,
    DeploymentUpdate,
)
from rostra.projects import service as projects

router = domain_router(tags=["deployments"])

Reader = Annotated[Principal | None, Depends(optional_scope("read", "deployments"))]
Writer = Annotated[Principal, Depends(require_scope("write", "deployments"))]

DEPLOYMENT_FILTERS = {
    "status": Filter(
        apply=lambda status: Deployment.status == status, parse=one_of(*DeploymentStatus)
    ),
    "environment": Filter(apply=lambda environment: Deployment.environment == environment),
    "component_id": Filter(
        apply=lambda component_id: Deployment.component_id == component_id, parse=whole_number
    ),
}
SORTS = {"created_at": Deployment.created_at, "id": Deployment.id}
DEPLOYMENT_LIST = ListSpec(
    id_column=Deployment.id,
    sort_columns=SORTS,
    filters={
        **DEPLOYMENT_FILTERS,
        "project_id": Filter(
            apply=lambda project_id: Deployment.project_id == project_id, parse=whole_number
        ),
    },
    created_column=Deployment.created_at,
)
PROJECT_DEPLOYMENT_LIST = ListSpec(
    id_column=Deployment.id,
    sort_columns=SORTS,
    filters=DEPLOYMENT_FILTERS,
    created_column=Deployment.created_at,
)


def _respond(
    request: Request, deployment: Deployment, principal: Principal | None, status_code: int = 200
) -> Response:
    headers = None
    if status_code == 201:
        headers = {"Location": resource_url(request, "get_deployment", deployment_id=deployment.id)}
    body = service.to_out(deployment, livemode=projects.livemode_of(principal))
    return resource_response(request, body, status_code=status_code, headers=headers)


async def _list(
    request: Request,
    session: SessionDep,
    codec: CursorCodecDep,
    principal: Principal | None,
    params: ListParams,
    spec: ListSpec,
    project_id: int | None = None,
) -> Response:
    query = projects.rows_in_visible_projects(Deployment, Deployment.project_id, principal)
    if project_id is not None:
        query = query.where(Deployment.project_id == project_id)
    livemode = projects.livemode_of(principal)
    return await paginate(
        session,
        request,
        query,
        spec,
        params,
        codec,
        lambda deployment: service.to_out(deployment, livemode=livemode),
    )


@router.get(
    "/deployments",
    response_model=Page[DeploymentOut],
    summary="List the deployments you may see",
)
async def list_deployments(
    request: Request,
    session: SessionDep,
    codec: CursorCodecDep,
    principal: Reader,
    params: Annotated[ListParams, Depends(list_params(DEPLOYMENT_LIST))],
) -> Response:
    return await _list(request, session, codec, principal, params, DEPLOYMENT_LIST)


@router.get(
    "/projects/{project_id}/deployments",
    response_model=Page[DeploymentOut],
    summary="List a project's deployments",
)
async def list_project_deployments(
    request: Request,
    project_id: IdPath,
    session: SessionDep,
    codec: CursorCodecDep,
    principal: Reader,
    params: Annotated[ListParams, Depends(list_params(PROJECT_DEPLOYMENT_LIST))],
) -> Response:
    access = await projects.get_project(session, project_id, principal)
    return await _list(
        request, session, codec, principal, params, PROJECT_DEPLOYMENT_LIST, access.project.id
    )


@router.post(
    "/projects/{project_id}/deployments",
    status_code=201,
    response_model=DeploymentOut,
    summary="Request a deployment (it starts pending)",
)
async def create_deployment(
    request: Request,
    project_id: IdPath,
    data: DeploymentCreate,
    session: SessionDep,
    principal: Writer,
) -> Response:
    access = await projects.get_project(session, project_id, principal)
    access.require_change()
    deployment = await service.create_deployment(session, access=access, data=data, actor=principal)
    return _respond(request, deployment, principal, status_code=201)


@router.get(
    "/deployments/{deployment_id}", response_model=DeploymentOut, summary="Get a deployment"
)
async def get_deployment(
    request: Request, deployment_id: IdPath, session: SessionDep, principal: Reader
) -> Response:
    deployment, _ = await service.get_deployment(session, deployment_id, principal)
    return _respond(request, deployment, principal)


@router.patch(
    "/deployments/{deployment_id}",
    response_model=DeploymentOut,
    summary="Move a deployment forward: started, then completed or failed; or cancelled",
)
async def update_deployment(
    request: Request,
    deployment_id: IdPath,
    data: DeploymentUpdate,
    session: SessionDep,
    principal: Writer,
) -> Response:
    deployment, access = await service.get_deployment(session, deployment_id, principal)
    access.require_change()
    body = resource_body(service.to_out(deployment, livemode=principal.livemode))
    check_if_match(request, etag_of(body))
    if data.status is not None:
        deployment = await service.move(
            session,
            deployment=deployment,
            project=access.project,
            status=data.status,
            actor=principal,
        )
    return _respond(request, deployment, principal)
