from typing import Annotated

from fastapi import Depends

from pickwise.auth.deps import AdminUser, CurrentUser
from pickwise.core.deps import SessionDep
from pickwise.core.errors import NotFound
from pickwise.models import Project
from pickwise.projects import repository


async def project_for_admin(project_id: int, session: SessionDep, admin: AdminUser) -> Project:
    project = await repository.get(session, project_id)
    if project is None:
        raise no_such_project(project_id)
    return project


async def project_for_rater(project_id: int, session: SessionDep, user: CurrentUser) -> Project:
    if user.is_admin:
        project = await repository.get(session, project_id)
    else:
        project = await repository.get_for_member(session, project_id, user.id)
    if project is None:
        raise no_such_project(project_id)
    return project


def no_such_project(project_id: int) -> NotFound:
    """A non-member gets the same answer as for a missing project: no probing for ids."""
    return NotFound(f"project {project_id}: no such project")


AdminProject = Annotated[Project, Depends(project_for_admin)]
RaterProject = Annotated[Project, Depends(project_for_rater)]
