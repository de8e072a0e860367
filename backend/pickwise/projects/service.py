from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from pickwise.core.errors import Conflict, InvalidInput, NotFound
from pickwise.models import Project, ProjectMember, User
from pickwise.models.projects import ProjectKind
from pickwise.projects import repository
from pickwise.projects.schemas import ProjectCreate, ProjectUpdate


async def create_project(session: AsyncSession, data: ProjectCreate) -> Project:
    if await repository.get_by_slug(session, data.slug) is not None:
        raise Conflict(f"slug: a project called {data.slug!r} already exists")
    project = Project(**data.model_dump())
    session.add(project)
    try:
        async with session.begin_nested():
            await session.flush()
    except IntegrityError as exc:
        raise Conflict(f"slug: a project called {data.slug!r} already exists") from exc
    return project


async def update_project(session: AsyncSession, project: Project, data: ProjectUpdate) -> Project:
    # Imported here: assignments depends on projects, not the other way round.
    from pickwise.assignments.service import end_leases, resize_slots

    changes = data.model_dump(exclude_unset=True, exclude_none=True)
    new_k = changes.get("raters_per_pair")
    if project.kind == ProjectKind.CONVERSATIONS:
        # Each turn is judged by its author alone (docs/conversations.md).
        for field, allowed in (("raters_per_pair", 1), ("gold_rate", 0)):
            if changes.get(field, allowed) != allowed:
                raise InvalidInput(f"{field}: must be {allowed} in a conversation project")
    closing = changes.get("is_archived") is True and not project.is_archived
    for field, value in changes.items():
        setattr(project, field, value)
    await session.flush()
    if new_k is not None:
        await resize_slots(session, project)
    if closing:
        # A closed project collects nothing more: every lease ends and its slot is freed.
        await end_leases(session, [project.id])
    return project


async def get_by_slug_or_404(session: AsyncSession, slug: str) -> Project:
    project = await repository.get_by_slug(session, slug)
    if project is None:
        raise NotFound(f"project {slug!r}: no such project")
    return project


async def add_member(session: AsyncSession, project: Project, user: User) -> None:
    if await repository.is_member(session, project.id, user.id):
        return
    session.add(ProjectMember(project_id=project.id, user_id=user.id))
    await session.flush()


async def remove_member(session: AsyncSession, project: Project, user_id: int) -> None:
    """The rater leaves the project: the pair they hold (if any) goes back to the pool now,
    and a choice they send for it later is refused."""
    from pickwise.assignments.service import end_leases

    member = await session.get(ProjectMember, (project.id, user_id))
    if member is None:
        raise NotFound(f"user {user_id} is not a member of this project")
    await session.delete(member)
    await session.flush()
    await end_leases(session, [project.id], rater_id=user_id)


async def set_excluded(
    session: AsyncSession, project: Project, user_id: int, excluded: bool
) -> None:
    member = await session.get(ProjectMember, (project.id, user_id))
    if member is None:
        raise NotFound(f"user {user_id} is not a member of this project")
    member.excluded = excluded
    await session.flush()
