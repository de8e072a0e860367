from collections.abc import Sequence
from typing import Any, TypeVar

from sqlalchemy import Exists, bindparam, delete, or_, select
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession

from pickwise.models import (
    Conversation,
    GenerationEndpoint,
    Judgment,
    Project,
    ProjectMember,
    ProjectRaterExclusion,
    RaterPool,
    User,
    Webhook,
)

# What an admin manages inside a project, found by its id.
OwnedRow = TypeVar("OwnedRow", GenerationEndpoint, RaterPool, Webhook)


async def in_project(
    session: AsyncSession, model: type[OwnedRow], project_id: int, row_id: int
) -> OwnedRow | None:
    """The row of `model` with this id, if it belongs to the project."""
    return await session.scalar(
        select(model).where(model.id == row_id, model.project_id == project_id)
    )


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


async def member(session: AsyncSession, project_id: int, user_id: int) -> ProjectMember | None:
    return await session.get(ProjectMember, (project_id, user_id))


def _excluded(project_id: int, user_id: Any) -> Exists:
    return (
        select(ProjectRaterExclusion.user_id)
        .where(
            ProjectRaterExclusion.project_id == project_id,
            ProjectRaterExclusion.user_id == user_id,
        )
        .exists()
    )


async def members(session: AsyncSession, project_id: int) -> list[tuple[User, bool]]:
    """The project's members, each with whether their votes are excluded."""
    result = await session.execute(
        select(User, _excluded(project_id, User.id))
        .join(ProjectMember, ProjectMember.user_id == User.id)
        .where(ProjectMember.project_id == project_id)
        .order_by(User.id)
    )
    return [(user, excluded) for user, excluded in result]


def _took_part(project_id: int, user_id: Any) -> list[Exists]:
    """Whether the user is a member of the project, has votes in it, has conversations in
    it: each an index probe by (user, project)."""
    return [
        select(model.project_id).where(model.project_id == project_id, column == user_id).exists()
        for model, column in (
            (ProjectMember, ProjectMember.user_id),
            (Judgment, Judgment.rater_id),
            (Conversation, Conversation.rater_id),
        )
    ]


async def raters(session: AsyncSession, project_id: int) -> list[tuple[User, bool]]:
    """Everyone whose work the project holds or may hold: its members, and former members
    with votes or conversations in it; each with whether they are a member now. One probe
    per user of the (rater, project) indexes, not a scan of the project's judgments."""
    is_member, *rated = _took_part(project_id, User.id)
    result = await session.execute(
        select(User, is_member).where(or_(is_member, *rated)).order_by(User.id)
    )
    return [(user, member) for user, member in result]


async def is_excluded(session: AsyncSession, project_id: int, user_id: int) -> bool:
    return bool(await session.scalar(select(_excluded(project_id, user_id))))


async def is_rater(session: AsyncSession, project_id: int, user_id: int) -> bool:
    """The user is a member of the project, or was one: they have votes or conversations
    in it."""
    return bool(await session.scalar(select(or_(*_took_part(project_id, user_id)))))


async def set_excluded(
    session: AsyncSession, project_id: int, user_id: int, excluded: bool
) -> None:
    """Excludes the rater's votes, or includes them again; asking twice changes nothing."""
    if excluded:
        await session.execute(
            insert(ProjectRaterExclusion)
            .values(project_id=project_id, user_id=user_id)
            .on_conflict_do_nothing()
        )
    else:
        await session.execute(
            delete(ProjectRaterExclusion).where(
                ProjectRaterExclusion.project_id == project_id,
                ProjectRaterExclusion.user_id == user_id,
            )
        )


async def missing_ids(session: AsyncSession, project_ids: Sequence[int]) -> list[int]:
    """Those of `project_ids` that name no project, in the order given."""
    if not project_ids:
        return []
    found = set(await session.scalars(select(Project.id).where(Project.id.in_(project_ids))))
    return [project_id for project_id in project_ids if project_id not in found]


async def add_members(session: AsyncSession, project_ids: Sequence[int], user_id: int) -> None:
    """The user joins each project; one they are already a member of stays as it is."""
    if not project_ids:
        return
    await session.execute(
        insert(ProjectMember)
        .values([{"project_id": project_id, "user_id": user_id} for project_id in project_ids])
        .on_conflict_do_nothing()
    )


async def projects_by_member(session: AsyncSession) -> dict[int, list[Project]]:
    """Every user's projects, by user id (users in no project are left out)."""
    rows = await session.execute(
        select(ProjectMember.user_id, Project)
        .join(Project, Project.id == ProjectMember.project_id)
        .order_by(Project.id)
    )
    by_user: dict[int, list[Project]] = {}
    for user_id, project in rows:
        by_user.setdefault(user_id, []).append(project)
    return by_user
