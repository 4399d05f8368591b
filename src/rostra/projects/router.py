from __future__ import annotations

from functools import partial
from typing import Annotated, Any

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
from rostra.core.listing import (
    CursorCodec,
    Filter,
    ListParams,
    ListSpec,
    Page,
    one_of,
    paginate,
    parse_list_params,
    whole_number,
)
from rostra.core.routing import domain_router
from rostra.core.schemas import IdPath
from rostra.core.security import Principal
from rostra.idempotency.middleware import keep_answer
from rostra.projects import service
from rostra.projects.models import Project, ProjectMember
from rostra.projects.schemas import (
    MemberCreate,
    MemberOut,
    MemberUpdate,
    ProjectCreate,
    ProjectOut,
    ProjectReplace,
    ProjectStatus,
    ProjectUpdate,
    Visibility,
)

router = domain_router(tags=["projects"])

read_projects = optional_scope("read", "projects")
Reader = Annotated[Principal | None, Depends(read_projects)]
Writer = Annotated[Principal, Depends(require_scope("write", "projects"))]

PROJECTS = service.PROJECTS
PROJECT_LIST = ListSpec(
    id_column=PROJECTS.id,
    sort_columns={
        "created_at": PROJECTS.created_at,
        "updated_at": PROJECTS.updated_at,
        "name": PROJECTS.name,
        "id": PROJECTS.id,
    },
    filters={
        "status": Filter(
            apply=lambda status: PROJECTS.status == status, parse=one_of(*ProjectStatus)
        ),
        "visibility": Filter(
            apply=lambda seen: PROJECTS.visibility == seen, parse=one_of(*Visibility)
        ),
        "owner_id": Filter(
            apply=lambda owner_id: PROJECTS.owner_id == owner_id, parse=whole_number
        ),
    },
    search_columns=(PROJECTS.name, PROJECTS.description),
    created_column=PROJECTS.created_at,
)

MEMBER_LIST = ListSpec(
    id_column=ProjectMember.id,
    sort_columns={"created_at": ProjectMember.created_at, "id": ProjectMember.id},
    default_order="asc",
)


def _project_response(
    request: Request,
    project: Any,
    principal: Principal | None,
    *,
    status_code: int = 200,
) -> Response:
    headers = None
    if status_code == 201:
        headers = {"Location": resource_url(request, "get_project", project_id=project.id)}
    body = service.project_json(project, livemode=service.livemode_of(principal))
    return resource_response(request, body, status_code=status_code, headers=headers)


def _check_project_etag(request: Request, project: Project, principal: Principal) -> None:
    check_if_match(request, etag_of(service.project_json(project, livemode=principal.livemode)))


@router.get("/projects", response_model=Page[ProjectOut], summary="List the projects you may see")
async def list_projects(request: Request) -> Response:
    # Nothing declared (core.routing's direct path), and a read outside any session: each
    # dependency FastAPI resolves, and a session, cost more than the page's own query.
    principal = await read_projects(request)
    codec: CursorCodec = request.app.state.cursor_codec
    params = parse_list_params(request, PROJECT_LIST, codec)
    livemode = service.livemode_of(principal)
    return await paginate(
        request.app.state.db,
        request,
        service.visible_projects(principal),
        PROJECT_LIST,
        params,
        codec,
        load_items=partial(service.rendered_projects, request.app.state.db, livemode=livemode),
        render_items=service.projects_json,
        count=service.count_visible(principal),
    )


@router.post("/projects", status_code=201, response_model=ProjectOut, summary="Create a project")
async def create_project(request: Request, data: ProjectCreate, principal: Writer) -> Response:
    db = request.app.state.db
    owner_id = await service.new_project_owner(db, data=data, actor=principal)
    async with db.transaction() as writes:
        project = await service.insert_project(
            writes, data=data, owner_id=owner_id, actor=principal
        )
        response = _project_response(request, project, principal, status_code=201)
        # The answer to an Idempotency-Key commits with the project, never apart from it.
        await keep_answer(writes, request, response)
    return response


@router.get("/projects/{project_id}", response_model=ProjectOut, summary="Get a project")
async def get_project(request: Request, project_id: IdPath) -> Response:
    # As list_projects: nothing declared but the path id, one read outside any session.
    principal = await read_projects(request)
    project = await service.read_project(request.app.state.db, project_id, principal)
    return resource_response(request, project.json, etag=project.etag)


@router.put("/projects/{project_id}", response_model=ProjectOut, summary="Replace a project")
async def replace_project(
    request: Request,
    project_id: IdPath,
    data: ProjectReplace,
    session: SessionDep,
    principal: Writer,
) -> Response:
    access = await service.get_project(session, project_id, principal, for_change=True)
    access.require_change()
    _check_project_etag(request, access.project, principal)
    project = await service.replace_project(
        session, project=access.project, data=data, actor=principal
    )
    return _project_response(request, project, principal)


