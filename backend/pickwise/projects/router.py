from fastapi import APIRouter

from pickwise.auth.deps import AdminUser, CurrentUser
from pickwise.core.deps import SessionDep
from pickwise.core.errors import NotFound
from pickwise.projects import repository, service
from pickwise.projects.deps import AdminProject, RaterProject
from pickwise.projects.schemas import (
    MemberAdd,
    MemberRead,
    ProjectCreate,
    ProjectRead,
    ProjectUpdate,
)
from pickwise.users import repository as users_repository

router = APIRouter(prefix="/api/v1/projects", tags=["projects"])


@router.get("", response_model=list[ProjectRead])
async def list_projects(user: CurrentUser, session: SessionDep) -> list[ProjectRead]:
    if user.is_admin:
        projects = await repository.list_all(session)
    else:
        projects = await repository.list_for_member(session, user.id)
    return [ProjectRead.model_validate(project) for project in projects]


@router.post("", response_model=ProjectRead, status_code=201)
async def create_project(body: ProjectCreate, admin: AdminUser, session: SessionDep) -> ProjectRead:
    return ProjectRead.model_validate(await service.create_project(session, body))


@router.get("/{project_id}", response_model=ProjectRead)
async def get_project(project: RaterProject) -> ProjectRead:
    return ProjectRead.model_validate(project)


@router.patch("/{project_id}", response_model=ProjectRead)
async def update_project(
    body: ProjectUpdate, project: AdminProject, session: SessionDep
) -> ProjectRead:
    return ProjectRead.model_validate(await service.update_project(session, project, body))


@router.get("/{project_id}/members", response_model=list[MemberRead])
async def list_members(project: AdminProject, session: SessionDep) -> list[MemberRead]:
    return [
        MemberRead(
            user_id=user.id,
            email=user.email,
            display_name=user.display_name,
            role=user.role,
            excluded=excluded,
        )
        for user, excluded in await repository.members(session, project.id)
    ]


@router.post("/{project_id}/members", status_code=204)
async def add_member(body: MemberAdd, project: AdminProject, session: SessionDep) -> None:
    user = await users_repository.get(session, body.user_id)
    if user is None:
        raise NotFound(f"user {body.user_id} does not exist", field="user_id")
    await service.add_member(session, project, user)


@router.delete("/{project_id}/members/{user_id}", status_code=204)
async def remove_member(user_id: int, project: AdminProject, session: SessionDep) -> None:
    await service.remove_member(session, project, user_id)


@router.post("/{project_id}/members/{user_id}/exclude", status_code=204)
async def exclude_member(user_id: int, project: AdminProject, session: SessionDep) -> None:
    await service.set_excluded(session, project, user_id, True)


@router.post("/{project_id}/members/{user_id}/include", status_code=204)
async def include_member(user_id: int, project: AdminProject, session: SessionDep) -> None:
    await service.set_excluded(session, project, user_id, False)
