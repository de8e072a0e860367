from sqlalchemy import bindparam, select
from sqlalchemy.ext.asyncio import AsyncSession

from pickwise.models import Project, ProjectMember, User


async def get(session: AsyncSession, project_id: int) -> Project | None:
    return await session.get(Project, project_id)


async def get_by_slug(session: AsyncSession, slug: str) -> Project | None:
    return await session.scalar(select(Project).where(Project.slug == slug))


async def list_all(session: AsyncSession) -> list[Project]:
    return list((await session.execute(select(Project).order_by(Project.id))).scalars())


async def list_for_member(session: AsyncSession, user_id: int) -> list[Project]:
    result = await session.execute(
        select(Project)
        .join(ProjectMember, ProjectMember.project_id == Project.id)
        .where(ProjectMember.user_id == user_id, ~Project.is_archived)
        .order_by(Project.id)
    )
    return list(result.scalars())


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


async def get_for_member(session: AsyncSession, project_id: int, user_id: int) -> Project | None:
    """The project, if the user is one of its members."""
    return await session.scalar(_PROJECT_OF_MEMBER, {"project_id": project_id, "user_id": user_id})


async def is_member(session: AsyncSession, project_id: int, user_id: int) -> bool:
    member = await session.get(ProjectMember, (project_id, user_id))
    return member is not None


async def members(session: AsyncSession, project_id: int) -> list[tuple[User, ProjectMember]]:
    result = await session.execute(
        select(User, ProjectMember)
        .join(ProjectMember, ProjectMember.user_id == User.id)
        .where(ProjectMember.project_id == project_id)
        .order_by(User.id)
    )
    return [(row[0], row[1]) for row in result]
