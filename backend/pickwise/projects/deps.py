from typing import Annotated

from fastapi import Depends
from sqlalchemy import bindparam, select

from pickwise.auth.deps import AdminUser, CurrentUser
from pickwise.core.db import SessionDep
from pickwise.core.errors import NotFound
from pickwise.models import Project, ProjectMember
from pickwise.projects import repository


async def project_for_admin(project_id: int, session: SessionDep, admin: AdminUser) -> Project:
    project = await repository.get(session, project_id)
    if project is None:
        raise NotFound(f"project {project_id}: no such project")
    return project


# Project and membership in one query, built once: this runs on every rater request.
_PROJECT_OF_MEMBER = select(Project).where(
    Project.id == bindparam("project_id"),
    select(ProjectMember.user_id)
    .where(
        ProjectMember.project_id == bindparam("project_id"),
        ProjectMember.user_id == bindparam("user_id"),
    )
    .exists(),
)


async def project_for_rater(project_id: int, session: SessionDep, user: CurrentUser) -> Project:
    if user.role == "admin":
        project = await repository.get(session, project_id)
    else:
        project = await session.scalar(
            _PROJECT_OF_MEMBER, {"project_id": project_id, "user_id": user.id}
        )
    # A non-member gets the same answer as for a missing project: no probing for ids.
    if project is None:
        raise NotFound(f"project {project_id}: no such project")
    return project


AdminProject = Annotated[Project, Depends(project_for_admin)]
RaterProject = Annotated[Project, Depends(project_for_rater)]