@router.patch("/projects/{project_id}", response_model=ProjectOut, summary="Change a project")
async def update_project(
    request: Request,
    project_id: IdPath,
    data: ProjectUpdate,
    session: SessionDep,
    principal: Writer,
) -> Response:
    access = await service.get_project(session, project_id, principal, for_change=True)
    access.require_change()
    _check_project_etag(request, access.project, principal)
    project = await service.update_project(
        session, project=access.project, data=data, actor=principal
    )
    return _project_response(request, project, principal)


@router.delete("/projects/{project_id}", status_code=204, summary="Delete a project")
async def delete_project(
    request: Request, project_id: IdPath, session: SessionDep, principal: Writer
) -> Response:
    access = await service.get_project(session, project_id, principal, for_change=True)
    access.require_manage()
    _check_project_etag(request, access.project, principal)
    await service.delete_project(session, project=access.project, actor=principal)
    return Response(status_code=204)


@router.get(
    "/projects/{project_id}/members",
    response_model=Page[MemberOut],
    summary="List a project's members",
)
async def list_members(
    request: Request,
    project_id: IdPath,
    session: SessionDep,
    codec: CursorCodecDep,
    principal: Reader,
    params: Annotated[ListParams, Depends(list_params(MEMBER_LIST))],
) -> Response:
    access = await service.get_project(session, project_id, principal)
    livemode = service.livemode_of(principal)
    return await paginate(
        session,
        request,
        service.members_query(access.project.id),
        MEMBER_LIST,
        params,
        codec,
        lambda member: service.member_out(member, livemode=livemode),
    )


def _member_response(
    request: Request, member: ProjectMember, principal: Principal, *, status_code: int = 200
) -> Response:
    headers = None
    if status_code == 201:
        location = resource_url(
            request, "get_member", project_id=member.project_id, user_id=member.user_id
        )
        headers = {"Location": location}
    body = service.member_out(member, livemode=principal.livemode)
    return resource_response(request, body, status_code=status_code, headers=headers)


def _check_member_etag(request: Request, member: ProjectMember, principal: Principal) -> None:
    body = resource_body(service.member_out(member, livemode=principal.livemode))
    check_if_match(request, etag_of(body))


@router.post(
    "/projects/{project_id}/members",
    status_code=201,
    response_model=MemberOut,
    summary="Add a member (project owners)",
)
async def add_member(
    request: Request,
    project_id: IdPath,
    data: MemberCreate,
    session: SessionDep,
    principal: Writer,
) -> Response:
    access = await service.get_project(session, project_id, principal)
    access.require_manage()
    member = await service.add_member(session, project=access.project, data=data, actor=principal)
    return _member_response(request, member, principal, status_code=201)


@router.get(
    "/projects/{project_id}/members/{user_id}",
    response_model=MemberOut,
    summary="Get one member",
)
async def get_member(
    request: Request, project_id: IdPath, user_id: IdPath, session: SessionDep, principal: Reader
) -> Response:
    access = await service.get_project(session, project_id, principal)
    member = await service.get_member(session, project=access.project, user_id=user_id)
    body = service.member_out(member, livemode=service.livemode_of(principal))
    return resource_response(request, body)


@router.patch(
    "/projects/{project_id}/members/{user_id}",
    response_model=MemberOut,
    summary="Change a member's role (project owners)",
)
async def change_member(
    request: Request,
    project_id: IdPath,
    user_id: IdPath,
    data: MemberUpdate,
    session: SessionDep,
    principal: Writer,
) -> Response:
    access = await service.get_project(session, project_id, principal)
    access.require_manage()
    member = await service.get_member(
        session, project=access.project, user_id=user_id, for_change=True
    )
    _check_member_etag(request, member, principal)
    member = await service.change_member(
        session, project=access.project, member=member, role=data.role, actor=principal
    )
    return _member_response(request, member, principal)


@router.delete(
    "/projects/{project_id}/members/{user_id}",
    status_code=204,
    summary="Remove a member (project owners; any member may leave)",
)
async def remove_member(
    request: Request, project_id: IdPath, user_id: IdPath, session: SessionDep, principal: Writer
) -> Response:
    access = await service.get_project(session, project_id, principal)
    if user_id != principal.user_id:
        access.require_manage()
    member = await service.get_member(
        session, project=access.project, user_id=user_id, for_change=True
    )
    _check_member_etag(request, member, principal)
    await service.remove_member(session, project=access.project, member=member, actor=principal)
    return Response(status_code=204)
